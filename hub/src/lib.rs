//! The Guardian hub: one server per school.
//!
//! It receives sealed photos from classroom devices over MQTT, stores them still
//! sealed, and serves the page where parents see previews with every face
//! covered and, after a one-time code, a watermarked original. Every access is
//! written to a chained audit log.

pub mod accounts;
pub mod audit;
pub mod broker;
pub mod children;
pub mod clock;
pub mod codes;
pub mod consent;
pub mod db;
pub mod fleet;
pub mod ingest;
pub mod keys;
pub mod metadata;
pub mod mosquitto;
pub mod render;
pub mod retention;
pub mod review;
pub mod service;
pub mod sms;
pub mod store;
pub mod tls;
pub mod visibility;
pub mod watermark;
pub mod web;
pub mod wording;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use accounts::Accounts;
use audit::AuditLog;
use clock::Clock;
use db::{Db, DbError};
use keys::{HubKeys, KeyError};
use store::{PhotoStore, SqliteFileStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Keys(#[from] KeyError),

    #[error(transparent)]
    Database(#[from] DbError),

    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Everything one hub holds, shared by the web server, the MQTT ingest and the
/// command line.
pub struct Hub {
    pub data_dir: PathBuf,
    pub db: Db,
    pub keys: Arc<HubKeys>,
    pub clock: Arc<dyn Clock>,
    pub audit: AuditLog,
    pub accounts: Accounts,
    pub store: Arc<dyn PhotoStore>,
    /// The school's time zone, which decides where a school year starts
    /// and ends (see [`retention`]).
    pub timezone: chrono_tz::Tz,
    /// Recently viewed photos, decoded at preview size.
    pub previews: render::PreviewCache,
    /// Where the logins of an external Mosquitto broker are kept up to date
    /// (see [`mosquitto`]), if the school uses one.
    pub mosquitto_dir: Option<PathBuf>,
}

impl Hub {
    /// Opens a data directory, creating its keys and database on first use.
    pub fn open(data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Self, OpenError> {
        keys::create_private_dir(data_dir)?;
        let keys = Arc::new(HubKeys::load_or_create(data_dir)?);
        let db = Db::open(&data_dir.join("hub.sqlite"))?;
        let audit = AuditLog::new(keys.clone(), data_dir);
        let accounts = Accounts::new(db.clone(), clock.clone(), audit.clone());
        let store = Arc::new(SqliteFileStore::new(db.clone(), data_dir)?);

        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            db,
            keys,
            clock,
            audit,
            accounts,
            store,
            timezone: retention::DEFAULT_TIMEZONE,
            previews: render::PreviewCache::new(render::PREVIEW_CACHE_ENTRIES),
            mosquitto_dir: None,
        })
    }

    /// Deletes a photo for good, with its audit entry (see
    /// [`PhotoStore::delete_audited`]), and drops any copy kept in memory.
    pub fn delete_photo(
        &self,
        photo_id: uuid::Uuid,
        event: &audit::AuditEvent,
    ) -> Result<bool, StoreError> {
        let deleted = self
            .store
            .delete_audited(photo_id, &self.audit, self.clock.now(), event);
        self.previews.forget(photo_id);
        deleted
    }

    /// Keeps an external Mosquitto broker's logins in `dir` up to date.
    pub fn with_mosquitto_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.mosquitto_dir = dir;
        self
    }

    /// Rewrites the Mosquitto logins after the devices changed, if the school
    /// uses Mosquitto. A failure is logged and returned: the change itself
    /// stands, but the broker's lists are stale until the next rewrite.
    pub fn refresh_mosquitto(&self) -> Result<(), mosquitto::MosquittoError> {
        let Some(dir) = &self.mosquitto_dir else {
            return Ok(());
        };
        mosquitto::write_logins(self, dir)
            .map(drop)
            .inspect_err(|error| {
                tracing::error!(%error, "the Mosquitto logins are stale");
            })
    }

    /// Sets the school's time zone (the default is Europe/Madrid).
    pub fn with_timezone(mut self, timezone: chrono_tz::Tz) -> Self {
        self.timezone = timezone;
        self
    }
}
