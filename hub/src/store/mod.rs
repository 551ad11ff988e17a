//! Where sealed photos live, behind a trait so that other backends (MongoDB with
//! GridFS) can take the place of the default SQLite-plus-files store.
//!
//! The store keeps each envelope exactly as the device sent it, still sealed;
//! the hub opens one in memory only to check it or to render it for a viewer.

mod sqlite;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::{AuditError, AuditEvent, AuditLog};

pub(crate) use sqlite::sqlite_uuid;
pub use sqlite::SqliteFileStore;

/// The facts about a photo that the hub keeps in the clear.
#[derive(Debug, Clone, PartialEq)]
pub struct PhotoRecord {
    pub id: Uuid,
    pub device_id: Uuid,
    pub classroom_id: Uuid,
    /// The device's clock at capture (which may have been wrong).
    pub captured_at: DateTime<Utc>,
    /// The hub's clock when the photo was stored.
    pub received_at: DateTime<Utc>,
    /// The device's clock when it sent the photo; `received_at - device_sent_at`
    /// is the device's clock skew (plus transit time).
    pub device_sent_at: DateTime<Utc>,
    pub faces: u32,
    pub width: u32,
    pub height: u32,
    pub damaged: bool,
    pub envelope_sha256: [u8; 32],
}

impl PhotoRecord {
    /// How far the device's clock was behind the hub's when it sent the photo.
    pub fn clock_skew(&self) -> chrono::Duration {
        self.received_at - self.device_sent_at
    }
}

/// What happened to a photo handed to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// Newly and durably stored.
    Stored,
    /// The same id with the same bytes was already stored; nothing changed.
    AlreadyStored,
    /// The same id is stored with other bytes; nothing changed.
    Conflict,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("photo store database error: {0}")]
    Database(#[from] rusqlite::Error),

    #[error("photo store file error on {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },

    #[error("the sealed file of photo {id} is missing or altered; restore it from backup")]
    BlobDamaged { id: Uuid },

    /// The audit entry of a deletion could not be written; the deletion was
    /// rolled back with it.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

pub trait PhotoStore: Send + Sync {
    /// Stores an envelope durably (it is on disk when this returns `Stored`).
    fn put(&self, record: &PhotoRecord, envelope: &[u8]) -> Result<PutOutcome, StoreError>;

    fn get(&self, id: Uuid) -> Result<Option<PhotoRecord>, StoreError>;

    /// The sealed envelope exactly as received, checked against its digest.
    fn envelope(&self, id: Uuid) -> Result<Vec<u8>, StoreError>;

    /// A classroom's photos, newest first.
    fn list_for_classroom(&self, classroom_id: Uuid) -> Result<Vec<PhotoRecord>, StoreError>;

    /// Every photo, oldest received first.
    fn all(&self) -> Result<Vec<PhotoRecord>, StoreError>;

    fn count(&self) -> Result<u64, StoreError>;

    /// Deletes a photo: its row and the original requests and downloads that
    /// point at it in one transaction, then its sealed file (a file already
    /// gone is fine). Returns whether a row was there.
    fn delete(&self, id: Uuid) -> Result<bool, StoreError>;

    /// Like [`PhotoStore::delete`], with `event` appended to the audit log
    /// inside the same transaction: the photo is gone exactly when its
    /// audit entry exists.
    fn delete_audited(
        &self,
        id: Uuid,
        audit: &AuditLog,
        at: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<bool, StoreError>;

    /// Removes stored bytes that no record names: left by a crash between
    /// writing a photo's bytes and its record, or between a purge's commit and
    /// the removal of its bytes. Only what is older than `older_than` is
    /// touched, so a photo being stored right now is never removed. Returns
    /// how many were removed.
    fn remove_strays(&self, older_than: std::time::Duration) -> Result<usize, StoreError>;
}
