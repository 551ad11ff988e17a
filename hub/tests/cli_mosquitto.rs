//! `guardian-hub mosquitto setup`: the configuration it writes stands on its
//! own when Mosquitto reads it from another folder, and a refused setup leaves
//! the files Mosquitto already uses untouched.

use std::path::Path;
use std::process::{Command, Output};

fn hub_in(work: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_guardian-hub"))
        .args(["--data-dir", "data", "--mosquitto-dir", "mosquitto"])
        .args(args)
        .env("RUST_LOG", "warn")
        .current_dir(work)
        .output()
        .unwrap()
}

fn succeeded(output: &Output) -> bool {
    if !output.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    }
    output.status.success()
}

#[test]
fn setup_writes_absolute_paths_and_a_refused_setup_changes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    std::fs::create_dir(w.join("mosquitto")).unwrap();
    assert!(succeeded(&hub_in(
        w,
        &["tls", "init-ca", "--school", "CEIP Test"]
    )));
    let issue = ["tls", "issue", "--name", "hub.local"];
    let out = ["--cert", "mqtt.pem", "--key", "mqtt-key.pem"];
    assert!(succeeded(&hub_in(w, &[&issue[..], &out[..]].concat())));

    let setup = [
        "mosquitto",
        "setup",
        "--tls-listen",
        "127.0.0.1:8883",
        "--cert",
        "mqtt.pem",
        "--key",
        "mqtt-key.pem",
    ];
    assert!(succeeded(&hub_in(w, &setup)));
    let conf = std::fs::read_to_string(w.join("mosquitto/guardian.conf")).unwrap();
    let root = w.canonicalize().unwrap();
    for (setting, file) in [
        ("password_file", "mosquitto/passwd"),
        ("acl_file", "mosquitto/acl"),
        ("certfile", "mqtt.pem"),
        ("keyfile", "mqtt-key.pem"),
    ] {
        let line = format!("{setting} {}", root.join(file).display());
        assert!(conf.contains(&line), "no {line:?} in\n{conf}");
    }

    // A certificate that does not parse, a key of another certificate, a
    // missing key: each setup is refused before any of Mosquitto's files is
    // replaced, naming the file at fault.
    let passwd_before = std::fs::read(w.join("mosquitto/passwd")).unwrap();
    std::fs::write(w.join("broken.pem"), "not a certificate").unwrap();
    let other = ["--cert", "other.pem", "--key", "other-key.pem"];
    assert!(succeeded(&hub_in(w, &[&issue[..], &other[..]].concat())));
    for (cert, key, named) in [
        ("broken.pem", "mqtt-key.pem", "broken.pem"),
        ("mqtt.pem", "other-key.pem", "does not belong"),
        ("mqtt.pem", "no-such-key.pem", "no-such-key.pem"),
    ] {
        let wrong = [&setup[..5], &[cert, "--key", key]].concat();
        let refused = hub_in(w, &wrong);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{cert} {key}");
        assert!(stderr.contains(named), "{cert} {key}: {stderr}");
        assert_eq!(
            std::fs::read_to_string(w.join("mosquitto/guardian.conf")).unwrap(),
            conf
        );
        assert_eq!(
            std::fs::read(w.join("mosquitto/passwd")).unwrap(),
            passwd_before
        );
    }
}
