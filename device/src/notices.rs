//! The hub's notices to this device: the PIN set of its classroom's teachers,
//! and revocation. Both are kept in the outbox database, so a device that
//! restarts offline still unlocks, and a revoked one stays revoked.
//!
//! A notice counts only if it verifies under the hub key of the provisioning
//! file and names this device. A PIN set replaces the one held only when the
//! hub issued it later, so a set replayed from the wire cannot bring back a
//! PIN that was changed.

use chrono::{DateTime, Utc};
use guardian_protocol::{HubNotice, HubVerifyingKey, ProtocolError, TeacherPin, TeacherPins};
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use uuid::Uuid;

use crate::outbox::{sqlite, Outbox, OutboxError};

/// Why a notice was ignored.
#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    #[error(
        "notice ignored: not signed by this device's hub; if the hub was re-keyed, provision \
         this device again"
    )]
    Forged,

    #[error("notice ignored: {0}")]
    Malformed(ProtocolError),

    #[error("notice ignored: it is for device {named}, not this device")]
    OtherDevice { named: Uuid },

    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// What a trusted notice changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// A newer PIN set replaced the one held.
    Pins { teachers: usize },
    /// A PIN set no newer than the one held; nothing changed.
    StalePins,
    /// The hub revoked this device.
    Revoked { at: DateTime<Utc> },
}

/// Verifies a notice payload and keeps what it says.
pub fn apply(
    outbox: &mut Outbox,
    payload: &[u8],
    hub: &HubVerifyingKey,
    device_id: Uuid,
) -> Result<Applied, NoticeError> {
    let notice = HubNotice::open(payload, hub).map_err(|error| match error {
        ProtocolError::BadSignature { .. } => NoticeError::Forged,
        other => NoticeError::Malformed(other),
    })?;
    if notice.device_id() != device_id {
        return Err(NoticeError::OtherDevice {
            named: notice.device_id(),
        });
    }

    match notice {
        HubNotice::Pins(pins) => {
            let teachers = pins.teachers.len();
            if outbox.store_pins(&pins)? {
                Ok(Applied::Pins { teachers })
            } else {
                Ok(Applied::StalePins)
            }
        }
        HubNotice::Revoked { revoked_at, .. } => {
            outbox.store_revocation(revoked_at)?;
            Ok(Applied::Revoked { at: revoked_at })
        }
    }
}

impl Outbox {
    /// The PIN set held, if the hub sent one.
    pub fn pins(&mut self) -> Result<Option<TeacherPins>, OutboxError> {
        let row: Option<(String, String)> = self
            .conn()
            .query_row(
                "SELECT issued_at, teachers FROM hub_pins WHERE only_row = 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(sqlite("reading the PIN set"))?;
        let Some((issued_at, teachers)) = row else {
            return Ok(None);
        };

        let bad = |detail: String| OutboxError::BadRow {
            what: "the PIN set".into(),
            detail,
        };
        let issued_at = DateTime::parse_from_rfc3339(&issued_at)
            .map_err(|error| bad(error.to_string()))?
            .with_timezone(&Utc);
        let teachers: Vec<TeacherPin> =
            serde_json::from_str(&teachers).map_err(|error| bad(error.to_string()))?;
        Ok(Some(TeacherPins {
            // The set is this device's by construction: `apply` checked it.
            device_id: Uuid::nil(),
            issued_at,
            teachers,
        }))
    }

    /// Keeps a PIN set if it is newer than the one held; returns whether it did.
    fn store_pins(&mut self, pins: &TeacherPins) -> Result<bool, OutboxError> {
        let held = self.pins()?;
        if held.is_some_and(|held| held.issued_at >= pins.issued_at) {
            return Ok(false);
        }

        let teachers =
            serde_json::to_string(&pins.teachers).map_err(|error| OutboxError::BadRow {
                what: "the PIN set".into(),
                detail: error.to_string(),
            })?;
        let tx = self
            .conn()
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite("starting to store the PIN set"))?;
        tx.execute(
            "INSERT OR REPLACE INTO hub_pins (only_row, issued_at, teachers) VALUES (1, ?1, ?2)",
            params![pins.issued_at.to_rfc3339(), teachers],
        )
        .map_err(sqlite("storing the PIN set"))?;
        tx.commit().map_err(sqlite("committing the PIN set"))?;
        Ok(true)
    }

    /// When the hub revoked this device, if it did.
    pub fn revoked_at(&mut self) -> Result<Option<DateTime<Utc>>, OutboxError> {
        let at: Option<String> = self
            .conn()
            .query_row(
                "SELECT revoked_at FROM hub_revocation WHERE only_row = 1",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(sqlite("reading the revocation"))?;
        Ok(at
            .and_then(|at| DateTime::parse_from_rfc3339(&at).ok())
            .map(|at| at.with_timezone(&Utc)))
    }

    fn store_revocation(&mut self, at: DateTime<Utc>) -> Result<(), OutboxError> {
        self.conn()
            .execute(
                "INSERT OR IGNORE INTO hub_revocation (only_row, revoked_at) VALUES (1, ?1)",
                [at.to_rfc3339()],
            )
            .map_err(sqlite("storing the revocation"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use guardian_protocol::HubSigningKey;

    use super::*;
    use crate::testutil::TempDir;

    fn pins(device_id: Uuid, issued_at: DateTime<Utc>, hash: &str) -> HubNotice {
        HubNotice::Pins(TeacherPins {
            device_id,
            issued_at,
            teachers: vec![TeacherPin {
                teacher_id: Uuid::new_v4(),
                name: "Ana Ruiz".into(),
                pin_hash: hash.into(),
            }],
        })
    }

    #[test]
    fn only_a_newer_pin_set_from_our_hub_for_us_is_kept() {
        let dir = TempDir::new();
        let mut outbox = Outbox::open_in(dir.path()).unwrap();
        let hub = HubSigningKey::generate();
        let key = hub.verifying_key();
        let me = Uuid::new_v4();
        let now = Utc::now();

        let first = pins(me, now, "$argon2id$first").sign(&hub);
        assert_eq!(
            apply(&mut outbox, &first, &key, me).unwrap(),
            Applied::Pins { teachers: 1 }
        );

        // A replay of an older set, or the same set again, changes nothing.
        let older = pins(me, now - Duration::minutes(5), "$argon2id$old").sign(&hub);
        assert_eq!(
            apply(&mut outbox, &older, &key, me).unwrap(),
            Applied::StalePins
        );
        assert_eq!(
            apply(&mut outbox, &first, &key, me).unwrap(),
            Applied::StalePins
        );
        assert_eq!(
            outbox.pins().unwrap().unwrap().teachers[0].pin_hash,
            "$argon2id$first"
        );

        let forged = pins(me, now + Duration::minutes(1), "$argon2id$forged")
            .sign(&HubSigningKey::generate());
        assert!(matches!(
            apply(&mut outbox, &forged, &key, me),
            Err(NoticeError::Forged)
        ));
        let elsewhere = pins(Uuid::new_v4(), now + Duration::minutes(1), "x").sign(&hub);
        assert!(matches!(
            apply(&mut outbox, &elsewhere, &key, me),
            Err(NoticeError::OtherDevice { .. })
        ));

        let newer = pins(me, now + Duration::minutes(1), "$argon2id$new").sign(&hub);
        apply(&mut outbox, &newer, &key, me).unwrap();
        let reopened = Outbox::open_in(dir.path())
            .unwrap()
            .pins()
            .unwrap()
            .unwrap();
        assert_eq!(reopened.teachers[0].pin_hash, "$argon2id$new");
    }

    #[test]
    fn a_revocation_is_kept_across_restarts() {
        let dir = TempDir::new();
        let mut outbox = Outbox::open_in(dir.path()).unwrap();
        let hub = HubSigningKey::generate();
        let me = Uuid::new_v4();
        assert_eq!(outbox.revoked_at().unwrap(), None);

        let at = Utc::now();
        let notice = HubNotice::Revoked {
            device_id: me,
            revoked_at: at,
        }
        .sign(&hub);
        assert!(matches!(
            apply(&mut outbox, &notice, &hub.verifying_key(), me).unwrap(),
            Applied::Revoked { .. }
        ));
        let kept = Outbox::open_in(dir.path()).unwrap().revoked_at().unwrap();
        assert_eq!(kept.map(|t| t.timestamp()), Some(at.timestamp()));
    }
}
