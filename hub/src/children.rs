//! Children and the guardians linked to them.
//!
//! A child belongs to one classroom and has an id that the school uses in
//! commands and that the audit log uses instead of the name. A guardian
//! reaches a child only through a row in `guardian_links`; the web layer asks
//! [`is_guardian_of`] before acting on a child for a guardian.

use rusqlite::{params, OptionalExtension, TransactionBehavior};
use serde_json::json;
use uuid::Uuid;

use crate::accounts::{normalise_phone, AccountError, Role};
use crate::audit::{Actor, AuditEvent, AuditKind};
use crate::db::to_millis;
use crate::store::sqlite_uuid;
use crate::Hub;

/// A child of the school.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub id: Uuid,
    pub classroom_id: Uuid,
    pub name: String,
}

/// Adds a child to a classroom and returns the child's new id.
pub fn add(hub: &Hub, classroom: &str, name: &str, by: Actor) -> Result<Uuid, AccountError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(AccountError::EmptyPersonName);
    }
    let classroom_id = hub.accounts.classroom_id(classroom)?;

    let id = Uuid::new_v4();
    let now = hub.clock.now();
    let mut conn = hub.db.lock();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO children (id, classroom_id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            id.to_string(),
            classroom_id.to_string(),
            name,
            to_millis(now)
        ],
    )?;
    hub.audit.commit_with(
        tx,
        now,
        &AuditEvent::new(AuditKind::ChildAdded, by)
            .subject(id)
            .detail(json!({ "classroom_id": classroom_id })),
    )?;
    Ok(id)
}

/// Links the guardian who logs in with `phone` to a child. Linking twice
/// changes nothing. Returns the guardian's id.
pub fn link_guardian(
    hub: &Hub,
    phone: &str,
    child_id: Uuid,
    by: Actor,
) -> Result<Uuid, AccountError> {
    let phone = normalise_phone(phone)?;
    let guardian = hub
        .accounts
        .account_by_phone(&phone)?
        .filter(|account| account.role == Role::Guardian)
        .ok_or_else(|| AccountError::UnknownGuardian(phone.clone()))?;
    if get(hub, child_id)?.is_none() {
        return Err(AccountError::UnknownChild(child_id.to_string()));
    }

    let now = hub.clock.now();
    let mut conn = hub.db.lock();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let inserted = tx.execute(
        "INSERT INTO guardian_links (guardian_id, child_id, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
        params![
            guardian.id.to_string(),
            child_id.to_string(),
            to_millis(now)
        ],
    )?;
    if inserted == 0 {
        return Ok(guardian.id);
    }
    hub.audit.commit_with(
        tx,
        now,
        &AuditEvent::new(AuditKind::GuardianLinked, by)
            .subject(child_id)
            .detail(json!({ "guardian_id": guardian.id })),
    )?;
    Ok(guardian.id)
}

/// What erasing a child removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erased {
    pub consents: usize,
    pub guardian_links: usize,
}

/// Erases a child: the child's row, consent history and guardian links, in
/// one transaction. The audit log keeps a `child_erased` entry naming the
/// child by id only. Photos are not touched yet: no face is named in this
/// version, so no photo is known to show the child.
pub fn erase(hub: &Hub, child_id: Uuid, by: Actor) -> Result<Erased, AccountError> {
    let now = hub.clock.now();
    let mut conn = hub.db.lock();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let classroom_id: Option<String> = tx
        .query_row(
            "SELECT classroom_id FROM children WHERE id = ?1",
            [child_id.to_string()],
            |row| row.get(0),
        )
        .optional()?;
    let Some(classroom_id) = classroom_id else {
        return Err(AccountError::UnknownChild(child_id.to_string()));
    };

    let id = child_id.to_string();
    let erased = Erased {
        consents: tx.execute("DELETE FROM consents WHERE child_id = ?1", [&id])?,
        guardian_links: tx.execute("DELETE FROM guardian_links WHERE child_id = ?1", [&id])?,
    };
    tx.execute("DELETE FROM children WHERE id = ?1", [&id])?;
    hub.audit.commit_with(
        tx,
        now,
        &AuditEvent::new(AuditKind::ChildErased, by)
            .subject(child_id)
            .detail(json!({
                "classroom_id": classroom_id,
                "consents_removed": erased.consents,
                "guardian_links_removed": erased.guardian_links,
            })),
    )?;
    Ok(erased)
}

pub fn get(hub: &Hub, child_id: Uuid) -> Result<Option<Child>, AccountError> {
    let conn = hub.db.lock();
    Ok(conn
        .query_row(
            "SELECT id, classroom_id, name FROM children WHERE id = ?1",
            [child_id.to_string()],
            child_from_row,
        )
        .optional()?)
}

/// The children linked to a guardian, by name.
pub fn of_guardian(hub: &Hub, guardian_id: Uuid) -> Result<Vec<Child>, AccountError> {
    let conn = hub.db.lock();
    let mut statement = conn.prepare(
        "SELECT c.id, c.classroom_id, c.name FROM children c
         JOIN guardian_links l ON l.child_id = c.id
         WHERE l.guardian_id = ?1 ORDER BY c.name, c.id",
    )?;
    let children = statement
        .query_map([guardian_id.to_string()], child_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(children)
}

/// The ids of a child's guardians.
pub fn guardians_of(hub: &Hub, child_id: Uuid) -> Result<Vec<Uuid>, AccountError> {
    let conn = hub.db.lock();
    let mut statement = conn.prepare(
        "SELECT guardian_id FROM guardian_links WHERE child_id = ?1 ORDER BY created_at, rowid",
    )?;
    let ids = statement
        .query_map([child_id.to_string()], |row| sqlite_uuid(row, 0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ids)
}

/// Whether this guardian is linked to this child.
pub fn is_guardian_of(hub: &Hub, guardian_id: Uuid, child_id: Uuid) -> Result<bool, AccountError> {
    let conn = hub.db.lock();
    Ok(conn
        .query_row(
            "SELECT 1 FROM guardian_links WHERE guardian_id = ?1 AND child_id = ?2",
            params![guardian_id.to_string(), child_id.to_string()],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Every child of the school, by classroom and name.
pub fn all(hub: &Hub) -> Result<Vec<Child>, AccountError> {
    let conn = hub.db.lock();
    let mut statement = conn
        .prepare("SELECT id, classroom_id, name FROM children ORDER BY classroom_id, name, id")?;
    let children = statement
        .query_map([], child_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(children)
}

/// The children of a teacher's classrooms, by classroom and name.
pub fn of_teacher(hub: &Hub, teacher_id: Uuid) -> Result<Vec<Child>, AccountError> {
    let conn = hub.db.lock();
    let mut statement = conn.prepare(
        "SELECT c.id, c.classroom_id, c.name FROM children c
         JOIN teacher_classrooms t ON t.classroom_id = c.classroom_id
         WHERE t.teacher_id = ?1 ORDER BY c.classroom_id, c.name, c.id",
    )?;
    let children = statement
        .query_map([teacher_id.to_string()], child_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(children)
}

/// A classroom's children, by name.
pub fn in_classroom(hub: &Hub, classroom_id: Uuid) -> Result<Vec<Child>, AccountError> {
    let conn = hub.db.lock();
    let mut statement = conn.prepare(
        "SELECT id, classroom_id, name FROM children WHERE classroom_id = ?1 ORDER BY name, id",
    )?;
    let children = statement
        .query_map([classroom_id.to_string()], child_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(children)
}

fn child_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Child> {
    Ok(Child {
        id: sqlite_uuid(row, 0)?,
        classroom_id: sqlite_uuid(row, 1)?,
        name: row.get(2)?,
    })
}
