//! The devices as the hub sees them: heartbeats recorded, the classroom's
//! PIN hashes sent when the device's set is stale, revocation by an admin,
//! and a revoked device answered only with a signed notice.

mod web_support;

use axum::http::StatusCode;
use chrono::Utc;
use guardian_hub::fleet::{self, FleetError};
use guardian_hub::ingest::{handle_message, Outcome};
use guardian_protocol::{
    topics, DeviceMessage, Heartbeat, HubNotice, Provisioning, SignedMessage, TeacherPins,
};
use serde_json::json;
use web_support::*;

const TEACHER_PHONE: &str = "+34600000002";
const ADMIN_PHONE: &str = "+34600000001";

fn heartbeat(device: &Provisioning, pins: Option<&TeacherPins>) -> Vec<u8> {
    let message = DeviceMessage::Heartbeat(Heartbeat {
        sent_at: Utc::now(),
        version: "0.1.0".into(),
        outbox_len: 3,
        quarantined: 1,
        last_error: Some("camera missing: plug the camera in".into()),
        clock_synced: false,
        pins_digest: pins.map(TeacherPins::digest),
    });
    SignedMessage::sign(device.device_id, &message, &device.signing_key().unwrap())
}

fn notice(t: &TestHub, outcome: Outcome) -> HubNotice {
    match outcome {
        Outcome::Notice { payload, .. } => {
            HubNotice::open(&payload, &t.hub.keys.signing.verifying_key())
                .expect("signed by the hub")
        }
        other => panic!("expected a notice, got {other:?}"),
    }
}

#[tokio::test]
async fn a_heartbeat_is_recorded_and_answered_with_the_classrooms_pins_until_current() {
    let t = TestHub::new();
    t.add_classroom("Class A");
    t.add_classroom("Class B");
    t.add_teacher("Tess", TEACHER_PHONE, "Class A");
    t.add_teacher("Otto", "+34600000003", "Class B");
    let device = t
        .hub
        .accounts
        .add_device("Class A", "127.0.0.1:1883", t.hub.keys.public())
        .unwrap();

    assert!(matches!(
        fleet::set_pin(&t.hub, TEACHER_PHONE, "1234"),
        Err(FleetError::PinTooEasy(_))
    ));
    fleet::set_pin(&t.hub, TEACHER_PHONE, "2580").unwrap();
    fleet::set_pin(&t.hub, "+34600000003", "7391").unwrap();
    assert!(t.audit_of("teacher_pin_set").len() == 2);

    let topic = topics::status(device.device_id);
    let first = notice(
        &t,
        handle_message(&t.hub, &topic, &heartbeat(&device, None)),
    );
    let HubNotice::Pins(pins) = first else {
        panic!("expected a PIN set, got {first:?}");
    };
    // Only the teacher of the device's classroom, and only as a hash.
    assert_eq!(pins.device_id, device.device_id);
    assert_eq!(pins.teachers.len(), 1);
    assert_eq!(pins.teachers[0].name, "Tess");
    assert!(pins.teachers[0].pin_hash.starts_with("$argon2id$"));
    assert!(!pins.teachers[0].pin_hash.contains("2580"));

    // A device holding the current set gets no answer.
    assert_eq!(
        handle_message(&t.hub, &topic, &heartbeat(&device, Some(&pins))),
        Outcome::Noted
    );

    // A changed PIN makes the held set stale again.
    fleet::set_pin(&t.hub, TEACHER_PHONE, "9517").unwrap();
    assert!(matches!(
        notice(
            &t,
            handle_message(&t.hub, &topic, &heartbeat(&device, Some(&pins)))
        ),
        HubNotice::Pins(_)
    ));

    let listed = fleet::list(&t.hub).unwrap();
    let beat = listed[0].heartbeat.as_ref().expect("a heartbeat");
    assert_eq!((beat.outbox_len, beat.quarantined), (3, 1));
    assert!(!beat.clock_synced);
    assert_eq!(
        beat.last_error.as_deref(),
        Some("camera missing: plug the camera in")
    );
    assert!(listed[0].clock_skew_ms.is_some());
}

#[tokio::test]
async fn an_admin_revokes_a_device_which_is_then_told_so_and_refused() {
    let t = TestHub::new();
    t.add_classroom("Class A");
    t.add_teacher("Tess", TEACHER_PHONE, "Class A");
    t.hub
        .accounts
        .add_admin("Adam", ADMIN_PHONE, PASSWORD)
        .unwrap();
    let device = t
        .hub
        .accounts
        .add_device("Class A", "127.0.0.1:1883", t.hub.keys.public())
        .unwrap();
    let revoke = format!("/api/admin/devices/{}/revoke", device.device_id);

    let teacher = t.login(TEACHER_PHONE).await;
    t.send(post_json(&revoke, Some(&teacher), &json!({})))
        .await
        .assert_error(StatusCode::FORBIDDEN, "wrong_role");
    t.send(get("/api/admin/devices", Some(&teacher)))
        .await
        .assert_error(StatusCode::FORBIDDEN, "wrong_role");

    let admin = t.login(ADMIN_PHONE).await;
    let page = t.send(get("/", Some(&admin))).await.text();
    assert!(page.contains("Classroom devices"), "{page}");
    assert!(page.contains(&format!("data-device-id=\"{}\"", device.device_id)));

    let answer = t.send(post_json(&revoke, Some(&admin), &json!({}))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["revoked"], true);
    let again = t.send(post_json(&revoke, Some(&admin), &json!({}))).await;
    assert_eq!(again.json()["revoked"], false);
    let listed = t.send(get("/api/admin/devices", Some(&admin))).await.json();
    assert!(listed[0]["revoked_at"].is_string(), "{listed}");
    assert_eq!(t.audit_of("device_revoked").len(), 1);

    // The broker refuses it, and whatever it still sends on an open
    // connection is dropped with a signed notice.
    assert!(!t
        .hub
        .accounts
        .check_device_mqtt_login(&device.mqtt_username, device.mqtt_password()));
    let outcome = handle_message(
        &t.hub,
        &topics::status(device.device_id),
        &heartbeat(&device, None),
    );
    assert!(
        matches!(notice(&t, outcome), HubNotice::Revoked { device_id, .. } if device_id == device.device_id)
    );
    assert_eq!(t.audit_of("device_told_revoked").len(), 1);

    let unknown = format!("/api/admin/devices/{}/revoke", uuid::Uuid::new_v4());
    t.send(post_json(&unknown, Some(&admin), &json!({})))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}
