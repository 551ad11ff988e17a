//! Regression tests for field cases that need both real binaries and the
//! embedded broker: damaged photos (C07) and MQTT packets of every size on the
//! way to a device (C28). Photos reach the parent once the classroom's teacher
//! has named the parent's child in them and released them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use guardian_e2e::hub::{hub_ok, School};
use guardian_e2e::measure::{self, Region};
use guardian_e2e::testdata;
use guardian_e2e::watermark::Marked;
use guardian_protocol::{topics, Provisioning, MAX_HUB_REPLY_BYTES, MQTT_PACKET_LIMIT};
use rumqttc::{Client, Connection, Event, MqttOptions, Packet, QoS};

const PHONE: &str = "+34600222333";

/// How far a preview pixel may stray from the flat grey cover through JPEG
/// noise; twice as far under the watermark's band, whose darkening is undone.
const GREY_NOISE: f64 = 6.0;

/// C07: a photo cut to 60 %, one with 100 zeroed bytes and one cut inside its
/// header. Each is refused cleanly or, where the decoder accepts it, delivered
/// flagged damaged: even with the parent's child named in it, its whole
/// preview is covered and no original is offered. A second run over the same
/// files neither captures nor fails them again.
#[test]
fn c07_a_damaged_photo_is_covered_whole_and_never_retried() {
    let school = School::new("Tulips", PHONE);
    let hub = school.start_hub();
    let photos = school.dir.path().join("camera");
    std::fs::create_dir_all(&photos).unwrap();
    let bytes = std::fs::read(testdata("voc_2008_001322.jpg")).unwrap();
    std::fs::write(
        photos.join("a_truncated.jpg"),
        &bytes[..bytes.len() * 6 / 10],
    )
    .unwrap();
    let mut zeroed = bytes.clone();
    let middle = zeroed.len() / 2;
    zeroed[middle..middle + 100].fill(0);
    std::fs::write(photos.join("b_zeroed.jpg"), &zeroed).unwrap();
    // Cut before the frame header: no decoder can accept it.
    std::fs::write(photos.join("c_cut_in_header.jpg"), &bytes[..64]).unwrap();

    let device_dir = school.dir.path().join("device");
    let source = format!("dir:{}", photos.display());
    let run = school.run_device(&device_dir, &source, 300);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stderr, hub.log());
    let failed = events_named(&run.events, "capture_failed");
    let captured = run.captured();
    assert_eq!(
        captured.len() + failed,
        3,
        "each damaged file is handled once: {:?}",
        run.events
    );
    assert!(
        !captured.is_empty() && failed > 0,
        "some damaged files are accepted and some refused: {:?}",
        run.events
    );

    // The teacher finds them flagged damaged, names the parent's child in each
    // (on a face drawn by hand where the device found none) and releases them.
    let mut teacher = school.teacher(&hub);
    let awaiting = teacher.review();
    assert_eq!(awaiting.len(), captured.len());
    assert!(awaiting.iter().all(|photo| photo.damaged), "{awaiting:?}");
    teacher.name_child_and_release_all(&school.child_id);

    // Every preview the parent can see is the flat cover, edge to edge, under
    // the parent's watermark.
    let mut parent = school.parent(&hub);
    assert_eq!(
        parent.grant_consent(&school.child_id, "originals").status,
        200
    );
    for (id, source) in &captured {
        let reply = parent.get(&format!("/api/photos/{id}/preview"));
        assert_eq!(reply.status, 200, "{source}");
        let preview = measure::decode(&reply.body);
        let (width, height) = preview.dimensions();
        assert!(width > 0 && height > 0, "{source}");
        let whole = Region {
            x: 0.0,
            y: 0.0,
            w: f64::from(width),
            h: f64::from(height),
        };
        let marked = Marked::new(&preview, &preview, &[whole]);
        let (mut grey, mut off) = (0usize, 0usize);
        for value in marked.unbanded_pixels() {
            if (value - 128.0).abs() <= 2.0 * GREY_NOISE {
                grey += 1;
            } else {
                off += 1;
            }
        }
        assert_eq!(
            off,
            0,
            "{source}: {off} of {} preview pixels are not the cover grey",
            width * height
        );
        assert!(
            grey * 2 >= (width * height) as usize,
            "{source}: the watermark hides most of the preview"
        );
        assert!(stored_as_damaged(&school.hub_dir, id), "{source}");

        // No original of a damaged photo, whatever the consents.
        let refused = parent.post(
            &format!("/api/photos/{id}/original"),
            &serde_json::json!({}),
        );
        assert_eq!(
            (refused.status, refused.error_code().as_str()),
            (403, "original_not_allowed"),
            "{source}"
        );
    }

    // A second run over the same files: nothing captured, nothing failed again.
    let again = school.run_device(&device_dir, &source, 120);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(again.captured().is_empty(), "{:?}", again.events);
    assert_eq!(
        events_named(&again.events, "capture_failed"),
        0,
        "a refused file is not retried: {:?}",
        again.events
    );
    assert!(teacher.review().is_empty());
    assert_eq!(parent.photo_ids().len(), captured.len());
    assert_eq!(stored_photos(&school.hub_dir), captured.len() as i64);
}

/// C28: a 12 KB message (under `MAX_HUB_REPLY_BYTES`), one of 20 KB and one of
/// 1 MB, published by another logged-in device on a device's replies topic
/// while it runs, pass the broker, are ignored by the device, and do not cut
/// its connection: every photo is still delivered.
#[test]
fn c28_junk_on_a_device_replies_topic_neither_disconnects_it_nor_stops_delivery() {
    const CLASSROOM: &str = "Poppies";
    let school = School::new(CLASSROOM, PHONE);
    let other = add_device(&school, CLASSROOM, "other.json");
    let first = provisioning(&school.provision);
    let hub = school.start_hub();

    let photos = school.dir.path().join("camera");
    std::fs::create_dir_all(&photos).unwrap();
    let names = ["hopper.jpg", "voc_2008_001322.jpg", "voc_2008_002470.jpg"];
    for name in names {
        std::fs::copy(testdata(name), photos.join(name)).unwrap();
    }

    let sizes = [12 * 1024, 20 * 1024, 1024 * 1024];
    assert!(sizes[0] < MAX_HUB_REPLY_BYTES && sizes[1] > MAX_HUB_REPLY_BYTES);
    let (client, connection) = connect_as(&other, hub.mqtt.port(), MQTT_PACKET_LIMIT);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = drive_in_background(connection, stop.clone());

    // Junk keeps coming for as long as the device runs, so it lands whatever the
    // device is doing: connecting, publishing or waiting for acknowledgements.
    let replies = topics::replies(first.device_id);
    let publisher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut rounds = 0;
            while !stop.load(Ordering::Relaxed) {
                for size in sizes {
                    client
                        .publish(&replies, QoS::AtMostOnce, false, vec![0x5a; size])
                        .unwrap();
                }
                rounds += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = client.disconnect();
            rounds
        })
    };

    let run = school.run_device(
        &school.dir.path().join("device"),
        &format!("dir:{}", photos.display()),
        300,
    );
    let publisher_errors = errors.lock().unwrap().clone();
    stop.store(true, Ordering::Relaxed);
    let rounds = publisher.join().unwrap();

    assert_eq!(run.code, Some(0), "{}\n{}", run.stderr, hub.log());
    assert_eq!(run.captured().len(), names.len());
    assert_eq!(events_named(&run.events, "delivered"), names.len());
    assert!(rounds > 0);

    // All three sizes passed the broker and reached the device, which ignored
    // them: the 12 KB junk parsed and found malformed, the larger ones refused
    // by their size, unparsed.
    let ignored: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.contains("untrusted reply"))
        .collect();
    let reached = |needle: &str| ignored.iter().any(|line| line.contains(needle));
    for needle in [
        "malformed".to_owned(),
        format!("{} bytes", sizes[1]),
        format!("{} bytes", sizes[2]),
    ] {
        assert!(
            reached(&needle),
            "no junk reached the device as {needle:?}:\n{}",
            run.stderr
        );
    }
    assert!(
        !run.stderr.contains("broker unreachable"),
        "the device lost its connection:\n{}",
        run.stderr
    );
    assert!(
        publisher_errors.is_empty(),
        "the publisher of packets within the limit was disconnected: {publisher_errors:?}"
    );
    assert_eq!(stored_photos(&school.hub_dir), names.len() as i64);
}

/// C28: a packet over the broker's limit (`MQTT_PACKET_LIMIT` + 1 KB of payload)
/// is refused by the broker, which disconnects its sender; the hub keeps
/// running and stores the next good photo.
#[test]
fn c28_a_packet_over_the_broker_limit_disconnects_its_sender_and_the_hub_carries_on() {
    const CLASSROOM: &str = "Marigolds";
    let school = School::new(CLASSROOM, PHONE);
    let other = add_device(&school, CLASSROOM, "other.json");
    let hub = school.start_hub();

    // The client's own limit is raised so that the broker, not the client, decides.
    let (client, mut connection) = connect_as(&other, hub.mqtt.port(), 2 * MQTT_PACKET_LIMIT);
    client
        .publish(
            topics::photos(other.device_id),
            QoS::AtLeastOnce,
            false,
            vec![0u8; MQTT_PACKET_LIMIT + 1024],
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let refused = loop {
        assert!(
            Instant::now() < deadline,
            "the broker neither accepted nor refused the packet"
        );
        match connection.recv_timeout(Duration::from_secs(1)) {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => {
                panic!("the broker accepted a packet over its limit")
            }
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(error)) => break error,
        }
    };
    eprintln!("the oversized packet's sender was disconnected: {refused}");
    drop(connection);
    assert_eq!(stored_photos(&school.hub_dir), 0);

    // The hub is still up, and the next good photo is stored.
    let photos = school.dir.path().join("camera");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::copy(testdata("hopper.jpg"), photos.join("hopper.jpg")).unwrap();
    let run = school.run_device(
        &school.dir.path().join("device"),
        &format!("dir:{}", photos.display()),
        120,
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stderr, hub.log());
    assert_eq!(events_named(&run.events, "delivered"), 1);
    assert_eq!(stored_photos(&school.hub_dir), 1);

    // It awaits review, and reaches the parent once released.
    let mut teacher = school.teacher(&hub);
    let released = teacher.name_child_and_release_all(&school.child_id);
    assert_eq!(released.len(), 1);
    assert_eq!(school.parent(&hub).photo_ids(), released);
}

fn events_named(events: &[serde_json::Value], name: &str) -> usize {
    events.iter().filter(|event| event["event"] == name).count()
}

/// Registers one more device in `classroom` and returns its provisioning.
fn add_device(school: &School, classroom: &str, file: &str) -> Provisioning {
    let path: PathBuf = school.dir.path().join(file);
    hub_ok(
        &school.hub_dir,
        &[
            "device",
            "add",
            "--classroom",
            classroom,
            "--broker",
            &format!("127.0.0.1:{}", school.mqtt_port),
            "--out",
            path.to_str().unwrap(),
        ],
        None,
    );
    provisioning(&path)
}

fn provisioning(path: &Path) -> Provisioning {
    Provisioning::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// An MQTT client logged in as `device` on the hub's loopback broker.
fn connect_as(device: &Provisioning, port: u16, packet_limit: usize) -> (Client, Connection) {
    let mut options = MqttOptions::new(device.device_id.to_string(), "127.0.0.1", port);
    options.set_credentials(&device.mqtt_username, device.mqtt_password());
    options.set_max_packet_size(packet_limit, packet_limit);
    options.set_keep_alive(Duration::from_secs(30));
    Client::new(options, 16)
}

/// Polls a client's connection until `stop`, keeping every connection error.
fn drive_in_background(
    mut connection: Connection,
    stop: Arc<AtomicBool>,
) -> Arc<Mutex<Vec<String>>> {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = errors.clone();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Ok(Err(error)) = connection.recv_timeout(Duration::from_millis(200)) {
                seen.lock().unwrap().push(error.to_string());
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    });
    errors
}

fn stored_as_damaged(hub_dir: &Path, photo_id: &str) -> bool {
    let conn = rusqlite::Connection::open(hub_dir.join("hub.sqlite")).unwrap();
    conn.query_row(
        "SELECT damaged FROM photos WHERE id = ?1",
        [photo_id],
        |r| r.get(0),
    )
    .unwrap()
}

fn stored_photos(hub_dir: &Path) -> i64 {
    let conn = rusqlite::Connection::open(hub_dir.join("hub.sqlite")).unwrap();
    conn.query_row("SELECT COUNT(*) FROM photos", [], |r| r.get(0))
        .unwrap()
}
