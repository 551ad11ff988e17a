//! Roles on the web: the parents' routes are for guardians, consent is for a
//! child's own guardians and for admins, and another family's child is 404.

mod web_support;

use axum::http::{header, StatusCode};
use guardian_hub::audit::Actor;
use guardian_hub::children;
use guardian_hub::consent::{self, Purpose};
use serde_json::json;
use uuid::Uuid;
use web_support::*;

/// Two families in two classrooms, a teacher of the first, an admin, and
/// one photo in the first classroom.
struct School {
    t: TestHub,
    ana: ParentLogin,
    ben: ParentLogin,
    ana_child: Uuid,
    ben_child: Uuid,
    teacher: Uuid,
    admin: Uuid,
    photo: Uuid,
}

const TEACHER_PHONE: &str = "+34600000002";
const ADMIN_PHONE: &str = "+34600000001";

fn school() -> School {
    let t = TestHub::new();
    t.add_classroom("Class A");
    t.add_classroom("Class B");
    let ana = t.add_guardian("Ana Test", "+34600111222");
    let ben = t.add_guardian("Ben Test", "+34600333444");
    let ana_child = children::add(&t.hub, "Class A", "Leo", Actor::Operator).unwrap();
    let ben_child = children::add(&t.hub, "Class B", "Mia", Actor::Operator).unwrap();
    children::link_guardian(&t.hub, &ana.phone, ana_child, Actor::Operator).unwrap();
    children::link_guardian(&t.hub, &ben.phone, ben_child, Actor::Operator).unwrap();
    let photo_a = t.add_photo("Class A", "mde_train_window_phone_exif6.jpg");
    let teacher = t
        .hub
        .accounts
        .add_teacher("Tess", TEACHER_PHONE, PASSWORD, "Class A")
        .unwrap();
    let admin = t
        .hub
        .accounts
        .add_admin("Adam", ADMIN_PHONE, PASSWORD)
        .unwrap();
    School {
        t,
        ana,
        ben,
        ana_child,
        ben_child,
        teacher,
        admin,
        photo: photo_a,
    }
}

fn consent_path(child: impl std::fmt::Display) -> String {
    format!("/api/children/{child}/consent")
}

#[tokio::test]
async fn login_answers_with_the_role_of_the_account() {
    let s = school();
    for (phone, role) in [
        (s.ana.phone.as_str(), "guardian"),
        (TEACHER_PHONE, "teacher"),
        (ADMIN_PHONE, "admin"),
    ] {
        let answer =
            s.t.send(post_json(
                "/api/login",
                None,
                &json!({ "login": phone, "password": PASSWORD }),
            ))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert_eq!(answer.json()["role"], role);
    }
    let logins = s.t.audit_of("login_succeeded");
    let actors: Vec<&str> = logins.iter().map(|row| row.actor.as_str()).collect();
    assert_eq!(
        actors,
        [
            format!("parent:{}", s.ana.id),
            format!("teacher:{}", s.teacher),
            format!("admin:{}", s.admin)
        ]
    );
}

#[tokio::test]
async fn a_teacher_or_an_admin_cannot_use_the_parents_routes() {
    let s = school();
    for phone in [TEACHER_PHONE, ADMIN_PHONE] {
        let cookie = s.t.login(phone).await;

        s.t.send(get("/api/photos", Some(&cookie)))
            .await
            .assert_error(StatusCode::FORBIDDEN, "wrong_role");
        s.t.send(get(
            &format!("/api/photos/{}/preview", s.photo),
            Some(&cookie),
        ))
        .await
        .assert_error(StatusCode::FORBIDDEN, "wrong_role");
        s.t.send(post_json(
            &format!("/api/photos/{}/original", s.photo),
            Some(&cookie),
            &json!({}),
        ))
        .await
        .assert_error(StatusCode::FORBIDDEN, "wrong_role");

        // The page greets them without a gallery.
        let page = s.t.send(get("/", Some(&cookie))).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(!page.text().contains("/preview"), "{}", page.text());

        // Logging out works for every role.
        let out =
            s.t.send(post_json("/api/logout", Some(&cookie), &json!({})))
                .await;
        assert_eq!(out.status, StatusCode::OK);
    }
    assert!(s.t.audit_of("preview_viewed").is_empty());
    assert!(s.t.audit_of("original_requested").is_empty());
    assert!(s.t.sent_codes().is_empty());
    let logouts: Vec<String> =
        s.t.audit_of("logout")
            .into_iter()
            .map(|r| r.actor)
            .collect();
    assert_eq!(
        logouts,
        [
            format!("teacher:{}", s.teacher),
            format!("admin:{}", s.admin)
        ]
    );
}

#[tokio::test]
async fn a_guardian_still_sees_their_classroom_as_before() {
    let s = school();
    let cookie = s.t.login(&s.ana.phone).await;
    let photos = s.t.send(get("/api/photos", Some(&cookie))).await;
    assert_eq!(photos.status, StatusCode::OK);
    assert_eq!(photos.json()[0]["id"], s.photo.to_string());
    let preview =
        s.t.send(get(
            &format!("/api/photos/{}/preview", s.photo),
            Some(&cookie),
        ))
        .await;
    assert_eq!(preview.status, StatusCode::OK);
}

#[tokio::test]
async fn a_guardian_without_a_classroom_sees_photos_through_their_child() {
    let s = school();
    s.t.hub
        .accounts
        .add_guardian("Cai", "+34600555666", PASSWORD, None)
        .unwrap();
    let cookie = s.t.login("+34600555666").await;

    // Before being linked to a child: nothing.
    let photos = s.t.send(get("/api/photos", Some(&cookie))).await;
    assert_eq!(photos.status, StatusCode::OK);
    assert_eq!(photos.json(), json!([]));
    let preview = format!("/api/photos/{}/preview", s.photo);
    s.t.send(get(&preview, Some(&cookie)))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");

    // Linked to Leo, who is named in the photo: it is theirs to see.
    children::link_guardian(&s.t.hub, "+34600555666", s.ana_child, Actor::Operator).unwrap();
    let photos = s.t.send(get("/api/photos", Some(&cookie))).await.json();
    assert_eq!(photos[0]["id"], s.photo.to_string());
    assert_eq!(photos[0]["children"], json!([s.ana_child]));
    assert_eq!(
        s.t.send(get(&preview, Some(&cookie))).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_guardian_gives_and_withdraws_consent_for_their_own_child() {
    let s = school();
    let cookie = s.t.login(&s.ana.phone).await;
    let path = consent_path(s.ana_child);

    let shown = s.t.send(get(&path, Some(&cookie))).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text());
    assert_eq!(shown.json()["visible_to_classmates"], false);
    assert_eq!(shown.json()["originals"], false);
    assert_eq!(shown.json()["history"], json!([]));

    let given =
        s.t.send(put_json(
            &path,
            Some(&cookie),
            &json!({ "purpose": "visible_to_classmates", "granted": true }),
        ))
        .await;
    assert_eq!(given.status, StatusCode::OK, "{}", given.text());
    assert_eq!(given.json()["visible_to_classmates"], true);
    assert!(consent::current(&s.t.hub, s.ana_child, Purpose::VisibleToClassmates).unwrap());

    let withdrawn =
        s.t.send(put_json(
            &path,
            Some(&cookie),
            &json!({ "purpose": "visible_to_classmates", "granted": false }),
        ))
        .await;
    assert_eq!(withdrawn.status, StatusCode::OK);
    let body = withdrawn.json();
    assert_eq!(body["visible_to_classmates"], false);
    assert_eq!(body["child_id"], s.ana_child.to_string());
    let history = body["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["granted"], false);
    assert_eq!(history[1]["by"], format!("parent:{}", s.ana.id));
    assert_eq!(history[1]["purpose"], "visible_to_classmates");
    assert!(!consent::current(&s.t.hub, s.ana_child, Purpose::VisibleToClassmates).unwrap());
}

#[tokio::test]
async fn another_familys_child_or_an_unknown_id_is_not_found() {
    let s = school();
    let cookie = s.t.login(&s.ana.phone).await;
    let body = json!({ "purpose": "originals", "granted": true });

    for child in [
        s.ben_child.to_string(),
        Uuid::new_v4().to_string(),
        "not-an-id".to_owned(),
    ] {
        let path = consent_path(&child);
        s.t.send(put_json(&path, Some(&cookie), &body))
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
        s.t.send(get(&path, Some(&cookie)))
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    assert!(!consent::current(&s.t.hub, s.ben_child, Purpose::Originals).unwrap());
    assert!(s.t.audit_of("consent_changed").is_empty());

    // The same child is there for its own guardian.
    let ben = s.t.login(&s.ben.phone).await;
    let shown = s.t.send(get(&consent_path(s.ben_child), Some(&ben))).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text());
}

#[tokio::test]
async fn a_teacher_cannot_read_or_change_consent() {
    let s = school();
    let cookie = s.t.login(TEACHER_PHONE).await;
    let path = consent_path(s.ana_child);
    s.t.send(put_json(
        &path,
        Some(&cookie),
        &json!({ "purpose": "originals", "granted": true }),
    ))
    .await
    .assert_error(StatusCode::FORBIDDEN, "wrong_role");
    s.t.send(get(&path, Some(&cookie)))
        .await
        .assert_error(StatusCode::FORBIDDEN, "wrong_role");
    assert!(!consent::current(&s.t.hub, s.ana_child, Purpose::Originals).unwrap());
}

#[tokio::test]
async fn an_admin_records_consent_for_any_child_of_the_school() {
    let s = school();
    let cookie = s.t.login(ADMIN_PHONE).await;
    for child in [s.ana_child, s.ben_child] {
        let answer =
            s.t.send(put_json(
                &consent_path(child),
                Some(&cookie),
                &json!({ "purpose": "originals", "granted": true }),
            ))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert_eq!(
            answer.json()["history"][0]["by"],
            format!("admin:{}", s.admin)
        );
        assert!(consent::current(&s.t.hub, child, Purpose::Originals).unwrap());
    }
    s.t.send(put_json(
        &consent_path(Uuid::new_v4()),
        Some(&cookie),
        &json!({ "purpose": "originals", "granted": true }),
    ))
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_consent_change_needs_a_known_purpose_a_session_and_our_own_page() {
    let s = school();
    let cookie = s.t.login(&s.ana.phone).await;
    let path = consent_path(s.ana_child);

    for body in [
        json!({ "purpose": "everything", "granted": true }),
        json!({ "purpose": "originals" }),
        json!({ "purpose": "originals", "granted": "yes" }),
    ] {
        s.t.send(put_json(&path, Some(&cookie), &body))
            .await
            .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    }

    let body = json!({ "purpose": "originals", "granted": true });
    s.t.send(put_json(&path, None, &body))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "login_required");

    let mut cross_site = put_json(&path, Some(&cookie), &body);
    cross_site
        .headers_mut()
        .insert(header::ORIGIN, "https://evil.example".parse().unwrap());
    s.t.send(cross_site)
        .await
        .assert_error(StatusCode::FORBIDDEN, "foreign_origin");

    assert!(consent::history(&s.t.hub, s.ana_child).unwrap().is_empty());
}

#[tokio::test]
async fn each_role_lists_only_the_children_it_may_see() {
    let s = school();
    consent::set(
        &s.t.hub,
        s.ana_child,
        Purpose::Originals,
        true,
        Actor::Parent(s.ana.id),
    )
    .unwrap();

    let ana = s.t.login(&s.ana.phone).await;
    let listed = s.t.send(get("/api/children", Some(&ana))).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    let listed = listed.json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], s.ana_child.to_string());
    assert_eq!(listed[0]["name"], "Leo");
    assert_eq!(listed[0]["originals"], true);
    assert_eq!(listed[0]["visible_to_classmates"], false);

    // A teacher sees their classrooms' children, without their consents.
    let teacher = s.t.login(TEACHER_PHONE).await;
    let listed = s.t.send(get("/api/children", Some(&teacher))).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], s.ana_child.to_string());
    assert!(listed[0].get("originals").is_none(), "{listed}");
    s.t.hub
        .accounts
        .assign_teacher(TEACHER_PHONE, "Class B")
        .unwrap();
    let listed = s.t.send(get("/api/children", Some(&teacher))).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 2);

    let admin = s.t.login(ADMIN_PHONE).await;
    let listed = s.t.send(get("/api/children", Some(&admin))).await.json();
    let mut ids: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|child| child["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut expected = vec![s.ana_child.to_string(), s.ben_child.to_string()];
    expected.sort();
    assert_eq!(ids, expected);

    s.t.send(get("/api/children", None))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "login_required");
    let audited = s.t.audit_of("children_listed");
    assert_eq!(audited.len(), 4);
    assert!(audited.iter().all(|row| !row.flat().contains("Leo")));
}

#[tokio::test]
async fn a_guardians_page_shows_their_own_children_with_a_switch_per_consent() {
    let s = school();
    consent::set(
        &s.t.hub,
        s.ana_child,
        Purpose::VisibleToClassmates,
        true,
        Actor::Parent(s.ana.id),
    )
    .unwrap();
    let cookie = s.t.login(&s.ana.phone).await;

    let page = s.t.send(get("/", Some(&cookie))).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(
        html.contains(&format!("data-child-id=\"{}\"", s.ana_child)),
        "{html}"
    );
    assert!(html.contains("<h3>Leo</h3>"));
    assert!(html.contains("name=\"visible_to_classmates\" checked>"));
    assert!(html.contains("name=\"originals\">"));
    assert!(!html.contains("Mia"));
    assert!(!html.contains(&s.ben_child.to_string()));
    // The gallery is still there.
    assert!(html.contains(&format!("/api/photos/{}/preview", s.photo)));
}
