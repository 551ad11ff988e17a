//! The gallery: listing and previews, and classrooms kept apart.

mod web_support;

use axum::http::{header, StatusCode};
use chrono::Duration;
use serde_json::json;
use web_support::*;

#[tokio::test]
async fn a_parent_lists_their_classrooms_photos_newest_first() {
    let t = TestHub::new();
    t.add_classroom("Class A");
    t.add_classroom("Class B");
    let ana = t.add_parent("Ana Test", "+34600111222", "Class A");
    let older = t.add_photo("Class A", "hopper.jpg");
    t.advance(Duration::minutes(5));
    let newer = t.add_photo("Class A", "hopper_orientation_6.jpg");
    t.add_photo("Class B", "hopper.jpg");

    let cookie = t.login(&ana.phone).await;
    let answer = t.send(get("/api/photos", Some(&cookie))).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header(header::CACHE_CONTROL), "no-store");
    let list = answer.json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "only Class A's photos: {list:?}");
    assert_eq!(list[0]["id"], newer.to_string());
    assert_eq!(list[1]["id"], older.to_string());
    assert_eq!(list[0]["received_at"], "2025-03-01T09:05:00Z");
    assert_eq!(list[0]["captured_at"], "2025-03-01T09:04:00Z");
    // hopper.jpg has no face box from the device; the one the teacher drew
    // to name Ana's child counts too.
    assert_eq!(list[0]["faces"], 1, "{:?}", list[0]);
    assert_eq!(list[0]["children"], json!([ana.child_id.unwrap()]));
    assert_eq!(list[0]["original_available"], true);
    // School year 2024-2025 in Madrid, kept 30 days after 31 August.
    assert_eq!(list[0]["delete_after"], "2025-09-30");
    let keys: Vec<&String> = list[0].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 7, "{keys:?}");

    let listed = t.audit_of("photos_listed");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].actor, format!("parent:{}", ana.id));

    // The page a person reads gives the time in the school's zone (Madrid by
    // default), not in UTC.
    let page = t.send(get("/", Some(&cookie))).await.text();
    assert!(
        page.contains("taken 2025-03-01 10:04 CET (+01:00)"),
        "{page}"
    );
    assert!(!page.contains("09:04"), "{page}");
}

#[tokio::test]
async fn a_preview_is_rendered_for_the_viewer_and_audited() {
    let s = two_classrooms(TestHub::new());
    let cookie = s.t.login(&s.ana.phone).await;

    let answer =
        s.t.send(get(
            &format!("/api/photos/{}/preview", s.photo_a),
            Some(&cookie),
        ))
        .await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.header(header::CONTENT_TYPE), "image/jpeg");
    assert!(answer.header(header::CACHE_CONTROL).contains("no-store"));
    // Rendered from the original (the sealed device preview is 96 px), at
    // most 1280 px on its long side.
    let preview = image::load_from_memory(&answer.body).unwrap();
    let original = image::open(testdata("mde_train_window_phone_exif6.jpg")).unwrap();
    let long_side = |width: u32, height: u32| width.max(height);
    assert_eq!(
        long_side(preview.width(), preview.height()),
        long_side(original.width(), original.height()).min(1280)
    );
    assert!(preview.width() > 96, "{}", preview.width());

    let viewed = s.t.audit_of("preview_viewed");
    assert_eq!(viewed.len(), 1);
    assert_eq!(
        viewed[0].subject.as_deref(),
        Some(s.photo_a.to_string().as_str())
    );
}

#[tokio::test]
async fn another_classrooms_photo_is_not_found_everywhere() {
    let s = two_classrooms(TestHub::new());
    let ana = s.t.login(&s.ana.phone).await;
    let ben = s.t.login(&s.ben.phone).await;

    // The list holds none of Class B's photos.
    let list = s.t.send(get("/api/photos", Some(&ana))).await.json();
    assert!(!list.to_string().contains(&s.photo_b.to_string()));

    // Preview and original request of Ben's photo: 404, as for no photo at all.
    for photo in [
        s.photo_b.to_string(),
        uuid::Uuid::new_v4().to_string(),
        "not-a-uuid".into(),
    ] {
        s.t.send(get(&format!("/api/photos/{photo}/preview"), Some(&ana)))
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
        s.t.send(post_json(
            &format!("/api/photos/{photo}/original"),
            Some(&ana),
            &json!({}),
        ))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    }

    // Ben's own request cannot be verified by Ana, even with the right code.
    let request = s.t.request_original(&ben, s.photo_b).await;
    let code = s.t.last_code();
    s.t.verify(&ana, &request, &code)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    // Nor did her try count against Ben's request.
    let ok = s.t.verify(&ben, &request, &code).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());

    assert!(s.t.audit_of("preview_viewed").is_empty());
    assert_eq!(s.t.audit_of("original_requested").len(), 1);
}

#[tokio::test]
async fn unknown_paths_are_json_404s() {
    let t = TestHub::new();
    t.send(get("/api/nothing", None))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}
