//! Classrooms, accounts and devices: who may log in, with which role, and which
//! device belongs where.
//!
//! Everyone who logs in has one row in `accounts` (phone, argon2id password,
//! role). Admins run the school's hub; teachers belong to one or more
//! classrooms; guardians (parents) hold the code-check state of originals in
//! `guardians` and reach children through `guardian_links` (see
//! [`crate::children`]). One phone number is one account with one role.

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

/// The shortest password anyone may choose.
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

    #[error("phone {phone} already belongs to an account (role: {role}); use another number")]
    PhoneTaken { phone: String, role: Role },

    #[error("no parent has phone {0}")]
    UnknownParent(String),

    #[error("no teacher has phone {0}; add them with `guardian-hub teacher add`")]
    UnknownTeacher(String),

    #[error("no guardian has phone {0}; add them first with `guardian-hub parent add`")]
    UnknownGuardian(String),

    #[error("no child has id {0}; `guardian-hub child add` prints the ids")]
    UnknownChild(String),

    #[error("the name must not be empty")]
    EmptyPersonName,

    #[error("cannot hash the password: {0}")]
    Hash(String),

    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),

    #[error(transparent)]
    Audit(#[from] AuditError),

    /// A photo could not be removed from the store.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// What an account may do. Stored as its [`Role::as_str`] name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Runs the school's hub: accounts, children, consent on a family's behalf.
    Admin,
    /// Reviews the photos of their own classrooms.
    Teacher,
    /// A parent or legal guardian of one or more children.
    Guardian,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Teacher => "teacher",
            Self::Guardian => "guardian",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "teacher" => Some(Self::Teacher),
            "guardian" => Some(Self::Guardian),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Someone who logs in.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: Uuid,
    pub role: Role,
    pub name: String,
    pub phone: String,
}

/// A guardian's account with what only guardians have.
#[derive(Debug, Clone)]
pub struct Parent {
    pub id: Uuid,
    pub name: String,
    pub phone: String,
    /// The classroom the family was recorded in (`parent add --classroom`);
    /// it grants nothing: a guardian sees photos only through their children.
    pub classroom_id: Option<Uuid>,
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
        self.audit.commit_with(
            tx,
            now,
            &AuditEvent::new(AuditKind::ClassroomAdded, Actor::Operator).subject(id),
        )?;
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

    /// Adds a parent to a classroom: the first version's command, kept for
    /// scripts. Same as [`Accounts::add_guardian`] with a classroom.
    pub fn add_parent(
        &self,
        name: &str,
        phone: &str,
        password: &str,
        classroom: &str,
    ) -> Result<Uuid, AccountError> {
        self.add_guardian(name, phone, password, Some(classroom))
    }

    /// Adds a guardian. The classroom, if given, only records where the
    /// family belongs: a guardian sees photos through the children linked to
    /// them (see [`crate::visibility`]).
    pub fn add_guardian(
        &self,
        name: &str,
        phone: &str,
        password: &str,
        classroom: Option<&str>,
    ) -> Result<Uuid, AccountError> {
        let classroom_id = classroom.map(|name| self.classroom_id(name)).transpose()?;
        let new = NewAccount::check(name, phone, password)?;

        self.insert_account(
            &new,
            Role::Guardian,
            AuditKind::ParentAdded,
            json!({ "classroom_id": classroom_id }),
            |tx, id, _| {
                tx.execute(
                    "INSERT INTO guardians (id, classroom_id) VALUES (?1, ?2)",
                    params![id.to_string(), classroom_id.map(|id| id.to_string())],
                )
            },
        )
    }

    /// Adds an admin: someone who runs the school's hub.
    pub fn add_admin(&self, name: &str, phone: &str, password: &str) -> Result<Uuid, AccountError> {
        let new = NewAccount::check(name, phone, password)?;

        self.insert_account(
            &new,
            Role::Admin,
            AuditKind::AdminAdded,
            json!({}),
            |_, _, _| Ok(0),
        )
    }

    /// Adds a teacher of one classroom. A teacher of several classrooms is
    /// added once and then given each further one with
    /// [`Accounts::assign_teacher`].
    pub fn add_teacher(
        &self,
        name: &str,
        phone: &str,
        password: &str,
        classroom: &str,
    ) -> Result<Uuid, AccountError> {
        let classroom_id = self.classroom_id(classroom)?;
        let new = NewAccount::check(name, phone, password)?;

        self.insert_account(
            &new,
            Role::Teacher,
            AuditKind::TeacherAdded,
            json!({ "classroom_id": classroom_id }),
            |tx, id, now| {
                tx.execute(
                    "INSERT INTO teacher_classrooms (teacher_id, classroom_id, added_at)
                     VALUES (?1, ?2, ?3)",
                    params![id.to_string(), classroom_id.to_string(), to_millis(now)],
                )
            },
        )
    }

    /// Inserts an account of `role`, lets `role_rows` add the rows only that
    /// role has, and audits it, all in one transaction.
    fn insert_account(
        &self,
        new: &NewAccount,
        role: Role,
        kind: AuditKind,
        detail: serde_json::Value,
        role_rows: impl FnOnce(
            &rusqlite::Transaction<'_>,
            Uuid,
            chrono::DateTime<chrono::Utc>,
        ) -> rusqlite::Result<usize>,
    ) -> Result<Uuid, AccountError> {
        let now = self.clock.now();
        let mut conn = self.db.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id = new.insert(&tx, role, now)?;
        role_rows(&tx, id, now)?;
        self.audit.commit_with(
            tx,
            now,
            &AuditEvent::new(kind, Actor::Operator)
                .subject(id)
                .detail(detail),
        )?;
        Ok(id)
    }

    /// Makes an existing teacher a teacher of one more classroom. Returns the
    /// teacher's id; assigning a classroom they already have changes nothing.
    pub fn assign_teacher(&self, phone: &str, classroom: &str) -> Result<Uuid, AccountError> {
        let phone = normalise_phone(phone)?;
        let classroom_id = self.classroom_id(classroom)?;
        let account = self
            .account_by_phone(&phone)?
            .ok_or_else(|| AccountError::UnknownTeacher(phone.clone()))?;
        if account.role != Role::Teacher {
            return Err(AccountError::PhoneTaken {
                phone,
                role: account.role,
            });
        }

        let now = self.clock.now();
        let mut conn = self.db.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT INTO teacher_classrooms (teacher_id, classroom_id, added_at) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
            params![account.id.to_string(), classroom_id.to_string(), to_millis(now)],
        )?;
        if inserted == 0 {
            return Ok(account.id);
        }
        self.audit.commit_with(
            tx,
            now,
            &AuditEvent::new(AuditKind::TeacherAssigned, Actor::Operator)
                .subject(account.id)
                .detail(json!({ "classroom_id": classroom_id })),
        )?;
        Ok(account.id)
    }

    /// The classrooms a teacher teaches, by id; empty for anyone else.
    pub fn teacher_classrooms(&self, teacher_id: Uuid) -> Result<Vec<Uuid>, AccountError> {
        let conn = self.db.lock();
        let mut statement = conn.prepare(
            "SELECT classroom_id FROM teacher_classrooms WHERE teacher_id = ?1 ORDER BY added_at, rowid",
        )?;
        let ids = statement
            .query_map([teacher_id.to_string()], |row| sqlite_uuid(row, 0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ids)
    }

    /// Whether this account teaches this classroom: the check a teacher's
    /// route makes before it shows anything of a classroom.
    pub fn teaches(&self, teacher_id: Uuid, classroom_id: Uuid) -> Result<bool, AccountError> {
        let conn = self.db.lock();
        Ok(conn
            .query_row(
                "SELECT 1 FROM teacher_classrooms WHERE teacher_id = ?1 AND classroom_id = ?2",
                params![teacher_id.to_string(), classroom_id.to_string()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// The account that logs in with this phone number, whatever its role.
    pub fn account_by_phone(&self, phone: &str) -> Result<Option<Account>, AccountError> {
        let phone = normalise_phone(phone)?;
        let conn = self.db.lock();
        Ok(conn
            .query_row(
                &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE phone = ?1"),
                [&phone],
                account_from_row,
            )
            .optional()?)
    }

    pub fn account(&self, id: Uuid) -> Result<Option<Account>, AccountError> {
        let conn = self.db.lock();
        Ok(conn
            .query_row(
                &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1"),
                [id.to_string()],
                account_from_row,
            )
            .optional()?)
    }

    /// Lifts the lock that 20 consecutive wrong codes put on a parent.
    pub fn unlock_parent(&self, phone: &str) -> Result<Uuid, AccountError> {
        let phone = normalise_phone(phone)?;
        let now = self.clock.now();
        let mut conn = self.db.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id = tx
            .query_row(
                "UPDATE guardians SET locked = 0, failed_codes = 0
                 WHERE id = (SELECT id FROM accounts WHERE phone = ?1) RETURNING id",
                [&phone],
                |row| sqlite_uuid(row, 0),
            )
            .optional()?
            .ok_or_else(|| AccountError::UnknownParent(phone.clone()))?;
        self.audit.commit_with(
            tx,
            now,
            &AuditEvent::new(AuditKind::ParentUnlocked, Actor::Operator).subject(id),
        )?;
        Ok(id)
    }

    /// Checks a login, for any role. Returns `None` for an unknown phone or a
    /// wrong password alike; both cost one argon2 verification, so timing does
    /// not tell them apart.
    pub fn check_login(
        &self,
        phone: &str,
        password: &str,
    ) -> Result<Option<Account>, AccountError> {
        let Ok(phone) = normalise_phone(phone) else {
            return Ok(None);
        };
        let found = {
            let conn = self.db.lock();
            conn.query_row(
                &format!("SELECT {ACCOUNT_COLUMNS}, password_hash FROM accounts WHERE phone = ?1"),
                [&phone],
                |row| Ok((account_from_row(row)?, row.get::<_, String>(4)?)),
            )
            .optional()?
        };

        let (account, hash) = match found {
            Some((account, hash)) => (Some(account), hash),
            None => (None, dummy_hash().to_owned()),
        };
        let matches = PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false);
        Ok(account.filter(|_| matches))
    }

    /// A guardian, with their code-check state; `None` for another role.
    pub fn parent(&self, id: Uuid) -> Result<Option<Parent>, AccountError> {
        let conn = self.db.lock();
        Ok(conn
            .query_row(
                &format!(
                    "SELECT {PARENT_COLUMNS} FROM accounts a JOIN guardians g ON g.id = a.id
                     WHERE a.id = ?1 AND a.role = 'guardian'"
                ),
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
        tx.execute(
            "INSERT INTO mosquitto_logins (device_id, password_hash) VALUES (?1, ?2)",
            params![id.to_string(), crate::mosquitto::password_hash(&password)],
        )?;
        self.audit.commit_with(
            tx,
            now,
            &AuditEvent::new(AuditKind::DeviceRegistered, Actor::Operator)
                .subject(id)
                .detail(json!({ "classroom_id": classroom_id })),
        )?;

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

const ACCOUNT_COLUMNS: &str = "id, role, name, phone";

fn account_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    let role: String = row.get(1)?;
    let role = Role::parse(&role).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            1,
            rusqlite::types::Type::Text,
            format!("unknown role {role:?}").into(),
        )
    })?;
    Ok(Account {
        id: sqlite_uuid(row, 0)?,
        role,
        name: row.get(2)?,
        phone: row.get(3)?,
    })
}

const PARENT_COLUMNS: &str = "a.id, a.name, a.phone, g.classroom_id, g.locked";

fn parent_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Parent> {
    let classroom_id = match row.get::<_, Option<String>>(3)? {
        Some(_) => Some(sqlite_uuid(row, 3)?),
        None => None,
    };
    Ok(Parent {
        id: sqlite_uuid(row, 0)?,
        name: row.get(1)?,
        phone: row.get(2)?,
        classroom_id,
        locked: row.get(4)?,
    })
}

/// A new account's details, checked before anything is written.
struct NewAccount {
    name: String,
    phone: String,
    password_hash: String,
}

impl NewAccount {
    fn check(name: &str, phone: &str, password: &str) -> Result<Self, AccountError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(AccountError::EmptyPersonName);
        }
        let phone = normalise_phone(phone)?;
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(AccountError::PasswordTooShort);
        }
        Ok(Self {
            name: name.to_owned(),
            phone,
            password_hash: hash_password(password)?,
        })
    }

    /// Inserts the account row; a phone already in use is refused, naming the
    /// role that holds it.
    fn insert(
        &self,
        tx: &rusqlite::Transaction<'_>,
        role: Role,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Uuid, AccountError> {
        let holder: Option<String> = tx
            .query_row(
                "SELECT role FROM accounts WHERE phone = ?1",
                [&self.phone],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(holder) = holder {
            return Err(AccountError::PhoneTaken {
                phone: self.phone.clone(),
                role: Role::parse(&holder).unwrap_or(role),
            });
        }

        let id = Uuid::new_v4();
        tx.execute(
            "INSERT INTO accounts (id, role, name, phone, password_hash, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                id.to_string(),
                role.as_str(),
                self.name,
                self.phone,
                self.password_hash,
                to_millis(now)
            ],
        )?;
        Ok(id)
    }
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
