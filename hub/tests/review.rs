//! Review before release: only a teacher of the photo's classroom reviews
//! it, names faces, adds missed ones and releases it; no family sees it
//! before.

mod web_support;

use axum::http::{header, StatusCode};
use serde_json::json;
use uuid::Uuid;
use web_support::*;

const PHOTO: &str = "voc_2008_001322.jpg";
const TEACHER_A: &str = "+34600000021";
const TEACHER_B: &str = "+34600000022";
const ADMIN: &str = "+34600000023";

struct Setup {
    t: TestHub,
    photo: Uuid,
    parent: ParentLogin,
    leo: Uuid,
    mia: Uuid,
    /// A child of the other classroom.
    zoe: Uuid,
}

fn setup() -> Setup {
    let t = TestHub::new();
    t.add_classroom("Class A");
    t.add_classroom("Class B");
    t.add_teacher("Tess", TEACHER_A, "Class A");
    t.add_teacher("Tom", TEACHER_B, "Class B");
    t.hub.accounts.add_admin("Adam", ADMIN, PASSWORD).unwrap();
    let parent = t.add_guardian("Lena", "+34600000011");
    let other = t.add_guardian("Zack", "+34600000019");
    let leo = t.add_child_of("Class A", "Leo", &parent);
    let mia = t.add_child_of("Class A", "Mia", &other);
    let zoe = t.add_child_of("Class B", "Zoe", &other);
    let photo = t.add_unreviewed_photo("Class A", PHOTO);
    Setup {
        t,
        photo,
        parent,
        leo,
        mia,
        zoe,
    }
}

fn name_path(photo: Uuid, n: u32) -> String {
    format!("/api/photos/{photo}/faces/{n}/name")
}

#[tokio::test]
async fn a_photo_reaches_no_family_until_a_teacher_releases_it() {
    let s = setup();
    let parent = s.t.login(&s.parent.phone).await;
    let teacher = s.t.login(TEACHER_A).await;

    // Named but not released: still nothing for the family.
    s.t.send(post_json(
        &name_path(s.photo, 0),
        Some(&teacher),
        &json!({ "child_id": s.leo }),
    ))
    .await;
    let listed = s.t.send(get("/api/photos", Some(&parent))).await;
    assert_eq!(listed.json(), json!([]));
    s.t.send(get(
        &format!("/api/photos/{}/preview", s.photo),
        Some(&parent),
    ))
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
    s.t.send(post_json(
        &format!("/api/photos/{}/original", s.photo),
        Some(&parent),
        &json!({}),
    ))
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");

    let released =
        s.t.send(post_json(
            &format!("/api/photos/{}/release", s.photo),
            Some(&teacher),
            &json!({}),
        ))
        .await;
    assert_eq!(released.status, StatusCode::OK, "{}", released.text());
    assert!(released.json()["released_at"].is_string());

    let listed = s.t.send(get("/api/photos", Some(&parent))).await.json();
    assert_eq!(listed[0]["id"], s.photo.to_string());
    let preview =
        s.t.send(get(
            &format!("/api/photos/{}/preview", s.photo),
            Some(&parent),
        ))
        .await;
    assert_eq!(preview.status, StatusCode::OK);

    let audited = s.t.audit_of("photo_released");
    assert_eq!(audited[0].ip.as_deref(), Some("127.0.0.1"), "{audited:?}");

    // Released photos leave the review list.
    let awaiting = s.t.send(get("/api/review", Some(&teacher))).await.json();
    assert_eq!(awaiting, json!([]));
}

#[tokio::test]
async fn a_teacher_names_faces_adds_missed_ones_and_every_step_is_audited() {
    let s = setup();
    let teacher = s.t.login(TEACHER_A).await;

    // The device's faces, in full-photo pixels, and the classroom's children.
    let listed = s.t.send(get("/api/review", Some(&teacher))).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    let photo = &listed.json()[0];
    assert_eq!(photo["id"], s.photo.to_string());
    assert_eq!(photo["released_at"], serde_json::Value::Null);
    // What the review page shows is in the school's zone (Madrid by default).
    assert_eq!(photo["captured_at"], "2025-03-01T08:59:00Z");
    assert_eq!(
        photo["local"]["captured_at"],
        "2025-03-01 09:59 CET (+01:00)"
    );
    assert_eq!(
        photo["local"]["received_at"],
        "2025-03-01 10:00 CET (+01:00)"
    );
    assert_eq!(photo["local"]["released_at"], serde_json::Value::Null);
    let annotated = &guardian_e2e::faces_json()[PHOTO]["faces"];
    let boxes: Vec<&serde_json::Value> = photo["faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|face| &face["box"])
        .collect();
    assert_eq!(json!(boxes), *annotated);
    let names: Vec<&str> = photo["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|child| child["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Leo", "Mia"], "Class A's children only");

    // Name Leo on face 0, then on face 1: a child appears once in a photo.
    let named =
        s.t.send(post_json(
            &name_path(s.photo, 0),
            Some(&teacher),
            &json!({ "child_id": s.leo }),
        ))
        .await;
    assert_eq!(named.status, StatusCode::OK, "{}", named.text());
    assert_eq!(named.json()["faces"][0]["child_id"], s.leo.to_string());
    let moved =
        s.t.send(post_json(
            &name_path(s.photo, 1),
            Some(&teacher),
            &json!({ "child_id": s.leo }),
        ))
        .await
        .json();
    assert_eq!(moved["faces"][0]["child_id"], serde_json::Value::Null);
    assert_eq!(moved["faces"][1]["child_id"], s.leo.to_string());

    // The child must be said, even when it is nobody: a missing or
    // misspelt field is refused, not taken as "unknown".
    for body in [
        json!({}),
        json!({ "childId": s.leo }),
        json!({ "child_id": "Leo" }),
    ] {
        s.t.send(post_json(&name_path(s.photo, 1), Some(&teacher), &body))
            .await
            .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    }
    let still =
        s.t.send(get(&format!("/api/review/{}", s.photo), Some(&teacher)))
            .await
            .json();
    assert_eq!(still["faces"][1]["child_id"], s.leo.to_string());

    // A child of another classroom, a face that does not exist.
    s.t.send(post_json(
        &name_path(s.photo, 0),
        Some(&teacher),
        &json!({ "child_id": s.zoe }),
    ))
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "unknown_child");
    s.t.send(post_json(
        &name_path(s.photo, 9),
        Some(&teacher),
        &json!({ "child_id": s.mia }),
    ))
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");

    // A missed face: inside the photo and at least 8 px, or refused.
    let add = format!("/api/photos/{}/faces", s.photo);
    for bad in [
        json!([0, 0, 4, 4]),
        json!([490, 10, 40, 40]),
        json!([0, 0, 4294967295u32, 20]),
    ] {
        s.t.send(post_json(&add, Some(&teacher), &json!({ "box": bad })))
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "bad_box");
    }
    let added =
        s.t.send(post_json(
            &add,
            Some(&teacher),
            &json!({ "box": [10, 10, 30, 30] }),
        ))
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.text());
    assert_eq!(added.json()["n"], 3);
    assert_eq!(added.json()["photo"]["faces"][3]["origin"], "teacher");
    s.t.send(post_json(
        &name_path(s.photo, 3),
        Some(&teacher),
        &json!({ "child_id": s.mia }),
    ))
    .await;

    let teacher_id =
        s.t.hub
            .accounts
            .account_by_phone(TEACHER_A)
            .unwrap()
            .unwrap()
            .id;
    let actor = format!("teacher:{teacher_id}");
    assert_eq!(s.t.audit_of("face_named").len(), 3);
    assert_eq!(s.t.audit_of("face_added").len(), 1);
    for row in
        s.t.audit_of("face_named")
            .iter()
            .chain(&s.t.audit_of("face_added"))
    {
        assert_eq!(row.actor, actor);
        assert_eq!(row.subject.as_deref(), Some(s.photo.to_string().as_str()));
        assert_eq!(row.ip.as_deref(), Some("127.0.0.1"), "{row:?}");
        assert!(!row.flat().contains("Leo") && !row.flat().contains("Mia"));
    }
}

#[tokio::test]
async fn a_photo_without_faces_needs_the_teacher_to_confirm_there_are_none() {
    let s = setup();
    let empty = s.t.add_unreviewed_photo("Class A", "rocket_noface.jpg");
    let teacher = s.t.login(TEACHER_A).await;
    let release = format!("/api/photos/{empty}/release");

    s.t.send(post_json(&release, Some(&teacher), &json!({})))
        .await
        .assert_error(StatusCode::CONFLICT, "no_faces_unconfirmed");
    assert!(s.t.audit_of("photo_released").is_empty());

    let released =
        s.t.send(post_json(
            &release,
            Some(&teacher),
            &json!({ "no_faces": true }),
        ))
        .await;
    assert_eq!(released.status, StatusCode::OK, "{}", released.text());
    let audited = s.t.audit_of("photo_released");
    assert_eq!(audited.len(), 1);
    assert!(audited[0].detail.contains("\"no_faces_confirmed\":true"));
}

#[tokio::test]
async fn only_a_teacher_of_the_photos_classroom_reaches_the_review() {
    let s = setup();
    let parent = s.t.login(&s.parent.phone).await;
    let admin = s.t.login(ADMIN).await;
    let other_teacher = s.t.login(TEACHER_B).await;
    let teacher = s.t.login(TEACHER_A).await;

    let reads = [
        "/api/review".to_owned(),
        format!("/api/review/{}", s.photo),
        format!("/api/review/{}/image", s.photo),
    ];
    let writes = [
        (name_path(s.photo, 0), json!({ "child_id": s.leo })),
        (
            format!("/api/photos/{}/faces", s.photo),
            json!({ "box": [10, 10, 30, 30] }),
        ),
        (format!("/api/photos/{}/release", s.photo), json!({})),
    ];

    // Parents and admins: the routes exist, not for them.
    for cookie in [&parent, &admin] {
        for path in &reads {
            s.t.send(get(path, Some(cookie)))
                .await
                .assert_error(StatusCode::FORBIDDEN, "wrong_role");
        }
        for (path, body) in &writes {
            s.t.send(post_json(path, Some(cookie), body))
                .await
                .assert_error(StatusCode::FORBIDDEN, "wrong_role");
        }
    }
    // Nobody logged in.
    s.t.send(get("/api/review", None))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "login_required");

    // Another classroom's teacher: not listed, and 404 like no photo at all.
    let theirs = s.t.send(get("/api/review", Some(&other_teacher))).await;
    assert_eq!(theirs.json(), json!([]));
    for path in &reads[1..] {
        s.t.send(get(path, Some(&other_teacher)))
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    for (path, body) in &writes {
        s.t.send(post_json(path, Some(&other_teacher), body))
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    let review = s.t.hub.store.get(s.photo).unwrap().unwrap();
    assert!(guardian_hub::review::get(&s.t.hub, review.id)
        .unwrap()
        .unwrap()
        .released_at
        .is_none());

    // The classroom's teacher sees the photo inline, never as a download.
    let image =
        s.t.send(get(
            &format!("/api/review/{}/image", s.photo),
            Some(&teacher),
        ))
        .await;
    assert_eq!(image.status, StatusCode::OK, "{}", image.text());
    assert_eq!(image.header(header::CONTENT_TYPE), "image/jpeg");
    assert!(image.header(header::CACHE_CONTROL).contains("no-store"));
    assert!(image.headers.get(header::CONTENT_DISPOSITION).is_none());
    let shown = image::load_from_memory(&image.body).unwrap();
    let source = image::open(testdata(PHOTO)).unwrap();
    assert_eq!(shown.width(), source.width());
    assert_eq!(s.t.audit_of("review_viewed").len(), 1);
}
