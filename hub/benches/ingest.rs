//! How fast the hub takes in photos: verify, open every sealed part, store
//! durably (fsync) and audit, per photo, on the shared test photos.
//!
//! `cargo bench -p guardian-hub --bench ingest` prints the time per photo and
//! the peak resident memory; it asserts nothing.

use std::time::Instant;

use chrono::Utc;
use guardian_hub::ingest::{handle_message, Outcome};
use guardian_protocol::{
    topics, DeviceMessage, FaceRect, PhotoDetails, PhotoUpload, SignedMessage,
};
use uuid::Uuid;

mod support;
use support::{bench_hub, median, peak_rss, sealed_envelope};

const PHOTOS: [&str; 4] = [
    "voc_2008_001322.jpg",
    "mde_meeting_room.jpg",
    "solvay_1927_rustface.png",
    "mde_couple_balcony_exif6_8mp.jpg",
];
const ROUNDS: usize = 5;

fn main() {
    let (_dir, hub, device) = bench_hub();
    let key = device.signing_key().expect("key");
    let topic = topics::photos(device.device_id);
    let preview = std::fs::read(guardian_e2e::testdata("hopper.jpg")).expect("preview");

    println!(
        "{:<36} {:>10} {:>12} {:>12}",
        "photo", "bytes", "seal ms", "ingest ms"
    );
    for name in PHOTOS {
        let original = std::fs::read(guardian_e2e::testdata(name)).expect("photo");
        let mut seal_ms = Vec::new();
        let mut ingest_ms = Vec::new();
        for _ in 0..ROUNDS {
            let photo_id = Uuid::new_v4();
            let details = PhotoDetails {
                width: 1,
                height: 1,
                faces: vec![FaceRect {
                    x: 0,
                    y: 0,
                    width: 1,
                    height: 1,
                }],
                damaged: false,
                detector: "bench".into(),
                media_type: "image/jpeg".into(),
            };

            let started = Instant::now();
            let envelope = sealed_envelope(&device, photo_id, &details, &preview, &original);
            let payload = SignedMessage::sign(
                device.device_id,
                &DeviceMessage::Photo(PhotoUpload {
                    sent_at: Utc::now(),
                    envelope,
                }),
                &key,
            );
            seal_ms.push(started.elapsed().as_secs_f64() * 1000.0);

            let started = Instant::now();
            let outcome = handle_message(&hub, &topic, &payload);
            ingest_ms.push(started.elapsed().as_secs_f64() * 1000.0);
            assert!(
                matches!(outcome, Outcome::Reply { stored: true, .. }),
                "{outcome:?}"
            );
        }
        println!(
            "{:<36} {:>10} {:>12.1} {:>12.1}",
            name,
            original.len(),
            median(&mut seal_ms),
            median(&mut ingest_ms)
        );
    }
    println!(
        "median of {ROUNDS} rounds; ingest includes fsync of the sealed file and the SQLite commit"
    );
    println!("peak resident memory (VmHWM): {}", peak_rss());
}
