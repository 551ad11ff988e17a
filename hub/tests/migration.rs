//! Opening a data directory written by the first version (schema version 1):
//! its parents become guardian accounts with the same ids, passwords,
//! classrooms, locks and pending original requests.

use std::path::Path;
use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use guardian_hub::accounts::Role;
use guardian_hub::clock::ManualClock;
use guardian_hub::db::{DbError, SCHEMA_VERSION};
use guardian_hub::Hub;
use guardian_hub::{children, OpenError};
use rusqlite::{params, Connection};
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery";

/// The schema of the first version, exactly as `hub/src/db.rs` had it at
/// version 1 (commit 6f4ecac).
const V1_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS classrooms (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS parents (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    phone          TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    classroom_id   TEXT NOT NULL REFERENCES classrooms(id),
    failed_codes   INTEGER NOT NULL DEFAULT 0,
    locked         INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS devices (
    id                  TEXT PRIMARY KEY,
    classroom_id        TEXT NOT NULL REFERENCES classrooms(id),
    mqtt_username       TEXT NOT NULL UNIQUE,
    mqtt_password_hash  TEXT NOT NULL,
    verifying_key       BLOB NOT NULL,
    created_at          INTEGER NOT NULL,
    revoked_at          INTEGER,
    last_seen_at        INTEGER,
    last_skew_ms        INTEGER
);

CREATE TABLE IF NOT EXISTS photos (
    id               TEXT PRIMARY KEY,
    device_id        TEXT NOT NULL REFERENCES devices(id),
    classroom_id     TEXT NOT NULL REFERENCES classrooms(id),
    captured_at      INTEGER NOT NULL,
    received_at      INTEGER NOT NULL,
    device_sent_at   INTEGER NOT NULL,
    clock_skew_ms    INTEGER NOT NULL,
    faces            INTEGER NOT NULL,
    width            INTEGER NOT NULL,
    height           INTEGER NOT NULL,
    damaged          INTEGER NOT NULL,
    envelope_sha256  BLOB NOT NULL,
    envelope_len     INTEGER NOT NULL,
    blob             TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS photos_by_classroom ON photos (classroom_id, received_at);

CREATE TABLE IF NOT EXISTS sessions (
    id_hash     BLOB PRIMARY KEY,
    parent_id   TEXT NOT NULL REFERENCES parents(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS original_requests (
    id               TEXT PRIMARY KEY,
    parent_id        TEXT NOT NULL REFERENCES parents(id),
    photo_id         TEXT NOT NULL REFERENCES photos(id),
    session_id_hash  BLOB NOT NULL,
    code_hash        BLOB NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    wrong_tries      INTEGER NOT NULL DEFAULT 0,
    state            TEXT NOT NULL DEFAULT 'pending'
);
CREATE INDEX IF NOT EXISTS requests_by_parent ON original_requests (parent_id, created_at);

CREATE TABLE IF NOT EXISTS downloads (
    token_hash       BLOB PRIMARY KEY,
    request_id       TEXT NOT NULL REFERENCES original_requests(id),
    session_id_hash  BLOB NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    used_at          INTEGER
);

CREATE TABLE IF NOT EXISTS audit_log (
    seq      INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    actor    TEXT NOT NULL,
    subject  TEXT,
    ip       TEXT,
    detail   TEXT NOT NULL,
    mac      BLOB NOT NULL
);
";

/// What a version-1 hub held: one classroom, one parent with three wrong
/// codes behind them, a device, a photo, a pending original request, a
/// verified one with its download, and a live session.
struct V1 {
    classroom: Uuid,
    parent: Uuid,
    device: Uuid,
    photo: Uuid,
    pending_request: Uuid,
    verified_request: Uuid,
}

fn write_v1(dir: &Path) -> V1 {
    let v1 = V1 {
        classroom: Uuid::new_v4(),
        parent: Uuid::new_v4(),
        device: Uuid::new_v4(),
        photo: Uuid::new_v4(),
        pending_request: Uuid::new_v4(),
        verified_request: Uuid::new_v4(),
    };
    let hash = Argon2::default()
        .hash_password(PASSWORD.as_bytes(), &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
    let at = 1_740_819_600_000_i64;

    let conn = Connection::open(dir.join("hub.sqlite")).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;")
        .unwrap();
    conn.execute_batch(V1_SCHEMA).unwrap();
    conn.execute(
        "INSERT INTO classrooms (id, name, created_at) VALUES (?1, 'Sunflowers', ?2)",
        params![v1.classroom.to_string(), at],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO parents (id, name, phone, password_hash, classroom_id, failed_codes,
            locked, created_at) VALUES (?1, 'Ana García', '+34600111222', ?2, ?3, 3, 0, ?4)",
        params![v1.parent.to_string(), hash, v1.classroom.to_string(), at],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO devices (id, classroom_id, mqtt_username, mqtt_password_hash,
            verifying_key, created_at) VALUES (?1, ?2, 'device-x', 'digest', ?3, ?4)",
        params![
            v1.device.to_string(),
            v1.classroom.to_string(),
            vec![7u8; 32],
            at
        ],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO photos (id, device_id, classroom_id, captured_at, received_at,
            device_sent_at, clock_skew_ms, faces, width, height, damaged, envelope_sha256,
            envelope_len, blob)
         VALUES (?1, ?2, ?3, ?4, ?4, ?4, 0, 2, 640, 480, 0, ?5, 100, 'x.sealed')",
        params![
            v1.photo.to_string(),
            v1.device.to_string(),
            v1.classroom.to_string(),
            at,
            vec![1u8; 32]
        ],
    )
    .unwrap();
    for (request, state) in [
        (v1.pending_request, "pending"),
        (v1.verified_request, "verified"),
    ] {
        conn.execute(
            "INSERT INTO original_requests (id, parent_id, photo_id, session_id_hash, code_hash,
                created_at, expires_at, wrong_tries, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8)",
            params![
                request.to_string(),
                v1.parent.to_string(),
                v1.photo.to_string(),
                vec![2u8; 32],
                vec![3u8; 32],
                at,
                at + 300_000,
                state
            ],
        )
        .unwrap();
    }
    conn.execute(
        "INSERT INTO downloads (token_hash, request_id, session_id_hash, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            vec![4u8; 32],
            v1.verified_request.to_string(),
            vec![2u8; 32],
            at,
            at + 600_000
        ],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO sessions (id_hash, parent_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![vec![2u8; 32], v1.parent.to_string(), at, at + 3_600_000],
    )
    .unwrap();
    conn.execute_batch("PRAGMA user_version = 1;").unwrap();
    v1
}

fn open(dir: &Path) -> Result<Hub, OpenError> {
    let start: DateTime<Utc> = "2025-03-01T09:30:00Z".parse().unwrap();
    Hub::open(dir, Arc::new(ManualClock::starting_at(start)))
}

fn count(hub: &Hub, sql: &str) -> i64 {
    hub.db.lock().query_row(sql, [], |row| row.get(0)).unwrap()
}

#[test]
fn a_version_1_data_dir_opens_and_its_parents_become_guardians() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = write_v1(dir.path());

    let hub = open(dir.path()).unwrap();

    let version: i64 = count(&hub, "PRAGMA user_version");
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 5);
    // Version 5's table exists, empty: old devices have no Mosquitto login.
    assert_eq!(count(&hub, "SELECT COUNT(*) FROM mosquitto_logins"), 0);

    // The parent logs in with the same phone and password, as a guardian
    // with the same id, classroom and count of wrong codes.
    let account = hub
        .accounts
        .check_login("+34600111222", PASSWORD)
        .unwrap()
        .expect("the parent still logs in");
    assert_eq!(account.id, v1.parent);
    assert_eq!(account.role, Role::Guardian);
    assert_eq!(account.name, "Ana García");
    let parent = hub.accounts.parent(v1.parent).unwrap().unwrap();
    assert_eq!(parent.classroom_id, Some(v1.classroom));
    assert!(!parent.locked);
    let failed: i64 = hub
        .db
        .lock()
        .query_row(
            "SELECT failed_codes FROM guardians WHERE id = ?1",
            [v1.parent.to_string()],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(failed, 3);

    // Requests and downloads are kept; sessions are not (everyone logs in again).
    let states: Vec<(String, String)> = {
        let conn = hub.db.lock();
        let mut statement = conn
            .prepare("SELECT id, state FROM original_requests ORDER BY state")
            .unwrap();
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(
        states,
        [
            (v1.pending_request.to_string(), "pending".to_owned()),
            (v1.verified_request.to_string(), "verified".to_owned())
        ]
    );
    assert_eq!(count(&hub, "SELECT COUNT(*) FROM downloads"), 1);
    assert_eq!(count(&hub, "SELECT COUNT(*) FROM sessions"), 0);
    assert_eq!(count(&hub, "SELECT COUNT(*) FROM photos"), 1);
    // Photos stored before review existed wait for a teacher like new ones.
    assert_eq!(count(&hub, "SELECT COUNT(*) FROM photo_reviews"), 0);
    assert_eq!(count(&hub, "SELECT COUNT(*) FROM devices"), 1);

    // No table of the first version is left, and every reference holds.
    assert_eq!(
        count(
            &hub,
            "SELECT COUNT(*) FROM sqlite_schema WHERE name IN ('parents', 'v1_parents', 'v1_requests')"
        ),
        0
    );
    let dangling: Option<String> = hub
        .db
        .lock()
        .query_row("PRAGMA foreign_key_check", [], |row| row.get(0))
        .ok();
    assert_eq!(dangling, None);

    // The new tables work with the migrated rows.
    let child = children::add(
        &hub,
        "Sunflowers",
        "Leo",
        guardian_hub::audit::Actor::Operator,
    )
    .unwrap();
    children::link_guardian(
        &hub,
        "+34600111222",
        child,
        guardian_hub::audit::Actor::Operator,
    )
    .unwrap();
    assert!(children::is_guardian_of(&hub, v1.parent, child).unwrap());
    hub.accounts
        .add_teacher("Tess", "+34600999888", PASSWORD, "Sunflowers")
        .unwrap();
}

#[test]
fn a_migrated_data_dir_opens_again_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = write_v1(dir.path());
    drop(open(dir.path()).unwrap());

    let hub = open(dir.path()).unwrap();
    assert_eq!(count(&hub, "PRAGMA user_version"), SCHEMA_VERSION);
    assert_eq!(count(&hub, "SELECT COUNT(*) FROM accounts"), 1);
    assert_eq!(count(&hub, "SELECT COUNT(*) FROM original_requests"), 2);
    assert!(hub.accounts.parent(v1.parent).unwrap().is_some());
}

#[test]
fn a_database_from_a_newer_hub_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    write_v1(dir.path());
    Connection::open(dir.path().join("hub.sqlite"))
        .unwrap()
        .execute_batch("PRAGMA user_version = 9;")
        .unwrap();

    let error = open(dir.path()).err().expect("refused");
    assert!(
        matches!(error, OpenError::Database(DbError::TooNew { found: 9, .. })),
        "{error}"
    );
    let conn = Connection::open(dir.path().join("hub.sqlite")).unwrap();
    let parents: i64 = conn
        .query_row("SELECT COUNT(*) FROM parents", [], |row| row.get(0))
        .unwrap();
    assert_eq!(parents, 1);
}

#[test]
fn a_version_1_file_with_broken_references_is_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = write_v1(dir.path());
    {
        // A request for a photo that is not there, as only foreign keys
        // switched off could have left it.
        let conn = Connection::open(dir.path().join("hub.sqlite")).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = OFF;").unwrap();
        conn.execute(
            "INSERT INTO original_requests (id, parent_id, photo_id, session_id_hash, code_hash,
                created_at, expires_at) VALUES (?1, ?2, ?3, x'00', x'00', 0, 0)",
            params![
                Uuid::new_v4().to_string(),
                v1.parent.to_string(),
                Uuid::new_v4().to_string()
            ],
        )
        .unwrap();
    }

    let error = open(dir.path()).err().expect("refused");
    assert!(
        matches!(error, OpenError::Database(DbError::Migration { .. })),
        "{error}"
    );

    let conn = Connection::open(dir.path().join("hub.sqlite")).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, 1);
    let parents: i64 = conn
        .query_row("SELECT COUNT(*) FROM parents", [], |row| row.get(0))
        .unwrap();
    assert_eq!(parents, 1);
    let accounts: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'accounts'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(accounts, 0);
}
