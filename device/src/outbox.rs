//! The outbox: a SQLite database that keeps every sealed photo until the hub
//! confirms it stored it, and remembers which source files were already captured.
//!
//! A photo leaves the outbox only on a verified reply from the hub: `Stored`
//! deletes its row, `Rejected` moves it to the `quarantine` table. The database
//! runs in WAL mode with `synchronous=FULL`, so a committed capture survives a
//! power cut; every write is one `BEGIN IMMEDIATE` transaction, so the capture
//! thread and the sync worker, each with its own connection, never interleave.
//! Only sealed envelopes are stored: nothing here opens a photo.

use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use guardian_protocol::HubReply;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use uuid::Uuid;

use crate::reply::TrustedReply;

/// The database file inside the data directory.
pub const OUTBOX_FILE: &str = "outbox.sqlite";

/// The schema this program writes, kept in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 2;

/// The size the outbox's write-ahead log is cut back to after a checkpoint.
const WAL_SIZE_LIMIT: i64 = 8 * 1024 * 1024;

/// How long a writer waits for the other connection's transaction to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
    CREATE TABLE outbox (
        photo_id        TEXT PRIMARY KEY,
        envelope        BLOB NOT NULL,
        envelope_sha256 BLOB NOT NULL,
        source          TEXT NOT NULL,
        captured_at     TEXT NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_attempt_at TEXT
    );
    CREATE TABLE captured_sources (
        content_sha256  BLOB PRIMARY KEY,
        source          TEXT NOT NULL,
        outcome         TEXT NOT NULL CHECK (outcome IN ('captured', 'failed')),
        photo_id        TEXT,
        error           TEXT,
        recorded_at     TEXT NOT NULL
    );
    CREATE TABLE quarantine (
        photo_id        TEXT PRIMARY KEY,
        envelope        BLOB NOT NULL,
        envelope_sha256 BLOB NOT NULL,
        source          TEXT NOT NULL,
        captured_at     TEXT NOT NULL,
        attempts        INTEGER NOT NULL,
        reason          TEXT NOT NULL,
        rejected_at     TEXT NOT NULL
    );
";

/// Version 2 adds what the device remembers besides photos: the hub's latest
/// PIN set, whether the hub revoked it, and the wrong PINs typed so far (so a
/// restart does not reset the lockout).
const SCHEMA_V2: &str = "
    CREATE TABLE hub_pins (
        only_row        INTEGER PRIMARY KEY CHECK (only_row = 1),
        issued_at       TEXT NOT NULL,
        teachers        TEXT NOT NULL
    );
    CREATE TABLE hub_revocation (
        only_row        INTEGER PRIMARY KEY CHECK (only_row = 1),
        revoked_at      TEXT NOT NULL
    );
    CREATE TABLE unlock_failures (
        only_row        INTEGER PRIMARY KEY CHECK (only_row = 1),
        wrong_pins      INTEGER NOT NULL
    );
";

/// Why the outbox could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The data directory or the database file could not be created.
    #[error(
        "cannot create {path}: {source}; check that the data directory's parent exists \
         and is writable by this user"
    )]
    Create { path: PathBuf, source: io::Error },

    /// The database was written by a newer guardian-device.
    #[error(
        "the outbox {path} has schema version {found}, newer than this program's {known}; \
         upgrade guardian-device"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },

    /// SQLite failed; most often a full disk, a read-only data directory, or
    /// another process holding the database for more than five seconds.
    #[error(
        "outbox database error while {doing}: {source}; check free disk space and that \
         only one guardian-device uses this data directory"
    )]
    Sqlite {
        doing: &'static str,
        source: rusqlite::Error,
    },

    /// A row holds a value this program never writes (edited by hand, or corrupt).
    #[error("the outbox row for {what} is unreadable: {detail}")]
    BadRow { what: String, detail: String },
}

/// A sealed photo to put in the outbox, with the source file it came from.
#[derive(Debug)]
pub struct NewPhoto<'a> {
    pub photo_id: Uuid,
    pub envelope: &'a [u8],
    pub envelope_sha256: [u8; 32],
    pub source: &'a str,
    pub captured_at: DateTime<Utc>,
    pub content_sha256: [u8; 32],
}

/// A photo waiting for the hub's confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPhoto {
    pub photo_id: Uuid,
    pub envelope_sha256: [u8; 32],
    pub attempts: u32,
}

/// A photo the hub refused for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedPhoto {
    pub photo_id: Uuid,
    pub envelope_sha256: [u8; 32],
    pub reason: String,
}

/// What a trusted reply did to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The hub stored the photo; its row is deleted.
    Delivered { photo_id: Uuid },
    /// The hub rejected the photo; its row moved to quarantine.
    Quarantined { photo_id: Uuid, reason: String },
    /// The reply matches no outbox row; nothing changed.
    NoMatch { photo_id: Uuid, why: NoMatch },
}

/// Why a reply matched no outbox row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoMatch {
    /// No photo with this id is waiting (already settled, or never ours).
    UnknownPhoto,
    /// The photo is waiting, but the reply is about other envelope bytes.
    DigestDiffers,
}

/// One connection to the outbox database.
pub struct Outbox {
    conn: Connection,
}

impl Outbox {
    /// Opens `<data_dir>/outbox.sqlite`, creating the directory (mode 0700) and
    /// the database (mode 0600) if they are missing.
    pub fn open_in(data_dir: &Path) -> Result<Self, OutboxError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(|source| OutboxError::Create {
                path: data_dir.to_path_buf(),
                source,
            })?;
        Self::open(&data_dir.join(OUTBOX_FILE))
    }

    /// Opens the database at `path`, creating it and its tables if needed.
    pub fn open(path: &Path) -> Result<Self, OutboxError> {
        // Create the file ourselves so it starts private: SQLite gives the WAL
        // and shared-memory files the same mode as the database file. Only a
        // missing file is opened here: closing any descriptor of a file drops
        // every POSIX lock this process holds on it, and without the lock of
        // the connection already open (the capture thread's, when the sync
        // worker opens its own) another program closing the database (a
        // `sqlite3` shell that quits) checkpoints and deletes the WAL under
        // us. Later commits then went to the deleted file, and were lost at
        // the next start (field case C26).
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(OutboxError::Create {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }

        let mut conn = Connection::open(path).map_err(sqlite("opening the database"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sqlite("setting the busy timeout"))?;

        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(sqlite("switching to WAL mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(OutboxError::BadRow {
                what: "journal_mode".into(),
                detail: format!("SQLite kept journal mode {mode:?} instead of WAL"),
            });
        }

        // FULL syncs the WAL on every commit: a photo reported as captured is
        // on the card, not in a cache that a power cut would lose.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sqlite("setting synchronous=FULL"))?;

        // A reader that holds a transaction open (a `sqlite3` shell) keeps the
        // WAL from being recycled, so it grows with every capture; this cuts it
        // back once the reader lets go instead of keeping the space for ever.
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
            .map_err(sqlite("setting journal_size_limit"))?;

        create_schema(&mut conn, path)?;
        Ok(Self { conn })
    }

    /// The connection, for the modules that keep the device's other state in
    /// the same file (see [`crate::notices`], [`crate::lock`]).
    pub(crate) fn conn(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Whether a source file with this content was already captured, or
    /// already failed for good.
    pub fn knows_source(&self, content_sha256: &[u8; 32]) -> Result<bool, OutboxError> {
        self.conn
            .query_row(
                "SELECT 1 FROM captured_sources WHERE content_sha256 = ?1",
                [&content_sha256[..]],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(sqlite("looking up a source file"))
    }

    /// Stores a sealed photo and remembers its source file, in one transaction.
    pub fn record_capture(&mut self, photo: &NewPhoto<'_>) -> Result<(), OutboxError> {
        let photo_id = photo.photo_id.to_string();
        let captured_at = timestamp(photo.captured_at);

        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite("starting a capture transaction"))?;
        tx.execute(
            "INSERT INTO outbox (photo_id, envelope, envelope_sha256, source, captured_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                photo_id,
                photo.envelope,
                &photo.envelope_sha256[..],
                photo.source,
                captured_at
            ],
        )
        .map_err(sqlite("storing a sealed photo"))?;
        tx.execute(
            "INSERT OR REPLACE INTO captured_sources
                 (content_sha256, source, outcome, photo_id, recorded_at)
             VALUES (?1, ?2, 'captured', ?3, ?4)",
            params![
                &photo.content_sha256[..],
                photo.source,
                photo_id,
                captured_at
            ],
        )
        .map_err(sqlite("remembering a captured source file"))?;
        tx.commit().map_err(sqlite("committing a capture"))
    }

    /// Remembers a source file that can never be captured (not a photo, too
    /// large), so it is not tried again on every scan or restart.
    pub fn record_failed_source(
        &mut self,
        content_sha256: &[u8; 32],
        source: &str,
        error: &str,
    ) -> Result<(), OutboxError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite("starting a transaction"))?;
        tx.execute(
            "INSERT OR IGNORE INTO captured_sources
                 (content_sha256, source, outcome, error, recorded_at)
             VALUES (?1, ?2, 'failed', ?3, ?4)",
            params![&content_sha256[..], source, error, timestamp(Utc::now())],
        )
        .map_err(sqlite("remembering a failed source file"))?;
        tx.commit()
            .map_err(sqlite("committing a failed source file"))
    }

    /// Every photo still waiting for the hub, oldest first.
    pub fn pending(&self) -> Result<Vec<PendingPhoto>, OutboxError> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT photo_id, envelope_sha256, attempts FROM outbox ORDER BY rowid")
            .map_err(sqlite("listing waiting photos"))?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Vec<u8>>(1)?,
                    row.get::<_, u32>(2)?,
                ))
            })
            .map_err(sqlite("listing waiting photos"))?;

        let mut pending = Vec::new();
        for row in rows {
            let (photo_id, digest, attempts) = row.map_err(sqlite("reading a waiting photo"))?;
            pending.push(PendingPhoto {
                photo_id: parse_photo_id(&photo_id)?,
                envelope_sha256: parse_digest(&photo_id, &digest)?,
                attempts,
            });
        }
        Ok(pending)
    }

    /// How many photos are still waiting for the hub.
    pub fn pending_count(&self) -> Result<u64, OutboxError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM outbox", [], |row| row.get(0))
            .map_err(sqlite("counting waiting photos"))
    }

    /// The envelope bytes of a waiting photo, exactly as sealed at capture.
    pub fn envelope(&self, photo_id: Uuid) -> Result<Option<Vec<u8>>, OutboxError> {
        self.conn
            .query_row(
                "SELECT envelope FROM outbox WHERE photo_id = ?1",
                [photo_id.to_string()],
                |row| row.get(0),
            )
            .optional()
            .map_err(sqlite("reading an envelope"))
    }

    /// Counts one more publication of a waiting photo.
    pub fn note_attempt(&mut self, photo_id: Uuid) -> Result<(), OutboxError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite("starting a transaction"))?;
        tx.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_attempt_at = ?2
             WHERE photo_id = ?1",
            params![photo_id.to_string(), timestamp(Utc::now())],
        )
        .map_err(sqlite("counting a publication"))?;
        tx.commit()
            .map_err(sqlite("committing a publication count"))
    }

    /// Applies a verified reply from our hub: `Stored` deletes the matching
    /// row, `Rejected` moves it to quarantine. A reply whose photo id and
    /// envelope digest do not both match a waiting row changes nothing.
    pub fn settle(&mut self, reply: &TrustedReply) -> Result<Settled, OutboxError> {
        let reply = reply.reply();
        let photo_id = reply.photo_id();
        let id_text = photo_id.to_string();
        let digest = reply.envelope_sha256();

        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite("starting a reply transaction"))?;

        let stored_digest: Option<Vec<u8>> = tx
            .query_row(
                "SELECT envelope_sha256 FROM outbox WHERE photo_id = ?1",
                [&id_text],
                |row| row.get(0),
            )
            .optional()
            .map_err(sqlite("looking up a replied photo"))?;
        let Some(stored_digest) = stored_digest else {
            return Ok(Settled::NoMatch {
                photo_id,
                why: NoMatch::UnknownPhoto,
            });
        };
        if stored_digest != digest {
            return Ok(Settled::NoMatch {
                photo_id,
                why: NoMatch::DigestDiffers,
            });
        }

        let settled = match reply {
            HubReply::Stored { .. } => Settled::Delivered { photo_id },
            HubReply::Rejected { reason, .. } => {
                tx.execute(
                    "INSERT OR REPLACE INTO quarantine
                         (photo_id, envelope, envelope_sha256, source, captured_at,
                          attempts, reason, rejected_at)
                     SELECT photo_id, envelope, envelope_sha256, source, captured_at,
                            attempts, ?2, ?3
                     FROM outbox WHERE photo_id = ?1",
                    params![id_text, reason, timestamp(Utc::now())],
                )
                .map_err(sqlite("quarantining a rejected photo"))?;
                Settled::Quarantined {
                    photo_id,
                    reason: reason.clone(),
                }
            }
        };

        tx.execute("DELETE FROM outbox WHERE photo_id = ?1", [&id_text])
            .map_err(sqlite("removing a settled photo"))?;
        tx.commit().map_err(sqlite("committing a reply"))?;
        Ok(settled)
    }

    /// Every photo the hub rejected, oldest first.
    pub fn quarantined(&self) -> Result<Vec<QuarantinedPhoto>, OutboxError> {
        let mut statement = self
            .conn
            .prepare("SELECT photo_id, envelope_sha256, reason FROM quarantine ORDER BY rowid")
            .map_err(sqlite("listing quarantined photos"))?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Vec<u8>>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })
            .map_err(sqlite("listing quarantined photos"))?;

        let mut quarantined = Vec::new();
        for row in rows {
            let (photo_id, digest, reason) = row.map_err(sqlite("reading a quarantined photo"))?;
            quarantined.push(QuarantinedPhoto {
                photo_id: parse_photo_id(&photo_id)?,
                envelope_sha256: parse_digest(&photo_id, &digest)?,
                reason,
            });
        }
        Ok(quarantined)
    }
}

/// Creates the tables in a fresh database, and refuses one from a newer program.
fn create_schema(conn: &mut Connection, path: &Path) -> Result<(), OutboxError> {
    // IMMEDIATE, so that two connections opening a fresh database at the same
    // moment do not both try to create the tables.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite("starting the schema transaction"))?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sqlite("reading the schema version"))?;

    match version {
        0 | 1 => {
            if version == 0 {
                tx.execute_batch(SCHEMA)
                    .map_err(sqlite("creating the outbox tables"))?;
            }
            tx.execute_batch(SCHEMA_V2)
                .map_err(sqlite("creating the PIN and revocation tables"))?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(sqlite("writing the schema version"))?;
        }
        SCHEMA_VERSION => {}
        found => {
            return Err(OutboxError::NewerSchema {
                path: path.to_path_buf(),
                found,
                known: SCHEMA_VERSION,
            })
        }
    }

    tx.commit().map_err(sqlite("committing the schema"))
}

pub(crate) fn sqlite(doing: &'static str) -> impl FnOnce(rusqlite::Error) -> OutboxError {
    move |source| OutboxError::Sqlite { doing, source }
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_photo_id(text: &str) -> Result<Uuid, OutboxError> {
    Uuid::parse_str(text).map_err(|error| OutboxError::BadRow {
        what: format!("photo id {text:?}"),
        detail: error.to_string(),
    })
}

fn parse_digest(photo_id: &str, bytes: &[u8]) -> Result<[u8; 32], OutboxError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| OutboxError::BadRow {
        what: format!("photo {photo_id}"),
        detail: format!("envelope digest has {} bytes, not 32", bytes.len()),
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use guardian_protocol::{envelope_sha256, HubSigningKey, SignedReply};

    use super::*;
    use crate::reply;
    use crate::testutil::TempDir;

    fn photo<'a>(envelope: &'a [u8], content: [u8; 32]) -> NewPhoto<'a> {
        NewPhoto {
            photo_id: Uuid::new_v4(),
            envelope,
            envelope_sha256: envelope_sha256(envelope),
            source: "in/a.jpg",
            captured_at: Utc::now(),
            content_sha256: content,
        }
    }

    fn trusted(reply: &HubReply, hub: &HubSigningKey) -> TrustedReply {
        let payload = SignedReply::sign(reply, hub);
        reply::verify(&payload, &hub.verifying_key(), reply.device_id()).expect("genuine reply")
    }

    #[test]
    fn a_capture_survives_reopening_and_leaves_only_on_a_stored_reply() {
        let dir = TempDir::new();
        let hub = HubSigningKey::generate();
        let envelope = b"sealed envelope bytes".to_vec();
        let new = photo(&envelope, [1; 32]);
        let id = new.photo_id;

        Outbox::open_in(dir.path())
            .unwrap()
            .record_capture(&new)
            .unwrap();

        let mut outbox = Outbox::open_in(dir.path()).unwrap();
        assert_eq!(outbox.pending_count().unwrap(), 1);
        assert_eq!(outbox.envelope(id).unwrap().as_deref(), Some(&envelope[..]));
        assert!(outbox.knows_source(&[1; 32]).unwrap());
        assert!(!outbox.knows_source(&[2; 32]).unwrap());

        outbox.note_attempt(id).unwrap();
        assert_eq!(outbox.pending().unwrap()[0].attempts, 1);

        let stored = HubReply::Stored {
            device_id: Uuid::new_v4(),
            photo_id: id,
            envelope_sha256: envelope_sha256(&envelope),
        };
        let settled = outbox.settle(&trusted(&stored, &hub)).unwrap();
        assert_eq!(settled, Settled::Delivered { photo_id: id });
        assert_eq!(outbox.pending_count().unwrap(), 0);
        assert!(
            outbox.knows_source(&[1; 32]).unwrap(),
            "the source stays remembered after delivery"
        );

        let again = outbox.settle(&trusted(&stored, &hub)).unwrap();
        assert_eq!(
            again,
            Settled::NoMatch {
                photo_id: id,
                why: NoMatch::UnknownPhoto
            }
        );
    }

    #[test]
    fn a_reply_with_another_digest_leaves_the_row() {
        let dir = TempDir::new();
        let hub = HubSigningKey::generate();
        let mut outbox = Outbox::open_in(dir.path()).unwrap();
        let new = photo(b"envelope", [3; 32]);
        outbox.record_capture(&new).unwrap();

        let wrong = HubReply::Stored {
            device_id: Uuid::new_v4(),
            photo_id: new.photo_id,
            envelope_sha256: [0; 32],
        };
        assert_eq!(
            outbox.settle(&trusted(&wrong, &hub)).unwrap(),
            Settled::NoMatch {
                photo_id: new.photo_id,
                why: NoMatch::DigestDiffers
            }
        );
        assert_eq!(outbox.pending_count().unwrap(), 1);
    }

    #[test]
    fn a_rejected_photo_moves_to_quarantine() {
        let dir = TempDir::new();
        let hub = HubSigningKey::generate();
        let mut outbox = Outbox::open_in(dir.path()).unwrap();
        let new = photo(b"envelope", [4; 32]);
        outbox.record_capture(&new).unwrap();

        let rejected = HubReply::Rejected {
            device_id: Uuid::new_v4(),
            photo_id: new.photo_id,
            envelope_sha256: new.envelope_sha256,
            reason: "unknown device".into(),
        };
        let settled = outbox.settle(&trusted(&rejected, &hub)).unwrap();
        assert_eq!(
            settled,
            Settled::Quarantined {
                photo_id: new.photo_id,
                reason: "unknown device".into()
            }
        );
        assert_eq!(outbox.pending_count().unwrap(), 0);
        assert_eq!(
            outbox.quarantined().unwrap(),
            vec![QuarantinedPhoto {
                photo_id: new.photo_id,
                envelope_sha256: new.envelope_sha256,
                reason: "unknown device".into()
            }]
        );
    }

    #[test]
    fn a_failed_source_is_remembered_without_an_outbox_row() {
        let dir = TempDir::new();
        let mut outbox = Outbox::open_in(dir.path()).unwrap();
        outbox
            .record_failed_source(&[5; 32], "in/junk.jpg", "not a photo")
            .unwrap();
        outbox
            .record_failed_source(&[5; 32], "in/junk-copy.jpg", "not a photo")
            .unwrap();
        assert!(outbox.knows_source(&[5; 32]).unwrap());
        assert_eq!(outbox.pending_count().unwrap(), 0);
    }

    #[test]
    fn the_data_dir_and_database_are_private_and_in_wal_mode() {
        let dir = TempDir::new();
        let data = dir.path().join("nested/data");
        let outbox = Outbox::open_in(&data).unwrap();

        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join(OUTBOX_FILE)), 0o600);

        let journal: String = outbox
            .conn
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap();
        assert_eq!(journal, "wal");
        let synchronous: i64 = outbox
            .conn
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .unwrap();
        assert_eq!(synchronous, 2, "2 is FULL");
    }

    #[test]
    fn a_database_from_a_newer_program_is_refused() {
        let dir = TempDir::new();
        let outbox = Outbox::open_in(dir.path()).unwrap();
        outbox
            .conn
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(outbox);

        assert!(matches!(
            Outbox::open_in(dir.path()),
            Err(OutboxError::NewerSchema { found, .. }) if found == SCHEMA_VERSION + 1
        ));
    }

    #[test]
    fn a_version_1_outbox_keeps_its_photos_and_gains_the_pin_tables() {
        let dir = TempDir::new();
        let path = dir.path().join(OUTBOX_FILE);
        let old = Connection::open(&path).unwrap();
        old.execute_batch(SCHEMA).unwrap();
        old.execute(
            "INSERT INTO outbox (photo_id, envelope, envelope_sha256, source, captured_at)
             VALUES (?1, x'01', x'02', 'a.jpg', '2026-01-01T00:00:00Z')",
            [Uuid::new_v4().to_string()],
        )
        .unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        drop(old);

        let mut outbox = Outbox::open_in(dir.path()).unwrap();
        assert_eq!(outbox.pending_count().unwrap(), 1);
        assert_eq!(outbox.wrong_pins().unwrap(), 0);
        assert!(outbox.pins().unwrap().is_none());
    }
}
