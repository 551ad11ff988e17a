//! Starting a real hub and running real devices against it.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::binary;
use crate::web::Browser;

/// A `guardian-hub serve` process on loopback, stopped when dropped.
pub struct RunningHub {
    pub data_dir: PathBuf,
    pub http: SocketAddr,
    pub mqtt: SocketAddr,
    child: Child,
    log: PathBuf,
}

/// Runs a hub CLI command and returns its output, panicking on failure.
pub fn hub_cli(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(binary("guardian-hub"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start guardian-hub");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().expect("guardian-hub output")
}

/// Like [`hub_cli`], asserting success.
pub fn hub_ok(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let output = hub_cli(data_dir, args, stdin);
    assert!(
        output.status.success(),
        "guardian-hub {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A free loopback port (bound and released; fine for tests on one machine).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("free port")
}

impl RunningHub {
    /// Starts `serve` on loopback; `mqtt_port` lets a restarted hub come back
    /// on the port its devices know.
    pub fn start(data_dir: &Path, mqtt_port: u16) -> RunningHub {
        let mqtt = format!("127.0.0.1:{mqtt_port}");
        Self::start_with(data_dir, &[], &["--mqtt", &mqtt])
    }

    /// Starts `serve` on loopback with these global and `serve` options.
    pub fn start_with(data_dir: &Path, global: &[&str], serve: &[&str]) -> RunningHub {
        let log = data_dir.with_extension("serve.log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("hub log");
        let mut child = Command::new(binary("guardian-hub"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(global)
            .args(["serve", "--http", "127.0.0.1:0"])
            .args(serve)
            .env("RUST_LOG", "info,rumqttd=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("start guardian-hub serve");

        let stdout = child.stdout.take().expect("stdout");
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .expect("read the hub's first line");
        let (http, mqtt) = parse_listening_line(&first).unwrap_or_else(|| {
            let _ = child.kill();
            panic!(
                "the hub did not announce its addresses (got {first:?}); log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });

        RunningHub {
            data_dir: data_dir.to_path_buf(),
            http,
            mqtt,
            child,
            log,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.http)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RunningHub {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Parses `http=IP:PORT mqtt=IP:PORT` (or `https=…`).
pub fn parse_listening_line(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let mut http = None;
    let mut mqtt = None;
    for part in line.split_whitespace() {
        if let Some(value) = part
            .strip_prefix("http=")
            .or_else(|| part.strip_prefix("https="))
        {
            http = value.parse().ok();
        } else if let Some(value) = part.strip_prefix("mqtt=") {
            mqtt = value.parse().ok();
        }
    }
    Some((http?, mqtt?))
}

/// A school set up on a fresh data directory: one classroom with its
/// teacher, one device, one parent in the classroom and their child, all
/// with known passwords.
pub struct School {
    pub dir: tempfile::TempDir,
    pub hub_dir: PathBuf,
    pub provision: PathBuf,
    pub mqtt_port: u16,
    pub parent_phone: String,
    /// The parent's child, [`CHILD_NAME`], as `child add` printed the id.
    pub child_id: String,
}

pub const PASSWORD: &str = "correct horse battery";

/// The teacher of every test school's classroom; the password is [`PASSWORD`].
pub const TEACHER_PHONE: &str = "+34600999000";

/// The one child of every test school, linked to its parent.
pub const CHILD_NAME: &str = "Leo";

impl School {
    pub fn new(classroom: &str, parent_phone: &str) -> School {
        let dir = tempfile::tempdir().expect("tempdir");
        let hub_dir = dir.path().join("hub");
        let mqtt_port = free_port();
        let password = format!("{PASSWORD}\n");
        hub_ok(&hub_dir, &["classroom", "add", classroom], None);
        hub_ok(
            &hub_dir,
            &[
                "teacher",
                "add",
                "--name",
                "Teo Teacher",
                "--phone",
                TEACHER_PHONE,
                "--classroom",
                classroom,
            ],
            Some(&password),
        );
        // In the classroom, as parents of the first version were: that alone
        // shows them nothing now; their child has to be named in a photo.
        hub_ok(
            &hub_dir,
            &[
                "parent",
                "add",
                "--name",
                "Ana Parent",
                "--phone",
                parent_phone,
                "--classroom",
                classroom,
            ],
            Some(&password),
        );
        let child_id = hub_ok(
            &hub_dir,
            &[
                "child",
                "add",
                "--classroom",
                classroom,
                "--name",
                CHILD_NAME,
            ],
            None,
        )
        .trim()
        .to_owned();
        hub_ok(
            &hub_dir,
            &[
                "guardian",
                "link",
                "--phone",
                parent_phone,
                "--child",
                &child_id,
            ],
            None,
        );
        let provision = dir.path().join("device.json");
        hub_ok(
            &hub_dir,
            &[
                "device",
                "add",
                "--classroom",
                classroom,
                "--broker",
                &format!("127.0.0.1:{mqtt_port}"),
                "--out",
                provision.to_str().expect("utf-8 path"),
            ],
            None,
        );
        School {
            dir,
            hub_dir,
            provision,
            mqtt_port,
            parent_phone: parent_phone.to_owned(),
            child_id,
        }
    }

    /// A browser signed in as the classroom's teacher.
    pub fn teacher(&self, hub: &RunningHub) -> Browser {
        signed_in(hub, TEACHER_PHONE)
    }

    /// A browser signed in as the parent.
    pub fn parent(&self, hub: &RunningHub) -> Browser {
        signed_in(hub, &self.parent_phone)
    }

    pub fn start_hub(&self) -> RunningHub {
        RunningHub::start(&self.hub_dir, self.mqtt_port)
    }

    /// Runs the device once over `source` until every capture is answered.
    pub fn run_device(&self, device_dir: &Path, source: &str, timeout_secs: u64) -> DeviceRun {
        run_device(&self.provision, device_dir, source, timeout_secs)
    }
}

/// Runs a device with this provisioning file once over `source`, until every
/// capture is answered or `timeout_secs` pass.
pub fn run_device(
    provision: &Path,
    device_dir: &Path,
    source: &str,
    timeout_secs: u64,
) -> DeviceRun {
    let output = Command::new(binary("guardian-device"))
        .arg("--provision")
        .arg(provision)
        .arg("--data-dir")
        .arg(device_dir)
        .args(["run", "--source", source, "--exit-when-synced", "--timeout"])
        .arg(timeout_secs.to_string())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .expect("run guardian-device");
    DeviceRun::from_output(output)
}

fn signed_in(hub: &RunningHub, phone: &str) -> Browser {
    let mut browser = Browser::new(&hub.base_url());
    let reply = browser.login(phone, PASSWORD);
    assert_eq!(reply.status, 200, "login as {phone}: {reply:?}");
    browser
}

/// What one device run printed.
#[derive(Debug)]
pub struct DeviceRun {
    pub code: Option<i32>,
    pub events: Vec<serde_json::Value>,
    pub stderr: String,
}

impl DeviceRun {
    pub fn from_output(output: Output) -> DeviceRun {
        let events = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        DeviceRun {
            code: output.status.code(),
            events,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `(photo_id, source)` of every `captured` event.
    pub fn captured(&self) -> Vec<(String, String)> {
        self.events
            .iter()
            .filter(|event| event["event"] == "captured")
            .map(|event| {
                (
                    event["photo_id"].as_str().unwrap_or_default().to_owned(),
                    event["source"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

/// Waits for a condition, polling, up to `limit`.
pub fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    condition()
}

/// The hub's database, opened beside the running (or stopped) hub.
pub fn hub_db(hub_dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(hub_dir.join("hub.sqlite")).expect("open the hub database")
}

/// The ids of every photo the hub stored.
pub fn stored_photo_ids(hub_dir: &Path) -> BTreeSet<String> {
    strings(&hub_db(hub_dir), "SELECT id FROM photos")
}

/// How many `photo_received` audit entries name each photo.
pub fn photo_received_counts(hub_dir: &Path) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    let subjects = strings_in_order(
        &hub_db(hub_dir),
        "SELECT subject FROM audit_log WHERE kind = 'photo_received'",
    );
    for subject in subjects {
        *counts.entry(subject).or_default() += 1;
    }
    counts
}

/// The sealed files in the hub's photo store (`photos/<id>.sealed`), by id;
/// temporary files of an interrupted write are not counted.
pub fn sealed_files(hub_dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(hub_dir.join("photos"))
        .expect("read the hub's photo store")
        .map(|entry| entry.expect("a photo store entry").file_name())
        .filter_map(|name| {
            name.to_str()
                .and_then(|name| name.strip_suffix(".sealed"))
                .map(str::to_owned)
        })
        .collect()
}

/// The first column of every row of `sql`, as a set.
pub fn strings(db: &rusqlite::Connection, sql: &str) -> BTreeSet<String> {
    strings_in_order(db, sql).into_iter().collect()
}

fn strings_in_order(db: &rusqlite::Connection, sql: &str) -> Vec<String> {
    db.prepare(sql)
        .and_then(|mut statement| {
            statement
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()
        })
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}
