//! The classroom devices as the hub sees them: the heartbeats they send, the
//! teacher PINs that unlock them, and revocation.
//!
//! A device holds the argon2id hashes of the PINs of its classroom's teachers,
//! never the PINs. It reports the digest of the set it holds in every
//! heartbeat; the hub answers with a fresh signed set only when the digests
//! differ, so a PIN changed at the command line reaches the classroom within
//! one heartbeat, without the command talking to the running hub.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::{DateTime, Utc};
use guardian_protocol::{pins_digest, Heartbeat, TeacherPin, TeacherPins, MAX_TEACHERS_PER_DEVICE};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::accounts::{AccountError, Device, Role};
use crate::audit::{Actor, AuditError, AuditEvent, AuditKind};
use crate::db::{from_millis, to_millis};
use crate::store::sqlite_uuid;
use crate::Hub;

/// The shortest and longest PIN, in digits.
pub const MIN_PIN_DIGITS: usize = 4;
pub const MAX_PIN_DIGITS: usize = 8;

/// Argon2id cost of a PIN hash: 8 MiB and 3 passes, about 50 ms on a Pi 4,
/// which checks the entered PIN against every teacher of its classroom. A
/// heavier hash would not protect much more: a PIN has at most 10^8 values.
const PIN_MEMORY_KIB: u32 = 8 * 1024;
const PIN_PASSES: u32 = 3;

/// Text of a device's last error kept for the admin page, at most.
const MAX_ERROR_CHARS: usize = 300;

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error(
        "the PIN must be {MIN_PIN_DIGITS} to {MAX_PIN_DIGITS} digits, with no spaces or letters"
    )]
    PinNotDigits,

    #[error("the PIN {0}; choose one that is harder to guess")]
    PinTooEasy(&'static str),

    #[error("no teacher has phone {0}; add them with `guardian-hub teacher add`")]
    UnknownTeacher(String),

    #[error("no device has id {0}; `guardian-hub device list` shows them")]
    UnknownDevice(Uuid),

    #[error("cannot hash the PIN: {0}")]
    Hash(String),

    #[error(transparent)]
    Account(#[from] AccountError),

    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),

    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// One device as the admin page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceStatus {
    pub id: Uuid,
    pub classroom: String,
    pub registered_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The last message of any kind, photo or heartbeat.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// How far the device's clock was ahead of the hub's (negative: behind).
    pub clock_skew_ms: Option<i64>,
    pub heartbeat: Option<HeartbeatStatus>,
}

/// What the newest heartbeat said.
#[derive(Debug, Clone, Serialize)]
pub struct HeartbeatStatus {
    pub received_at: DateTime<Utc>,
    pub version: String,
    pub outbox_len: u32,
    pub quarantined: u32,
    pub last_error: Option<String>,
    pub clock_synced: bool,
}

/// Sets (or replaces) the PIN a teacher types on their classroom's devices.
/// The devices learn it at their next heartbeat.
pub fn set_pin(hub: &Hub, phone: &str, pin: &str) -> Result<Uuid, FleetError> {
    check_pin(pin)?;
    let teacher = hub
        .accounts
        .account_by_phone(phone)?
        .filter(|account| account.role == Role::Teacher)
        .ok_or_else(|| FleetError::UnknownTeacher(phone.to_owned()))?;
    let pin_hash = hash_pin(pin)?;

    let now = hub.clock.now();
    let mut conn = hub.db.lock();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO teacher_pins (teacher_id, pin_hash, set_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (teacher_id) DO UPDATE SET pin_hash = ?2, set_at = ?3",
        params![teacher.id.to_string(), pin_hash, to_millis(now)],
    )?;
    hub.audit.commit_with(
        tx,
        now,
        &AuditEvent::new(AuditKind::TeacherPinSet, Actor::Operator).subject(teacher.id),
    )?;
    Ok(teacher.id)
}

/// Refuses PINs that are not digits, of the wrong length, or among the first
/// a child watching the teacher would try.
pub fn check_pin(pin: &str) -> Result<(), FleetError> {
    let digits: Vec<u8> = pin.bytes().collect();
    if !(MIN_PIN_DIGITS..=MAX_PIN_DIGITS).contains(&digits.len())
        || !digits.iter().all(u8::is_ascii_digit)
    {
        return Err(FleetError::PinNotDigits);
    }

    if digits.iter().all(|&d| d == digits[0]) {
        return Err(FleetError::PinTooEasy("repeats one digit"));
    }
    let steps: Vec<i16> = digits
        .windows(2)
        .map(|pair| i16::from(pair[1]) - i16::from(pair[0]))
        .collect();
    if steps.iter().all(|&step| step == 1) || steps.iter().all(|&step| step == -1) {
        return Err(FleetError::PinTooEasy("is a run of consecutive digits"));
    }
    Ok(())
}

fn hash_pin(pin: &str) -> Result<String, FleetError> {
    let params = Params::new(PIN_MEMORY_KIB, PIN_PASSES, 1, None)
        .map_err(|error| FleetError::Hash(error.to_string()))?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(pin.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| FleetError::Hash(error.to_string()))
}

/// Records a device's heartbeat and returns the PIN set to send it when the
/// set it holds is not the current one.
pub fn record_heartbeat(
    hub: &Hub,
    device: &Device,
    heartbeat: &Heartbeat,
    received_at: DateTime<Utc>,
) -> Result<Option<TeacherPins>, FleetError> {
    // One line each: `device list` prints a device per line.
    let last_error = heartbeat.last_error.as_deref().map(|text| {
        text.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_ERROR_CHARS)
            .collect::<String>()
    });
    let version: String = heartbeat.version.chars().take(40).collect();

    let conn = hub.db.lock();
    conn.execute(
        "INSERT INTO device_heartbeats (device_id, received_at, sent_at, version, outbox_len,
                quarantined, last_error, clock_synced)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (device_id) DO UPDATE SET received_at = ?2, sent_at = ?3, version = ?4,
                outbox_len = ?5, quarantined = ?6, last_error = ?7, clock_synced = ?8",
        params![
            device.id.to_string(),
            to_millis(received_at),
            to_millis(heartbeat.sent_at),
            version,
            heartbeat.outbox_len,
            heartbeat.quarantined,
            last_error,
            heartbeat.clock_synced,
        ],
    )?;

    let pins = pins_for(&conn, device, received_at)?;
    let current = pins_digest(&pins.teachers);
    Ok((heartbeat.pins_digest != Some(current)).then_some(pins))
}

/// The PIN set of a device: every teacher of its classroom who has a PIN.
pub fn pins_for(
    conn: &Connection,
    device: &Device,
    now: DateTime<Utc>,
) -> Result<TeacherPins, FleetError> {
    let mut statement = conn.prepare(
        "SELECT a.id, a.name, p.pin_hash
         FROM teacher_classrooms tc
         JOIN accounts a ON a.id = tc.teacher_id
         JOIN teacher_pins p ON p.teacher_id = a.id
         WHERE tc.classroom_id = ?1
         ORDER BY p.set_at DESC
         LIMIT ?2",
    )?;
    let teachers = statement
        .query_map(
            params![device.classroom_id.to_string(), MAX_TEACHERS_PER_DEVICE],
            |row| {
                Ok(TeacherPin {
                    teacher_id: sqlite_uuid(row, 0)?,
                    name: row.get(1)?,
                    pin_hash: row.get(2)?,
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;

    Ok(TeacherPins {
        device_id: device.id,
        issued_at: now,
        teachers,
    })
}

/// Every registered device, newest first.
pub fn list(hub: &Hub) -> Result<Vec<DeviceStatus>, FleetError> {
    let conn = hub.db.lock();
    let mut statement = conn.prepare(
        "SELECT d.id, c.name, d.created_at, d.revoked_at, d.last_seen_at, d.last_skew_ms,
                h.received_at, h.version, h.outbox_len, h.quarantined, h.last_error,
                h.clock_synced
         FROM devices d
         JOIN classrooms c ON c.id = d.classroom_id
         LEFT JOIN device_heartbeats h ON h.device_id = d.id
         ORDER BY d.created_at DESC",
    )?;
    let devices = statement
        .query_map([], |row| {
            let heartbeat = match row.get::<_, Option<i64>>(6)? {
                Some(received_at) => Some(HeartbeatStatus {
                    received_at: from_millis(received_at),
                    version: row.get(7)?,
                    outbox_len: row.get(8)?,
                    quarantined: row.get(9)?,
                    last_error: row.get(10)?,
                    clock_synced: row.get(11)?,
                }),
                None => None,
            };
            Ok(DeviceStatus {
                id: sqlite_uuid(row, 0)?,
                classroom: row.get(1)?,
                registered_at: from_millis(row.get(2)?),
                revoked_at: row.get::<_, Option<i64>>(3)?.map(from_millis),
                last_seen_at: row.get::<_, Option<i64>>(4)?.map(from_millis),
                clock_skew_ms: row.get(5)?,
                heartbeat,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(devices)
}

/// Revokes a device: the broker refuses its login from now on and the hub
/// drops whatever it still sends, answering only that it is revoked.
/// Photos it delivered before stay. Revoking twice changes nothing and
/// returns `false`.
pub fn revoke(hub: &Hub, device_id: Uuid, actor: Actor) -> Result<bool, FleetError> {
    let now = hub.clock.now();
    let mut conn = hub.db.lock();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let revoked_at: Option<Option<i64>> = tx
        .query_row(
            "SELECT revoked_at FROM devices WHERE id = ?1",
            [device_id.to_string()],
            |row| row.get(0),
        )
        .optional()?;
    match revoked_at {
        None => return Err(FleetError::UnknownDevice(device_id)),
        Some(Some(_)) => return Ok(false),
        Some(None) => {}
    }

    tx.execute(
        "UPDATE devices SET revoked_at = ?2 WHERE id = ?1",
        params![device_id.to_string(), to_millis(now)],
    )?;
    hub.audit.commit_with(
        tx,
        now,
        &AuditEvent::new(AuditKind::DeviceRevoked, actor).subject(format!("device:{device_id}")),
    )?;
    drop(conn);

    // Already logged when it fails; the revocation holds either way, since
    // the hub drops whatever a revoked device still sends.
    let _ = hub.refresh_mosquitto();
    Ok(true)
}

/// When the device was revoked, if it was.
pub fn revoked_at(hub: &Hub, device_id: Uuid) -> Result<Option<DateTime<Utc>>, FleetError> {
    let conn = hub.db.lock();
    let at: Option<Option<i64>> = conn
        .query_row(
            "SELECT revoked_at FROM devices WHERE id = ?1",
            [device_id.to_string()],
            |row| row.get(0),
        )
        .optional()?;
    Ok(at.flatten().map(from_millis))
}

/// Audits that a revoked device was told so, with how many bytes it sent.
pub fn record_told_revoked(hub: &Hub, device_id: Uuid, bytes: usize) {
    let event = AuditEvent::new(AuditKind::DeviceToldRevoked, Actor::Device(device_id))
        .subject(format!("device:{device_id}"))
        .detail(json!({ "bytes": bytes }));
    if let Err(error) = hub
        .audit
        .record(&mut hub.db.lock(), hub.clock.now(), &event)
    {
        tracing::error!(%error, %device_id, "cannot audit a message from a revoked device");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_must_be_digits_of_sensible_length_and_not_trivial() {
        for good in ["2580", "739104", "11112222", "1357"] {
            assert!(check_pin(good).is_ok(), "{good}");
        }
        for bad in ["123", "123456789", "12a4", " 2580", "", "２５８０"] {
            assert!(
                matches!(check_pin(bad), Err(FleetError::PinNotDigits)),
                "{bad}"
            );
        }
        for easy in ["0000", "999999", "1234", "456789", "9876", "3210"] {
            assert!(
                matches!(check_pin(easy), Err(FleetError::PinTooEasy(_))),
                "{easy}"
            );
        }
    }

    #[test]
    fn a_pin_hash_is_argon2id_with_its_own_salt() {
        let a = hash_pin("2580").unwrap();
        let b = hash_pin("2580").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=8192,t=3,p=1$"), "{a}");
        assert_ne!(a, b);
        assert!(!a.contains("2580"));
    }
}
