//! Getting an original: the SMS code, its limits, and the single-use download
//! (cases C15, C17, C19 and the watermark's facts).

mod web_support;

use axum::http::{header, StatusCode};
use chrono::Duration;
use image::GenericImageView;
use img_parts::jpeg::{markers, Jpeg};
use img_parts::Bytes;
use serde_json::{json, Value};
use web_support::*;

const XMP_SIGNATURE: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";

/// Requests the original of Ana's photo and verifies the code; returns the
/// download path.
async fn granted_download(s: &TwoClassrooms, cookie: &str) -> String {
    let request = s.t.request_original(cookie, s.photo_a).await;
    let answer = s.t.verify(cookie, &request, &s.t.last_code()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    answer.json()["download"].as_str().unwrap().to_owned()
}

fn exif_of(jpeg: &[u8]) -> exif::Exif {
    exif::Reader::new()
        .read_from_container(&mut std::io::Cursor::new(jpeg))
        .expect("the delivered original has EXIF")
}

fn exif_text(exif: &exif::Exif, tag: exif::Tag) -> String {
    let field = exif
        .get_field(tag, exif::In::PRIMARY)
        .unwrap_or_else(|| panic!("no {tag}"));
    match &field.value {
        exif::Value::Ascii(parts) => String::from_utf8(parts.concat()).unwrap(),
        other => panic!("{tag} is {other:?}"),
    }
}

fn xmp_value(jpeg: &[u8], name: &str) -> String {
    let jpeg = Jpeg::from_bytes(Bytes::copy_from_slice(jpeg)).unwrap();
    let segment = jpeg
        .segments_by_marker(markers::APP1)
        .find(|s| s.contents().starts_with(XMP_SIGNATURE))
        .expect("an XMP segment");
    let text = std::str::from_utf8(&segment.contents()[XMP_SIGNATURE.len()..]).unwrap();
    let doc = roxmltree::Document::parse(text).unwrap();
    doc.descendants()
        .find(|n| n.tag_name().name() == name && n.tag_name().namespace().is_some())
        .unwrap_or_else(|| panic!("no XMP {name}"))
        .text()
        .unwrap_or_default()
        .to_owned()
}

fn mean_difference(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    total as f64 / a.as_raw().len() as f64
}

#[tokio::test]
async fn the_full_flow_delivers_an_upright_watermarked_original_without_gps() {
    let s = two_classrooms(TestHub::new());
    let cookie = s.t.login(&s.ana.phone).await;

    // Ask: the code goes to Ana's phone, and only the request id comes back.
    let answer =
        s.t.send(post_json(
            &format!("/api/photos/{}/original", s.photo_a),
            Some(&cookie),
            &json!({}),
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    let request = body["request_id"].as_str().unwrap().to_owned();
    let sent = s.t.sent_codes();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, s.ana.phone);

    // Verify: a download path on the hub, and no new cookie.
    let answer = s.t.verify(&cookie, &request, &sent[0].1).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert!(
        answer.session_cookie().is_none(),
        "a code never yields a session"
    );
    let download = answer.json()["download"].as_str().unwrap().to_owned();
    assert!(download.starts_with("/api/downloads/"), "{download}");
    assert_eq!(download.len(), "/api/downloads/".len() + 43);

    // Download.
    let answer = s.t.send(get(&download, Some(&cookie))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.header(header::CONTENT_TYPE), "image/jpeg");
    assert_eq!(answer.header(header::CACHE_CONTROL), "no-store");
    assert_eq!(
        answer.header(header::CONTENT_DISPOSITION),
        format!("attachment; filename=\"guardian-{}.jpg\"", s.photo_a)
    );
    let jpeg = answer.body;

    // Upright: the stored file is 640x480 with Orientation 6; the delivered
    // one is 480x640 and matches the source turned 90 degrees clockwise.
    let source_bytes = std::fs::read(testdata("mde_train_window_phone_exif6.jpg")).unwrap();
    let source_exif = exif_of(&source_bytes);
    let orientation = source_exif
        .get_field(exif::Tag::Orientation, exif::In::PRIMARY)
        .unwrap();
    assert_eq!(orientation.value.get_uint(0), Some(6));
    let mut upright = image::load_from_memory(&source_bytes).unwrap();
    upright.apply_orientation(image::metadata::Orientation::Rotate90);
    let upright = upright.to_rgb8();

    let delivered = image::load_from_memory(&jpeg).unwrap();
    assert_eq!(delivered.dimensions(), (480, 640));
    let delivered = delivered.to_rgb8();
    let right_way = mean_difference(&delivered, &upright);
    let upside_down = mean_difference(&delivered, &image::imageops::rotate180(&upright));
    assert!(
        right_way * 2.0 < upside_down,
        "not upright: {right_way:.1} vs {upside_down:.1} when turned over"
    );

    // The metadata names the viewer and the peer address, and carries no GPS.
    let exif = exif_of(&jpeg);
    assert_eq!(exif_text(&exif, exif::Tag::Artist), "Ana Test");
    let description = exif_text(&exif, exif::Tag::ImageDescription);
    assert!(description.contains("Ana Test"), "{description}");
    assert!(description.contains("127.0.0.1"), "{description}");
    assert!(
        description.contains("2025-03-01T09:00:00Z"),
        "{description}"
    );
    for field in exif.fields() {
        assert!(
            field.tag != exif::Tag::GPSInfoIFDPointer && field.tag.context() != exif::Context::Gps,
            "GPS field {} delivered",
            field.tag
        );
    }
    assert_eq!(xmp_value(&jpeg, "viewer"), "Ana Test");
    assert_eq!(xmp_value(&jpeg, "clientIp"), "127.0.0.1");
    let access_id = xmp_value(&jpeg, "accessId");

    // The audit tells the whole story by ids.
    let delivered = s.t.audit_of("original_delivered");
    assert_eq!(delivered.len(), 1);
    let row = &delivered[0];
    assert_eq!(row.actor, format!("parent:{}", s.ana.id));
    assert_eq!(row.subject.as_deref(), Some(s.photo_a.to_string().as_str()));
    assert_eq!(row.ip.as_deref(), Some("127.0.0.1"));
    let detail: Value = serde_json::from_str(&row.detail).unwrap();
    assert_eq!(detail["access_id"], access_id);
    assert_eq!(detail["request_id"], request);
    assert_eq!(detail["photo_id"], s.photo_a.to_string());
    assert_eq!(detail["peer_ip"], "127.0.0.1");
    for kind in ["original_requested", "code_sent"] {
        assert_eq!(s.t.audit_of(kind).len(), 1, "{kind}");
    }
    for row in s.t.audit_rows() {
        assert!(
            !row.flat().contains("Ana Test"),
            "a name in the audit: {row:?}"
        );
    }
}

#[tokio::test]
async fn a_download_is_single_use_and_only_for_the_session_that_verified() {
    let s = two_classrooms(TestHub::new());
    let phone = s.t.login(&s.ana.phone).await;
    let laptop = s.t.login(&s.ana.phone).await;
    let download = granted_download(&s, &phone).await;

    // Another session, even the same parent's, or none at all: refused.
    s.t.send(get(&download, Some(&laptop)))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    s.t.send(get(&download, None))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "login_required");

    // Nor does a HEAD, which would spend it and deliver nothing.
    let head = axum::http::Request::head(download.as_str())
        .header(header::HOST, HOST)
        .header(header::COOKIE, &phone)
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(s.t.send(head).await.status, StatusCode::METHOD_NOT_ALLOWED);

    // None of that spent it; the first use works, the second is refused.
    assert_eq!(
        s.t.send(get(&download, Some(&phone))).await.status,
        StatusCode::OK
    );
    s.t.send(get(&download, Some(&phone)))
        .await
        .assert_error(StatusCode::GONE, "used");
    assert_eq!(s.t.audit_of("original_delivered").len(), 1);

    // A made-up token is simply not found.
    let forged = format!("/api/downloads/{}", "A".repeat(43));
    s.t.send(get(&forged, Some(&phone)))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_download_link_expires_after_ten_minutes() {
    let s = two_classrooms(TestHub::new());
    let cookie = s.t.login(&s.ana.phone).await;
    let download = granted_download(&s, &cookie).await;

    s.t.advance(Duration::minutes(10) + Duration::seconds(1));
    s.t.send(get(&download, Some(&cookie)))
        .await
        .assert_error(StatusCode::GONE, "expired");
}

#[tokio::test]
async fn a_code_is_checked_only_for_the_session_that_asked() {
    let s = two_classrooms(TestHub::new());
    let phone = s.t.login(&s.ana.phone).await;
    let laptop = s.t.login(&s.ana.phone).await;
    let request = s.t.request_original(&phone, s.photo_a).await;
    let code = s.t.last_code();

    s.t.verify(&laptop, &request, &code)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        s.t.verify(&phone, &request, &code).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_wrong_code_is_400_and_the_right_one_still_works() {
    let s = two_classrooms(TestHub::new());
    let cookie = s.t.login(&s.ana.phone).await;
    let request = s.t.request_original(&cookie, s.photo_a).await;
    let code = s.t.last_code();
    let wrong = if code == "000000" { "000001" } else { "000000" };

    let first = s.t.verify(&cookie, &request, wrong).await;
    first.assert_error(StatusCode::BAD_REQUEST, "wrong_code");
    let message = first.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("(4 tries left)"), "{message}");
    assert_eq!(s.t.audit_of("code_failed").len(), 1);

    // The last try left is said in the singular.
    let mut last = String::new();
    for _ in 0..3 {
        last = s.t.verify(&cookie, &request, wrong).await.json()["message"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    assert!(last.contains("(1 try left)"), "{last}");

    assert_eq!(
        s.t.verify(&cookie, &request, &code).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_used_code_is_refused_again_and_on_another_request_c17() {
    let s = two_classrooms(TestHub::new());
    let cookie = s.t.login(&s.ana.phone).await;
    let first = s.t.request_original(&cookie, s.photo_a).await;
    let code = s.t.last_code();
    let second = s.t.request_original(&cookie, s.photo_a).await;
    assert_ne!(
        code,
        s.t.last_code(),
        "two requests drew the same code; rerun"
    );

    assert_eq!(
        s.t.verify(&cookie, &first, &code).await.status,
        StatusCode::OK
    );

    // Again within 30 s, on the same request: used.
    s.t.advance(Duration::seconds(20));
    s.t.verify(&cookie, &first, &code)
        .await
        .assert_error(StatusCode::GONE, "used");

    // Against the second pending request: simply wrong.
    s.t.verify(&cookie, &second, &code)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "wrong_code");

    // Every attempt is in the audit: the success, the replay and the wrong try.
    assert_eq!(s.t.audit_of("code_verified").len(), 1);
    let failed: Vec<String> =
        s.t.audit_of("code_failed")
            .iter()
            .map(|row| row.flat())
            .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed
            .iter()
            .any(|row| row.contains("\"refused\":\"used\"")),
        "{failed:?}"
    );
    assert!(
        failed.iter().all(|row| !row.contains(&code)),
        "no code in the audit"
    );
}

#[tokio::test]
async fn a_code_expires_five_minutes_after_it_was_sent() {
    let s = two_classrooms(TestHub::new());
    let cookie = s.t.login(&s.ana.phone).await;

    let on_time = s.t.request_original(&cookie, s.photo_a).await;
    let on_time_code = s.t.last_code();
    s.t.advance(Duration::minutes(5));
    assert_eq!(
        s.t.verify(&cookie, &on_time, &on_time_code).await.status,
        StatusCode::OK,
        "valid for the whole five minutes"
    );

    let late = s.t.request_original(&cookie, s.photo_a).await;
    let late_code = s.t.last_code();
    s.t.advance(Duration::minutes(5) + Duration::seconds(1));
    s.t.verify(&cookie, &late, &late_code)
        .await
        .assert_error(StatusCode::GONE, "expired");
}

#[tokio::test]
async fn the_sixth_try_on_a_request_is_too_many_even_with_the_right_code() {
    let s = two_classrooms(TestHub::new());
    let cookie = s.t.login(&s.ana.phone).await;
    let request = s.t.request_original(&cookie, s.photo_a).await;
    let code = s.t.last_code();
    let wrong = if code == "999999" { "999998" } else { "999999" };

    for _ in 0..5 {
        s.t.verify(&cookie, &request, wrong)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "wrong_code");
    }
    s.t.verify(&cookie, &request, &code)
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_tries");
}

#[tokio::test]
async fn the_eleventh_request_in_24_hours_is_refused() {
    let s = two_classrooms(TestHub::new());
    let cookie = s.t.login(&s.ana.phone).await;

    for _ in 0..10 {
        s.t.request_original(&cookie, s.photo_a).await;
        s.t.advance(Duration::minutes(1));
    }
    let path = format!("/api/photos/{}/original", s.photo_a);
    s.t.send(post_json(&path, Some(&cookie), &json!({})))
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
    assert_eq!(
        s.t.sent_codes().len(),
        10,
        "no code sent for the refused one"
    );
    assert_eq!(s.t.audit_of("original_request_refused").len(), 1);

    // Rolling: 24 hours after the first request, one slot is free again.
    s.t.advance(Duration::hours(24) - Duration::minutes(10));
    let cookie = s.t.login(&s.ana.phone).await;
    s.t.request_original(&cookie, s.photo_a).await;
    s.t.send(post_json(&path, Some(&cookie), &json!({})))
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
}

#[tokio::test]
async fn twenty_wrong_codes_in_a_row_lock_the_parent_until_unlocked() {
    let s = two_classrooms(TestHub::new());
    let cookie = s.t.login(&s.ana.phone).await;

    let mut last_request = String::new();
    for round in 0..4 {
        last_request = s.t.request_original(&cookie, s.photo_a).await;
        let code = s.t.last_code();
        let wrong = if code == "123456" { "654321" } else { "123456" };
        for attempt in 0..5 {
            let answer = s.t.verify(&cookie, &last_request, wrong).await;
            answer.assert_error(StatusCode::BAD_REQUEST, "wrong_code");
            let nth = round * 5 + attempt + 1;
            let locked: bool =
                s.t.hub
                    .db
                    .lock()
                    .query_row(
                        "SELECT locked FROM guardians WHERE id = ?1",
                        [s.ana.id.to_string()],
                        |r| r.get(0),
                    )
                    .unwrap();
            assert_eq!(locked, nth >= 20, "after {nth} wrong codes");
        }
    }

    // Locked: no code check, no new request; logging in still works.
    s.t.verify(&cookie, &last_request, "000000")
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "locked");
    let path = format!("/api/photos/{}/original", s.photo_a);
    s.t.send(post_json(&path, Some(&cookie), &json!({})))
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "locked");
    let cookie = s.t.login(&s.ana.phone).await;
    assert_eq!(s.t.audit_of("parent_locked").len(), 1);

    // The operator unlocks; everything works again.
    s.t.hub.accounts.unlock_parent(&s.ana.phone).unwrap();
    let request = s.t.request_original(&cookie, s.photo_a).await;
    let code = s.t.last_code();
    assert_eq!(
        s.t.verify(&cookie, &request, &code).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_right_code_ends_the_streak_of_wrong_ones() {
    let s = two_classrooms(TestHub::new());
    let cookie = s.t.login(&s.ana.phone).await;

    // 19 wrong codes, then a right one.
    for round in 0..4 {
        let request = s.t.request_original(&cookie, s.photo_a).await;
        let code = s.t.last_code();
        let wrong = if code == "123456" { "654321" } else { "123456" };
        let misses = if round == 3 { 4 } else { 5 };
        for _ in 0..misses {
            s.t.verify(&cookie, &request, wrong).await;
        }
        if round == 3 {
            assert_eq!(
                s.t.verify(&cookie, &request, &code).await.status,
                StatusCode::OK
            );
        }
    }

    // The twentieth wrong code overall does not lock: the streak was broken.
    let request = s.t.request_original(&cookie, s.photo_a).await;
    let wrong = if s.t.last_code() == "123456" {
        "654321"
    } else {
        "123456"
    };
    s.t.verify(&cookie, &request, wrong)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "wrong_code");
    assert!(s.t.audit_of("parent_locked").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_code_submitted_twice_in_parallel_succeeds_once() {
    let s = two_classrooms(TestHub::new());
    let cookie = s.t.login(&s.ana.phone).await;

    for _ in 0..5 {
        let request = s.t.request_original(&cookie, s.photo_a).await;
        let code = s.t.last_code();
        let (one, two) = tokio::join!(
            s.t.verify(&cookie, &request, &code),
            s.t.verify(&cookie, &request, &code)
        );
        let mut statuses = [one.status, two.status];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::OK, StatusCode::GONE]);
        let loser = if one.status == StatusCode::OK {
            two
        } else {
            one
        };
        assert_eq!(loser.error(), "used");
    }

    let downloads: i64 =
        s.t.hub
            .db
            .lock()
            .query_row("SELECT COUNT(*) FROM downloads", [], |row| row.get(0))
            .unwrap();
    assert_eq!(downloads, 5, "one download per request, never two");
}

#[tokio::test]
async fn codes_with_leading_zeros_are_sent_and_verify_with_all_six_digits_c19() {
    let t = TestHub::with_codes(FixedCodes::new(&[81_804, 5_924]));
    let s = two_classrooms(t);
    let cookie = s.t.login(&s.ana.phone).await;

    for (full, cut) in [("081804", "81804"), ("005924", "5924")] {
        let request = s.t.request_original(&cookie, s.photo_a).await;
        assert_eq!(s.t.last_code(), full, "all six digits are sent");

        s.t.verify(&cookie, &request, cut)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "wrong_code");
        let answer = s.t.verify(&cookie, &request, full).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
}

#[tokio::test]
async fn codes_are_stored_only_as_hashes() {
    let t = TestHub::with_codes(FixedCodes::new(&[424_242]));
    let s = two_classrooms(t);
    let cookie = s.t.login(&s.ana.phone).await;
    s.t.request_original(&cookie, s.photo_a).await;

    let stored: Vec<u8> =
        s.t.hub
            .db
            .lock()
            .query_row("SELECT code_hash FROM original_requests", [], |row| {
                row.get(0)
            })
            .unwrap();
    assert_eq!(stored.len(), 32);
    for file in ["hub.sqlite", "hub.sqlite-wal"] {
        let bytes = std::fs::read(s.t.dir.path().join(file)).unwrap_or_default();
        assert!(
            !bytes.windows(6).any(|w| w == b"424242"),
            "the code is in {file}"
        );
    }
}
