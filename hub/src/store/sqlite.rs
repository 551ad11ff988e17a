//! The default photo store: a row per photo in the hub database and the sealed
//! envelope in a file under `<data-dir>/photos/`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};
use uuid::Uuid;

use super::{PhotoRecord, PhotoStore, PutOutcome, StoreError};
use crate::audit::{AuditEvent, AuditLog};
use crate::db::{from_millis, to_millis, Db};

pub struct SqliteFileStore {
    db: Db,
    dir: PathBuf,
}

impl SqliteFileStore {
    pub fn new(db: Db, data_dir: &Path) -> Result<Self, StoreError> {
        let dir = data_dir.join("photos");
        fs::create_dir_all(&dir).map_err(|source| file_error(&dir, source))?;
        Ok(Self { db, dir })
    }

    fn blob_path(&self, id: Uuid) -> PathBuf {
        self.dir.join(format!("{id}.sealed"))
    }

    /// Writes the envelope to its final name through a temporary file and
    /// syncs both, so a crash leaves either no file or the whole file.
    fn write_blob(&self, id: Uuid, envelope: &[u8]) -> Result<(), StoreError> {
        let path = self.blob_path(id);
        let temporary = self
            .dir
            .join(format!("{id}.sealed.tmp-{}", std::process::id()));

        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(|source| file_error(&temporary, source))?;
        file.write_all(envelope)
            .and_then(|()| file.sync_all())
            .map_err(|source| file_error(&temporary, source))?;
        fs::rename(&temporary, &path).map_err(|source| file_error(&path, source))?;
        self.sync_dir()
    }

    /// Deletes the rows first, in one transaction with the audit entry if
    /// any, then the file: a crash in between leaves a stray sealed file
    /// that no row names, never a row without its file.
    fn delete_with(
        &self,
        id: Uuid,
        audit: Option<(&AuditLog, DateTime<Utc>, &AuditEvent)>,
    ) -> Result<bool, StoreError> {
        let key = id.to_string();
        let (found, head) = {
            let mut conn = self.db.lock();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "DELETE FROM downloads WHERE request_id IN
                    (SELECT id FROM original_requests WHERE photo_id = ?1)",
                [&key],
            )?;
            tx.execute("DELETE FROM original_requests WHERE photo_id = ?1", [&key])?;
            tx.execute("DELETE FROM photo_faces WHERE photo_id = ?1", [&key])?;
            tx.execute("DELETE FROM photo_reviews WHERE photo_id = ?1", [&key])?;
            let found = tx.execute("DELETE FROM photos WHERE id = ?1", [&key])? > 0;
            let head = match audit {
                Some((log, at, event)) if found => Some(log.append(&tx, at, event)?),
                _ => None,
            };
            tx.commit()?;
            (found, head)
        };

        if let (Some((log, _, _)), Some(head)) = (audit, head) {
            log.publish_head(&head)?;
        }

        // Also when no row was found: that is a file left by an earlier crash.
        let path = self.blob_path(id);
        match fs::remove_file(&path) {
            Ok(()) => self.sync_dir()?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(file_error(&path, source)),
        }
        Ok(found)
    }

    fn sync_dir(&self) -> Result<(), StoreError> {
        fs::File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|source| file_error(&self.dir, source))
    }
}

impl PhotoStore for SqliteFileStore {
    fn put(&self, record: &PhotoRecord, envelope: &[u8]) -> Result<PutOutcome, StoreError> {
        if let Some(existing) = self.get(record.id)? {
            return Ok(if existing.envelope_sha256 == record.envelope_sha256 {
                PutOutcome::AlreadyStored
            } else {
                PutOutcome::Conflict
            });
        }

        // The file goes first: a row never points at a file that is not on
        // disk. A crash after the file but before the row leaves a stray file
        // that the device's resend overwrites.
        self.write_blob(record.id, envelope)?;

        let mut conn = self.db.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing: Option<Vec<u8>> = tx
            .query_row(
                "SELECT envelope_sha256 FROM photos WHERE id = ?1",
                [record.id.to_string()],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(digest) = existing {
            // Another writer stored it between our check and this transaction.
            return Ok(if digest == record.envelope_sha256 {
                PutOutcome::AlreadyStored
            } else {
                PutOutcome::Conflict
            });
        }

        tx.execute(
            "INSERT INTO photos (id, device_id, classroom_id, captured_at, received_at,
                device_sent_at, clock_skew_ms, faces, width, height, damaged,
                envelope_sha256, envelope_len, blob)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                record.id.to_string(),
                record.device_id.to_string(),
                record.classroom_id.to_string(),
                to_millis(record.captured_at),
                to_millis(record.received_at),
                to_millis(record.device_sent_at),
                record.clock_skew().num_milliseconds(),
                record.faces,
                record.width,
                record.height,
                record.damaged,
                record.envelope_sha256.as_slice(),
                envelope.len() as i64,
                format!("{}.sealed", record.id),
            ],
        )?;
        tx.commit()?;
        Ok(PutOutcome::Stored)
    }

    fn get(&self, id: Uuid) -> Result<Option<PhotoRecord>, StoreError> {
        let conn = self.db.lock();
        let record = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM photos WHERE id = ?1"),
                [id.to_string()],
                record_from_row,
            )
            .optional()?;
        Ok(record)
    }

    fn envelope(&self, id: Uuid) -> Result<Vec<u8>, StoreError> {
        let record = self.get(id)?.ok_or(StoreError::BlobDamaged { id })?;
        let path = self.blob_path(id);
        let bytes = fs::read(&path).map_err(|source| file_error(&path, source))?;
        if guardian_protocol::envelope_sha256(&bytes) != record.envelope_sha256 {
            return Err(StoreError::BlobDamaged { id });
        }
        Ok(bytes)
    }

    fn list_for_classroom(&self, classroom_id: Uuid) -> Result<Vec<PhotoRecord>, StoreError> {
        let conn = self.db.lock();
        let mut statement = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM photos WHERE classroom_id = ?1 ORDER BY received_at DESC, id"
        ))?;
        let records = statement
            .query_map([classroom_id.to_string()], record_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(records)
    }

    fn all(&self) -> Result<Vec<PhotoRecord>, StoreError> {
        let conn = self.db.lock();
        let mut statement = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM photos ORDER BY received_at, id"
        ))?;
        let records = statement
            .query_map([], record_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(records)
    }

    fn count(&self) -> Result<u64, StoreError> {
        let conn = self.db.lock();
        let count: i64 = conn.query_row("SELECT COUNT(*) FROM photos", [], |row| row.get(0))?;
        Ok(count as u64)
    }

    fn delete(&self, id: Uuid) -> Result<bool, StoreError> {
        self.delete_with(id, None)
    }

    fn delete_audited(
        &self,
        id: Uuid,
        audit: &AuditLog,
        at: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        self.delete_with(id, Some((audit, at, event)))
    }

    fn remove_strays(&self, older_than: std::time::Duration) -> Result<usize, StoreError> {
        let entries = fs::read_dir(&self.dir).map_err(|source| file_error(&self.dir, source))?;

        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(|source| file_error(&self.dir, source))?;
            let path = entry.path();

            // `<id>.sealed`, or a temporary `<id>.sealed.tmp-<pid>` a crash left.
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name
                .split_once(".sealed")
                .and_then(|(id, _)| Uuid::parse_str(id).ok())
            else {
                continue;
            };

            let old_enough = entry
                .metadata()
                .and_then(|metadata| metadata.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age >= older_than);
            let is_temporary = !name.ends_with(".sealed");
            if !old_enough || (!is_temporary && self.get(id)?.is_some()) {
                continue;
            }

            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(file_error(&path, source)),
            }
        }
        Ok(removed)
    }
}

const COLUMNS: &str = "id, device_id, classroom_id, captured_at, received_at, device_sent_at,
    faces, width, height, damaged, envelope_sha256";

fn record_from_row(row: &Row<'_>) -> rusqlite::Result<PhotoRecord> {
    let digest: Vec<u8> = row.get(10)?;
    Ok(PhotoRecord {
        id: sqlite_uuid(row, 0)?,
        device_id: sqlite_uuid(row, 1)?,
        classroom_id: sqlite_uuid(row, 2)?,
        captured_at: from_millis(row.get(3)?),
        received_at: from_millis(row.get(4)?),
        device_sent_at: from_millis(row.get(5)?),
        faces: row.get(6)?,
        width: row.get(7)?,
        height: row.get(8)?,
        damaged: row.get(9)?,
        envelope_sha256: digest.try_into().unwrap_or([0u8; 32]),
    })
}

/// Reads a UUID stored as text.
pub(crate) fn sqlite_uuid(row: &Row<'_>, index: usize) -> rusqlite::Result<Uuid> {
    let text: String = row.get(index)?;
    Uuid::parse_str(&text).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            Box::new(error),
        )
    })
}

fn file_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::File {
        path: path.display().to_string(),
        source,
    }
}
