//! The hub's MQTT ingest, driven with real sealed photos and with forged,
//! unsigned, corrupted and replayed messages, without a network in between.

use std::sync::Arc;

use chrono::{Duration, SubsecRound, Utc};
use guardian_hub::audit::Verdict;
use guardian_hub::clock::{Clock, ManualClock};
use guardian_hub::ingest::{handle_message, Outcome};
use guardian_hub::Hub;
use guardian_protocol::{
    encode_cbor, topics, DeviceMessage, DeviceSigningKey, FaceRect, HubReply, PhotoDetails,
    PhotoEnvelope, PhotoUpload, Provisioning, SealedPhoto, SignedMessage, SignedReply,
    ENVELOPE_VERSION,
};
use uuid::Uuid;

fn shared_photo(name: &str) -> Vec<u8> {
    std::fs::read(guardian_e2e::testdata(name)).expect("read a shared photo")
}

struct Fixture {
    _dir: tempfile::TempDir,
    hub: Hub,
    clock: Arc<ManualClock>,
    device: Provisioning,
    key: DeviceSigningKey,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    // Whole seconds: the hub stores times to the millisecond.
    let clock = Arc::new(ManualClock::starting_at(Utc::now().trunc_subsecs(0)));
    let hub = Hub::open(dir.path(), clock.clone()).unwrap();
    hub.accounts.add_classroom("Sunflowers").unwrap();
    let device = hub
        .accounts
        .add_device("Sunflowers", "127.0.0.1:1883", hub.keys.public())
        .unwrap();
    let key = device.signing_key().unwrap();
    Fixture {
        _dir: dir,
        hub,
        clock,
        device,
        key,
    }
}

fn envelope(fx: &Fixture, photo_id: Uuid, captured_at: chrono::DateTime<Utc>) -> Vec<u8> {
    let original = shared_photo("hopper.jpg");
    envelope_with_preview(fx, photo_id, captured_at, &original)
}

fn envelope_with_preview(
    fx: &Fixture,
    photo_id: Uuid,
    captured_at: chrono::DateTime<Utc>,
    preview: &[u8],
) -> Vec<u8> {
    let original = shared_photo("hopper.jpg");
    let details = PhotoDetails {
        width: 128,
        height: 128,
        faces: vec![FaceRect {
            x: 30,
            y: 20,
            width: 60,
            height: 70,
        }],
        damaged: false,
        detector: "centerface".into(),
        media_type: "image/jpeg".into(),
    };
    let sealed = SealedPhoto::seal(
        &fx.device.hub_sealing_public,
        photo_id,
        &details,
        preview,
        &original,
    )
    .unwrap();
    PhotoEnvelope {
        version: ENVELOPE_VERSION,
        photo_id,
        device_id: fx.device.device_id,
        captured_at,
        sealed,
    }
    .to_bytes()
}

fn publish(fx: &Fixture, envelope: Vec<u8>, sent_at: chrono::DateTime<Utc>) -> Vec<u8> {
    let message = DeviceMessage::Photo(PhotoUpload { sent_at, envelope });
    SignedMessage::sign(fx.device.device_id, &message, &fx.key)
}

fn reply_of(fx: &Fixture, outcome: Outcome) -> HubReply {
    match outcome {
        Outcome::Reply { payload, .. } => SignedReply::open(&payload, &fx.device.hub_verifying_key)
            .expect("a reply signed by the hub"),
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn audit_kinds(hub: &Hub) -> Vec<String> {
    let conn = hub.db.lock();
    let mut statement = conn
        .prepare("SELECT kind FROM audit_log ORDER BY seq")
        .unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The parsed `detail` of every audit entry of one kind, oldest first.
fn audit_details(hub: &Hub, kind: &str) -> Vec<serde_json::Value> {
    let conn = hub.db.lock();
    let mut statement = conn
        .prepare("SELECT detail FROM audit_log WHERE kind = ?1 ORDER BY seq")
        .unwrap();
    statement
        .query_map([kind], |row| row.get::<_, String>(0))
        .unwrap()
        .map(|detail| serde_json::from_str(&detail.unwrap()).unwrap())
        .collect()
}

#[test]
fn a_genuine_photo_is_stored_once_and_acknowledged_every_time() {
    let fx = fixture();
    let topic = topics::photos(fx.device.device_id);
    let photo_id = Uuid::new_v4();
    let bytes = envelope(&fx, photo_id, Utc::now());
    let payload = publish(&fx, bytes.clone(), Utc::now());

    let first = reply_of(&fx, handle_message(&fx.hub, &topic, &payload));
    assert!(matches!(first, HubReply::Stored { photo_id: id, .. } if id == photo_id));
    assert_eq!(fx.hub.store.count().unwrap(), 1);
    assert_eq!(
        fx.hub.store.envelope(photo_id).unwrap(),
        bytes,
        "stored exactly as received"
    );

    // Its face is recorded for review at once, unnamed, and the photo awaits
    // a teacher: released to nobody.
    let faces: Vec<(u32, u32, u32, u32, Option<String>, String)> = fx
        .hub
        .db
        .lock()
        .prepare(
            "SELECT x, y, width, height, child_id, origin FROM photo_faces WHERE photo_id = ?1",
        )
        .unwrap()
        .query_map([photo_id.to_string()], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(faces, [(30, 20, 60, 70, None, "device".to_owned())]);
    let released: Option<i64> = fx
        .hub
        .db
        .lock()
        .query_row(
            "SELECT released_at FROM photo_reviews WHERE photo_id = ?1",
            [photo_id.to_string()],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(released, None);

    // A resend, even with a new sending time, stores nothing new.
    let again = publish(&fx, bytes, Utc::now());
    let second = reply_of(&fx, handle_message(&fx.hub, &topic, &again));
    assert_eq!(second, first);
    assert_eq!(fx.hub.store.count().unwrap(), 1);
    let received = audit_kinds(&fx.hub)
        .iter()
        .filter(|k| *k == "photo_received")
        .count();
    assert_eq!(received, 1, "one audit entry per photo");
}

#[test]
fn the_same_id_with_other_bytes_is_rejected_and_the_first_photo_kept() {
    let fx = fixture();
    let topic = topics::photos(fx.device.device_id);
    let photo_id = Uuid::new_v4();
    let first = envelope(&fx, photo_id, Utc::now());
    handle_message(&fx.hub, &topic, &publish(&fx, first.clone(), Utc::now()));

    let other = envelope(&fx, photo_id, Utc::now());
    let reply = reply_of(
        &fx,
        handle_message(&fx.hub, &topic, &publish(&fx, other, Utc::now())),
    );
    assert!(matches!(reply, HubReply::Rejected { .. }));
    assert_eq!(fx.hub.store.envelope(photo_id).unwrap(), first);
}

#[test]
fn forged_unsigned_and_corrupted_messages_are_dropped_and_audited() {
    let fx = fixture();
    let topic = topics::photos(fx.device.device_id);
    let good = publish(&fx, envelope(&fx, Uuid::new_v4(), Utc::now()), Utc::now());

    let stranger = DeviceSigningKey::generate();
    let forged = SignedMessage::sign(
        fx.device.device_id,
        &DeviceMessage::Photo(PhotoUpload {
            sent_at: Utc::now(),
            envelope: envelope(&fx, Uuid::new_v4(), Utc::now()),
        }),
        &stranger,
    );
    let mut corrupted = good.clone();
    let middle = corrupted.len() / 2;
    corrupted[middle] ^= 0xff;
    let unsigned = encode_cbor(&DeviceMessage::Photo(PhotoUpload {
        sent_at: Utc::now(),
        envelope: vec![1, 2, 3],
    }));
    let other_topic = topics::photos(Uuid::new_v4());

    for (name, topic, payload) in [
        ("forged", topic.as_str(), forged),
        ("corrupted", topic.as_str(), corrupted),
        ("unsigned", topic.as_str(), unsigned),
        ("garbage", topic.as_str(), b"\xff\xff\xff".to_vec()),
        ("wrong topic", other_topic.as_str(), good.clone()),
    ] {
        let outcome = handle_message(&fx.hub, topic, &payload);
        assert!(
            matches!(outcome, Outcome::Dropped { .. }),
            "{name}: {outcome:?}"
        );
    }
    assert_eq!(fx.hub.store.count().unwrap(), 0);
    let dropped = audit_kinds(&fx.hub)
        .iter()
        .filter(|k| *k == "message_dropped")
        .count();
    assert_eq!(dropped, 5);

    // The next good message is stored.
    let reply = reply_of(&fx, handle_message(&fx.hub, &topic, &good));
    assert!(matches!(reply, HubReply::Stored { .. }));
}

/// C23: correctly signed messages whose Fernet tokens are broken.
#[test]
fn c23_signed_messages_with_broken_tokens_get_one_generic_signed_rejection() {
    let fx = fixture();
    let topic = topics::photos(fx.device.device_id);

    type Breaker = fn(&mut Vec<u8>);
    let breakers: [(&str, Breaker); 5] = [
        ("bad mac", |token| {
            let last = token.len() - 1;
            token[last] ^= 1;
        }),
        ("truncated", |token| token.truncate(token.len() - 7)),
        ("wrong version", |token| token[0] = 0x81),
        ("flipped ciphertext", |token| token[30] ^= 0x10),
        ("huge timestamp", |token| {
            token[1..9].copy_from_slice(&u64::MAX.to_be_bytes())
        }),
    ];

    let mut reasons = Vec::new();
    for (name, breaker) in breakers {
        let photo_id = Uuid::new_v4();
        let bytes = envelope(&fx, photo_id, Utc::now());
        let broken = break_original_token(&bytes, breaker);
        let reply = reply_of(
            &fx,
            handle_message(&fx.hub, &topic, &publish(&fx, broken, Utc::now())),
        );
        match reply {
            HubReply::Rejected {
                photo_id: id,
                reason,
                ..
            } => {
                assert_eq!(id, photo_id, "{name}");
                reasons.push(reason);
            }
            other => panic!("{name}: expected a rejection, got {other:?}"),
        }
    }
    reasons.dedup();
    assert_eq!(
        reasons.len(),
        1,
        "one generic reason for every cause: {reasons:?}"
    );
    assert_eq!(fx.hub.store.count().unwrap(), 0);

    // Each broken message is audited once, with the detail the device is not told.
    let rejected = audit_details(&fx.hub, "photo_rejected");
    assert_eq!(
        rejected.len(),
        breakers.len(),
        "one photo_rejected entry per broken message: {rejected:?}"
    );
    for detail in &rejected {
        let reason = detail["reason"].as_str().unwrap_or_default();
        assert!(!reason.is_empty(), "an audited rejection names its reason");
    }
    assert!(
        !audit_kinds(&fx.hub).contains(&"message_dropped".to_owned()),
        "signed messages are rejected, not dropped"
    );

    let good = publish(&fx, envelope(&fx, Uuid::new_v4(), Utc::now()), Utc::now());
    assert!(matches!(
        reply_of(&fx, handle_message(&fx.hub, &topic, &good)),
        HubReply::Stored { .. }
    ));
}

/// Re-encodes an envelope with its original token changed, keeping the rest.
fn break_original_token(envelope: &[u8], breaker: fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut value: ciborium::Value = ciborium::from_reader(envelope).unwrap();
    let sealed = map_get(&mut value, "sealed");
    let ciborium::Value::Bytes(token) = map_get(sealed, "original") else {
        panic!("the original token is a byte string");
    };
    breaker(token);
    let mut bytes = Vec::new();
    ciborium::into_writer(&value, &mut bytes).unwrap();
    bytes
}

fn map_get<'a>(value: &'a mut ciborium::Value, key: &str) -> &'a mut ciborium::Value {
    let ciborium::Value::Map(entries) = value else {
        panic!("expected a map");
    };
    entries
        .iter_mut()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
        .unwrap()
}

/// C21: a device clock 5 minutes ahead, 14 days behind, or never set.
#[test]
fn c21_photos_from_devices_with_wrong_clocks_are_stored_with_their_skew() {
    let fx = fixture();
    let topic = topics::photos(fx.device.device_id);
    let now = fx.clock.now();

    for (device_now, expected_skew) in [
        (now + Duration::minutes(5), -Duration::minutes(5)),
        (now - Duration::days(14), Duration::days(14)),
        (
            chrono::DateTime::UNIX_EPOCH,
            now - chrono::DateTime::UNIX_EPOCH,
        ),
    ] {
        let photo_id = Uuid::new_v4();
        let bytes = envelope(&fx, photo_id, device_now);
        let reply = reply_of(
            &fx,
            handle_message(&fx.hub, &topic, &publish(&fx, bytes, device_now)),
        );
        assert!(matches!(reply, HubReply::Stored { .. }));

        let record = fx.hub.store.get(photo_id).unwrap().unwrap();
        assert_eq!(record.captured_at, device_now);
        assert_eq!(record.received_at, now);
        assert_eq!(record.clock_skew(), expected_skew);

        // The skew is recorded in the audit entry of the stored photo.
        let received = audit_details(&fx.hub, "photo_received");
        let detail = received.last().expect("a photo_received entry");
        assert_eq!(
            detail["device_clock_skew_ms"].as_i64(),
            Some((now - device_now).num_milliseconds()),
            "{detail}"
        );
    }
    assert_eq!(audit_details(&fx.hub, "photo_received").len(), 3);
}

#[test]
fn a_revoked_or_unknown_device_is_dropped() {
    let fx = fixture();
    let unknown = Uuid::new_v4();
    let payload = SignedMessage::sign(
        unknown,
        &DeviceMessage::Photo(PhotoUpload {
            sent_at: Utc::now(),
            envelope: vec![],
        }),
        &fx.key,
    );
    assert!(matches!(
        handle_message(&fx.hub, &topics::photos(unknown), &payload),
        Outcome::Dropped { .. }
    ));
}

#[test]
fn audit_verify_catches_an_altered_a_removed_and_a_cut_entry() {
    let fx = fixture();
    let topic = topics::photos(fx.device.device_id);
    for _ in 0..3 {
        let payload = publish(&fx, envelope(&fx, Uuid::new_v4(), Utc::now()), Utc::now());
        handle_message(&fx.hub, &topic, &payload);
    }
    let intact = |hub: &Hub| {
        matches!(
            hub.audit.verify(&hub.db.lock()).unwrap(),
            Verdict::Intact { .. }
        )
    };
    assert!(intact(&fx.hub));

    let snapshot: Vec<(i64, String)> = {
        let conn = fx.hub.db.lock();
        let mut statement = conn.prepare("SELECT seq, detail FROM audit_log").unwrap();
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let last = snapshot.last().unwrap().0;

    // Altered.
    fx.hub
        .db
        .lock()
        .execute("UPDATE audit_log SET detail = '{}' WHERE seq = 2", [])
        .unwrap();
    assert!(!intact(&fx.hub), "an altered entry is caught");
    fx.hub
        .db
        .lock()
        .execute(
            "UPDATE audit_log SET detail = ?1 WHERE seq = 2",
            [&snapshot[1].1],
        )
        .unwrap();
    assert!(intact(&fx.hub), "restoring the entry restores the chain");

    // Removed from the middle.
    let conn_backup = dump(&fx.hub);
    fx.hub
        .db
        .lock()
        .execute("DELETE FROM audit_log WHERE seq = 3", [])
        .unwrap();
    assert!(!intact(&fx.hub), "a removed entry is caught");
    restore(&fx.hub, &conn_backup);
    assert!(intact(&fx.hub));

    // Cut off the end: the chain that is left is valid, the head is not.
    fx.hub
        .db
        .lock()
        .execute("DELETE FROM audit_log WHERE seq = ?1", [last])
        .unwrap();
    assert!(!intact(&fx.hub), "a cut tail is caught by the head");
}

type AuditRows = Vec<(
    i64,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    Vec<u8>,
)>;

fn dump(hub: &Hub) -> AuditRows {
    let conn = hub.db.lock();
    let mut statement = conn
        .prepare("SELECT seq, at, kind, actor, subject, ip, detail, mac FROM audit_log")
        .unwrap();
    statement
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn restore(hub: &Hub, rows: &AuditRows) {
    let conn = hub.db.lock();
    conn.execute("DELETE FROM audit_log", []).unwrap();
    for row in rows {
        conn.execute(
            "INSERT INTO audit_log (seq, at, kind, actor, subject, ip, detail, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            rusqlite::params![row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7],
        )
        .unwrap();
    }
}

#[test]
fn a_preview_that_is_not_a_small_jpeg_is_rejected() {
    let fx = fixture();
    let topic = topics::photos(fx.device.device_id);
    let big = {
        let image = image::RgbImage::new(1281, 10);
        let mut bytes = Vec::new();
        image
            .write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        bytes
    };

    for preview in [b"<html><script>alert(1)</script>".to_vec(), big] {
        let bytes = envelope_with_preview(&fx, Uuid::new_v4(), Utc::now(), &preview);
        let reply = reply_of(
            &fx,
            handle_message(&fx.hub, &topic, &publish(&fx, bytes, Utc::now())),
        );
        assert!(matches!(reply, HubReply::Rejected { .. }), "{reply:?}");
    }
    assert_eq!(fx.hub.store.count().unwrap(), 0);
}
