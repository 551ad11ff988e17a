//! Driving the real `guardian-device kiosk` as a teacher would: keys on its
//! stdin, a camera replaying shared photos, and its stdout events read as
//! they come.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::hub::{hub_ok, School, TEACHER_PHONE};
use crate::{binary, testdata};

/// The PIN [`school_with_pin`] gives the classroom's teacher.
pub const PIN: &str = "2580";

/// A running kiosk: its stdin for keys and its stdout events as they come.
/// Killed when dropped, so a failing test leaves no device behind.
pub struct Kiosk {
    child: Child,
    keys: ChildStdin,
    events: Receiver<Value>,
}

impl Kiosk {
    /// Starts the kiosk with its log thrown away.
    pub fn start(school: &School, device_dir: &Path, camera_dir: &Path) -> Kiosk {
        Kiosk::spawn(school, device_dir, camera_dir, Stdio::null())
    }

    /// Starts the kiosk with its log (warnings and errors) appended to `log`.
    pub fn start_logging_to(
        school: &School,
        device_dir: &Path,
        camera_dir: &Path,
        log: &Path,
    ) -> Kiosk {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the kiosk's log file");
        Kiosk::spawn(school, device_dir, camera_dir, Stdio::from(file))
    }

    fn spawn(school: &School, device_dir: &Path, camera_dir: &Path, stderr: Stdio) -> Kiosk {
        let mut child = Command::new(binary("guardian-device"))
            .arg("--provision")
            .arg(&school.provision)
            .arg("--data-dir")
            .arg(device_dir)
            .args([
                "kiosk",
                "--stdin-keys",
                "--screen",
                "none",
                "--heartbeat-secs",
                "1",
            ])
            .arg("--camera")
            .arg(format!("replay:{}", camera_dir.display()))
            .args(["--min-free-mb", "0", "--language", "en"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start guardian-device kiosk");

        let keys = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Ok(event) = serde_json::from_str::<Value>(&line) {
                    if tx.send(event).is_err() {
                        return;
                    }
                }
            }
        });
        Kiosk {
            child,
            keys,
            events,
        }
    }

    /// Types one line on the kiosk's keypad: a PIN, `capture` or `lock`.
    pub fn type_line(&mut self, line: &str) {
        writeln!(self.keys, "{line}").expect("write to the kiosk's stdin");
    }

    /// The next event of any kind; `None` after `limit`.
    pub fn next_event(&self, limit: Duration) -> Option<Value> {
        self.events.recv_timeout(limit).ok()
    }

    /// The next event of this kind, skipping others; `None` after `limit`.
    pub fn wait_for(&self, kind: &str, limit: Duration) -> Option<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self.events.recv_timeout(left).ok()?;
            if event["event"] == kind {
                return Some(event);
            }
        }
    }

    /// Types the teacher's PIN and waits until the kiosk says it unlocked.
    pub fn unlock(&mut self) {
        self.type_line(PIN);
        assert!(
            self.wait_for("unlocked", Duration::from_secs(30)).is_some(),
            "the teacher's PIN did not unlock the kiosk"
        );
    }

    /// `kill -9`, and waits for the process to end. The events it printed
    /// before dying can still be read.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the kiosk for good.
    pub fn kill(mut self) {
        self.kill_9();
    }
}

impl Drop for Kiosk {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// A school whose teacher has the PIN [`PIN`], and a folder of photos for the
/// camera to replay.
pub fn school_with_pin() -> (School, PathBuf) {
    let school = School::new("Aula 3B", "+34600111222");
    hub_ok(
        &school.hub_dir,
        &["teacher", "pin", "--phone", TEACHER_PHONE],
        Some(&format!("{PIN}\n")),
    );

    let camera_dir = school.dir.path().join("camera");
    std::fs::create_dir_all(&camera_dir).expect("camera folder");
    for file in ["hopper.jpg", "voc_2008_001322.jpg"] {
        std::fs::copy(testdata(file), camera_dir.join(file)).expect("copy a camera photo");
    }
    (school, camera_dir)
}

/// How many photos wait in the device's outbox; -1 while it cannot be read.
pub fn outbox_len(device_dir: &Path) -> i64 {
    rusqlite::Connection::open(device_dir.join("outbox.sqlite"))
        .and_then(|db| db.query_row("SELECT COUNT(*) FROM outbox", [], |row| row.get(0)))
        .unwrap_or(-1)
}

/// The ids of the photos waiting in the device's outbox.
pub fn outbox_photo_ids(device_dir: &Path) -> BTreeSet<String> {
    let db = rusqlite::Connection::open(device_dir.join("outbox.sqlite"))
        .expect("open the device's outbox");
    crate::hub::strings(&db, "SELECT photo_id FROM outbox")
}
