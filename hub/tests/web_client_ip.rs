//! The client's address is the socket peer; headers a client writes itself
//! never reach a watermark or the audit (case C12, direct half). Behind a
//! trusted proxy, the rightmost forwarded address that is not a trusted proxy
//! is the client's, and the audit keeps the proxy's too (C12, proxy half).

mod web_support;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use guardian_hub::audit::Verdict;
use guardian_hub::sms::FileSmsOutbox;
use guardian_hub::web::{serve_until, AppState};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use web_support::*;

const SPOOFED: &str = "203.0.113.7";
const PEER_5: &str = "127.0.0.5:40000";

/// Dresses a request as coming from 127.0.0.5 with spoofed forwarding
/// headers, a 10 KB junk header and a forwarding value that is no address.
fn spoofed(mut request: Request<Body>) -> Request<Body> {
    let headers = request.headers_mut();
    headers.insert("x-forwarded-for", SPOOFED.parse().unwrap());
    headers.append(
        "x-forwarded-for",
        "not-an-ip, 198.51.100.20".parse().unwrap(),
    );
    headers.insert("forwarded", format!("for={SPOOFED}").parse().unwrap());
    headers.insert("x-real-ip", SPOOFED.parse().unwrap());
    headers.insert("x-junk", "j".repeat(10 * 1024).parse().unwrap());
    let peer: SocketAddr = PEER_5.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

/// Ana logs in, asks for her photo's original, types the code and downloads
/// it, each request dressed by `dress`. Returns the login answer and the file.
async fn fetch_original_as_ana(
    s: &TwoClassrooms,
    dress: fn(Request<Body>) -> Request<Body>,
) -> (Answer, Vec<u8>) {
    let login =
        s.t.send(dress(post_json(
            "/api/login",
            None,
            &json!({ "login": s.ana.phone, "password": PASSWORD }),
        )))
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text());
    let cookie = login.session_cookie().unwrap();

    let asked =
        s.t.send(dress(post_json(
            &format!("/api/photos/{}/original", s.photo_a),
            Some(&cookie),
            &json!({}),
        )))
        .await;
    let request = asked.json()["request_id"].as_str().unwrap().to_owned();
    let verified =
        s.t.send(dress(post_json(
            &format!("/api/original-requests/{request}/verify"),
            Some(&cookie),
            &json!({ "code": s.t.last_code() }),
        )))
        .await;
    let download = verified.json()["download"].as_str().unwrap().to_owned();
    let answer = s.t.send(dress(get(&download, Some(&cookie)))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    (login, answer.body)
}

/// The EXIF description of a delivered original, which names the viewer's address.
fn exif_description(jpeg: &[u8]) -> String {
    let exif = exif::Reader::new()
        .read_from_container(&mut std::io::Cursor::new(jpeg))
        .unwrap();
    exif.get_field(exif::Tag::ImageDescription, exif::In::PRIMARY)
        .unwrap()
        .display_value()
        .to_string()
}

#[tokio::test]
async fn forwarding_headers_never_reach_the_watermark_or_the_audit_c12() {
    let s = two_classrooms(TestHub::new());

    let (_, jpeg) = fetch_original_as_ana(&s, spoofed).await;

    // The delivered file names the peer, never the spoofed address.
    let description = exif_description(&jpeg);
    assert!(description.contains("127.0.0.5"), "{description}");
    let spoofed_bytes = SPOOFED.as_bytes();
    assert!(
        !jpeg
            .windows(spoofed_bytes.len())
            .any(|w| w == spoofed_bytes),
        "the spoofed address is in the delivered file"
    );
    assert!(!jpeg.windows(11).any(|w| w == b"not-an-ip, "));

    // The audit has the peer everywhere, and both the peer and the chosen address
    // on the delivery.
    let rows = s.t.audit_rows();
    for row in &rows {
        assert!(
            !row.flat().contains(SPOOFED),
            "spoofed address audited: {row:?}"
        );
        assert!(!row.flat().contains("198.51.100.20"), "{row:?}");
    }
    let delivered = s.t.audit_of("original_delivered");
    assert_eq!(delivered[0].ip.as_deref(), Some("127.0.0.5"));
    assert!(delivered[0].detail.contains("\"peer_ip\":\"127.0.0.5\""));
    for kind in ["login_succeeded", "original_requested", "code_sent"] {
        assert_eq!(
            s.t.audit_of(kind)[0].ip.as_deref(),
            Some("127.0.0.5"),
            "{kind}"
        );
    }
}

const PROXY: &str = "192.0.2.10";

/// A request the school's proxy at 192.0.2.10 forwards for 198.51.100.20,
/// whose browser had claimed to be 203.0.113.7.
fn via_proxy(mut request: Request<Body>) -> Request<Body> {
    let headers = request.headers_mut();
    headers.insert(
        "x-forwarded-for",
        format!("{SPOOFED}, 198.51.100.20").parse().unwrap(),
    );
    headers.insert("x-junk", "j".repeat(10 * 1024).parse().unwrap());
    let peer: SocketAddr = format!("{PROXY}:443").parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_named_c12() {
    let s = two_classrooms(TestHub::behind_proxies(&format!("{PROXY}, 10.0.0.0/8")));

    let (login, jpeg) = fetch_original_as_ana(&s, via_proxy).await;
    let set_cookie = login.headers["set-cookie"].to_str().unwrap();
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");

    // The delivered file names the client behind the proxy, never the
    // address the browser claimed nor the proxy.
    let description = exif_description(&jpeg);
    assert!(description.contains("198.51.100.20"), "{description}");
    for absent in [SPOOFED, PROXY] {
        assert!(
            !jpeg.windows(absent.len()).any(|w| w == absent.as_bytes()),
            "{absent} is in the delivered file"
        );
    }

    // Every web entry names the client, and keeps the proxy as the peer.
    for kind in [
        "login_succeeded",
        "original_requested",
        "code_sent",
        "code_verified",
        "original_delivered",
    ] {
        let rows = s.t.audit_of(kind);
        assert_eq!(rows.len(), 1, "{kind}");
        assert_eq!(rows[0].ip.as_deref(), Some("198.51.100.20"), "{kind}");
        let detail: serde_json::Value = serde_json::from_str(&rows[0].detail).unwrap();
        assert_eq!(detail["peer_ip"], PROXY, "{kind}: {detail}");
    }
    for row in s.t.audit_rows() {
        assert!(!row.flat().contains(SPOOFED), "{row:?}");
    }
    let verdict = s.t.hub.audit.verify(&s.t.hub.db.lock()).unwrap();
    assert!(matches!(verdict, Verdict::Intact { .. }), "{verdict:?}");
}

#[tokio::test]
async fn with_trusted_proxies_a_direct_client_is_still_its_peer_c12() {
    let t = TestHub::behind_proxies(PROXY);

    // Straight from a laptop that writes its own forwarding header.
    let answer = t.send(spoofed(get("/get_client_ip", None))).await;
    assert_eq!(answer.json(), json!({ "ip": "127.0.0.5" }));

    // Through the proxy, with junk where the address should be.
    let mut junk = get("/get_client_ip", None);
    junk.headers_mut()
        .insert("x-forwarded-for", "not-an-ip".parse().unwrap());
    let peer: SocketAddr = format!("{PROXY}:443").parse().unwrap();
    junk.extensions_mut().insert(ConnectInfo(peer));
    assert_eq!(t.send(junk).await.json(), json!({ "ip": PROXY }));

    // Through the proxy, as it should be.
    let answer = t.send(via_proxy(get("/get_client_ip", None))).await;
    assert_eq!(answer.json(), json!({ "ip": "198.51.100.20" }));
}

#[tokio::test]
async fn get_client_ip_answers_the_peer_without_a_session() {
    let t = TestHub::new();
    let answer = t.send(spoofed(get("/get_client_ip", None))).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json(), json!({ "ip": "127.0.0.5" }));

    // An IPv4 client on a dual-stack socket is shown as IPv4.
    let mut request = get("/get_client_ip", None);
    let mapped: SocketAddr = "[::ffff:127.0.0.9]:4000".parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(mapped));
    assert_eq!(t.send(request).await.json(), json!({ "ip": "127.0.0.9" }));
}

#[tokio::test]
async fn the_served_hub_takes_the_address_from_the_socket() {
    let t = TestHub::new();
    let outbox = Arc::new(FileSmsOutbox::new(t.dir.path(), t.clock.clone()).unwrap());
    let state = AppState::new(t.hub.clone(), outbox);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_until(listener, state, async {
        let _ = stopped.await;
    }));

    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let junk = "j".repeat(10 * 1024);
    let request = format!(
        "GET /get_client_ip HTTP/1.1\r\nHost: {address}\r\nX-Forwarded-For: {SPOOFED}\r\n\
         X-Junk: {junk}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();

    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("{\"ip\":\"127.0.0.1\"}"), "{response}");
    let lower = response.to_ascii_lowercase();
    assert!(lower.contains("content-security-policy:"), "{response}");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
