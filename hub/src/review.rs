//! Review before release: a photo's faces, which child each one is, and
//! whether a teacher has released the photo to families.
//!
//! The faces the device found are copied into `photo_faces` when the photo is
//! stored (or, for a photo stored before that table existed or by a hub that
//! crashed in between, the first time anyone looks at its review). A teacher
//! of the photo's classroom names faces, draws boxes over faces the detector
//! missed, and releases the photo; until then no family sees it. A photo with
//! no face at all is released only once the teacher confirms there is none.
//! Every change is an audit entry naming photos and children by id.
//!
//! Who may call these functions is the web layer's business; they check only
//! what keeps the data consistent (a face exists, a child belongs to the
//! photo's classroom, a box lies inside the photo).

use chrono::{DateTime, Utc};
use guardian_protocol::FaceRect;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{Acting, AuditError, AuditEvent, AuditKind};
use crate::db::{from_millis, to_millis};
use crate::render::{self, RenderError};
use crate::store::{sqlite_uuid, PhotoRecord, StoreError};
use crate::Hub;

/// Faces one photo may hold. A class photo has a few dozen; the limit only
/// stops a runaway script from filling the table.
pub const MAX_FACES: u32 = 300;

/// The smallest box a teacher may draw, in photo pixels a side.
pub const MIN_FACE_SIDE: u32 = 8;

/// Where a face box came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceOrigin {
    /// Found by the classroom device's detector.
    Device,
    /// Drawn by a teacher over a face the detector missed.
    Teacher,
}

impl FaceOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Device => "device",
            Self::Teacher => "teacher",
        }
    }
}

/// One face of a photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Face {
    /// Its number within the photo: the device's faces first, in the
    /// device's order, then those teachers drew.
    pub n: u32,
    /// In the upright original's pixels.
    pub rect: FaceRect,
    pub origin: FaceOrigin,
    /// The child a teacher named; `None` is an unknown face.
    pub child_id: Option<Uuid>,
}

/// A photo as its reviewers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub photo: PhotoRecord,
    pub faces: Vec<Face>,
    /// When a teacher released it to families; `None` while it awaits review.
    pub released_at: Option<DateTime<Utc>>,
}

impl Review {
    pub fn is_released(&self) -> bool {
        self.released_at.is_some()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("no photo has id {0}")]
    UnknownPhoto(Uuid),

    #[error("photo {photo_id} has no face number {n}")]
    UnknownFace { photo_id: Uuid, n: u32 },

    #[error("child {child_id} is not in the classroom this photo was taken in")]
    ChildNotInClassroom { child_id: Uuid },

    #[error("the box {x},{y} {width}x{height} must lie inside the {photo_width}x{photo_height} photo and be at least {MIN_FACE_SIDE} pixels a side")]
    BadBox {
        x: u32,
        y: u32,
        width: u32,
        height: u32,
        photo_width: u32,
        photo_height: u32,
    },

    #[error("this photo already has {MAX_FACES} faces")]
    TooManyFaces,

    #[error("no face was found in this photo; confirm that there is none before releasing it")]
    NoFacesUnconfirmed,

    /// The device's face boxes could not be read from the sealed photo.
    #[error(transparent)]
    Open(#[from] RenderError),

    #[error(transparent)]
    Store(#[from] StoreError),

    #[error("review database error: {0}")]
    Database(#[from] rusqlite::Error),

    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// Copies the device's face boxes of a newly stored photo into the review
/// tables. Doing it twice changes nothing.
pub fn record_device_faces(
    hub: &Hub,
    photo_id: Uuid,
    faces: &[FaceRect],
) -> Result<(), ReviewError> {
    let mut conn = hub.db.lock();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let first_time = tx.execute(
        "INSERT INTO photo_reviews (photo_id) VALUES (?1) ON CONFLICT DO NOTHING",
        [photo_id.to_string()],
    )? > 0;
    if first_time {
        for (n, face) in faces.iter().enumerate() {
            insert_face(&tx, photo_id, n as u32, face, FaceOrigin::Device)?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// A photo's review, or `None` if there is no such photo.
pub fn get(hub: &Hub, photo_id: Uuid) -> Result<Option<Review>, ReviewError> {
    let Some(photo) = hub.store.get(photo_id)? else {
        return Ok(None);
    };
    if !faces_recorded(&hub.db.lock(), photo_id)? {
        let details = render::details(hub, photo_id)?;
        record_device_faces(hub, photo_id, &details.faces)?;
    }

    let conn = hub.db.lock();
    let released_at: Option<i64> = conn.query_row(
        "SELECT released_at FROM photo_reviews WHERE photo_id = ?1",
        [photo_id.to_string()],
        |row| row.get(0),
    )?;
    Ok(Some(Review {
        faces: faces(&conn, photo_id)?,
        photo,
        released_at: released_at.map(from_millis),
    }))
}

/// Photos of a teacher's classrooms that no teacher has released yet, oldest
/// first, at most `limit` of them.
pub fn awaiting(hub: &Hub, teacher_id: Uuid, limit: u32) -> Result<Vec<Review>, ReviewError> {
    let ids = {
        let conn = hub.db.lock();
        let mut statement = conn.prepare(
            "SELECT p.id FROM photos p
             JOIN teacher_classrooms t ON t.classroom_id = p.classroom_id
             LEFT JOIN photo_reviews r ON r.photo_id = p.id
             WHERE t.teacher_id = ?1 AND r.released_at IS NULL
             ORDER BY p.received_at, p.id LIMIT ?2",
        )?;
        let ids = statement
            .query_map(params![teacher_id.to_string(), limit], |row| {
                sqlite_uuid(row, 0)
            })?
            .collect::<Result<Vec<_>, _>>()?;
        ids
    };

    let mut reviews = Vec::with_capacity(ids.len());
    for id in ids {
        // A photo purged between the two reads is simply not listed.
        if let Some(review) = get(hub, id)? {
            reviews.push(review);
        }
    }
    Ok(reviews)
}

/// Says which child face `n` is, or with `None` that nobody knows. A child
/// named on another face of the same photo is moved to this one: a child
/// appears once in a photo.
pub fn name_face(
    hub: &Hub,
    photo_id: Uuid,
    n: u32,
    child_id: Option<Uuid>,
    by: impl Into<Acting>,
) -> Result<Review, ReviewError> {
    let by: Acting = by.into();
    let review = get(hub, photo_id)?.ok_or(ReviewError::UnknownPhoto(photo_id))?;
    if !review.faces.iter().any(|face| face.n == n) {
        return Err(ReviewError::UnknownFace { photo_id, n });
    }

    let now = hub.clock.now();
    {
        let mut conn = hub.db.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(child_id) = child_id {
            let in_classroom = tx
                .query_row(
                    "SELECT 1 FROM children WHERE id = ?1 AND classroom_id = ?2",
                    params![child_id.to_string(), review.photo.classroom_id.to_string()],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if !in_classroom {
                return Err(ReviewError::ChildNotInClassroom { child_id });
            }
            tx.execute(
                "UPDATE photo_faces SET child_id = NULL, named_by = ?3, named_at = ?4
                 WHERE photo_id = ?1 AND child_id = ?2",
                params![
                    photo_id.to_string(),
                    child_id.to_string(),
                    by.actor.to_string(),
                    to_millis(now)
                ],
            )?;
        }
        tx.execute(
            "UPDATE photo_faces SET child_id = ?3, named_by = ?4, named_at = ?5
             WHERE photo_id = ?1 AND n = ?2",
            params![
                photo_id.to_string(),
                n,
                child_id.map(|id| id.to_string()),
                by.actor.to_string(),
                to_millis(now)
            ],
        )?;
        hub.audit.commit_with(
            tx,
            now,
            &AuditEvent::by(AuditKind::FaceNamed, by)
                .subject(photo_id)
                .detail(json!({ "n": n, "child_id": child_id })),
        )?;
    }

    get(hub, photo_id)?.ok_or(ReviewError::UnknownPhoto(photo_id))
}

/// Adds a face the detector missed. Returns its number and the review.
pub fn add_face(
    hub: &Hub,
    photo_id: Uuid,
    rect: FaceRect,
    by: impl Into<Acting>,
) -> Result<(u32, Review), ReviewError> {
    let by: Acting = by.into();
    let review = get(hub, photo_id)?.ok_or(ReviewError::UnknownPhoto(photo_id))?;
    check_box(&rect, &review.photo)?;
    if review.faces.len() >= MAX_FACES as usize {
        return Err(ReviewError::TooManyFaces);
    }

    let now = hub.clock.now();
    let n = {
        let mut conn = hub.db.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n: u32 = tx.query_row(
            "SELECT COALESCE(MAX(n) + 1, 0) FROM photo_faces WHERE photo_id = ?1",
            [photo_id.to_string()],
            |row| row.get(0),
        )?;
        insert_face(&tx, photo_id, n, &rect, FaceOrigin::Teacher)?;
        hub.audit.commit_with(
            tx,
            now,
            &AuditEvent::by(AuditKind::FaceAdded, by)
                .subject(photo_id)
                .detail(json!({ "n": n, "box": [rect.x, rect.y, rect.width, rect.height] })),
        )?;
        n
    };

    let review = get(hub, photo_id)?.ok_or(ReviewError::UnknownPhoto(photo_id))?;
    Ok((n, review))
}

/// Releases a photo to the families of the children named in it. A photo
/// without any face needs `no_faces_confirmed`. Releasing twice changes
/// nothing.
pub fn release(
    hub: &Hub,
    photo_id: Uuid,
    no_faces_confirmed: bool,
    by: impl Into<Acting>,
) -> Result<Review, ReviewError> {
    let by: Acting = by.into();
    let review = get(hub, photo_id)?.ok_or(ReviewError::UnknownPhoto(photo_id))?;
    if review.is_released() {
        return Ok(review);
    }
    if review.faces.is_empty() && !no_faces_confirmed {
        return Err(ReviewError::NoFacesUnconfirmed);
    }

    let now = hub.clock.now();
    {
        let mut conn = hub.db.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE photo_reviews SET released_at = ?2, released_by = ?3
             WHERE photo_id = ?1 AND released_at IS NULL",
            params![photo_id.to_string(), to_millis(now), by.actor.to_string()],
        )?;
        let named = review
            .faces
            .iter()
            .filter(|face| face.child_id.is_some())
            .count();
        hub.audit.commit_with(
            tx,
            now,
            &AuditEvent::by(AuditKind::PhotoReleased, by)
                .subject(photo_id)
                .detail(json!({
                    "faces": review.faces.len(),
                    "named": named,
                    "no_faces_confirmed": review.faces.is_empty(),
                })),
        )?;
    }

    get(hub, photo_id)?.ok_or(ReviewError::UnknownPhoto(photo_id))
}

/// A photo's faces, by number.
pub fn faces(conn: &Connection, photo_id: Uuid) -> Result<Vec<Face>, rusqlite::Error> {
    let mut statement = conn.prepare(
        "SELECT n, x, y, width, height, origin, child_id FROM photo_faces
         WHERE photo_id = ?1 ORDER BY n",
    )?;
    let faces = statement
        .query_map([photo_id.to_string()], |row| {
            let child: Option<String> = row.get(6)?;
            Ok(Face {
                n: row.get(0)?,
                rect: FaceRect {
                    x: row.get(1)?,
                    y: row.get(2)?,
                    width: row.get(3)?,
                    height: row.get(4)?,
                },
                origin: match row.get::<_, String>(5)?.as_str() {
                    "teacher" => FaceOrigin::Teacher,
                    _ => FaceOrigin::Device,
                },
                child_id: child.and_then(|text| Uuid::try_parse(&text).ok()),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(faces)
}

fn faces_recorded(conn: &Connection, photo_id: Uuid) -> Result<bool, rusqlite::Error> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM photo_reviews WHERE photo_id = ?1",
            [photo_id.to_string()],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

fn insert_face(
    conn: &Connection,
    photo_id: Uuid,
    n: u32,
    face: &FaceRect,
    origin: FaceOrigin,
) -> Result<(), rusqlite::Error> {
    conn.execute(
        "INSERT INTO photo_faces (photo_id, n, x, y, width, height, origin)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            photo_id.to_string(),
            n,
            face.x,
            face.y,
            face.width,
            face.height,
            origin.as_str()
        ],
    )?;
    Ok(())
}

fn check_box(rect: &FaceRect, photo: &PhotoRecord) -> Result<(), ReviewError> {
    let fits = |start: u32, length: u32, limit: u32| {
        length >= MIN_FACE_SIDE && start.checked_add(length).is_some_and(|end| end <= limit)
    };
    if fits(rect.x, rect.width, photo.width) && fits(rect.y, rect.height, photo.height) {
        Ok(())
    } else {
        Err(ReviewError::BadBox {
            x: rect.x,
            y: rect.y,
            width: rect.width,
            height: rect.height,
            photo_width: photo.width,
            photo_height: photo.height,
        })
    }
}
