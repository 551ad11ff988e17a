//! Secrets never reach the text log or the audit log: codes, passwords,
//! session ids, download tokens. The whole flow runs with every tracing level
//! captured, on every thread.

mod web_support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use serde_json::json;
use web_support::*;

/// Everything written by the tracing subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_passwords_session_ids_and_tokens_are_never_logged_or_audited() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let code = "271828";
    let s = two_classrooms(TestHub::with_codes(FixedCodes::new(&[271_828])));
    let cookie = s.t.login(&s.ana.phone).await;
    let session_id = cookie.trim_start_matches("guardian_session=").to_owned();

    // The flow, with a few wrong submissions, one of them a number that a
    // serde error message would quote.
    let request = s.t.request_original(&cookie, s.photo_a).await;
    assert_eq!(s.t.last_code(), code);
    let verify = format!("/api/original-requests/{request}/verify");
    let numeric =
        s.t.send(post_json(
            &verify,
            Some(&cookie),
            &json!({ "code": 271_828 }),
        ))
        .await;
    numeric.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    s.t.verify(&cookie, &request, "27182")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "wrong_code");
    let answer = s.t.verify(&cookie, &request, code).await;
    let download = answer.json()["download"].as_str().unwrap().to_owned();
    let token = download.trim_start_matches("/api/downloads/").to_owned();
    assert_eq!(
        s.t.send(get(&download, Some(&cookie))).await.status,
        StatusCode::OK
    );
    s.t.send(get(&download, Some(&cookie)))
        .await
        .assert_error(StatusCode::GONE, "used");
    s.t.send(post_json("/api/logout", Some(&cookie), &json!({})))
        .await;

    // The log was captured, names route templates and ids...
    let log = captured.text();
    assert!(log.contains("request finished"), "nothing captured:\n{log}");
    assert!(log.contains("/api/downloads/{token}"), "{log}");
    assert!(
        log.contains(&s.ana.id.to_string()),
        "the parent id is logged"
    );
    assert!(
        log.contains("development file outbox"),
        "the outbox warning"
    );

    // ...and none of the secrets, nor the parent's name or phone.
    for (what, secret) in [
        ("code", code),
        ("password", PASSWORD),
        ("session id", session_id.as_str()),
        ("download token", token.as_str()),
        ("name", "Ana Test"),
        ("phone", s.ana.phone.as_str()),
    ] {
        assert!(!log.contains(secret), "the {what} is in the log:\n{log}");
    }
    for row in s.t.audit_rows() {
        let flat = row.flat();
        for secret in [code, "27182", PASSWORD, &session_id, &token, &s.ana.phone] {
            assert!(!flat.contains(secret), "a secret in the audit: {row:?}");
        }
    }
}
