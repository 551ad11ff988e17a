//! The hub's SQLite database: opening it safely and creating its tables.
//!
//! One file, `<data-dir>/hub.sqlite`, shared by `serve` and by CLI commands
//! running beside it. WAL lets readers and one writer work at once; writers use
//! `BEGIN IMMEDIATE` and a busy timeout, so a CLI command waits for `serve`
//! instead of failing with "database is locked".

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::Connection;

/// Bump when the schema changes; `migrate` brings older files forward.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
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

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open the hub database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },

    #[error("the hub database {path} has schema version {found}, newer than this program's {SCHEMA_VERSION}; upgrade guardian-hub")]
    TooNew { path: String, found: i64 },
}

/// A shared connection to the hub database.
///
/// SQLite serialises writers anyway, and the hub's statements take
/// milliseconds, so one connection behind a mutex per process is enough.
#[derive(Clone)]
pub struct Db(Arc<Mutex<Connection>>);

impl Db {
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let open_error = |source| DbError::Open {
            path: path.display().to_string(),
            source,
        };

        let conn = Connection::open(path).map_err(open_error)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(open_error)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;",
        )
        .map_err(open_error)?;

        migrate(&conn, path)?;
        Ok(Self(Arc::new(Mutex::new(conn))))
    }

    /// Locks the connection. A panic while another thread held it leaves
    /// SQLite itself consistent (an open transaction is rolled back when its
    /// guard drops), so a poisoned lock is safe to take over.
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn migrate(conn: &Connection, path: &Path) -> Result<(), DbError> {
    let open_error = |source| DbError::Open {
        path: path.display().to_string(),
        source,
    };

    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(open_error)?;
    if found > SCHEMA_VERSION {
        return Err(DbError::TooNew {
            path: path.display().to_string(),
            found,
        });
    }

    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
    ))
    .map_err(open_error)
}

/// Times are stored as Unix milliseconds, so SQL can compare them.
pub fn to_millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub fn from_millis(millis: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(millis)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}
