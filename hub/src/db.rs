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
use rusqlite::{Connection, OptionalExtension};

/// Bump when the schema changes; `migrate` brings older files forward.
pub const SCHEMA_VERSION: i64 = 5;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS classrooms (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

-- Everyone who logs in: one row per person, one role each.
CREATE TABLE IF NOT EXISTS accounts (
    id             TEXT PRIMARY KEY,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'teacher', 'guardian')),
    name           TEXT NOT NULL,
    phone          TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);

-- What only guardians (parents) have. `classroom_id` is the classroom-wide
-- listing of the first version; a guardian added without one sees photos only
-- through their children (guardian_links).
CREATE TABLE IF NOT EXISTS guardians (
    id             TEXT PRIMARY KEY REFERENCES accounts(id),
    classroom_id   TEXT REFERENCES classrooms(id),
    failed_codes   INTEGER NOT NULL DEFAULT 0,
    locked         INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS teacher_classrooms (
    teacher_id     TEXT NOT NULL REFERENCES accounts(id),
    classroom_id   TEXT NOT NULL REFERENCES classrooms(id),
    added_at       INTEGER NOT NULL,
    PRIMARY KEY (teacher_id, classroom_id)
);

CREATE TABLE IF NOT EXISTS children (
    id             TEXT PRIMARY KEY,
    classroom_id   TEXT NOT NULL REFERENCES classrooms(id),
    name           TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS children_by_classroom ON children (classroom_id);

CREATE TABLE IF NOT EXISTS guardian_links (
    guardian_id    TEXT NOT NULL REFERENCES guardians(id),
    child_id       TEXT NOT NULL REFERENCES children(id),
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (guardian_id, child_id)
);
CREATE INDEX IF NOT EXISTS guardian_links_by_child ON guardian_links (child_id);

-- Consent history, append-only: the current state of a (child, purpose) is
-- its newest row, and no row means not granted. Rows are deleted only when
-- the child is erased.
CREATE TABLE IF NOT EXISTS consents (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    child_id       TEXT NOT NULL REFERENCES children(id),
    purpose        TEXT NOT NULL CHECK (purpose IN ('visible_to_classmates', 'originals')),
    granted        INTEGER NOT NULL CHECK (granted IN (0, 1)),
    actor          TEXT NOT NULL,
    at             INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS consents_by_child ON consents (child_id, purpose, seq);
CREATE TRIGGER IF NOT EXISTS consents_append_only BEFORE UPDATE ON consents
BEGIN
    SELECT RAISE(ABORT, 'consent history is append-only');
END;

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

-- The PIN that unlocks the devices of a teacher's classrooms (argon2id).
CREATE TABLE IF NOT EXISTS teacher_pins (
    teacher_id  TEXT PRIMARY KEY REFERENCES accounts(id),
    pin_hash    TEXT NOT NULL,
    set_at      INTEGER NOT NULL
);

-- The newest heartbeat of each device: what the admin page shows.
-- A device's MQTT password in Mosquitto's own hash format (PBKDF2-SHA512),
-- for the password file the hub writes for an external Mosquitto broker.
-- Devices registered before version 5 have none and must be provisioned
-- again to use such a broker.
CREATE TABLE IF NOT EXISTS mosquitto_logins (
    device_id      TEXT PRIMARY KEY REFERENCES devices(id),
    password_hash  TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS device_heartbeats (
    device_id     TEXT PRIMARY KEY REFERENCES devices(id),
    received_at   INTEGER NOT NULL,
    sent_at       INTEGER NOT NULL,
    version       TEXT NOT NULL,
    outbox_len    INTEGER NOT NULL,
    quarantined   INTEGER NOT NULL,
    last_error    TEXT,
    clock_synced  INTEGER NOT NULL
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

-- A photo's review. The row appears when the photo's faces are first
-- recorded in photo_faces; `released_at` stays empty until a teacher of its
-- classroom releases it, and no parent sees the photo before that.
CREATE TABLE IF NOT EXISTS photo_reviews (
    photo_id       TEXT PRIMARY KEY REFERENCES photos(id),
    released_at    INTEGER,
    released_by    TEXT
);

-- Every face of a photo: those the device found (numbered first, in its
-- order) and those a teacher drew. A face with no child is unknown, and
-- covered for everyone outside the review page.
CREATE TABLE IF NOT EXISTS photo_faces (
    photo_id       TEXT NOT NULL REFERENCES photos(id),
    n              INTEGER NOT NULL,
    x              INTEGER NOT NULL,
    y              INTEGER NOT NULL,
    width          INTEGER NOT NULL,
    height         INTEGER NOT NULL,
    origin         TEXT NOT NULL CHECK (origin IN ('device', 'teacher')),
    child_id       TEXT REFERENCES children(id),
    named_by       TEXT,
    named_at       INTEGER,
    PRIMARY KEY (photo_id, n)
);
CREATE INDEX IF NOT EXISTS photo_faces_by_child ON photo_faces (child_id);
CREATE UNIQUE INDEX IF NOT EXISTS photo_faces_one_per_child
    ON photo_faces (photo_id, child_id) WHERE child_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS sessions (
    id_hash     BLOB PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS original_requests (
    id               TEXT PRIMARY KEY,
    parent_id        TEXT NOT NULL REFERENCES guardians(id),
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

    /// An upgrade of an older file found rows it cannot carry over; the file
    /// is left as it was.
    #[error(
        "cannot upgrade the hub database {path}: {detail}; restore it from backup or report this"
    )]
    Migration { path: String, detail: String },

    #[error("the hub database {path} has schema version {found}, newer than this program's {SCHEMA_VERSION}; upgrade guardian-hub")]
    TooNew { path: String, found: i64 },
}

/// Copies the write-ahead log into the database file and empties it. Deleted
/// rows are overwritten in place (`secure_delete`), but their old pages stay
/// in the log until this runs: an erasure calls it so that a child's name is
/// gone from the files too, backups made afterwards included.
/// Returns whether it finished: another process reading the database (the
/// web server beside a command) can hold it back until a later checkpoint.
pub fn checkpoint(conn: &Connection) -> Result<bool, rusqlite::Error> {
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
    Ok(busy == 0)
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
             PRAGMA foreign_keys = ON;
             PRAGMA secure_delete = ON;",
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

    // Rebuilding tables that others reference needs foreign keys off, and
    // SQLite ignores that pragma inside a transaction.
    conn.execute_batch("PRAGMA foreign_keys = OFF;")
        .map_err(open_error)?;
    let migrated = migrate_in_transaction(conn, path);
    conn.execute_batch("PRAGMA foreign_keys = ON;")
        .map_err(open_error)?;
    migrated
}

/// Reads the version inside the write transaction, so that `serve` and a CLI
/// command opening an old file at once migrate it once.
fn migrate_in_transaction(conn: &Connection, path: &Path) -> Result<(), DbError> {
    let open_error = |source| DbError::Open {
        path: path.display().to_string(),
        source,
    };

    conn.execute_batch("BEGIN IMMEDIATE;").map_err(open_error)?;
    let result = (|| {
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(open_error)?;
        if found > SCHEMA_VERSION {
            return Err(DbError::TooNew {
                path: path.display().to_string(),
                found,
            });
        }

        if found == 1 {
            conn.execute_batch(V1_SET_ASIDE).map_err(open_error)?;
        }
        // Version 2 to 3 only adds the review tables: photos stored before
        // the upgrade wait for a teacher's review like new ones. Version 3 to
        // 4 only adds the PIN and heartbeat tables, 4 to 5 the Mosquitto
        // logins.
        conn.execute_batch(SCHEMA).map_err(open_error)?;
        if found == 1 {
            conn.execute_batch(V1_TO_V2_COPY).map_err(open_error)?;

            // Foreign keys were off while tables were rebuilt: check every
            // reference once before the new version is committed.
            let broken: Option<String> = conn
                .query_row("PRAGMA foreign_key_check", [], |row| row.get(0))
                .optional()
                .map_err(open_error)?;
            if let Some(table) = broken {
                return Err(DbError::Migration {
                    path: path.display().to_string(),
                    detail: format!("a row of {table} points at a row that does not exist"),
                });
            }
        }
        conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))
            .map_err(open_error)?;
        Ok(found)
    })();

    match result {
        Ok(found) => {
            conn.execute_batch("COMMIT;").map_err(open_error)?;
            if found != 0 && found != SCHEMA_VERSION {
                tracing::info!(from = found, to = SCHEMA_VERSION, "hub database upgraded");
            }
            Ok(())
        }
        Err(error) => {
            // The transaction is already lost if COMMIT never ran; report the cause.
            let _ = conn.execute_batch("ROLLBACK;");
            Err(error)
        }
    }
}

/// Version 1 to 2, first half: parents held their own login and one
/// classroom. Their rows, and the requests and sessions that point at them,
/// are moved to temporary tables before the version-2 tables are created.
/// Sessions are not kept: everyone logs in again after the upgrade.
const V1_SET_ASIDE: &str = "
CREATE TEMP TABLE v1_parents AS SELECT * FROM parents;
CREATE TEMP TABLE v1_requests AS SELECT * FROM original_requests;
DROP TABLE sessions;
DROP TABLE original_requests;
DROP TABLE parents;
";

/// Version 1 to 2, second half: every parent becomes a guardian account,
/// keeping its id, password, classroom, lock and pending requests.
const V1_TO_V2_COPY: &str = "
INSERT INTO accounts (id, role, name, phone, password_hash, created_at)
    SELECT id, 'guardian', name, phone, password_hash, created_at FROM temp.v1_parents;
INSERT INTO guardians (id, classroom_id, failed_codes, locked)
    SELECT id, classroom_id, failed_codes, locked FROM temp.v1_parents;
INSERT INTO original_requests (id, parent_id, photo_id, session_id_hash, code_hash,
        created_at, expires_at, wrong_tries, state)
    SELECT id, parent_id, photo_id, session_id_hash, code_hash,
        created_at, expires_at, wrong_tries, state FROM temp.v1_requests;
DROP TABLE temp.v1_parents;
DROP TABLE temp.v1_requests;
";

/// Times are stored as Unix milliseconds, so SQL can compare them.
pub fn to_millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub fn from_millis(millis: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(millis)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}
