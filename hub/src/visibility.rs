//! Who sees which face: the rule that turns a photo's named faces and its
//! children's consents into what one guardian is shown.
//!
//! A guardian sees a photo only once a teacher has released it and only if
//! one of their own children is named in it. In what they see, their own
//! children's faces are uncovered; a classmate's face is uncovered only while
//! that child's guardians consent to being seen by classmates' families;
//! every other face, and every face nobody named, is covered. The original
//! is offered only while every uncovered child's "originals" consent holds.
//!
//! Everything here reads the database as it is now, so a consent withdrawn a
//! moment ago already applies to the next preview, request or download.

use guardian_protocol::FaceRect;
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use crate::render::Covering;
use crate::store::sqlite_uuid;

/// One face as one viewer is to be shown it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewedFace {
    pub rect: FaceRect,
    pub child_id: Option<Uuid>,
    /// One of the viewer's own children.
    pub own: bool,
    pub uncovered: bool,
    /// The child's "originals" consent holds (false for an unknown face).
    pub originals_consent: bool,
}

/// What one guardian may see of one photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewing {
    pub faces: Vec<ViewedFace>,
    /// The device found the photo damaged: its face boxes cannot be trusted,
    /// so the whole frame is covered and no original is offered.
    pub damaged: bool,
}

impl Viewing {
    /// What to cover in this viewer's rendering.
    pub fn covering(&self) -> Covering {
        Covering {
            faces: self
                .faces
                .iter()
                .filter(|face| !face.uncovered)
                .map(|face| face.rect)
                .collect(),
            everything: self.damaged,
        }
    }

    /// The viewer's own children named in the photo.
    pub fn own_children(&self) -> Vec<Uuid> {
        self.faces
            .iter()
            .filter(|face| face.own)
            .filter_map(|face| face.child_id)
            .collect()
    }

    /// Whether this viewer may have the original: every child it would show
    /// uncovered has consented to originals being released.
    pub fn original_allowed(&self) -> bool {
        !self.damaged
            && self
                .faces
                .iter()
                .filter(|face| face.uncovered)
                .all(|face| face.originals_consent)
    }
}

/// What `guardian_id` may see of `photo_id`, or `None` if the photo is not
/// theirs to see at all (not released, or none of their children named).
pub fn for_guardian(
    conn: &Connection,
    guardian_id: Uuid,
    photo_id: Uuid,
) -> Result<Option<Viewing>, rusqlite::Error> {
    let damaged: Option<bool> = conn
        .query_row(
            "SELECT p.damaged FROM photos p JOIN photo_reviews r ON r.photo_id = p.id
             WHERE p.id = ?1 AND r.released_at IS NOT NULL",
            [photo_id.to_string()],
            |row| row.get(0),
        )
        .optional()?;
    let Some(damaged) = damaged else {
        return Ok(None);
    };

    let mut statement = conn.prepare(
        "SELECT f.x, f.y, f.width, f.height, f.child_id,
                EXISTS (SELECT 1 FROM guardian_links l
                        WHERE l.child_id = f.child_id AND l.guardian_id = ?2),
                COALESCE((SELECT c.granted FROM consents c
                          WHERE c.child_id = f.child_id AND c.purpose = 'visible_to_classmates'
                          ORDER BY c.seq DESC LIMIT 1), 0),
                COALESCE((SELECT c.granted FROM consents c
                          WHERE c.child_id = f.child_id AND c.purpose = 'originals'
                          ORDER BY c.seq DESC LIMIT 1), 0)
         FROM photo_faces f WHERE f.photo_id = ?1 ORDER BY f.n",
    )?;
    let faces = statement
        .query_map(
            params![photo_id.to_string(), guardian_id.to_string()],
            |row| {
                let child: Option<String> = row.get(4)?;
                let child_id = child.and_then(|text| Uuid::try_parse(&text).ok());
                let own: bool = row.get(5)?;
                let visible: bool = row.get(6)?;
                Ok(ViewedFace {
                    rect: FaceRect {
                        x: row.get(0)?,
                        y: row.get(1)?,
                        width: row.get(2)?,
                        height: row.get(3)?,
                    },
                    child_id,
                    own: own && child_id.is_some(),
                    uncovered: child_id.is_some() && (own || visible),
                    originals_consent: child_id.is_some() && row.get::<_, bool>(7)?,
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;

    if faces.iter().any(|face| face.own) {
        Ok(Some(Viewing { faces, damaged }))
    } else {
        Ok(None)
    }
}

/// The released photos in which one of this guardian's children is named,
/// newest first.
pub fn photos_for_guardian(
    conn: &Connection,
    guardian_id: Uuid,
) -> Result<Vec<Uuid>, rusqlite::Error> {
    let mut statement = conn.prepare(
        "SELECT DISTINCT p.id, p.received_at FROM photos p
         JOIN photo_reviews r ON r.photo_id = p.id AND r.released_at IS NOT NULL
         JOIN photo_faces f ON f.photo_id = p.id
         JOIN guardian_links l ON l.child_id = f.child_id
         WHERE l.guardian_id = ?1
         ORDER BY p.received_at DESC, p.id",
    )?;
    let ids = statement
        .query_map([guardian_id.to_string()], |row| sqlite_uuid(row, 0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ids)
}

/// The released photos in which a child is named, oldest first.
pub fn released_photos_of_child(
    conn: &Connection,
    child_id: Uuid,
) -> Result<Vec<Uuid>, rusqlite::Error> {
    let mut statement = conn.prepare(
        "SELECT p.id FROM photos p
         JOIN photo_reviews r ON r.photo_id = p.id AND r.released_at IS NOT NULL
         JOIN photo_faces f ON f.photo_id = p.id
         WHERE f.child_id = ?1
         ORDER BY p.received_at, p.id",
    )?;
    let ids = statement
        .query_map([child_id.to_string()], |row| sqlite_uuid(row, 0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ids)
}
