//! Logging in and out, and what a session cookie is worth (case C15).

mod web_support;

use axum::http::{header, StatusCode};
use chrono::Duration;
use serde_json::json;
use web_support::*;

fn one_parent() -> (TestHub, ParentLogin) {
    let t = TestHub::new();
    t.add_classroom("Class A");
    let ana = t.add_parent("Ana Test", "+34600111222", "Class A");
    (t, ana)
}

#[tokio::test]
async fn a_parent_logs_in_with_phone_and_password_and_gets_a_strict_http_only_cookie() {
    let (t, ana) = one_parent();

    let answer = t
        .send(post_json(
            "/api/login",
            None,
            &json!({ "login": ana.phone, "password": PASSWORD }),
        ))
        .await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let set_cookie = answer.header(header::SET_COOKIE);
    assert!(set_cookie.starts_with("guardian_session="), "{set_cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} missing: {set_cookie}"
        );
    }
    assert_eq!(answer.json()["name"], "Ana Test");

    let cookie = answer.session_cookie().unwrap();
    let photos = t.send(get("/api/photos", Some(&cookie))).await;
    assert_eq!(photos.status, StatusCode::OK);

    let audit = t.audit_of("login_succeeded");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor, format!("parent:{}", ana.id));
    assert_eq!(audit[0].ip.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn a_wrong_password_or_unknown_phone_is_bad_login_and_audited() {
    let (t, ana) = one_parent();

    for (login, password) in [
        (ana.phone.as_str(), "not the password"),
        ("+34699999999", PASSWORD),
        ("not a phone", PASSWORD),
    ] {
        let answer = t
            .send(post_json(
                "/api/login",
                None,
                &json!({ "login": login, "password": password }),
            ))
            .await;
        answer.assert_error(StatusCode::UNAUTHORIZED, "bad_login");
        assert!(answer.session_cookie().is_none());
    }

    let failed = t.audit_of("login_failed");
    assert_eq!(failed.len(), 3);
    // The audit names no phone number or password.
    for row in failed {
        assert!(!row.flat().contains("34699999999"));
        assert!(!row.flat().contains("not the password"));
    }
}

#[tokio::test]
async fn password_guessing_is_stopped_after_five_failures_until_the_window_passes() {
    let (t, ana) = one_parent();
    let attempt = |password: &'static str| {
        post_json(
            "/api/login",
            None,
            &json!({ "login": ana.phone, "password": password }),
        )
    };

    for _ in 0..5 {
        t.send(attempt("a wrong guess"))
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "bad_login");
    }
    // Even the right password is refused now: the guesser cannot tell.
    t.send(attempt(PASSWORD))
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_tries");

    t.advance(Duration::minutes(15) + Duration::seconds(1));
    let answer = t.send(attempt(PASSWORD)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
}

#[tokio::test]
async fn the_api_needs_a_session() {
    let (t, _) = one_parent();
    for path in [
        "/api/photos",
        "/api/photos/00000000-0000-0000-0000-000000000000/preview",
    ] {
        t.send(get(path, None))
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "login_required");
        t.send(get(path, Some("guardian_session=forged-and-wrong-shape")))
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "login_required");
    }
}

#[tokio::test]
async fn the_session_id_changes_at_login_and_the_presented_one_dies() {
    let (t, ana) = one_parent();
    let first = t.login(&ana.phone).await;

    // Log in again presenting the first cookie, as a fixation attack would.
    let answer = t
        .send(post_json(
            "/api/login",
            Some(&first),
            &json!({ "login": ana.phone, "password": PASSWORD }),
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let second = answer.session_cookie().unwrap();
    assert_ne!(first, second, "the session id must change at login");

    // The first id is dead on the hub, from any client; the new one works.
    t.send(get("/api/photos", Some(&first)))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "login_required");
    assert_eq!(
        t.send(get("/api/photos", Some(&second))).await.status,
        StatusCode::OK
    );

    let succeeded = t.audit_of("login_succeeded");
    assert!(succeeded[1].detail.contains("\"replaced_session\":true"));
}

#[tokio::test]
async fn logout_ends_the_session_on_the_hub_so_a_replayed_cookie_is_dead() {
    let (t, ana) = one_parent();
    let cookie = t.login(&ana.phone).await;

    let answer = t
        .send(post_json("/api/logout", Some(&cookie), &json!({})))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.header(header::SET_COOKIE).contains("Max-Age=0"));

    t.send(get("/api/photos", Some(&cookie)))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "login_required");
    let count: i64 = t
        .hub
        .db
        .lock()
        .query_row("SELECT COUNT(*) FROM sessions", [], |row| row.get(0))
        .unwrap();
    assert_eq!(count, 0, "logout deletes the row");
    assert_eq!(t.audit_of("logout").len(), 1);

    // Logging out twice is harmless.
    let again = t
        .send(post_json("/api/logout", Some(&cookie), &json!({})))
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(t.audit_of("logout").len(), 1);
}

#[tokio::test]
async fn a_session_expires_after_twelve_hours() {
    let (t, ana) = one_parent();
    let cookie = t.login(&ana.phone).await;

    t.advance(Duration::hours(12) - Duration::seconds(1));
    assert_eq!(
        t.send(get("/api/photos", Some(&cookie))).await.status,
        StatusCode::OK
    );

    t.advance(Duration::seconds(1));
    t.send(get("/api/photos", Some(&cookie)))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "login_required");
}

#[tokio::test]
async fn sessions_are_stored_only_as_hashes() {
    let (t, ana) = one_parent();
    let cookie = t.login(&ana.phone).await;
    let value = cookie.trim_start_matches("guardian_session=");

    let stored: Vec<u8> = t
        .hub
        .db
        .lock()
        .query_row("SELECT id_hash FROM sessions", [], |row| row.get(0))
        .unwrap();
    assert_eq!(stored.len(), 32);
    assert_ne!(stored, value.as_bytes());

    // The raw id appears nowhere in the database file.
    let file = std::fs::read(t.dir.path().join("hub.sqlite")).unwrap();
    let wal = std::fs::read(t.dir.path().join("hub.sqlite-wal")).unwrap_or_default();
    for bytes in [file, wal] {
        assert!(!bytes.windows(value.len()).any(|w| w == value.as_bytes()));
    }
}
