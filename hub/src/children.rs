//! Children and the guardians linked to them.
//!
//! A child belongs to one classroom and has an id that the school uses in
//! commands and that the audit log uses instead of the name. A guardian
//! reaches a child only through a row in `guardian_links`; the web layer asks
//! [`is_guardian_of`] before acting on a child for a guardian.

use rusqlite::{params, OptionalExtension, TransactionBehavior};
use serde_json::json;
use uuid::Uuid;

use crate::accounts::{normalise_phone, Account, AccountError, Role};
use crate::audit::{Actor, AuditEvent, AuditKind};
use crate::codes::{self, Withdrawal};
use crate::db::{self, to_millis};
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
    let guardian = guardian_by_phone(hub, phone)?;
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

/// Ends the link between the guardian who logs in with `phone` and a child,
/// with the original requests that guardian has open on photos of the
/// child. Returns the guardian's id, or `None` if they were not linked.
pub fn unlink_guardian(
    hub: &Hub,
    phone: &str,
    child_id: Uuid,
    by: Actor,
) -> Result<Option<Uuid>, AccountError> {
    let guardian = guardian_by_phone(hub, phone)?;

    let now = hub.clock.now();
    let mut conn = hub.db.lock();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let removed = tx.execute(
        "DELETE FROM guardian_links WHERE guardian_id = ?1 AND child_id = ?2",
        params![guardian.id.to_string(), child_id.to_string()],
    )?;
    if removed == 0 {
        return Ok(None);
    }
    let withdrawn = withdraw_open_requests(&tx, child_id, Some(guardian.id))?;
    hub.audit.commit_with(
        tx,
        now,
        &AuditEvent::new(AuditKind::GuardianUnlinked, by)
            .subject(child_id)
            .detail(json!({ "guardian_id": guardian.id, "requests_withdrawn": withdrawn })),
    )?;
    Ok(Some(guardian.id))
}

/// Ends the original requests still open (pending, or verified with a link
/// not yet used) on photos in which a child is named: all of them, or only
/// `requester`'s. Returns how many ended.
fn withdraw_open_requests(
    tx: &rusqlite::Transaction<'_>,
    child_id: Uuid,
    requester: Option<Uuid>,
) -> Result<usize, rusqlite::Error> {
    let ended: Vec<String> = {
        let mut statement = tx.prepare(
            "SELECT id FROM original_requests r
             WHERE photo_id IN (SELECT photo_id FROM photo_faces WHERE child_id = ?1)
               AND (?2 IS NULL OR parent_id = ?2)
               AND (state = 'pending'
                    OR (state = 'verified' AND EXISTS (
                            SELECT 1 FROM downloads d
                            WHERE d.request_id = r.id AND d.used_at IS NULL)))",
        )?;
        let ids = statement
            .query_map(
                params![child_id.to_string(), requester.map(|id| id.to_string())],
                |row| row.get(0),
            )?
            .collect::<Result<Vec<_>, _>>()?;
        ids
    };
    for id in &ended {
        codes::withdraw(tx, id, Withdrawal::AccessEnded)?;
    }
    Ok(ended.len())
}

/// The guardian account that logs in with `phone`.
fn guardian_by_phone(hub: &Hub, phone: &str) -> Result<Account, AccountError> {
    let phone = normalise_phone(phone)?;
    hub.accounts
        .account_by_phone(&phone)?
        .filter(|account| account.role == Role::Guardian)
        .ok_or(AccountError::UnknownGuardian(phone))
}

/// What erasing a child removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erased {
    pub consents: usize,
    pub guardian_links: usize,
    /// Photos in which the child was the only named child, removed with
    /// their sealed files.
    pub photos_removed: usize,
    /// Faces in photos that also name other children, now unknown (and so
    /// covered for every family).
    pub faces_unnamed: usize,
}

/// Erases a child: every photo in which they are the only named child (row,
/// requests, downloads, sealed file), their namings in other photos, their
/// consent history, their guardian links and their row. The audit log keeps
/// a `photo_erased` entry per photo and one `child_erased` entry, naming the
/// child by id only.
///
/// Photos go first, each in its own audited step, and the child's rows last
/// in one transaction: if the hub stops half-way, the child is still there
/// and running the erasure again finishes it.
pub fn erase(hub: &Hub, child_id: Uuid, by: Actor) -> Result<Erased, AccountError> {
    let Some(child) = get(hub, child_id)? else {
        return Err(AccountError::UnknownChild(child_id.to_string()));
    };
    let id = child_id.to_string();

    let only_named_in = {
        let conn = hub.db.lock();
        let mut statement = conn.prepare(
            "SELECT DISTINCT f.photo_id FROM photo_faces f
             WHERE f.child_id = ?1 AND NOT EXISTS (
                 SELECT 1 FROM photo_faces other
                 WHERE other.photo_id = f.photo_id AND other.child_id IS NOT NULL
                   AND other.child_id != ?1)",
        )?;
        let ids = statement
            .query_map([&id], |row| sqlite_uuid(row, 0))?
            .collect::<Result<Vec<_>, _>>()?;
        ids
    };
    let mut photos_removed = 0;
    for photo_id in only_named_in {
        let event = AuditEvent::new(AuditKind::PhotoErased, by)
            .subject(photo_id)
            .detail(json!({ "child_id": child_id }));
        if hub.delete_photo(photo_id, &event)? {
            photos_removed += 1;
        }
    }

    let now = hub.clock.now();
    let mut conn = hub.db.lock();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;

    // Originals asked for in the photos that stay would have shown the
    // child: those requests and unused links end.
    withdraw_open_requests(&tx, child_id, None)?;
    let faces_unnamed = tx.execute(
        "UPDATE photo_faces SET child_id = NULL, named_by = NULL, named_at = NULL
         WHERE child_id = ?1",
        [&id],
    )?;
    let erased = Erased {
        consents: tx.execute("DELETE FROM consents WHERE child_id = ?1", [&id])?,
        guardian_links: tx.execute("DELETE FROM guardian_links WHERE child_id = ?1", [&id])?,
        photos_removed,
        faces_unnamed,
    };
    tx.execute("DELETE FROM children WHERE id = ?1", [&id])?;
    hub.audit.commit_with(
        tx,
        now,
        &AuditEvent::new(AuditKind::ChildErased, by)
            .subject(child_id)
            .detail(json!({
                "classroom_id": child.classroom_id,
                "consents_removed": erased.consents,
                "guardian_links_removed": erased.guardian_links,
                "photos_removed": erased.photos_removed,
                "faces_unnamed": erased.faces_unnamed,
            })),
    )?;

    // A reader (the web server) can hold the log open and keep the
    // checkpoint from finishing; the next one after an erasure does.
    match db::checkpoint(&conn) {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(%child_id, "the database is busy: the erased child's old pages stay in its log until the next checkpoint")
        }
        Err(error) => {
            tracing::warn!(%error, %child_id, "the erased child's old pages stay in the database log until the next checkpoint")
        }
    }
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
