//! Runs the real `guardian-device` binary against a real MQTT broker (rumqttd,
//! on loopback) and a stand-in hub that checks every message the way the real
//! hub must: device signature, envelope, sealed parts.
//!
//! The end-to-end tests with the real hub live in the workspace's `tests/`;
//! these pin down the device's side of the contract on its own.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use guardian_protocol::{
    envelope_sha256, topics, DeviceMessage, DeviceSigningKey, DeviceVerifyingKey, HubPublicKeys,
    HubReply, HubSealingKey, HubSigningKey, PhotoDetails, PhotoEnvelope, Provisioning,
    SignedMessage, SignedReply, MAX_DEVICE_MESSAGE_BYTES, MAX_HUB_REPLY_BYTES,
};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use uuid::Uuid;

const DEVICE_USER: &str = "device-user";
const DEVICE_PASSWORD: &str = "device-password";
const HUB_USER: &str = "hub-user";
const HUB_PASSWORD: &str = "hub-password";

// ---------------------------------------------------------------------------
// Fixtures

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("guardian-device-it-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

use guardian_e2e::testdata;

/// The hub's keys and the device's identity, as the hub would provision them.
struct Keys {
    hub_sealing: HubSealingKey,
    hub_signing: HubSigningKey,
    device_id: Uuid,
    device_verifying: DeviceVerifyingKey,
    provisioning_file: PathBuf,
}

fn provision(dir: &Path, broker_port: u16) -> Keys {
    let hub_sealing = HubSealingKey::generate();
    let hub_signing = HubSigningKey::generate();
    let device_key = DeviceSigningKey::generate();
    let device_id = Uuid::new_v4();
    let provisioning = Provisioning::new(
        device_id,
        "Class 2B".into(),
        format!("127.0.0.1:{broker_port}"),
        DEVICE_USER.into(),
        DEVICE_PASSWORD.into(),
        &device_key,
        HubPublicKeys {
            sealing: hub_sealing.public(),
            verifying: hub_signing.verifying_key(),
        },
    );
    let provisioning_file = dir.join("provision.json");
    std::fs::write(&provisioning_file, provisioning.to_json()).unwrap();
    set_mode(&provisioning_file, 0o600);
    Keys {
        hub_sealing,
        hub_signing,
        device_id,
        device_verifying: device_key.verifying_key(),
        provisioning_file,
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts rumqttd on 127.0.0.1:`port`, with a password for the device and the
/// hub and room for a whole photo in one message. It runs until the test
/// process ends.
fn start_broker(port: u16) {
    let connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: MAX_DEVICE_MESSAGE_BYTES + 64 * 1024,
        max_inflight_count: 100,
        auth: Some(HashMap::from([
            (DEVICE_USER.to_string(), DEVICE_PASSWORD.to_string()),
            (HUB_USER.to_string(), HUB_PASSWORD.to_string()),
        ])),
        external_auth: None,
        dynamic_filters: true,
    };
    let server = rumqttd::ServerSettings {
        name: "v4".into(),
        listen: ([127, 0, 0, 1], port).into(),
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    let config = rumqttd::Config {
        router: rumqttd::RouterConfig {
            max_connections: 16,
            max_outgoing_packet_count: 200,
            max_segment_size: 4 * MAX_DEVICE_MESSAGE_BYTES,
            max_segment_count: 4,
            ..Default::default()
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Default::default()
    };

    thread::spawn(move || {
        let mut broker = rumqttd::Broker::new(config);
        broker.start().expect("the test broker runs");
    });
    wait_until(Duration::from_secs(10), "the broker to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------
// The stand-in hub

/// What the stand-in hub answers to a photo.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    Store,
    Reject,
}

/// One photo the stand-in hub received and opened.
#[derive(Debug, Clone)]
struct Received {
    photo_id: Uuid,
    details: PhotoDetails,
}

/// Subscribes to every device's photos and answers each with a signed reply,
/// after first sending the replies a forger could: signed by another key, for
/// another device, and about other bytes. The device must ignore those.
fn start_hub(
    port: u16,
    keys: &Keys,
    decide: fn(&PhotoDetails) -> Answer,
) -> mpsc::Receiver<Received> {
    let mut options = MqttOptions::new("stand-in-hub", "127.0.0.1", port);
    options
        .set_credentials(HUB_USER, HUB_PASSWORD)
        .set_max_packet_size(MAX_DEVICE_MESSAGE_BYTES + 1024, MAX_HUB_REPLY_BYTES + 1024);
    let (client, mut connection) = Client::new(options, 32);
    client
        .subscribe(topics::ALL_PHOTOS, QoS::AtLeastOnce)
        .unwrap();

    let (received_tx, received) = mpsc::channel();
    let (subscribed_tx, subscribed) = mpsc::channel();
    let hub_sealing =
        HubSealingKey::from_secret_bytes(keys.hub_sealing.secret_bytes_for_key_file());
    let hub_signing =
        HubSigningKey::from_secret_bytes(keys.hub_signing.secret_bytes_for_key_file());
    let device_verifying = keys.device_verifying;
    let device_id = keys.device_id;

    thread::spawn(move || {
        for notification in connection.iter() {
            let publish = match notification {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = subscribed_tx.send(());
                    continue;
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => publish,
                Ok(_) => continue,
                Err(_) => {
                    thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };

            assert_eq!(publish.topic, topics::photos(device_id));
            let signed = SignedMessage::decode(&publish.payload).expect("a device message");
            assert_eq!(signed.device_id, device_id);
            // Only photos are published on the photos topic; heartbeats go
            // to the status topic this fake hub does not read.
            let DeviceMessage::Photo(upload) = signed
                .verify(&device_verifying)
                .expect("signed by the device's key")
            else {
                panic!("a heartbeat on the photos topic");
            };
            let envelope = PhotoEnvelope::from_bytes(&upload.envelope).expect("an envelope");
            assert_eq!(envelope.device_id, device_id);
            let details = envelope
                .sealed
                .open(&hub_sealing, envelope.photo_id)
                .and_then(|opened| opened.verify_all())
                .expect("the hub key opens every sealed part");
            let digest = envelope_sha256(&upload.envelope);
            let photo_id = envelope.photo_id;

            let forger = HubSigningKey::generate();
            let stored = |device_id, envelope_sha256| HubReply::Stored {
                device_id,
                photo_id,
                envelope_sha256,
            };
            let decoys = [
                SignedReply::sign(&stored(device_id, digest), &forger),
                SignedReply::sign(&stored(Uuid::new_v4(), digest), &hub_signing),
                SignedReply::sign(&stored(device_id, [0; 32]), &hub_signing),
                b"not even cbor".to_vec(),
            ];
            let genuine = match decide(&details) {
                Answer::Store => stored(device_id, digest),
                Answer::Reject => HubReply::Rejected {
                    device_id,
                    photo_id,
                    envelope_sha256: digest,
                    reason: "refused by the test hub".into(),
                },
            };
            for payload in decoys
                .into_iter()
                .chain([SignedReply::sign(&genuine, &hub_signing)])
            {
                client
                    .try_publish(topics::replies(device_id), QoS::AtLeastOnce, false, payload)
                    .expect("queue a reply");
            }
            let _ = received_tx.send(Received { photo_id, details });
        }
    });

    subscribed
        .recv_timeout(Duration::from_secs(10))
        .expect("the stand-in hub subscribed");
    received
}

// ---------------------------------------------------------------------------
// The device process

/// A running `guardian-device`, its stdout events and stderr collected.
struct Device {
    child: Child,
    events: mpsc::Receiver<Value>,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Device {
    fn start(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_guardian-device"));
        command
            .args(args)
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "info");
        for name in [
            "GUARDIAN_PROVISION",
            "GUARDIAN_DATA_DIR",
            "GUARDIAN_BROKER",
            "GUARDIAN_DETECTOR",
            "GUARDIAN_SOURCE",
        ] {
            command.env_remove(name);
        }
        command.envs(env.iter().copied());
        let mut child = command.spawn().expect("start guardian-device");

        let stdout = child.stdout.take().unwrap();
        let (events_tx, events) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let line = line.unwrap();
                let event: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
                let _ = events_tx.send(event);
            }
        });

        let mut pipe = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(read) = pipe.read(&mut chunk) {
                if read == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..read]));
            }
        });

        Self {
            child,
            events,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn next_event(&self, limit: Duration) -> Value {
        self.events
            .recv_timeout(limit)
            .unwrap_or_else(|_| panic!("no event line in time; stderr:\n{}", self.stderr()))
    }

    /// Waits for the process to exit and returns its status and every event.
    fn finish(mut self, limit: Duration) -> (ExitStatus, Vec<Value>, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "guardian-device did not exit in time; stderr:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(100));
        };
        // Let the reader threads drain the closed pipes.
        thread::sleep(Duration::from_millis(200));
        let events = self.events.try_iter().collect();
        (status, events, self.stderr())
    }
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

fn copy_in(dir: &Path, file: &str, name: &str) {
    std::fs::copy(testdata(file), dir.join(name)).unwrap();
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn photos_reach_the_hub_and_a_rejected_one_is_reported_with_exit_code_3() {
    let dir = TempDir::new();
    let port = free_port();
    start_broker(port);
    let keys = provision(dir.path(), port);
    let received = start_hub(port, &keys, |details| {
        if details.width == 500 {
            Answer::Reject
        } else {
            Answer::Store
        }
    });

    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    copy_in(&inbox, "hopper.jpg", "a.jpg");
    copy_in(&inbox, "voc_2008_001322.jpg", "b.JPG");
    std::fs::write(
        inbox.join("c.png"),
        b"\x89PNG\r\n\x1a\n then nothing useful",
    )
    .unwrap();
    std::fs::write(inbox.join("notes.txt"), b"ignored").unwrap();

    let data = dir.path().join("data");
    let provision_arg = keys.provisioning_file.to_str().unwrap();
    let source = format!("dir:{}", inbox.display());
    let device = Device::start(
        dir.path(),
        &[
            "--provision",
            provision_arg,
            "--data-dir",
            data.to_str().unwrap(),
            "run",
            "--source",
            &source,
            "--exit-when-synced",
            "--timeout",
            "120",
        ],
        &[],
    );
    let (status, events, stderr) = device.finish(Duration::from_secs(150));
    assert_eq!(status.code(), Some(3), "stderr:\n{stderr}");

    let captured = of_kind(&events, "captured");
    assert_eq!(captured.len(), 2, "events: {events:?}");
    assert_eq!(
        captured[0]["source"],
        inbox.join("a.jpg").display().to_string()
    );
    assert_eq!(
        captured[1]["source"],
        inbox.join("b.JPG").display().to_string()
    );
    let failed = of_kind(&events, "capture_failed");
    assert_eq!(failed.len(), 1, "events: {events:?}");
    assert_eq!(
        failed[0]["source"],
        inbox.join("c.png").display().to_string()
    );

    let hopper_id = captured[0]["photo_id"].as_str().unwrap();
    let voc_id = captured[1]["photo_id"].as_str().unwrap();
    let delivered = of_kind(&events, "delivered");
    assert_eq!(
        delivered.len(),
        1,
        "decoy replies must not deliver: {events:?}"
    );
    assert_eq!(delivered[0]["photo_id"], hopper_id);
    let rejected = of_kind(&events, "rejected");
    assert_eq!(rejected.len(), 1, "events: {events:?}");
    assert_eq!(rejected[0]["photo_id"], voc_id);
    assert_eq!(rejected[0]["reason"], "refused by the test hub");
    assert!(
        stderr.contains(voc_id),
        "stderr lists the rejected id:\n{stderr}"
    );

    // What the hub opened: the faces were found and sealed with the photo.
    let opened: Vec<Received> = received.try_iter().collect();
    let hopper = opened
        .iter()
        .find(|r| r.photo_id.to_string() == hopper_id)
        .expect("the hub received hopper");
    assert_eq!(hopper.details.faces.len(), 1);
    assert_eq!(hopper.details.detector, "centerface");

    // A second run, configured through .env and the environment instead of
    // flags, finds nothing new: every file is remembered by content.
    std::fs::write(
        dir.path().join(".env"),
        format!(
            "GUARDIAN_PROVISION={provision_arg}\nGUARDIAN_DATA_DIR={}\n",
            data.display()
        ),
    )
    .unwrap();
    let again = Device::start(
        dir.path(),
        &["run", "--exit-when-synced", "--timeout", "60"],
        &[
            ("GUARDIAN_SOURCE", source.as_str()),
            ("GUARDIAN_BROKER", &format!("127.0.0.1:{port}")),
        ],
    );
    let (status, events, stderr) = again.finish(Duration::from_secs(90));
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(events.is_empty(), "nothing is captured twice: {events:?}");
}

#[test]
fn a_photo_captured_while_the_hub_is_away_is_delivered_when_it_returns() {
    let dir = TempDir::new();
    let port = free_port();
    let keys = provision(dir.path(), port);
    let photo = dir.path().join("photo.jpg");
    std::fs::copy(testdata("hopper_orientation_6.jpg"), &photo).unwrap();

    // No broker yet: capture must not wait for the network.
    let data = dir.path().join("data");
    let source = format!("file:{}", photo.display());
    let device = Device::start(
        dir.path(),
        &[
            "--provision",
            keys.provisioning_file.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
            "run",
            "--source",
            &source,
            "--exit-when-synced",
            "--timeout",
            "120",
        ],
        &[],
    );
    let captured = device.next_event(Duration::from_secs(60));
    assert_eq!(captured["event"], "captured");
    assert_eq!(captured["source"], photo.display().to_string());

    // The broker comes up, but the hub is still away: the device's first
    // publication reaches nobody.
    start_broker(port);
    wait_until(Duration::from_secs(60), "the first publication", || {
        device.stderr().contains("photo published")
    });

    // The hub returns; only a re-publication can reach it now.
    let received = start_hub(port, &keys, |_| Answer::Store);
    let delivered = device.next_event(Duration::from_secs(40));
    assert_eq!(
        delivered["event"],
        "delivered",
        "stderr:\n{}",
        device.stderr()
    );
    assert_eq!(delivered["photo_id"], captured["photo_id"]);

    let opened = received.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        opened.details.faces.len(),
        1,
        "found upright in a rotated file"
    );
    assert_eq!((opened.details.width, opened.details.height), (128, 128));

    let (status, _, stderr) = device.finish(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
}

#[test]
fn an_unreachable_broker_ends_in_a_timeout_with_the_photo_kept() {
    let dir = TempDir::new();
    let keys = provision(dir.path(), free_port());
    let photo = dir.path().join("photo.png");
    std::fs::copy(testdata("astronaut_collins.png"), &photo).unwrap();

    let data = dir.path().join("data");
    let source = format!("file:{}", photo.display());
    let device = Device::start(
        dir.path(),
        &[
            "--provision",
            keys.provisioning_file.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
            "run",
            "--source",
            &source,
            "--exit-when-synced",
            "--timeout",
            "5",
        ],
        &[],
    );
    let (status, events, stderr) = device.finish(Duration::from_secs(60));
    assert_eq!(status.code(), Some(4), "stderr:\n{stderr}");
    assert_eq!(of_kind(&events, "captured").len(), 1, "events: {events:?}");
    assert!(
        stderr.contains("1 photo(s) still wait"),
        "stderr:\n{stderr}"
    );
    assert!(
        !stderr.contains(DEVICE_PASSWORD),
        "the password is never logged"
    );
}

#[test]
fn detect_prints_raw_boxes_per_image_as_json() {
    let hopper = testdata("hopper.jpg");
    let rotated = testdata("hopper_orientation_6.jpg");
    let output = Command::new(env!("CARGO_BIN_EXE_guardian-device"))
        .args(["detect", "--json"])
        .arg(&hopper)
        .arg(&rotated)
        .env_remove("GUARDIAN_DETECTOR")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let boxes: Value = serde_json::from_slice(&output.stdout).unwrap();
    for image in [&hopper, &rotated] {
        let faces = boxes[image.to_str().unwrap()].as_array().unwrap();
        assert_eq!(faces.len(), 1, "{image:?}: {faces:?}");
        let face: Vec<u64> = faces[0]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert!(
            face[0] + face[2] <= 128 && face[1] + face[3] <= 128,
            "{face:?}"
        );
    }
}
