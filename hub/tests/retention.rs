//! The retention purge on real sealed photos: what it removes from the
//! database and the disk, what it keeps, and what the audit log says.

mod web_support;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use guardian_hub::audit::{Actor, Verdict};
use guardian_hub::clock::SystemClock;
use guardian_hub::retention;
use guardian_hub::Hub;
use uuid::Uuid;
use web_support::*;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

/// A photo from a device whose clock was right.
fn good_clock_photo(t: &TestHub, captured: &str) -> Uuid {
    let captured = at(captured);
    t.add_photo_at("Sunflowers", "hopper.jpg", captured, captured, captured)
}

fn sealed_file(dir: &Path, id: Uuid) -> std::path::PathBuf {
    dir.join("photos").join(format!("{id}.sealed"))
}

fn photo_ids(t: &TestHub) -> Vec<String> {
    let conn = t.hub.db.lock();
    let mut statement = conn.prepare("SELECT id FROM photos ORDER BY id").unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn count(t: &TestHub, sql: &str, id: Uuid) -> i64 {
    t.hub
        .db
        .lock()
        .query_row(sql, [id.to_string()], |row| row.get(0))
        .unwrap()
}

fn requests_of(t: &TestHub, photo: Uuid) -> i64 {
    count(
        t,
        "SELECT COUNT(*) FROM original_requests WHERE photo_id = ?1",
        photo,
    )
}

fn downloads_of(t: &TestHub, photo: Uuid) -> i64 {
    count(
        t,
        "SELECT COUNT(*) FROM downloads d JOIN original_requests r ON r.id = d.request_id
         WHERE r.photo_id = ?1",
        photo,
    )
}

fn audit_is_intact(hub: &Hub) {
    let verdict = hub.audit.verify(&hub.db.lock()).unwrap();
    assert!(
        matches!(verdict, Verdict::Intact { .. }),
        "audit log: {verdict:?}"
    );
}

/// Asks for an original and redeems the code, leaving a request and a
/// download row behind.
async fn request_and_download(t: &TestHub, cookie: &str, photo: Uuid) {
    let request = t.request_original(cookie, photo).await;
    let answer = t.verify(cookie, &request, &t.last_code()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
}

#[tokio::test]
async fn the_purge_removes_exactly_the_photos_of_school_years_over_for_30_days() {
    let t = TestHub::new();
    t.add_classroom("Sunflowers");
    let ana = t.add_parent("Ana Test", "+34600111222", "Sunflowers");

    // School year 2024-2025: kept through 30 September 2025.
    let june = good_clock_photo(&t, "2025-06-10T10:00:00Z");
    // 23:30 on 31 August in Madrid: still 2024-2025.
    let last_evening = good_clock_photo(&t, "2025-08-31T21:30:00Z");
    // 00:30 on 1 September in Madrid: already 2025-2026.
    let first_night = good_clock_photo(&t, "2025-08-31T22:30:00Z");
    let september = good_clock_photo(&t, "2025-09-15T10:00:00Z");
    // The device thought it was June 2024, an hour off the hub's clock when
    // it sent the photo: judged by receipt, in 2025-2026.
    let skewed = t.add_photo_at(
        "Sunflowers",
        "hopper.jpg",
        at("2024-06-10T10:00:00Z"),
        at("2025-09-20T10:00:00Z"),
        at("2025-09-20T09:00:00Z"),
    );

    let cookie = t.login(&ana.phone).await;
    request_and_download(&t, &cookie, june).await;
    request_and_download(&t, &cookie, september).await;
    assert_eq!((requests_of(&t, june), downloads_of(&t, june)), (1, 1));

    // The last day a photo of 2024-2025 is kept: nothing goes.
    let on_the_day = retention::purge(&t.hub, day("2025-09-30"), Actor::Operator).unwrap();
    assert!(on_the_day.photos.is_empty(), "{on_the_day:?}");
    assert_eq!(on_the_day.kept, 5);
    assert!(t.audit_of("photo_purged").is_empty());

    let purged = retention::purge(&t.hub, day("2025-10-01"), Actor::Operator).unwrap();
    let mut expected = vec![june, last_evening];
    expected.sort();
    let mut got = purged.photos.clone();
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(purged.kept, 3);

    // The database: rows, requests and downloads of the old photos are gone.
    let mut kept: Vec<String> = [first_night, september, skewed]
        .iter()
        .map(Uuid::to_string)
        .collect();
    kept.sort();
    assert_eq!(photo_ids(&t), kept);
    for gone in [june, last_evening] {
        assert_eq!(requests_of(&t, gone), 0);
        assert_eq!(downloads_of(&t, gone), 0);
        assert!(t.hub.store.get(gone).unwrap().is_none());
        // Its review and the names on its faces go with it.
        assert_eq!(
            count(
                &t,
                "SELECT COUNT(*) FROM photo_faces WHERE photo_id = ?1",
                gone
            ),
            0
        );
        assert_eq!(
            count(
                &t,
                "SELECT COUNT(*) FROM photo_reviews WHERE photo_id = ?1",
                gone
            ),
            0
        );
    }
    assert_eq!(
        count(
            &t,
            "SELECT COUNT(*) FROM photo_faces WHERE photo_id = ?1",
            september
        ),
        1
    );
    assert_eq!(
        (requests_of(&t, september), downloads_of(&t, september)),
        (1, 1)
    );

    // The disk: the sealed files of exactly those photos are gone.
    let dir = t.dir.path();
    for gone in [june, last_evening] {
        assert!(!sealed_file(dir, gone).exists(), "{gone} still on disk");
    }
    for stays in [first_night, september, skewed] {
        assert!(sealed_file(dir, stays).is_file(), "{stays} lost");
        assert!(t.hub.store.envelope(stays).is_ok());
    }
    let files = std::fs::read_dir(dir.join("photos")).unwrap().count();
    assert_eq!(files, 3);

    // One audit entry per purged photo, naming it and its school year.
    let entries = t.audit_of("photo_purged");
    assert_eq!(entries.len(), 2);
    for entry in &entries {
        assert_eq!(entry.actor, "operator");
        let subject = entry.subject.clone().unwrap();
        assert!(expected.iter().any(|id| id.to_string() == subject));
        let detail: serde_json::Value = serde_json::from_str(&entry.detail).unwrap();
        assert_eq!(detail["school_year"], "2024-2025");
        assert_eq!(detail["delete_after"], "2025-09-30");
    }
    audit_is_intact(&t.hub);

    // A second run finds nothing more to do.
    let again = retention::purge(&t.hub, day("2025-10-01"), Actor::Operator).unwrap();
    assert!(again.photos.is_empty());
    assert_eq!(t.audit_of("photo_purged").len(), 2);
}

#[tokio::test]
async fn parents_see_the_date_a_photo_will_be_deleted() {
    let t = TestHub::new();
    t.add_classroom("Sunflowers");
    let ana = t.add_parent("Ana Test", "+34600111222", "Sunflowers");
    let first_night = good_clock_photo(&t, "2025-08-31T22:30:00Z");
    let june = good_clock_photo(&t, "2025-06-10T10:00:00Z");

    let cookie = t.login(&ana.phone).await;
    let answer = t.send(get("/api/photos", Some(&cookie))).await;
    assert_eq!(answer.status, StatusCode::OK);
    let list = answer.json();
    let date_of = |id: Uuid| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|item| item["id"] == id.to_string())
            .map(|item| item["delete_after"].clone())
            .unwrap()
    };
    assert_eq!(date_of(june), "2025-09-30");
    assert_eq!(date_of(first_night), "2026-09-30");

    let page = t.send(get("/", Some(&cookie))).await.text();
    assert!(page.contains("kept until 2025-09-30"), "{page}");
}

#[test]
fn deleting_a_photo_whose_file_is_already_gone_still_removes_its_row() {
    let t = TestHub::new();
    t.add_classroom("Sunflowers");
    let photo = good_clock_photo(&t, "2025-06-10T10:00:00Z");
    std::fs::remove_file(sealed_file(t.dir.path(), photo)).unwrap();

    assert!(t.hub.store.delete(photo).unwrap());
    assert!(t.hub.store.get(photo).unwrap().is_none());
    assert!(
        !t.hub.store.delete(photo).unwrap(),
        "nothing left to delete"
    );
}

fn hub_cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(guardian_e2e::binary("guardian-hub"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("GUARDIAN_TIMEZONE")
        .output()
        .unwrap()
}

#[test]
fn retention_run_from_the_command_line_purges_old_photos_only() {
    let t = TestHub::new();
    t.add_classroom("Sunflowers");
    let june = good_clock_photo(&t, "2025-06-10T10:00:00Z");
    let september = good_clock_photo(&t, "2025-09-15T10:00:00Z");
    let dir = t.dir.path().to_path_buf();

    let output = hub_cli(&dir, &["retention", "run", "--today", "2025-10-01"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("1 photo purged, 1 kept"), "{stdout}");
    assert!(stdout.contains("Europe/Madrid"), "{stdout}");

    // Read back by another opening of the same directory, as an operator would.
    let hub = Hub::open(&dir, Arc::new(SystemClock)).unwrap();
    assert!(hub.store.get(june).unwrap().is_none());
    assert!(hub.store.get(september).unwrap().is_some());
    assert!(!sealed_file(&dir, june).exists());
    assert!(sealed_file(&dir, september).is_file());
    audit_is_intact(&hub);

    let verify = hub_cli(&dir, &["audit", "verify"]);
    assert!(verify.status.success(), "{verify:?}");
}

#[test]
fn an_unknown_time_zone_is_refused_before_anything_is_purged() {
    let t = TestHub::new();
    t.add_classroom("Sunflowers");
    let june = good_clock_photo(&t, "2025-06-10T10:00:00Z");

    let output = hub_cli(
        t.dir.path(),
        &[
            "retention",
            "run",
            "--today",
            "2025-10-01",
            "--timezone",
            "Europe/Atlantis",
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Europe/Atlantis"), "{stderr}");
    assert!(t.hub.store.get(june).unwrap().is_some());
    assert!(sealed_file(t.dir.path(), june).is_file());
}

#[tokio::test]
async fn serve_purges_due_photos_by_itself_at_start_and_every_hour() {
    let t = TestHub::new();
    t.add_classroom("Sunflowers");
    // The clock starts on 2025-03-01: a photo of June 2024 is long due, one of
    // this March is kept until 30 September 2025.
    let old = good_clock_photo(&t, "2024-06-10T10:00:00Z");
    let recent = good_clock_photo(&t, "2025-03-01T08:00:00Z");

    let task = tokio::spawn(guardian_hub::retention::purge_periodically(t.hub.clone()));
    let purged = async {
        while t.hub.store.get(old).unwrap().is_some() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), purged)
        .await
        .expect("the first run purges the due photo");
    assert!(
        t.hub.store.get(recent).unwrap().is_some(),
        "the recent photo stays"
    );
    assert!(!sealed_file(t.dir.path(), old).exists());

    // Seven months on, the next hourly run takes the March photo too.
    t.advance(chrono::Duration::days(214));
    tokio::time::pause();
    tokio::time::advance(guardian_hub::retention::PURGE_INTERVAL).await;
    tokio::time::resume();
    let purged = async {
        while t.hub.store.get(recent).unwrap().is_some() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), purged)
        .await
        .expect("a later run purges what became due");
    task.abort();
    audit_is_intact(&t.hub);
}

#[test]
fn sealed_files_that_no_photo_names_are_removed_once_they_are_a_day_old() {
    let t = TestHub::new();
    t.add_classroom("Sunflowers");
    let kept = good_clock_photo(&t, "2025-03-01T08:00:00Z");
    let dir = t.dir.path().join("photos");
    let day_old = std::time::SystemTime::now() - std::time::Duration::from_secs(25 * 60 * 60);

    // A purge interrupted before its file went, and a crash mid-write.
    let stray = sealed_file(t.dir.path(), Uuid::new_v4());
    let temporary = dir.join(format!("{}.sealed.tmp-4242", Uuid::new_v4()));
    // One being written right now, and a file that is not ours.
    let fresh = sealed_file(t.dir.path(), Uuid::new_v4());
    let foreign = dir.join("README.txt");
    for path in [&stray, &temporary, &fresh, &foreign] {
        std::fs::write(path, b"sealed bytes").unwrap();
    }
    for path in [
        &stray,
        &temporary,
        &foreign,
        &sealed_file(t.dir.path(), kept),
    ] {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(day_old).unwrap();
    }

    let removed = t
        .hub
        .store
        .remove_strays(guardian_hub::retention::STRAY_AGE)
        .unwrap();

    assert_eq!(removed, 2);
    assert!(!stray.exists() && !temporary.exists());
    assert!(
        fresh.exists(),
        "a file younger than a day may be a photo being stored"
    );
    assert!(foreign.exists(), "only sealed photo files are touched");
    assert!(
        sealed_file(t.dir.path(), kept).exists(),
        "a photo's own file stays"
    );
    assert!(t.hub.store.envelope(kept).is_ok());
}
