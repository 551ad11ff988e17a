//! A photo travels from the classroom device through a teacher's review to a
//! parent, end to end: the real `guardian-device` and `guardian-hub`
//! binaries, the embedded broker, real SQLite files, the real detector, and
//! the shared photos.
//!
//! Everything a parent receives carries their watermark: a band along the
//! bottom of a preview, blocks repeated over an original, either of which may
//! fall on a face. The face measures therefore go through
//! [`guardian_e2e::watermark::Marked`], which finds the watermark on the image
//! and measures around its text and under its band, rather than turning the
//! watermark off (only the hub's in-process tests can) or skipping the faces
//! it crosses (on an original it crosses most); see that module for why this
//! neither hides a shown face nor passes an uncovered one for covered.

use std::collections::BTreeMap;
use std::path::Path;

use guardian_e2e::hub::{hub_cli, hub_ok, School, CHILD_NAME};
use guardian_e2e::measure::{self, iou, load_upright, Region};
use guardian_e2e::watermark::Marked;
use guardian_e2e::web::{last_sms_code, ReviewPhoto};
use guardian_e2e::{artefact_dir, binary, faces_json, testdata};
use serde_json::json;

const PHONE: &str = "+34600111222";

/// The photos with annotated face boxes (51 boxes in all).
const BOXED: [&str; 5] = [
    "solvay_1927_rustface.png",
    "voc_2007_007763.jpg",
    "voc_2008_002079.jpg",
    "voc_2008_001322.jpg",
    "voc_2008_002470.jpg",
];
const NEGATIVES: [&str; 2] = ["rocket_noface.jpg", "mde_food_counter_12mp_noface.jpg"];

/// A photo in which the detector finds no face at all.
const NO_FACE: &str = "rocket_noface.jpg";

/// A photo stored sideways with an EXIF orientation.
const SIDEWAYS: &str = "hopper_orientation_6.jpg";

/// The photo whose original the parent asks for.
const ORIGINAL: &str = "voc_2008_001322.jpg";

fn copy_photos(dir: &Path, names: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    for name in names {
        std::fs::copy(testdata(name), dir.join(name)).unwrap();
    }
}

/// `guardian-device detect --json` on the given files.
fn detect(paths: &[&Path]) -> BTreeMap<String, Vec<Region>> {
    let output = std::process::Command::new(binary("guardian-device"))
        .args(["detect", "--json"])
        .args(paths)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    value
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, boxes)| {
            let boxes = boxes
                .as_array()
                .unwrap()
                .iter()
                .map(Region::from_json)
                .collect();
            (path.clone(), boxes)
        })
        .collect()
}

/// One annotated face of `faces.json` and the face the hub reports for it.
#[derive(Debug, Clone, Copy)]
struct Match {
    annotated: Region,
    /// The reported face's number and box.
    n: u64,
    reported: Region,
}

/// Pairs each annotated face of a photo with the face of the review that
/// best overlaps it, and checks that the device found it: the reported box
/// is face-sized over it (IoU at least 0.4) and the hub's cover for it (the
/// box grown by a fifth) holds at least 85 % of the annotated box. No two
/// annotated faces may share one reported face.
fn match_faces(name: &str, photo: &ReviewPhoto) -> Vec<Match> {
    let annotations = faces_json();
    let mut matches: Vec<Match> = Vec::new();
    for value in annotations[name]["faces"].as_array().unwrap() {
        let annotated = Region::from_json(value);
        let best = photo
            .faces
            .iter()
            .max_by(|a, b| iou(annotated, a.region).total_cmp(&iou(annotated, b.region)))
            .unwrap_or_else(|| panic!("{name}: the review reports no face"));
        let overlap = iou(annotated, best.region);
        let covered = annotated.share_inside(best.region.hub_cover());
        assert!(
            overlap >= 0.4 && covered >= 0.85,
            "{name}: the face at {annotated:?} was not found: the nearest reported box \
             {:?} has IoU {overlap:.2} and its cover holds {:.0} % of the face",
            best.region,
            covered * 100.0
        );
        assert!(
            matches.iter().all(|m| m.n != best.n),
            "{name}: reported face {} stands for two annotated faces",
            best.n
        );
        matches.push(Match {
            annotated,
            n: best.n,
            reported: best.region,
        });
    }
    matches
}

/// The face the teacher names as the parent's child: one whose neighbours'
/// covers stay clear of it, and, of those, the one the watermark hides least
/// on the teacher's own review image. Any face would do for the product; the
/// choice only keeps the watermark's text off the face whose detail is
/// measured (the parent's preview is marked like the review image, with a
/// band along the bottom that depends on the photo's size and the text's
/// length, and the two names are alike in length). Also checks that the
/// review image shows that face uncovered.
fn choose_face(name: &str, photo: &ReviewPhoto, matches: &[Match], image: &[u8]) -> usize {
    let image = measure::decode(image);
    let source = load_upright(&testdata(name));
    assert!(image.width().max(image.height()) <= 1280, "{name}");
    let scale = f64::from(image.width()) / f64::from(photo.width);
    let reference = measure::resize(&source, image.width(), image.height());
    let frames: Vec<Region> = photo
        .faces
        .iter()
        .map(|face| face.region.scaled(scale))
        .collect();
    let marked = Marked::outlined(&image, &reference, &frames);

    let clear_of_neighbours = |m: &Match| {
        photo.faces.iter().filter(|face| face.n != m.n).all(|face| {
            !m.annotated
                .grown_by(2.0)
                .intersects(face.region.hub_cover())
        })
    };
    let (chosen, visible) = matches
        .iter()
        .enumerate()
        .filter(|(_, m)| clear_of_neighbours(m))
        .map(|(i, m)| (i, marked.detail(m.annotated.scaled(scale)).measured))
        .fold((usize::MAX, -1.0), |best, next| {
            if next.1 > best.1 {
                next
            } else {
                best
            }
        });
    assert!(
        visible >= 0.5,
        "{name}: every face is crowded by another or hidden by the watermark"
    );

    let shown = marked.detail(matches[chosen].reported.scaled(scale).grown_by(-1.0));
    assert!(
        shown.delivered >= shown.source / 2.0,
        "{name}: the teacher's review image hides a face: {:.1} of {:.1}",
        shown.delivered,
        shown.source
    );
    chosen
}

#[test]
fn a_photo_reaches_a_parent_once_a_teacher_names_their_child_with_only_that_child_shown() {
    let school = School::new("Sunflowers", PHONE);
    let hub = school.start_hub();
    let photos = school.dir.path().join("camera");
    copy_photos(&photos, &BOXED);
    copy_photos(&photos, &[SIDEWAYS, NO_FACE]);

    // Every photo is captured once and acknowledged.
    let run = school.run_device(
        &school.dir.path().join("device"),
        &format!("dir:{}", photos.display()),
        600,
    );
    assert_eq!(
        run.code,
        Some(0),
        "device: {}\nhub: {}",
        run.stderr,
        hub.log()
    );
    let captured: BTreeMap<String, String> = run
        .captured()
        .into_iter()
        .map(|(id, source)| {
            let name = Path::new(&source)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (name, id)
        })
        .collect();
    assert_eq!(captured.len(), BOXED.len() + 2);

    // Nothing reaches the parent before a teacher has reviewed it.
    let mut parent = school.parent(&hub);
    assert!(
        parent.photo_ids().is_empty(),
        "unreviewed photos are listed"
    );
    let early = parent.get(&format!("/api/photos/{}/preview", captured[ORIGINAL]));
    assert_eq!(
        (early.status, early.error_code().as_str()),
        (404, "not_found")
    );

    // The teacher's review holds every photo once, with the device's faces
    // and the classroom's child to name.
    let mut teacher = school.teacher(&hub);
    let awaiting = teacher.review();
    let mut awaiting_ids: Vec<&str> = awaiting.iter().map(|photo| photo.id.as_str()).collect();
    awaiting_ids.sort();
    let mut captured_ids: Vec<&str> = captured.values().map(String::as_str).collect();
    captured_ids.sort();
    assert_eq!(awaiting_ids, captured_ids, "every photo arrives once");
    for photo in &awaiting {
        assert_eq!(
            photo.children,
            [(school.child_id.clone(), CHILD_NAME.to_owned())]
        );
        assert!(photo
            .faces
            .iter()
            .all(|face| face.origin == "device" && face.child_id.is_none()));
    }
    let review: BTreeMap<&str, &ReviewPhoto> = captured
        .iter()
        .map(|(name, id)| {
            let photo = awaiting.iter().find(|photo| &photo.id == id).unwrap();
            (name.as_str(), photo)
        })
        .collect();

    // Every annotated face was found by the device: the review reports a box
    // for each, and the hub's cover over that box holds it.
    let matched: BTreeMap<&str, Vec<Match>> = BOXED
        .iter()
        .map(|&name| (name, match_faces(name, review[name])))
        .collect();
    assert_eq!(matched.values().map(Vec::len).sum::<usize>(), 51);

    // The teacher names the parent's child on one face of each photo and
    // releases it.
    let mut leo: BTreeMap<&str, usize> = BTreeMap::new();
    for name in BOXED {
        let photo = review[name];
        let image = teacher.get(&format!("/api/review/{}/image", photo.id));
        assert_eq!(image.status, 200, "{name}: {image:?}");
        assert_eq!(image.content_type, "image/jpeg");
        let stem = name.split('.').next().unwrap();
        std::fs::write(
            artefact_dir().join(format!("e2e_review_{stem}.jpg")),
            &image.body,
        )
        .unwrap();
        let chosen = choose_face(name, photo, &matched[name], &image.body);
        let n = matched[name][chosen].n;
        leo.insert(name, chosen);

        let named = teacher.name_face(&photo.id, n, &school.child_id);
        assert_eq!(named.status, 200, "{name}: {named:?}");
        let named = ReviewPhoto::from_json(&named.json());
        for face in &named.faces {
            let expected = (face.n == n).then_some(school.child_id.as_str());
            assert_eq!(
                face.child_id.as_deref(),
                expected,
                "{name}: face {}",
                face.n
            );
        }
        let released = teacher.release(&photo.id, false);
        assert_eq!(released.status, 200, "{name}: {released:?}");
        assert!(released.json()["released_at"].is_string());
    }
    let sideways = review[SIDEWAYS];
    assert_eq!(sideways.faces.len(), 1, "{SIDEWAYS}: {sideways:?}");
    assert_eq!(
        teacher
            .name_face(&sideways.id, sideways.faces[0].n, &school.child_id)
            .status,
        200
    );
    assert_eq!(teacher.release(&sideways.id, false).status, 200);

    // A photo with no face is released only once the teacher confirms it,
    // and then reaches no parent: nobody is named in it.
    let empty = review[NO_FACE];
    assert!(empty.faces.is_empty(), "{NO_FACE}: {empty:?}");
    let unconfirmed = teacher.release(&empty.id, false);
    assert_eq!(
        (unconfirmed.status, unconfirmed.error_code().as_str()),
        (409, "no_faces_unconfirmed")
    );
    assert_eq!(teacher.release(&empty.id, true).status, 200);
    assert!(teacher.review().is_empty(), "every photo was released");

    // The parent now lists the photos where their child is named, and no
    // other; no original is offered yet.
    let listed = parent.photos();
    let mut listed_ids: Vec<&str> = listed.iter().map(|p| p["id"].as_str().unwrap()).collect();
    listed_ids.sort();
    let mut expected: Vec<&str> = captured
        .iter()
        .filter(|(name, _)| name.as_str() != NO_FACE)
        .map(|(_, id)| id.as_str())
        .collect();
    expected.sort();
    assert_eq!(listed_ids, expected);
    for photo in &listed {
        assert_eq!(photo["children"], json!([school.child_id]));
        assert_eq!(photo["original_available"], json!(false));
    }
    let hidden = parent.get(&format!("/api/photos/{}/preview", empty.id));
    assert_eq!(hidden.status, 404);

    // Previews: the child's face is shown with its detail, every other face
    // is covered and keeps less than a tenth of its detail, and the rest of
    // the picture is intact.
    let mut covered_faces = 0;
    let mut exposed: Vec<String> = Vec::new();
    let (mut measured, mut measurable) = (0.0, 0.0);
    for name in BOXED {
        let photo = review[name];
        let reply = parent.get(&format!("/api/photos/{}/preview", photo.id));
        assert_eq!(reply.status, 200, "{name}");
        assert_eq!(reply.content_type, "image/jpeg");
        let stem = name.split('.').next().unwrap();
        std::fs::write(
            artefact_dir().join(format!("e2e_parent_preview_{stem}.jpg")),
            &reply.body,
        )
        .unwrap();
        let preview = measure::decode(&reply.body);
        let source = load_upright(&testdata(name));
        assert!(preview.width().max(preview.height()) <= 1280);
        let scale = f64::from(preview.width()) / f64::from(source.width());
        assert_eq!(
            preview.height(),
            (f64::from(source.height()) * scale).round() as u32
        );
        let reference = measure::resize(&source, preview.width(), preview.height());

        let own = matched[name][leo[name]];
        let covered: Vec<Region> = photo
            .faces
            .iter()
            .filter(|face| face.n != own.n)
            .map(|face| face.region)
            .collect();
        let covers: Vec<Region> = covered
            .iter()
            .map(|r| r.hub_cover_in(source.dimensions(), preview.dimensions()))
            .collect();
        let marked = Marked::new(&preview, &reference, &covers);

        let shown = marked.detail(own.annotated.scaled(scale));
        assert!(
            shown.measured >= 0.25 && shown.delivered >= shown.source / 2.0,
            "{name}: the child's face is not shown: {shown:?}"
        );

        // Where the hub's cover lies over an annotated face (at least 85 % of
        // it, as checked above), nothing of the face is left.
        for m in matched[name].iter().filter(|m| m.n != own.n) {
            covered_faces += 1;
            let under_cover = m
                .annotated
                .intersection(m.reported.hub_cover())
                .unwrap()
                .scaled(scale)
                .grown_by(-1.0);
            let detail = marked.detail(under_cover);
            let whole = marked.detail(m.annotated.scaled(scale).grown_by(-1.0));
            if whole.is_telling() && !whole.is_covered() {
                exposed.push(format!("{name} {:?}", m.annotated));
            }
            measured += detail.measured * under_cover.area();
            measurable += under_cover.area();
            assert!(
                detail.is_covered(),
                "{name}: the covered face at {:?} keeps {:.1} of {:.1}",
                m.annotated,
                detail.delivered,
                detail.source
            );
        }
        // Every box the device reported, annotated or not, is covered.
        for region in &covered {
            let detail = marked.detail(region.scaled(scale).grown_by(-1.0));
            assert!(
                detail.is_covered(),
                "{name}: the covered box {region:?} keeps {:.1} of {:.1}",
                detail.delivered,
                detail.source
            );
        }

        // Outside every cover (with room for its margin) the preview is the
        // photo; under the watermark's band it is the photo darkened.
        let margins: Vec<Region> = covered.iter().map(|r| r.grown(0.6).scaled(scale)).collect();
        let psnr = marked.psnr_outside(&margins);
        assert!(
            psnr >= 25.0,
            "{name}: PSNR outside the covers is {psnr:.1} dB"
        );
        if let Some(psnr) = marked.psnr_under_the_band(&margins) {
            assert!(
                psnr >= 25.0,
                "{name}: PSNR under the watermark's band is {psnr:.1} dB"
            );
        }
    }
    assert_eq!(covered_faces, 51 - BOXED.len());
    // Measured over the whole annotated box, not just where the cover lies:
    // a hand-drawn box may reach beyond the detector's margin, but on at
    // most two faces may any detail be left.
    assert!(exposed.len() <= 2, "faces left partly visible: {exposed:?}");
    assert!(
        measured >= 0.5 * measurable,
        "the watermark hid most of the covered faces from the measure"
    );

    // The photo stored sideways reaches the parent too. (It is square and
    // small enough for the watermark to fill it: that it is shown upright is
    // checked by the device's and the hub's own tests.)
    let reply = parent.get(&format!("/api/photos/{}/preview", sideways.id));
    assert_eq!(reply.status, 200);
    let preview = measure::decode(&reply.body);
    assert_eq!(
        preview.dimensions(),
        load_upright(&testdata(SIDEWAYS)).dimensions()
    );

    // Originals: refused until the parent consents to originals of their
    // child, the only child each photo shows.
    let photo_id = &captured[ORIGINAL];
    let refused = parent.post(&format!("/api/photos/{photo_id}/original"), &json!({}));
    assert_eq!(
        (refused.status, refused.error_code().as_str()),
        (403, "original_not_allowed")
    );
    let consent = parent.grant_consent(&school.child_id, "originals");
    assert_eq!(consent.status, 200, "{consent:?}");
    assert_eq!(consent.json()["originals"], json!(true));
    for photo in parent.photos() {
        assert_eq!(photo["original_available"], json!(true), "{photo}");
    }

    // Then an original, only after the code; upright, watermarked, with the
    // child's face in full detail and every other face covered.
    let request = parent.post(&format!("/api/photos/{photo_id}/original"), &json!({}));
    assert_eq!(request.status, 200, "{:?}", request);
    let request_id = request.json()["request_id"].as_str().unwrap().to_owned();
    let code = last_sms_code(&school.hub_dir, PHONE);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let refused = parent.post(
        &format!("/api/original-requests/{request_id}/verify"),
        &json!({ "code": wrong }),
    );
    assert_eq!(
        (refused.status, refused.error_code().as_str()),
        (400, "wrong_code")
    );
    let verified = parent.post(
        &format!("/api/original-requests/{request_id}/verify"),
        &json!({ "code": code }),
    );
    assert_eq!(verified.status, 200, "{:?}", verified);
    let download = verified.json()["download"].as_str().unwrap().to_owned();
    let reused = parent.post(
        &format!("/api/original-requests/{request_id}/verify"),
        &json!({ "code": code }),
    );
    assert_eq!((reused.status, reused.error_code().as_str()), (410, "used"));

    let original = parent.get(&download);
    assert_eq!(original.status, 200);
    assert_eq!(original.content_type, "image/jpeg");
    std::fs::write(
        artefact_dir().join("e2e_delivered_original.jpg"),
        &original.body,
    )
    .unwrap();
    let delivered = measure::decode(&original.body);
    let source = load_upright(&testdata(ORIGINAL));
    assert_eq!(delivered.dimensions(), source.dimensions());
    let own = matched[ORIGINAL][leo[ORIGINAL]];
    let covered: Vec<Region> = review[ORIGINAL]
        .faces
        .iter()
        .filter(|face| face.n != own.n)
        .map(|face| {
            face.region
                .hub_cover_in(source.dimensions(), source.dimensions())
        })
        .collect();
    let marked = Marked::new(&delivered, &source, &covered);
    let shown = marked.detail(own.annotated);
    assert!(
        shown.measured >= 0.25 && shown.delivered >= shown.source / 2.0,
        "the child's face in the original lost its detail: {shown:?}"
    );
    for m in matched[ORIGINAL].iter().filter(|m| m.n != own.n) {
        let under_cover = m.annotated.intersection(m.reported.hub_cover()).unwrap();
        let detail = marked.detail(under_cover);
        assert!(
            detail.is_telling() && detail.is_covered(),
            "a face in the original is not covered: {detail:?}"
        );
    }
    let changed = source
        .enumerate_pixels()
        .filter(|(x, y, _)| {
            !covered
                .iter()
                .any(|r| r.contains(f64::from(*x), f64::from(*y)))
        })
        .filter(|(x, y, a)| {
            let b = delivered.get_pixel(*x, *y);
            a.0.iter().zip(b.0.iter()).any(|(p, q)| p.abs_diff(*q) > 60)
        })
        .count();
    assert!(
        changed > (source.width() * source.height() / 100) as usize,
        "the watermark must visibly change the picture ({changed} pixels changed)"
    );
    let second = parent.get(&download);
    assert_eq!(
        (second.status, second.error_code().as_str()),
        (410, "used"),
        "a download link works once"
    );

    // A second run over the same folder captures nothing new.
    let again = school.run_device(
        &school.dir.path().join("device"),
        &format!("dir:{}", photos.display()),
        120,
    );
    assert_eq!(again.code, Some(0));
    assert!(again.captured().is_empty());
    assert!(teacher.review().is_empty());
    assert_eq!(parent.photo_ids().len(), captured.len() - 1);

    // The audit log is intact, and says so with its head.
    let verify = hub_ok(&school.hub_dir, &["audit", "verify"], None);
    assert!(verify.contains("head: seq="), "{verify}");
}

#[test]
fn photos_without_faces_get_few_and_small_boxes() {
    let paths: Vec<_> = NEGATIVES.iter().map(|name| testdata(name)).collect();
    let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let boxes = detect(&refs);
    let mut total = 0;
    for (path, found) in &boxes {
        let image = image::image_dimensions(path).unwrap();
        let area = f64::from(image.0) * f64::from(image.1);
        for region in found {
            assert!(
                region.area() <= area / 10.0,
                "{path}: a box covers over a tenth of the photo"
            );
        }
        total += found.len();
    }
    assert!(total <= 3, "{total} boxes on photos with no face");
}

#[test]
fn the_outbox_keeps_photos_while_the_hub_is_down_and_delivers_them_once_it_returns() {
    let school = School::new("Daisies", PHONE);
    let photos = school.dir.path().join("camera");
    copy_photos(&photos, &["hopper.jpg", "voc_2008_002470.jpg"]);
    let device_dir = school.dir.path().join("device");
    let source = format!("dir:{}", photos.display());

    let offline = school.run_device(&device_dir, &source, 5);
    assert_eq!(
        offline.code,
        Some(4),
        "no hub: the run times out; {}",
        offline.stderr
    );
    assert_eq!(offline.captured().len(), 2);

    let hub = school.start_hub();
    let online = school.run_device(&device_dir, &source, 120);
    assert_eq!(online.code, Some(0), "{}\n{}", online.stderr, hub.log());
    assert!(online.captured().is_empty(), "nothing is captured twice");

    // The hub holds exactly the photos captured offline, awaiting review.
    let mut expected: Vec<String> = offline.captured().into_iter().map(|(id, _)| id).collect();
    expected.sort();
    let mut teacher = school.teacher(&hub);
    let mut awaiting: Vec<String> = teacher.review().into_iter().map(|photo| photo.id).collect();
    awaiting.sort();
    assert_eq!(awaiting, expected);

    // Once reviewed, the parent sees them.
    let mut parent = school.parent(&hub);
    assert!(parent.photo_ids().is_empty());
    let mut released = teacher.name_child_and_release_all(&school.child_id);
    released.sort();
    assert_eq!(released, expected);
    assert_eq!(parent.photo_ids(), expected);
}

#[test]
fn audit_verify_fails_after_an_entry_is_altered_removed_or_cut() {
    let school = School::new("Roses", PHONE);
    let db = school.hub_dir.join("hub.sqlite");
    let verify = || {
        hub_cli(&school.hub_dir, &["audit", "verify"], None)
            .status
            .success()
    };
    assert!(verify());

    let conn = rusqlite::Connection::open(&db).unwrap();
    let count: i64 = conn
        .query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))
        .unwrap();
    assert!(count >= 3);

    conn.execute(
        "UPDATE audit_log SET actor = 'operator-x' WHERE seq = 2",
        [],
    )
    .unwrap();
    assert!(!verify(), "altered");
    conn.execute("UPDATE audit_log SET actor = 'operator' WHERE seq = 2", [])
        .unwrap();
    assert!(verify(), "restored");

    conn.execute("DELETE FROM audit_log WHERE seq = ?1", [count])
        .unwrap();
    assert!(!verify(), "tail cut");

    conn.execute("DELETE FROM audit_log WHERE seq = 1", [])
        .unwrap();
    assert!(!verify(), "removed");
}
