//! Field cases about getting photos from the classroom device to the hub, at
//! a size CI can run, with the real kiosk, hub and broker: captures while
//! another program holds the outbox open (C26), and a stream of captures
//! across an outage of the hub and its broker (C30). The long runs are
//! `scripts/case-c26-outbox-locking.sh` and `scripts/case-c30-delivery.sh`,
//! which print figures.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use guardian_e2e::hub::{photo_received_counts, sealed_files, stored_photo_ids, RunningHub};
use guardian_e2e::kiosk::{outbox_len, outbox_photo_ids, school_with_pin, Kiosk};

/// How long the device may take to empty its outbox once the hub is up.
const DRAIN_LIMIT: Duration = Duration::from_secs(90);

/// Issue C26: capture inserts every 200 ms and the sync worker deletes what
/// the hub stored while an idle `sqlite3` shell holds the outbox open. No
/// press is refused, no "database is locked" reaches the log, and every
/// announced photo reaches the hub exactly once.
#[test]
fn c26_an_idle_shell_holding_the_outbox_neither_refuses_nor_loses_a_capture() {
    const PRESSES: usize = 60;

    let (school, camera_dir) = school_with_pin();
    let _hub = school.start_hub();
    let device_dir = school.dir.path().join("device");
    let log = school.dir.path().join("device.log");
    let mut kiosk = Kiosk::start_logging_to(&school, &device_dir, &camera_dir, &log);
    assert!(
        kiosk
            .wait_for("pins_received", Duration::from_secs(30))
            .is_some(),
        "the hub never sent the teacher's PIN"
    );

    // What `sqlite3 outbox.sqlite` does after `BEGIN; SELECT count(*) FROM
    // outbox;` typed by someone who then walks away: a read transaction
    // left open for the whole run.
    let shell = rusqlite::Connection::open(device_dir.join("outbox.sqlite"))
        .expect("open the outbox like a sqlite3 shell");
    shell.execute_batch("BEGIN").expect("BEGIN");
    let _: i64 = shell
        .query_row("SELECT count(*) FROM outbox", [], |row| row.get(0))
        .expect("SELECT count(*) FROM outbox");

    kiosk.unlock();
    let mut answers = Answers::default();
    for _ in 0..PRESSES {
        kiosk.type_line("capture");
        std::thread::sleep(Duration::from_millis(200));
        while let Some(event) = kiosk.next_event(Duration::ZERO) {
            answers.note(&event);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while answers.count() < PRESSES {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(event) = kiosk.next_event(left) else {
            panic!("{} of {PRESSES} presses answered", answers.count());
        };
        answers.note(&event);
    }
    assert!(answers.refused.is_empty(), "refused: {:?}", answers.refused);
    assert!(answers.failed.is_empty(), "failed: {:?}", answers.failed);
    assert_eq!(answers.captured.len(), PRESSES);

    wait_until_outbox_empty(&device_dir, || {});
    // The shell held its transaction until every photo had left the outbox.
    shell
        .execute_batch("ROLLBACK")
        .expect("end the shell's transaction");
    kiosk.kill();

    let device_log = std::fs::read_to_string(&log).expect("the kiosk's log");
    let lowercase = device_log.to_lowercase();
    assert!(
        !lowercase.contains("database is locked") && !lowercase.contains("busy"),
        "the kiosk's log reports a locked database:\n{device_log}"
    );

    let stored = stored_photo_ids(&school.hub_dir);
    let missing: Vec<&String> = answers.captured.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "announced but never stored: {missing:?}"
    );
    assert_received_once(&school.hub_dir, &answers.captured);
}

/// Issue C26, the shell's last act: `sqlite3 outbox.sqlite 'SELECT …'` (or
/// an idle shell that finally quits) closes the file while the kiosk runs.
/// Captures announced after that are in the outbox file, and still there
/// after `kill -9`.
#[test]
fn c26_captures_after_a_shell_quits_the_outbox_survive_a_kill() {
    let (school, camera_dir) = school_with_pin();
    let hub = school.start_hub();
    let device_dir = school.dir.path().join("device");
    let mut kiosk = Kiosk::start(&school, &device_dir, &camera_dir);
    assert!(
        kiosk
            .wait_for("pins_received", Duration::from_secs(30))
            .is_some(),
        "the hub never sent the teacher's PIN"
    );
    kiosk.unlock();
    // Without a hub every capture stays in the outbox.
    hub.stop();

    let shell = rusqlite::Connection::open(device_dir.join("outbox.sqlite"))
        .expect("open the outbox like a sqlite3 shell");
    let _: i64 = shell
        .query_row("SELECT count(*) FROM outbox", [], |row| row.get(0))
        .expect("SELECT count(*) FROM outbox");
    drop(shell);

    let announced: BTreeSet<String> = (0..3).map(|_| capture(&mut kiosk)).collect();
    assert!(
        announced.is_subset(&outbox_photo_ids(&device_dir)),
        "captures announced after the shell quit are missing from the outbox file"
    );
    kiosk.kill();
    let waiting = outbox_photo_ids(&device_dir);
    let lost: Vec<&String> = announced.difference(&waiting).collect();
    assert!(lost.is_empty(), "lost after kill -9: {lost:?}");
}

/// Issue C30: 200 captures streamed while the hub, with its embedded
/// broker, goes away for 5 s mid-stream and comes back on the same ports.
/// The hub ends with exactly the announced photos, one sealed file and one
/// `photo_received` entry each; at every sample, a photo gone from the
/// outbox is already stored at the hub.
#[test]
fn c30_every_capture_is_stored_once_across_a_hub_and_broker_outage() {
    const CAPTURES: usize = 200;
    const OUTAGE: Duration = Duration::from_secs(5);

    let (school, camera_dir) = school_with_pin();
    let mut hub = Some(school.start_hub());
    let device_dir = school.dir.path().join("device");
    let log = school.dir.path().join("device.log");
    let mut kiosk = Kiosk::start_logging_to(&school, &device_dir, &camera_dir, &log);
    assert!(
        kiosk
            .wait_for("pins_received", Duration::from_secs(30))
            .is_some(),
        "the hub never sent the teacher's PIN"
    );
    kiosk.unlock();

    let mut announced = BTreeSet::new();
    let mut samples = Samples::default();
    while announced.len() < CAPTURES {
        announced.insert(capture(&mut kiosk));
        if announced.len() % 10 == 0 {
            samples.check(&announced, &device_dir, &school.hub_dir);
        }

        if announced.len() == CAPTURES / 2 {
            // The network and the broker go away with the hub; capture goes on.
            if let Some(running) = hub.take() {
                running.stop();
            }
            let down = Instant::now();
            while down.elapsed() < OUTAGE {
                announced.insert(capture(&mut kiosk));
                samples.check(&announced, &device_dir, &school.hub_dir);
            }
            hub = Some(RunningHub::start(&school.hub_dir, school.mqtt_port));
        }
    }

    wait_until_outbox_empty(&device_dir, || {
        samples.check(&announced, &device_dir, &school.hub_dir);
    });
    samples.check(&announced, &device_dir, &school.hub_dir);
    kiosk.kill();
    drop(hub);

    assert_eq!(stored_photo_ids(&school.hub_dir), announced);
    assert_eq!(sealed_files(&school.hub_dir), announced);
    assert_received_once(&school.hub_dir, &announced);
    assert!(
        samples.delivered_seen > 0,
        "no sample caught a delivered photo; the outbox check proved nothing"
    );
}

/// What the kiosk answered to capture presses.
#[derive(Default)]
struct Answers {
    captured: BTreeSet<String>,
    refused: Vec<String>,
    failed: Vec<String>,
}

impl Answers {
    fn note(&mut self, event: &serde_json::Value) {
        let text = |key: &str| event[key].as_str().unwrap_or_default().to_owned();
        match event["event"].as_str() {
            Some("captured") => {
                self.captured.insert(text("photo_id"));
            }
            Some("capture_refused") => self.refused.push(text("reason")),
            Some("capture_failed") => self.failed.push(text("error")),
            _ => {}
        }
    }

    fn count(&self) -> usize {
        self.captured.len() + self.refused.len() + self.failed.len()
    }
}

/// Presses capture once and returns the announced photo id; a refusal or a
/// failure fails the test.
fn capture(kiosk: &mut Kiosk) -> String {
    kiosk.type_line("capture");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(event) = kiosk.next_event(left) else {
            panic!("a press got no capture within a minute");
        };
        match event["event"].as_str() {
            Some("captured") => {
                return event["photo_id"]
                    .as_str()
                    .expect("a captured event names its photo")
                    .to_owned();
            }
            Some("capture_refused" | "capture_failed") => panic!("capture press answered {event}"),
            _ => {}
        }
    }
}

/// Samples of the rule that a row leaves the outbox only after the hub
/// stored its photo.
#[derive(Default)]
struct Samples {
    /// Photos seen gone from the outbox (and so checked at the hub).
    delivered_seen: usize,
}

impl Samples {
    /// The outbox is read before the hub: a photo the hub stores in between
    /// is still waiting in the outbox read, so it cannot fail the check, and
    /// the hub never forgets a photo it stored.
    fn check(&mut self, announced: &BTreeSet<String>, device_dir: &Path, hub_dir: &Path) {
        let waiting = outbox_photo_ids(device_dir);
        let stored = stored_photo_ids(hub_dir);
        for photo_id in announced.difference(&waiting) {
            assert!(
                stored.contains(photo_id),
                "photo {photo_id} left the outbox but the hub has not stored it"
            );
            self.delivered_seen += 1;
        }
    }
}

/// Waits for the device to deliver everything, calling `meanwhile` between
/// looks.
fn wait_until_outbox_empty(device_dir: &Path, mut meanwhile: impl FnMut()) {
    let deadline = Instant::now() + DRAIN_LIMIT;
    while outbox_len(device_dir) != 0 {
        assert!(
            Instant::now() < deadline,
            "{} photos still wait in the outbox after {DRAIN_LIMIT:?}",
            outbox_len(device_dir)
        );
        meanwhile();
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Every photo in `photo_ids` has exactly one `photo_received` audit entry.
fn assert_received_once(hub_dir: &Path, photo_ids: &BTreeSet<String>) {
    let received = photo_received_counts(hub_dir);
    for photo_id in photo_ids {
        assert_eq!(
            received.get(photo_id),
            Some(&1),
            "photo {photo_id} has {:?} photo_received entries",
            received.get(photo_id)
        );
    }
}
