//! What the hub accepts as a request at all: cross-site requests (case C16),
//! methods, content types and sizes, and the page with its headers.

mod web_support;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use web_support::*;

const FOREIGN: &str = "http://127.0.0.2:8081";

fn foreign_post(path: &str, cookie: &str, body: &Value) -> Request<Body> {
    Request::post(path)
        .header(header::HOST, HOST)
        .header(header::ORIGIN, FOREIGN)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::COOKIE, cookie)
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn count(t: &TestHub, table: &str) -> i64 {
    t.hub
        .db
        .lock()
        .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
            row.get(0)
        })
        .unwrap()
}

#[tokio::test]
async fn another_sites_post_is_refused_audited_and_changes_nothing_c16() {
    let s = two_classrooms(TestHub::new());
    let cookie = s.t.login(&s.ana.phone).await;
    let request = s.t.request_original(&cookie, s.photo_a).await;
    let code = s.t.last_code();

    // "Request original" and "verify code" auto-submitted from another origin.
    s.t.send(foreign_post(
        &format!("/api/photos/{}/original", s.photo_a),
        &cookie,
        &json!({}),
    ))
    .await
    .assert_error(StatusCode::FORBIDDEN, "foreign_origin");
    s.t.send(foreign_post(
        &format!("/api/original-requests/{request}/verify"),
        &cookie,
        &json!({ "code": code }),
    ))
    .await
    .assert_error(StatusCode::FORBIDDEN, "foreign_origin");
    s.t.send(foreign_post("/api/logout", &cookie, &json!({})))
        .await
        .assert_error(StatusCode::FORBIDDEN, "foreign_origin");

    // Nothing happened: one request, one SMS, the session alive, no try spent.
    assert_eq!(count(&s.t, "original_requests"), 1);
    assert_eq!(s.t.sent_codes().len(), 1);
    assert_eq!(count(&s.t, "downloads"), 0);
    assert_eq!(
        s.t.send(get("/api/photos", Some(&cookie))).await.status,
        StatusCode::OK
    );

    // Each attempt is in the audit, under the parent whose cookie came along.
    let refused = s.t.audit_of("request_refused");
    assert_eq!(refused.len(), 3);
    let detail: Value = serde_json::from_str(&refused[0].detail).unwrap();
    assert_eq!(detail["reason"], "foreign_origin");
    assert_eq!(detail["route"], "/api/photos/{id}/original");
    assert_eq!(detail["method"], "POST");
    assert_eq!(detail["origin"], FOREIGN);
    assert_eq!(refused[0].actor, format!("parent:{}", s.ana.id));
    assert_eq!(refused[0].ip.as_deref(), Some("127.0.0.1"));
    assert!(!refused[1].flat().contains(&code));

    // The real page can still use the code.
    assert_eq!(
        s.t.verify(&cookie, &request, &code).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn origins_differing_in_host_port_or_null_are_foreign() {
    let t = TestHub::new();
    for origin in [
        "http://127.0.0.1:8081",
        "http://localhost:8080",
        "null",
        "http://127.0.0.1",
    ] {
        let request = Request::post("/api/login")
            .header(header::HOST, HOST)
            .header(header::ORIGIN, origin)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"login":"+34600111222","password":"x"}"#))
            .unwrap();
        t.send(request)
            .await
            .assert_error(StatusCode::FORBIDDEN, "foreign_origin");
    }
    assert_eq!(t.audit_of("request_refused").len(), 4);
    assert!(
        t.audit_of("login_failed").is_empty(),
        "refused before the login ran"
    );
}

#[tokio::test]
async fn the_actions_as_get_are_405_and_change_nothing_c16() {
    let s = two_classrooms(TestHub::new());
    let cookie = s.t.login(&s.ana.phone).await;
    let request = s.t.request_original(&cookie, s.photo_a).await;
    let code = s.t.last_code();

    let paths = [
        format!("/api/photos/{}/original", s.photo_a),
        format!("/api/original-requests/{request}/verify?code={code}"),
        "/api/login".to_owned(),
        "/api/logout".to_owned(),
    ];
    for path in &paths {
        for origin in [None, Some(FOREIGN)] {
            let mut builder = Request::get(path.as_str())
                .header(header::HOST, HOST)
                .header(header::COOKIE, &cookie);
            if let Some(origin) = origin {
                builder = builder.header(header::ORIGIN, origin);
            }
            s.t.send(builder.body(Body::empty()).unwrap())
                .await
                .assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        }
    }

    // And a POST to what only reads.
    s.t.send(post_json("/api/photos", Some(&cookie), &json!({})))
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");

    assert_eq!(count(&s.t, "original_requests"), 1);
    assert_eq!(count(&s.t, "downloads"), 0);

    // Each attempt is audited, without the code it carried in its query.
    let refused: Vec<String> =
        s.t.audit_of("request_refused")
            .iter()
            .map(|row| row.flat())
            .collect();
    let wrong_method = refused
        .iter()
        .filter(|row| row.contains("method_not_allowed"))
        .count();
    assert_eq!(wrong_method, paths.len() * 2 + 1, "{refused:?}");
    assert!(
        refused.iter().all(|row| !row.contains(&code)),
        "{refused:?}"
    );
    assert_eq!(
        s.t.send(get("/api/photos", Some(&cookie))).await.status,
        StatusCode::OK
    );
    assert_eq!(
        s.t.verify(&cookie, &request, &code).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_post_that_is_not_json_is_415_and_audited() {
    let s = two_classrooms(TestHub::new());
    let cookie = s.t.login(&s.ana.phone).await;

    for content_type in [
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let mut builder = Request::post(format!("/api/photos/{}/original", s.photo_a))
            .header(header::HOST, HOST)
            .header(header::COOKIE, &cookie);
        if let Some(content_type) = content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        s.t.send(builder.body(Body::from("{}")).unwrap())
            .await
            .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    }
    assert_eq!(count(&s.t, "original_requests"), 0);
    let refused = s.t.audit_of("request_refused");
    assert_eq!(refused.len(), 4);
    assert!(refused[0].detail.contains("unsupported_media_type"));
}

#[tokio::test]
async fn bodies_that_are_too_large_or_malformed_get_json_errors() {
    let s = two_classrooms(TestHub::new());
    let cookie = s.t.login(&s.ana.phone).await;
    let request = s.t.request_original(&cookie, s.photo_a).await;
    let verify = format!("/api/original-requests/{request}/verify");

    let huge = json!({ "code": "1".repeat(70 * 1024) });
    s.t.send(post_json(&verify, Some(&cookie), &huge))
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "too_large");

    for body in [json!({}), json!({ "code": 123456 }), json!("123456")] {
        s.t.send(post_json(&verify, Some(&cookie), &body))
            .await
            .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    }
    let broken = Request::post(verify.as_str())
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::COOKIE, &cookie)
        .body(Body::from("{\"code\": "))
        .unwrap();
    s.t.send(broken)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");

    // None of those counted as a try.
    let tries: i64 =
        s.t.hub
            .db
            .lock()
            .query_row("SELECT wrong_tries FROM original_requests", [], |row| {
                row.get(0)
            })
            .unwrap();
    assert_eq!(tries, 0);
}

#[tokio::test]
async fn the_page_is_a_login_form_then_a_gallery_with_a_strict_csp() {
    let s = two_classrooms(TestHub::new());

    let answer = s.t.send(get("/", None)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.header(header::CONTENT_TYPE).starts_with("text/html"));
    let csp = answer.header(header::CONTENT_SECURITY_POLICY);
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(answer.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    let html = answer.text();
    assert!(html.contains("id=\"login\""));
    assert!(html.contains("name=\"viewport\""));
    assert_eq!(html.matches("<script").count(), 1);
    assert!(html.contains("<script src=\"/static/app.js\" defer></script>"));

    let cookie = s.t.login(&s.ana.phone).await;
    let html = s.t.send(get("/", Some(&cookie))).await.text();
    assert!(html.contains(&format!("/api/photos/{}/preview", s.photo_a)));
    assert!(
        !html.contains(&s.photo_b.to_string()),
        "another classroom's photo"
    );
    assert!(html.contains("Get the original"));
    assert!(html.contains("autocomplete=\"one-time-code\""));
    assert!(html.contains("Ana Test"));

    let script = s.t.send(get("/static/app.js", None)).await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script
        .header(header::CONTENT_TYPE)
        .starts_with("text/javascript"));
    assert!(script.text().contains("/api/original-requests/"));
    let style = s.t.send(get("/static/app.css", None)).await;
    assert!(style.header(header::CONTENT_TYPE).starts_with("text/css"));
}

#[tokio::test]
async fn an_unknown_method_on_a_known_path_is_405() {
    let t = TestHub::new();
    let request = Request::builder()
        .method(Method::DELETE)
        .uri("/api/photos")
        .header(header::HOST, HOST)
        .body(Body::empty())
        .unwrap();
    t.send(request)
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}
