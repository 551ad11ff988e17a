//! A photo travels from the classroom device to a parent, end to end: the real
//! `guardian-device` and `guardian-hub` binaries, the embedded broker, real
//! SQLite files, the real detector, and the shared photos.

use std::collections::BTreeMap;
use std::path::Path;

use guardian_e2e::hub::{hub_cli, hub_ok, School, PASSWORD};
use guardian_e2e::measure::{self, laplacian_variance, load_upright, psnr_where, Region};
use guardian_e2e::web::{last_sms_code, Browser};
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

#[test]
fn photos_reach_the_parent_with_every_face_covered_and_originals_only_with_a_code() {
    let school = School::new("Sunflowers", PHONE);
    let hub = school.start_hub();
    let photos = school.dir.path().join("camera");
    copy_photos(&photos, &BOXED);
    copy_photos(&photos, &["hopper_orientation_6.jpg"]);

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
    assert_eq!(captured.len(), BOXED.len() + 1);

    // The parent sees exactly those photos.
    let mut parent = Browser::new(&hub.base_url());
    assert_eq!(parent.login(PHONE, PASSWORD).status, 200);
    let listed = parent.get("/api/photos").json();
    let mut listed_ids: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|photo| photo["id"].as_str().unwrap().to_owned())
        .collect();
    listed_ids.sort();
    let mut captured_ids: Vec<String> = captured.values().cloned().collect();
    captured_ids.sort();
    assert_eq!(listed_ids, captured_ids, "every photo arrives once");

    // Previews: every annotated face is under a cover; covers keep less than
    // a tenth of the detail; the rest of the picture is intact.
    let annotations = faces_json();
    let mut covered_faces = 0;
    let mut all_faces = 0;
    for name in BOXED {
        let preview = parent.get(&format!("/api/photos/{}/preview", captured[name]));
        assert_eq!(preview.status, 200);
        assert_eq!(preview.content_type, "image/jpeg");
        let preview = measure::decode(&preview.body);
        let source = load_upright(&testdata(name));
        assert!(preview.width().max(preview.height()) <= 1280);
        let scale = f64::from(preview.width()) / f64::from(source.width());
        let reference = measure::resize(&source, preview.width(), preview.height());

        for face in annotations[name]["faces"].as_array().unwrap() {
            let region = Region::from_json(face).scaled(scale);
            let before = laplacian_variance(&reference, region);
            let after = laplacian_variance(&preview, region);
            all_faces += 1;
            if after < before / 10.0 {
                covered_faces += 1;
            }
        }

        let detected = &detect(&[&testdata(name)])[testdata(name).to_str().unwrap()];
        let covers: Vec<Region> = detected.iter().map(|r| r.scaled(scale)).collect();
        for cover in &covers {
            let before = laplacian_variance(&reference, *cover);
            let after = laplacian_variance(&preview, *cover);
            assert!(
                after < before / 10.0,
                "{name}: a covered box keeps {after:.1} of {before:.1}"
            );
        }
        // Outside every cover (with room for its margin) the preview is the photo.
        let margins: Vec<Region> = covers.iter().map(|r| r.grown(0.6)).collect();
        let psnr = psnr_where(&preview, &reference, |x, y| {
            !margins
                .iter()
                .any(|r| r.contains(f64::from(x), f64::from(y)))
        });
        assert!(
            psnr >= 25.0,
            "{name}: PSNR outside the covers is {psnr:.1} dB"
        );
    }
    assert_eq!(all_faces, 51);
    assert!(
        covered_faces >= 49,
        "only {covered_faces} of 51 faces are covered"
    );

    // An original, only after the code; upright, watermarked, still detailed.
    let name = "voc_2008_001322.jpg";
    let request = parent.post(
        &format!("/api/photos/{}/original", captured[name]),
        &json!({}),
    );
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
    let source = load_upright(&testdata(name));
    assert_eq!(delivered.dimensions(), source.dimensions());
    for face in annotations[name]["faces"].as_array().unwrap() {
        let region = Region::from_json(face);
        let before = laplacian_variance(&source, region);
        let after = laplacian_variance(&delivered, region);
        assert!(
            after >= before / 2.0,
            "a face in the original lost its detail: {after:.1} of {before:.1}"
        );
    }
    let changed = source
        .pixels()
        .zip(delivered.pixels())
        .filter(|(a, b)| a.0.iter().zip(b.0.iter()).any(|(x, y)| x.abs_diff(*y) > 60))
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
    assert_eq!(
        parent.get("/api/photos").json().as_array().unwrap().len(),
        captured.len()
    );

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

    let mut parent = Browser::new(&hub.base_url());
    parent.login(PHONE, PASSWORD);
    let listed = parent.get("/api/photos").json();
    let mut ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    ids.sort();
    let expected: Vec<String> = offline.captured().into_iter().map(|(id, _)| id).collect();
    let mut expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(ids, expected);
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
