//! Consent records: what a child's guardians allow, per purpose, with history.
//!
//! Every change is a new row in the append-only `consents` table (a trigger
//! refuses updates) naming who made it and when. The current state of a
//! child's purpose is its newest row; a purpose nobody has decided on is not
//! granted. Each change is also an audit entry, naming the child by id only.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{Acting, AuditError, AuditEvent, AuditKind};
use crate::codes::{self, Withdrawal};
use crate::db::{from_millis, to_millis};
use crate::store::sqlite_uuid;
use crate::Hub;

/// What a consent is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// The child's face may be left uncovered in photos shown to the families
    /// of classmates.
    VisibleToClassmates,
    /// Originals in which the child's face is uncovered may be released.
    Originals,
}

impl Purpose {
    pub const ALL: [Purpose; 2] = [Purpose::VisibleToClassmates, Purpose::Originals];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::VisibleToClassmates => "visible_to_classmates",
            Self::Originals => "originals",
        }
    }
}

impl FromStr for Purpose {
    type Err = ConsentError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|purpose| purpose.as_str() == text)
            .ok_or_else(|| ConsentError::UnknownPurpose(text.to_owned()))
    }
}

impl std::fmt::Display for Purpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    #[error("no child has id {0}")]
    UnknownChild(Uuid),

    #[error("{0:?} is not a consent purpose; use visible_to_classmates or originals")]
    UnknownPurpose(String),

    #[error("consent database error: {0}")]
    Database(#[from] rusqlite::Error),

    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// One decision in a child's consent history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    pub child_id: Uuid,
    pub purpose: Purpose,
    pub granted: bool,
    /// Who decided, as written in the audit log (`parent:<id>`, `admin:<id>`…).
    pub by: String,
    pub at: DateTime<Utc>,
}

/// Records a decision: `granted` gives consent, `!granted` withdraws it.
/// Withdrawing is as simple as giving, and both take effect at once: the
/// next preview is rendered by the new rule, and a withdrawal also ends the
/// original requests and unused download links it takes away.
pub fn set(
    hub: &Hub,
    child_id: Uuid,
    purpose: Purpose,
    granted: bool,
    by: impl Into<Acting>,
) -> Result<ConsentRecord, ConsentError> {
    let by: Acting = by.into();
    let now = hub.clock.now();
    let mut conn = hub.db.lock();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;

    let exists = tx
        .query_row(
            "SELECT 1 FROM children WHERE id = ?1",
            [child_id.to_string()],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !exists {
        return Err(ConsentError::UnknownChild(child_id));
    }

    // A withdrawal reaches originals already asked for, before the new
    // state is written: what was shown uncovered is judged as it was.
    let withdrawn = if granted {
        0
    } else {
        withdraw_requests(&tx, child_id, purpose)?
    };

    tx.execute(
        "INSERT INTO consents (child_id, purpose, granted, actor, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            child_id.to_string(),
            purpose.as_str(),
            granted,
            by.actor.to_string(),
            to_millis(now)
        ],
    )?;
    hub.audit.commit_with(
        tx,
        now,
        &AuditEvent::by(AuditKind::ConsentChanged, by)
            .subject(child_id)
            .detail(json!({
                "purpose": purpose.as_str(),
                "granted": granted,
                "requests_withdrawn": withdrawn,
            })),
    )?;

    Ok(ConsentRecord {
        child_id,
        purpose,
        granted,
        by: by.actor.to_string(),
        at: now,
    })
}

/// Ends the original requests, and the download links not yet used, that
/// this withdrawal takes away: those on photos where the child is named and
/// shown uncovered to the requester. Withdrawing "originals" ends them all;
/// withdrawing "visible to classmates" ends those of other families, whose
/// rendering would now cover the child (the child's own guardians still see
/// their child). Returns how many requests ended.
fn withdraw_requests(
    tx: &rusqlite::Transaction<'_>,
    child_id: Uuid,
    purpose: Purpose,
) -> Result<usize, ConsentError> {
    let was_visible: bool = tx
        .query_row(
            "SELECT granted FROM consents WHERE child_id = ?1 AND purpose = 'visible_to_classmates'
             ORDER BY seq DESC LIMIT 1",
            [child_id.to_string()],
            |row| row.get(0),
        )
        .optional()?
        .unwrap_or(false);

    let mut statement = tx.prepare(
        "SELECT r.id,
                EXISTS (SELECT 1 FROM guardian_links l
                        WHERE l.child_id = ?1 AND l.guardian_id = r.parent_id)
         FROM original_requests r
         WHERE r.photo_id IN (SELECT photo_id FROM photo_faces WHERE child_id = ?1)
           AND (r.state = 'pending'
                OR (r.state = 'verified' AND EXISTS (
                        SELECT 1 FROM downloads d WHERE d.request_id = r.id AND d.used_at IS NULL)))",
    )?;
    let affected = statement
        .query_map([child_id.to_string()], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, bool>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    drop(statement);

    let mut ended = 0;
    for (request_id, own_child) in affected {
        let was_uncovered = own_child || was_visible;
        let takes_away = match purpose {
            Purpose::Originals => was_uncovered,
            Purpose::VisibleToClassmates => was_uncovered && !own_child,
        };
        if takes_away {
            codes::withdraw(tx, &request_id, Withdrawal::ConsentWithdrawn)?;
            ended += 1;
        }
    }
    Ok(ended)
}

/// Whether consent for this purpose holds now. No decision means no.
pub fn current(hub: &Hub, child_id: Uuid, purpose: Purpose) -> Result<bool, ConsentError> {
    let conn = hub.db.lock();
    let granted: Option<bool> = conn
        .query_row(
            "SELECT granted FROM consents WHERE child_id = ?1 AND purpose = ?2
             ORDER BY seq DESC LIMIT 1",
            params![child_id.to_string(), purpose.as_str()],
            |row| row.get(0),
        )
        .optional()?;
    Ok(granted.unwrap_or(false))
}

/// Every decision about a child, oldest first.
pub fn history(hub: &Hub, child_id: Uuid) -> Result<Vec<ConsentRecord>, ConsentError> {
    let conn = hub.db.lock();
    let mut statement = conn.prepare(
        "SELECT child_id, purpose, granted, actor, at FROM consents
         WHERE child_id = ?1 ORDER BY seq",
    )?;
    let rows = statement
        .query_map([child_id.to_string()], |row| {
            Ok((
                sqlite_uuid(row, 0)?,
                row.get::<_, String>(1)?,
                row.get::<_, bool>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, i64>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;

    rows.into_iter()
        .map(
            |(child_id, purpose, granted, by, at)| -> Result<_, ConsentError> {
                Ok(ConsentRecord {
                    child_id,
                    purpose: purpose.parse()?,
                    granted,
                    by,
                    at: from_millis(at),
                })
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_read_back_from_their_names() {
        for purpose in Purpose::ALL {
            assert_eq!(purpose.as_str().parse::<Purpose>().unwrap(), purpose);
        }
        assert!("everything".parse::<Purpose>().is_err());
    }
}
