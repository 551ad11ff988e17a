//! The data-protection lifecycle: a withdrawn consent ends what it took
//! away, an erased child leaves nothing behind but an audit entry with their
//! id, and a guardian's access request yields one archive with exactly their
//! child's photos. Each is checked by reading the database and the disk.

mod web_support;

use std::io::{Cursor, Read};
use std::path::PathBuf;

use axum::http::{header, StatusCode};
use guardian_hub::audit::Actor;
use guardian_hub::children;
use guardian_hub::consent::Purpose;
use guardian_hub::review;
use serde_json::json;
use uuid::Uuid;
use web_support::*;

/// Leo's full name, distinctive enough to search the database files for.
const CHILD_NAME: &str = "Leo Quintanilla-Arbeloa";

struct Families {
    t: TestHub,
    lena: ParentLogin,
    marco: ParentLogin,
    leo: Uuid,
    mia: Uuid,
    /// Leo and Mia both named.
    both: Uuid,
    /// Only Leo named.
    leo_alone: Uuid,
    /// Only Mia named.
    mia_alone: Uuid,
}

fn release_with(t: &TestHub, file: &str, named: &[Uuid]) -> Uuid {
    let photo = t.add_unreviewed_photo("Class A", file);
    for (n, child) in named.iter().enumerate() {
        review::name_face(&t.hub, photo, n as u32, Some(*child), Actor::Operator).unwrap();
    }
    review::release(&t.hub, photo, false, Actor::Operator).unwrap();
    photo
}

/// Leo's and Mia's families consent to everything.
fn families() -> Families {
    let t = TestHub::new();
    t.add_classroom("Class A");
    let lena = t.add_guardian("Lena", "+34600000011");
    let marco = t.add_guardian("Marco", "+34600000012");
    let leo = t.add_child_of("Class A", CHILD_NAME, &lena);
    let mia = t.add_child_of("Class A", "Mia", &marco);
    for (family, child) in [(&lena, leo), (&marco, mia)] {
        for purpose in Purpose::ALL {
            t.set_consent(family, child, purpose, true);
        }
    }
    let both = release_with(&t, "voc_2008_001322.jpg", &[leo, mia]);
    let leo_alone = release_with(&t, "voc_2008_002079.jpg", &[leo]);
    let mia_alone = release_with(&t, "voc_2007_007763.jpg", &[mia]);
    Families {
        t,
        lena,
        marco,
        leo,
        mia,
        both,
        leo_alone,
        mia_alone,
    }
}

fn request_state(t: &TestHub, request: &str) -> String {
    t.hub
        .db
        .lock()
        .query_row(
            "SELECT state FROM original_requests WHERE id = ?1",
            [request],
            |row| row.get(0),
        )
        .unwrap()
}

fn unused_links(t: &TestHub, request: &str) -> i64 {
    t.count(
        "SELECT COUNT(*) FROM downloads WHERE request_id = ?1 AND used_at IS NULL",
        request,
    )
}

fn sealed_file(t: &TestHub, photo: Uuid) -> PathBuf {
    t.dir.path().join("photos").join(format!("{photo}.sealed"))
}

#[tokio::test]
async fn withdrawing_originals_ends_pending_requests_and_unused_links_at_once() {
    let f = families();
    let lena = f.t.login(&f.lena.phone).await;
    let marco = f.t.login(&f.marco.phone).await;

    // Lena has a code waiting; Marco typed his and holds an unused link;
    // Marco also asked for a photo Leo is not in.
    let lena_request = f.t.request_original(&lena, f.both).await;
    let lena_code = f.t.last_code();
    let marco_request = f.t.request_original(&marco, f.both).await;
    let verified = f.t.verify(&marco, &marco_request, &f.t.last_code()).await;
    let link = verified.json()["download"].as_str().unwrap().to_owned();
    let unrelated = f.t.request_original(&marco, f.mia_alone).await;
    assert_eq!(unused_links(&f.t, &marco_request), 1);

    f.t.set_consent(&f.lena, f.leo, Purpose::Originals, false);

    // The database: both requests that would have shown Leo ended, the
    // link is gone, the unrelated request is untouched.
    assert_eq!(request_state(&f.t, &lena_request), "withdrawn");
    assert_eq!(request_state(&f.t, &marco_request), "withdrawn");
    assert_eq!(unused_links(&f.t, &marco_request), 0);
    assert_eq!(request_state(&f.t, &unrelated), "pending");
    let changed = f.t.audit_of("consent_changed");
    assert!(changed
        .last()
        .unwrap()
        .detail
        .contains("\"requests_withdrawn\":2"));

    // And on the web: the code and the link no longer open anything.
    f.t.verify(&lena, &lena_request, &lena_code)
        .await
        .assert_error(StatusCode::FORBIDDEN, "original_not_allowed");
    let answer = f.t.send(get(&link, Some(&marco))).await;
    assert_ne!(answer.status, StatusCode::OK);
    assert!(f.t.audit_of("original_delivered").is_empty());
    let listed = f.t.send(get("/api/photos", Some(&marco))).await.json();
    let both = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|photo| photo["id"] == f.both.to_string())
        .unwrap();
    assert_eq!(both["original_available"], false);
}

#[tokio::test]
async fn withdrawing_visibility_ends_other_families_requests_but_not_the_childs_own() {
    let f = families();
    let lena = f.t.login(&f.lena.phone).await;
    let marco = f.t.login(&f.marco.phone).await;
    let lena_request = f.t.request_original(&lena, f.both).await;
    let marco_request = f.t.request_original(&marco, f.both).await;

    f.t.set_consent(&f.lena, f.leo, Purpose::VisibleToClassmates, false);

    // Leo's own family still sees him; Marco's original would now cover Leo,
    // so what Marco asked for is gone and he may ask again.
    assert_eq!(request_state(&f.t, &lena_request), "pending");
    assert_eq!(request_state(&f.t, &marco_request), "withdrawn");
    f.t.fetch_original(&lena, f.both).await;
    f.t.fetch_original(&marco, f.both).await;
}

#[tokio::test]
async fn erasing_a_child_removes_their_photos_names_consents_and_links() {
    let f = families();
    let marco = f.t.login(&f.marco.phone).await;
    let lena = f.t.login(&f.lena.phone).await;
    let pending = f.t.request_original(&lena, f.leo_alone).await;
    let shared_request = f.t.request_original(&marco, f.both).await;
    assert!(sealed_file(&f.t, f.leo_alone).is_file());

    let erased = children::erase(&f.t.hub, f.leo, Actor::Operator).unwrap();
    assert_eq!(erased.photos_removed, 1);
    assert_eq!(erased.faces_unnamed, 1);
    assert_eq!(erased.consents, 2);
    assert_eq!(erased.guardian_links, 1);

    // The photo only Leo was named in: every row and the sealed file.
    let gone = f.leo_alone;
    for table in [
        "photos WHERE id",
        "photo_faces WHERE photo_id",
        "photo_reviews WHERE photo_id",
        "original_requests WHERE photo_id",
    ] {
        let sql = format!("SELECT COUNT(*) FROM {table} = ?1");
        assert_eq!(f.t.count(&sql, gone), 0, "{table}");
    }
    assert_eq!(
        f.t.count(
            "SELECT COUNT(*) FROM original_requests WHERE id = ?1",
            &pending
        ),
        0
    );
    assert!(
        !sealed_file(&f.t, gone).exists(),
        "the sealed file is still on disk"
    );

    // The photo with Mia stays, Leo's face now unknown and so covered, and
    // Marco's request on it ended; Mia's own photo is untouched.
    assert!(sealed_file(&f.t, f.both).is_file());
    assert!(sealed_file(&f.t, f.mia_alone).is_file());
    let faces = review::get(&f.t.hub, f.both).unwrap().unwrap().faces;
    assert_eq!(faces[0].child_id, None);
    assert_eq!(faces[1].child_id, Some(f.mia));
    assert_eq!(request_state(&f.t, &shared_request), "ended");

    // Nothing of Leo is left in the database but audit entries with his id.
    for (table, column) in [
        ("children", "id"),
        ("consents", "child_id"),
        ("guardian_links", "child_id"),
        ("photo_faces", "child_id"),
    ] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE {column} = ?1");
        assert_eq!(f.t.count(&sql, f.leo), 0, "{table}");
    }
    let erasures = f.t.audit_of("child_erased");
    assert_eq!(
        erasures[0].subject.as_deref(),
        Some(f.leo.to_string().as_str())
    );
    assert_eq!(f.t.audit_of("photo_erased").len(), 1);
    assert!(f
        .t
        .audit_rows()
        .iter()
        .all(|row| !row.flat().contains("Leo")));
    // Nor in the database's files, where deleted rows could linger in free
    // pages or in the write-ahead log (and then in every backup).
    for file in ["hub.sqlite", "hub.sqlite-wal"] {
        let bytes = std::fs::read(f.t.dir.path().join(file)).unwrap_or_default();
        assert!(
            !bytes
                .windows(CHILD_NAME.len())
                .any(|w| w == CHILD_NAME.as_bytes()),
            "{file} still holds the erased child's name"
        );
    }

    // Lena has no child left to see photos through.
    let listed = f.t.send(get("/api/photos", Some(&lena))).await.json();
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn a_guardian_downloads_one_archive_with_exactly_their_childs_photos() {
    let f = families();
    let lena = f.t.login(&f.lena.phone).await;
    let consent =
        f.t.send(put_json(
            &format!("/api/children/{}/consent", f.leo),
            Some(&lena),
            &json!({ "purpose": "visible_to_classmates", "granted": true }),
        ))
        .await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.text());
    f.t.send(get(&format!("/api/photos/{}/preview", f.both), Some(&lena)))
        .await;

    // Lena asks for the original of the photo Leo shares with Mia, types a
    // wrong code, then the right one, and downloads it.
    let request = f.t.request_original(&lena, f.both).await;
    let code = f.t.last_code();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    f.t.verify(&lena, &request, wrong)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "wrong_code");
    let verified = f.t.verify(&lena, &request, &code).await;
    let link = verified.json()["download"].as_str().unwrap().to_owned();
    let original = f.t.send(get(&link, Some(&lena))).await;
    assert_eq!(original.status, StatusCode::OK, "{}", original.text());

    // Marco looks at the photo his child shares with Leo.
    let marco = f.t.login(&f.marco.phone).await;
    f.t.send(get(
        &format!("/api/photos/{}/preview", f.both),
        Some(&marco),
    ))
    .await;

    // A teacher looks at Leo's photo, draws a face on the shared one and
    // names Leo on it, and names Mia again on hers.
    let tess = f.t.add_teacher("Tess", "+34600000021", "Class A");
    let teacher = f.t.login("+34600000021").await;
    let viewed =
        f.t.send(get(
            &format!("/api/review/{}/image", f.leo_alone),
            Some(&teacher),
        ))
        .await;
    assert_eq!(viewed.status, StatusCode::OK, "{}", viewed.text());
    let added =
        f.t.send(post_json(
            &format!("/api/photos/{}/faces", f.both),
            Some(&teacher),
            &json!({ "box": [10, 10, 30, 30] }),
        ))
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.text());
    let drawn = added.json()["n"].as_u64().unwrap();
    for (n, child) in [(drawn, f.leo), (1, f.mia)] {
        let named =
            f.t.send(post_json(
                &format!("/api/photos/{}/faces/{n}/name", f.both),
                Some(&teacher),
                &json!({ "child_id": child }),
            ))
            .await;
        assert_eq!(named.status, StatusCode::OK, "{}", named.text());
    }

    let answer =
        f.t.send(get(&format!("/api/children/{}/export", f.leo), Some(&lena)))
            .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.header(header::CONTENT_TYPE), "application/zip");
    assert!(answer
        .header(header::CONTENT_DISPOSITION)
        .contains("attachment"));

    let mut archive = zip::ZipArchive::new(Cursor::new(answer.body)).unwrap();
    let mut names: Vec<String> = archive
        .file_names()
        .map(|name| name.unwrap().into_owned())
        .collect();
    names.sort();
    let mut expected = vec![
        "README.txt".to_owned(),
        "audit.json".to_owned(),
        "child.json".to_owned(),
        format!("photos/{}.jpg", f.both),
        format!("photos/{}.jpg", f.leo_alone),
    ];
    expected.sort();
    assert_eq!(names, expected);

    // Each photo is a rendering (a JPEG of the photo's size), not the sealed file.
    for photo in [f.both, f.leo_alone] {
        let mut jpeg = Vec::new();
        archive
            .by_name(&format!("photos/{photo}.jpg"))
            .unwrap()
            .read_to_end(&mut jpeg)
            .unwrap();
        let record = f.t.hub.store.get(photo).unwrap().unwrap();
        let decoded = image::load_from_memory(&jpeg).unwrap();
        assert_eq!(
            (decoded.width(), decoded.height()),
            (record.width, record.height)
        );
    }

    let read_json = |archive: &mut zip::ZipArchive<Cursor<Vec<u8>>>, name: &str| {
        let mut text = String::new();
        archive
            .by_name(name)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()
    };
    let child = read_json(&mut archive, "child.json");
    assert_eq!(child["name"], CHILD_NAME);
    assert_eq!(child["consents"]["history"].as_array().unwrap().len(), 3);
    let audit = read_json(&mut archive, "audit.json");
    let entries = audit.as_array().unwrap();
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "child_added",
        "consent_changed",
        "preview_viewed",
        "original_requested",
        "code_sent",
        "code_failed",
        "code_verified",
        "original_delivered",
        "review_viewed",
        "face_added",
        "face_named",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }

    // Lena's own request, whose entries have the request as their subject,
    // is there whole, with her address.
    let lenas = format!("parent:{}", f.lena.id);
    for kind in [
        "original_requested",
        "code_sent",
        "code_failed",
        "code_verified",
    ] {
        let entry = entries
            .iter()
            .find(|e| e["kind"] == kind)
            .unwrap_or_else(|| panic!("{kind}"));
        assert_eq!(entry["actor"], lenas.as_str(), "{entry}");
        assert_eq!(entry["subject"], request.as_str(), "{entry}");
        assert_eq!(entry["ip"], "127.0.0.1", "{entry}");
    }
    // The original showed Mia too; the archive says only that it showed Leo.
    let delivered = entries
        .iter()
        .find(|e| e["kind"] == "original_delivered" && e["actor"] == lenas.as_str())
        .expect("Lena's delivered original");
    assert_eq!(delivered["detail"]["uncovered_children"], json!([f.leo]));

    // Naming Leo (twice at release, once by the teacher) and the face drawn
    // for him are told by role only; naming Mia is not told at all.
    let told = |kind: &str| -> Vec<&serde_json::Value> {
        entries.iter().filter(|e| e["kind"] == kind).collect()
    };
    assert_eq!(told("face_named").len(), 3, "{:?}", told("face_named"));
    assert_eq!(told("face_added").len(), 1);
    assert_eq!(told("review_viewed").len(), 1);
    for entry in told("face_named")
        .into_iter()
        .chain(told("face_added"))
        .chain(told("review_viewed"))
    {
        assert!(
            entry["actor"] == "teacher" || entry["actor"] == "operator",
            "{entry}"
        );
        assert!(entry.get("ip").is_none() && entry.get("detail").is_none());
    }

    // Nothing about Mia's own photo, nor who Marco or the teacher are: of
    // other people's entries only the kind, time and role are kept.
    let text = audit.to_string();
    assert!(!text.contains(&f.mia_alone.to_string()));
    assert!(!text.contains(&f.mia.to_string()), "Mia's id leaked");
    assert!(!text.contains("Mia"), "Mia's name leaked");
    assert!(!text.contains(&f.marco.id.to_string()), "Marco's id leaked");
    assert!(!text.contains(&tess.to_string()), "the teacher's id leaked");
    let marcos_view = entries
        .iter()
        .find(|e| e["kind"] == "preview_viewed" && e["actor"] == "parent")
        .expect("Marco's view, by role only");
    assert!(marcos_view.get("ip").is_none() && marcos_view.get("detail").is_none());

    let exported = f.t.audit_of("export_started");
    assert_eq!(exported.len(), 1);
    assert_eq!(
        exported[0].subject.as_deref(),
        Some(f.leo.to_string().as_str())
    );

    // Web actions carry the client's address in the audit log.
    let finished = f.t.audit_of("export_finished");
    assert_eq!(finished[0].ip.as_deref(), Some("127.0.0.1"), "{finished:?}");
    let changed = f.t.audit_of("consent_changed");
    let by_web = changed.last().unwrap();
    assert_eq!(by_web.actor, lenas);
    assert_eq!(by_web.ip.as_deref(), Some("127.0.0.1"), "{by_web:?}");

    let mut readme = String::new();
    archive
        .by_name("README.txt")
        .unwrap()
        .read_to_string(&mut readme)
        .unwrap();
    assert!(readme.contains("originals asked for"), "{readme}");
    assert!(readme.contains("named a face as"), "{readme}");
}

#[tokio::test]
async fn another_familys_child_cannot_be_exported() {
    let f = families();
    let lena = f.t.login(&f.lena.phone).await;
    for child in [f.mia.to_string(), Uuid::new_v4().to_string(), "nope".into()] {
        f.t.send(get(&format!("/api/children/{child}/export"), Some(&lena)))
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    f.t.add_teacher("Tess", "+34600000021", "Class A");
    let teacher = f.t.login("+34600000021").await;
    f.t.send(get(
        &format!("/api/children/{}/export", f.leo),
        Some(&teacher),
    ))
    .await
    .assert_error(StatusCode::FORBIDDEN, "wrong_role");
    assert!(f.t.audit_of("export_started").is_empty());
}

#[tokio::test]
async fn an_unlinked_parent_loses_the_childs_photos_and_open_requests_at_once() {
    let f = families();
    let lena = f.t.login(&f.lena.phone).await;
    let request = f.t.request_original(&lena, f.both).await;

    let unlinked =
        children::unlink_guardian(&f.t.hub, &f.lena.phone, f.leo, Actor::Operator).unwrap();
    assert_eq!(unlinked, Some(f.lena.id));

    assert_eq!(request_state(&f.t, &request), "ended");
    let listed = f.t.send(get("/api/photos", Some(&lena))).await.json();
    assert_eq!(listed, json!([]));
    // The code sent before is answered like any photo that is not hers, not
    // with a reason about consents that have not changed.
    f.t.verify(&lena, &request, &f.t.last_code())
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    f.t.send(get(
        &format!("/api/children/{}/consent", f.leo),
        Some(&lena),
    ))
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
    let audited = f.t.audit_of("guardian_unlinked");
    assert_eq!(audited.len(), 1);
    assert!(audited[0].detail.contains("\"requests_withdrawn\":1"));

    // Marco's access to Mia's photos is untouched.
    let marco = f.t.login(&f.marco.phone).await;
    let listed = f.t.send(get("/api/photos", Some(&marco))).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn an_export_under_way_stops_when_the_parent_is_unlinked() {
    let f = families();
    // Enough large photos that the archive cannot all be written before the
    // browser reads it.
    let source = guardian_e2e::measure::load_upright(&testdata("mde_cafe_group_7mp.jpg"));
    let face = guardian_protocol::FaceRect {
        x: source.width() / 3,
        y: source.height() / 3,
        width: 200,
        height: 200,
    };
    for _ in 0..8 {
        let photo =
            f.t.add_unreviewed_photo_with_faces("Class A", "mde_cafe_group_7mp.jpg", vec![face]);
        review::name_face(&f.t.hub, photo, 0, Some(f.leo), Actor::Operator).unwrap();
        review::release(&f.t.hub, photo, false, Actor::Operator).unwrap();
    }
    let lena = f.t.login(&f.lena.phone).await;

    let mut request = get(&format!("/api/children/{}/export", f.leo), Some(&lena));
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo::<std::net::SocketAddr>(
            PEER.parse().unwrap(),
        ));
    let response = tower::ServiceExt::oneshot(f.t.app.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    children::unlink_guardian(&f.t.hub, &f.lena.phone, f.leo, Actor::Operator).unwrap();

    // The rest of the body breaks off: no whole archive of ten photos leaves.
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await;
    match body {
        Err(_) => {}
        Ok(bytes) => {
            let archive = zip::ZipArchive::new(Cursor::new(bytes.to_vec()));
            let photos = archive.map_or(0, |a| {
                a.file_names()
                    .filter(|n| n.as_ref().is_ok_and(|n| n.starts_with("photos/")))
                    .count()
            });
            assert!(photos < 10, "the whole archive went out after the unlink");
        }
    }
    assert!(f.t.audit_of("export_finished").is_empty());
}
