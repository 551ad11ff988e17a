//! `guardian-hub device add`: what it checks before it registers a device, so
//! that a mistyped flag leaves no device registered without its file.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use guardian_hub::clock::SystemClock;
use guardian_hub::Hub;
use guardian_protocol::Provisioning;

fn hub(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_guardian-hub"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn devices(dir: &Path) -> i64 {
    let hub = Hub::open(dir, Arc::new(SystemClock)).unwrap();
    let conn = hub.db.lock();
    conn.query_row("SELECT COUNT(*) FROM devices", [], |row| row.get(0))
        .unwrap()
}

fn add_device(dir: &Path, broker: &str, out: &Path) -> Output {
    let out = out.to_str().unwrap();
    hub(
        dir,
        &[
            "device",
            "add",
            "--classroom",
            "Sunflowers",
            "--broker",
            broker,
            "--out",
            out,
        ],
    )
}

#[test]
fn a_bad_out_path_or_broker_registers_no_device_and_says_which() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    assert!(hub(d, &["classroom", "add", "Sunflowers"]).status.success());

    // A folder that does not exist.
    let missing = d.join("no-such-folder").join("pi.json");
    let output = add_device(d, "127.0.0.1:1883", &missing);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("cannot write the provisioning file"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches(missing.to_str().unwrap()).count(),
        1,
        "{stderr}"
    );
    assert!(
        !stderr.contains(".tmp-"),
        "the temporary name shows: {stderr}"
    );
    assert!(!stderr.contains("key file"), "{stderr}");
    assert_eq!(stderr.matches("os error").count(), 1, "{stderr}");
    assert_eq!(devices(d), 0, "a device was registered without its file");
    assert!(!d.join("no-such-folder").exists());

    // Brokers that are not HOST:PORT with a port from 1 to 65535.
    let out = d.join("pi.json");
    for broker in [
        "hub.school",
        "hub.school:0",
        "hub.school:65536",
        ":1883",
        "mqtt://hub:1883",
    ] {
        let output = add_device(d, broker, &out);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{broker} accepted");
        assert!(stderr.contains("HOST:PORT"), "{broker}: {stderr}");
        assert!(!out.exists(), "{broker}: a file was written");
    }
    assert_eq!(devices(d), 0);

    // A broker on the network without a CA to pin: plain MQTT is refused.
    let output = add_device(d, "hub.school:1883", &out);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("must not speak plain MQTT"), "{stderr}");
    assert!(!out.exists());
    assert_eq!(devices(d), 0);

    // Good flags once the hub has its CA, with a bare file name relative to
    // the working folder as in the README's example.
    let made = Command::new(env!("CARGO_BIN_EXE_guardian-hub"))
        .arg("--data-dir")
        .arg(d)
        .args(["tls", "init-ca", "--school", "CEIP Test"])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let work = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_guardian-hub"))
        .arg("--data-dir")
        .arg(d)
        .args(["device", "add", "--classroom", "Sunflowers"])
        .args(["--broker", "hub.school:8883", "--out", "pi.json"])
        .env("RUST_LOG", "warn")
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("MQTT over TLS"));
    assert_eq!(devices(d), 1);
    let written = std::fs::read_to_string(work.path().join("pi.json")).unwrap();
    assert!(written.contains("hub.school:8883"), "{written}");
    let pinned = Provisioning::from_json(&written)
        .unwrap()
        .broker_ca
        .unwrap();
    assert_eq!(
        pinned,
        std::fs::read_to_string(d.join("tls/ca.pem")).unwrap()
    );
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["pi.json"]);
}
