//! Classrooms, parents and devices: who may log in, and which device belongs where.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use guardian_protocol::{DeviceSigningKey, DeviceVerifyingKey, HubPublicKeys, Provisioning};
use rand::RngCore;
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::audit::{Actor, AuditError, AuditEvent, AuditKind, AuditLog};
use crate::clock::Clock;
use crate::db::{to_millis, Db};
use crate::store::sqlite_uuid;

/// The shortest password a parent may choose.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// The hub's own login on its broker.
pub const HUB_MQTT_USERNAME: &str = "guardian-hub";

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0:?} is not a phone number in E.164 form; write it like +34600111222")]
    InvalidPhone(String),

    #[error("the password is too short: use at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,

    #[error("a classroom named {0:?} already exists")]
    ClassroomExists(String),

    #[error("no classroom is named {0:?}; create it first with `guardian-hub classroom add`")]
    UnknownClassroom(String),

    #[error("the classroom name must not be empty")]
    EmptyName,

    #[error("a parent with phone {0} already exists")]
    PhoneTaken(String),

    #[error("no parent has phone {0}")]
    UnknownParent(String),

    #[error("cannot hash the password: {0}")]
    Hash(String),

    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),

    #[error(transparent)]
    Audit(#[from] AuditError),
}

#[derive(Debug, Clone)]
pub struct Parent {
    pub id: Uuid,
    pub name: String,
    pub phone: String,
    pub classroom_id: Uuid,
    pub locked: bool,
}

#[derive(Debug, Clone)]
pub struct Device {
    pub id: Uuid,
    pub classroom_id: Uuid,
    pub verifying_key: DeviceVerifyingKey,
    pub revoked: bool,
}

#[derive(Clone)]
pub struct Accounts {
    db: Db,
    clock: Arc<dyn Clock>,
    audit: AuditLog,
}

impl Accounts {
    pub fn new(db: Db, clock: Arc<dyn Clock>, audit: AuditLog) -> Self {
        Self { db, clock, audit }
    }

    pub fn add_classroom(&self, name: &str) -> Result<Uuid, AccountError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(AccountError::EmptyName);
        }

        let id = Uuid::new_v4();
        let now = self.clock.now();
        let mut conn = self.db.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT INTO classrooms (id, name, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO NOTHING",
            params![id.to_string(), name, to_millis(now)],
        )?;
        if inserted == 0 {
            return Err(AccountError::ClassroomExists(name.to_owned()));
        }
        let head = self.audit.append(
            &tx,
            now,
            &AuditEvent::new(AuditKind::ClassroomAdded, Actor::Operator).subject(id),
        )?;
        tx.commit()?;
        self.audit.publish_head(&head)?;
        Ok(id)
    }

    pub fn classroom_id(&self, name: &str) -> Result<Uuid, AccountError> {
        let conn = self.db.lock();
        conn.query_row(
            "SELECT id FROM classrooms WHERE name = ?1",
            [name.trim()],
            |row| sqlite_uuid(row, 0),
        )
        .optional()?
        .ok_or_else(|| AccountError::UnknownClassroom(name.to_owned()))
    }

    pub fn add_parent(
        &self,
        name: &str,
        phone: &str,
        password: &str,
        classroom: &str,
    ) -> Result<Uuid, AccountError> {
        let phone = normalise_phone(phone)?;
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(AccountError::PasswordTooShort);
        }
        let classroom_id = self.classroom_id(classroom)?;
        let password_hash = hash_password(password)?;

        let id = Uuid::new_v4();
        let now = self.clock.now();
        let mut conn = self.db.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT INTO parents (id, name, phone, password_hash, classroom_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (phone) DO NOTHING",
            params![
                id.to_string(),
                name.trim(),
                phone,
                password_hash,
                classroom_id.to_string(),
                to_millis(now)
            ],
        )?;
        if inserted == 0 {
            return Err(AccountError::PhoneTaken(phone));
        }
        let head = self.audit.append(
            &tx,
            now,
            &AuditEvent::new(AuditKind::ParentAdded, Actor::Operator)
                .subject(id)
                .detail(json!({ "classroom_id": classroom_id })),
        )?;
        tx.commit()?;
        self.audit.publish_head(&head)?;
        Ok(id)
    }

    /// Lifts the lock that 20 consecutive wrong codes put on a parent.
    pub fn unlock_parent(&self, phone: &str) -> Result<Uuid, AccountError> {
        let phone = normalise_phone(phone)?;
        let now = self.clock.now();
        let mut conn = self.db.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id = tx
            .query_row(
                "UPDATE parents SET locked = 0, failed_codes = 0 WHERE phone = ?1 RETURNING id",
                [&phone],
                |row| sqlite_uuid(row, 0),
            )
            .optional()?
            .ok_or_else(|| AccountError::UnknownParent(phone.clone()))?;
        let head = self.audit.append(
            &tx,
            now,
            &AuditEvent::new(AuditKind::ParentUnlocked, Actor::Operator).subject(id),
        )?;
        tx.commit()?;
        self.audit.publish_head(&head)?;
        Ok(id)
    }

    /// Checks a login. Returns `None` for an unknown phone or a wrong password
    /// alike; both cost one argon2 verification, so timing does not tell them apart.
    pub fn check_login(&self, phone: &str, password: &str) -> Result<Option<Parent>, AccountError> {
        let Ok(phone) = normalise_phone(phone) else {
            return Ok(None);
        };
        let found = {
            let conn = self.db.lock();
            conn.query_row(
                &format!("SELECT {PARENT_COLUMNS}, password_hash FROM parents WHERE phone = ?1"),
                [&phone],
                |row| Ok((parent_from_row(row)?, row.get::<_, String>(5)?)),
            )
            .optional()?
        };

        let (parent, hash) = match found {
            Some((parent, hash)) => (Some(parent), hash),
            None => (None, dummy_hash().to_owned()),
        };
        let matches = PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false);
        Ok(parent.filter(|_| matches))
    }

    pub fn parent(&self, id: Uuid) -> Result<Option<Parent>, AccountError> {
        let conn = self.db.lock();
        Ok(conn
            .query_row(
                &format!("SELECT {PARENT_COLUMNS} FROM parents WHERE id = ?1"),
                [id.to_string()],
                parent_from_row,
            )
            .optional()?)
    }

    /// Registers a device and returns its provisioning file. The hub keeps only
    /// the device's public key and a hash of its MQTT password.
    pub fn add_device(
        &self,
        classroom: &str,
        broker: &str,
        hub: HubPublicKeys,
    ) -> Result<Provisioning, AccountError> {
        let classroom_id = self.classroom_id(classroom)?;
        let id = Uuid::new_v4();
        let key = DeviceSigningKey::generate();
        let username = format!("device-{id}");
        let mut password_bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut password_bytes);
        let password = hex::encode(password_bytes);

        let now = self.clock.now();
        let mut conn = self.db.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO devices (id, classroom_id, mqtt_username, mqtt_password_hash,
                verifying_key, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                id.to_string(),
                classroom_id.to_string(),
                username,
                mqtt_password_digest(&password),
                key.verifying_key().to_bytes().as_slice(),
                to_millis(now)
            ],
        )?;
        let head = self.audit.append(
            &tx,
            now,
            &AuditEvent::new(AuditKind::DeviceRegistered, Actor::Operator)
                .subject(id)
                .detail(json!({ "classroom_id": classroom_id })),
        )?;
        tx.commit()?;
        self.audit.publish_head(&head)?;

        Ok(Provisioning::new(
            id,
            classroom.trim().to_owned(),
            broker.to_owned(),
            username,
            password,
            &key,
            hub,
        ))
    }

    pub fn device(&self, id: Uuid) -> Result<Option<Device>, AccountError> {
        let conn = self.db.lock();
        let row = conn
            .query_row(
                "SELECT id, classroom_id, verifying_key, revoked_at IS NOT NULL
                 FROM devices WHERE id = ?1",
                [id.to_string()],
                |row| {
                    Ok((
                        sqlite_uuid(row, 0)?,
                        sqlite_uuid(row, 1)?,
                        row.get::<_, Vec<u8>>(2)?,
                        row.get::<_, bool>(3)?,
                    ))
                },
            )
            .optional()?;

        Ok(row.and_then(|(id, classroom_id, key, revoked)| {
            let key: [u8; 32] = key.try_into().ok()?;
            Some(Device {
                id,
                classroom_id,
                verifying_key: DeviceVerifyingKey::from_bytes(&key).ok()?,
                revoked,
            })
        }))
    }

    /// Checks a device's broker login. Device passwords are 256 random bits, so
    /// a SHA-256 digest (fast enough to run on every connect) cannot be reversed.
    pub fn check_device_mqtt_login(&self, username: &str, password: &str) -> bool {
        let stored: Option<String> = {
            let conn = self.db.lock();
            conn.query_row(
                "SELECT mqtt_password_hash FROM devices
                 WHERE mqtt_username = ?1 AND revoked_at IS NULL",
                [username],
                |row| row.get(0),
            )
            .optional()
            .unwrap_or(None)
        };
        stored.is_some_and(|digest| {
            bool::from(
                digest
                    .as_bytes()
                    .ct_eq(mqtt_password_digest(password).as_bytes()),
            )
        })
    }

    pub fn record_device_seen(&self, id: Uuid, skew_ms: i64) -> Result<(), AccountError> {
        let conn = self.db.lock();
        conn.execute(
            "UPDATE devices SET last_seen_at = ?2, last_skew_ms = ?3 WHERE id = ?1",
            params![id.to_string(), to_millis(self.clock.now()), skew_ms],
        )?;
        Ok(())
    }
}

const PARENT_COLUMNS: &str = "id, name, phone, classroom_id, locked";

fn parent_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Parent> {
    Ok(Parent {
        id: sqlite_uuid(row, 0)?,
        name: row.get(1)?,
        phone: row.get(2)?,
        classroom_id: sqlite_uuid(row, 3)?,
        locked: row.get(4)?,
    })
}

/// Accepts E.164 numbers: a plus, a non-zero digit, then 6 to 14 more digits.
/// Spaces and dashes a person may type are removed first.
pub fn normalise_phone(phone: &str) -> Result<String, AccountError> {
    let compact: String = phone
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
        .collect();
    let digits = compact.strip_prefix('+').unwrap_or("");
    let valid = digits.len() >= 7
        && digits.len() <= 15
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0');
    if valid {
        Ok(compact)
    } else {
        Err(AccountError::InvalidPhone(phone.to_owned()))
    }
}

fn hash_password(password: &str) -> Result<String, AccountError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| AccountError::Hash(error.to_string()))
}

/// A real argon2id hash of a random password, verified against when the phone
/// is unknown so that a login for a stranger takes as long as for a parent.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut random = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut random);
        hash_password(&hex::encode(random)).unwrap_or_default()
    })
}

pub fn mqtt_password_digest(password: &str) -> String {
    hex::encode(Sha256::digest(password.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_must_be_e164() {
        assert_eq!(normalise_phone("+34 600-111-222").unwrap(), "+34600111222");
        for bad in [
            "600111222",
            "+0123456789",
            "+34",
            "+34abc111222",
            "",
            "+1234567890123456",
        ] {
            assert!(normalise_phone(bad).is_err(), "{bad} accepted");
        }
    }
}
