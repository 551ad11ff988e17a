//! A guardian's access request (GDPR article 15): one archive with
//! everything the hub holds about their child.
//!
//! `GET /api/children/{id}/export` answers a zip with:
//! - `README.txt`, what the archive holds, in plain words;
//! - `child.json`, the child's record and full consent history;
//! - `photos/<photo id>.jpg`, every released photo in which the child is
//!   named, rendered for this guardian exactly as their previews are (other
//!   children covered unless they consented, watermarked with the guardian's
//!   name) at preview size: full originals still go through the SMS code one
//!   by one, so a stolen password does not yield them in bulk;
//! - `audit.json`, the audit entries about the child; about those photos and
//!   the guardian's original requests for them, the guardian's own entries
//!   whole; and of everyone else's entries about those photos (arrived,
//!   reviewed, a face named or drawn as this child, released, viewed) only
//!   the kind, time and role.
//!
//! The archive is streamed as it is written, one photo in memory at a time,
//! so a child with hundreds of photos does not need hundreds of them in RAM.
//! Each photo is rendered by what the guardian may see as it is written: a
//! consent withdrawn during a long download covers the child in the photos
//! still to come, and an unlink or an erasure ends the download.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio::sync::{mpsc, Semaphore};
use tracing::instrument;
use uuid::Uuid;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::client_ip::ClientIp;
use super::consents::consent_state;
use super::error::ApiError;
use super::photos::{parse_id, render_for, rfc3339, viewer_mark, visible_photo};
use super::session::GuardianSession;
use super::{blocking, record, render_slot, AppState};
use crate::accounts::Parent;
use crate::audit::{Actor, AuditEvent, AuditKind};
use crate::children::{self, Child};
use crate::db::from_millis;
use crate::render::Size;
use crate::visibility;
use crate::watermark::ViewerMark;
use crate::Hub;

/// Bytes gathered before a piece of the archive is handed to the connection.
const CHUNK_BYTES: usize = 256 * 1024;

/// `GET /api/children/{id}/export`
#[instrument(skip_all, fields(child_id, access_id))]
pub async fn export(
    State(state): State<AppState>,
    session: GuardianSession,
    ip: ClientIp,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let child_id = parse_id(&id)?;
    tracing::Span::current().record("child_id", tracing::field::display(child_id));

    // A stalled download holds its slot until its send times out; a few at
    // a time keep previews and originals flowing for everyone else.
    let slot = state
        .exports
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Busy)?;

    // What goes in is chosen, and the export audited, before the first byte
    // is sent; each photo is checked again as it is written.
    let hub = state.hub.clone();
    let parent = session.parent.clone();
    let contents = blocking(move || gather(&hub, &parent, child_id, ip)).await?;
    tracing::Span::current().record(
        "access_id",
        tracing::field::display(contents.mark.access_id),
    );

    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    let writer = ArchiveWriter {
        hub: state.hub.clone(),
        parent: session.parent.clone(),
        renders: state.renders.clone(),
        runtime: tokio::runtime::Handle::current(),
        marked: state.watermarks,
    };
    let span = tracing::Span::current();
    let failure = sender.clone();
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let _slot = slot;
        let out = ChunkSender::new(sender, writer.runtime.clone());
        match writer.write(&contents, out) {
            Ok(photos) => {
                tracing::info!(photos, "archive sent");
                let finished =
                    AuditEvent::new(AuditKind::ExportFinished, Actor::Parent(writer.parent.id))
                        .subject(contents.child.id)
                        .ip(contents.mark.client_ip)
                        .detail(json!({ "access_id": contents.mark.access_id, "photos": photos }));
                if let Err(error) = record(&writer.hub, finished) {
                    tracing::error!(%error, "archive sent but its audit entry failed");
                }
            }
            Err(error) => {
                // Ending the body with an error breaks the connection, so the
                // browser reports a failed download instead of saving a
                // shorter archive as if it were whole.
                tracing::warn!(%error, "archive not finished");
                let _ = failure.blocking_send(Err(std::io::Error::other("archive not finished")));
            }
        }
    });

    let body = Body::from_stream(futures_util::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|chunk| (chunk, receiver)) },
    ));
    let disposition = format!("attachment; filename=\"guardian-child-{child_id}.zip\"");
    let disposition = HeaderValue::from_str(&disposition).map_err(ApiError::internal)?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/zip"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// What one archive holds, decided before it is written.
struct Contents {
    child: Child,
    child_json: Value,
    /// The photos the guardian may see now; each is checked again when it
    /// is written.
    photos: Vec<Uuid>,
    audit_json: Value,
    mark: ViewerMark,
    exported_at: DateTime<Utc>,
}

fn gather(hub: &Hub, parent: &Parent, child_id: Uuid, ip: ClientIp) -> Result<Contents, ApiError> {
    // Another family's child, or no child at all: 404 alike.
    if !children::is_guardian_of(hub, parent.id, child_id)? {
        return Err(ApiError::NotFound);
    }
    let child = children::get(hub, child_id)?.ok_or(ApiError::NotFound)?;

    let photo_ids = visibility::released_photos_of_child(&hub.db.lock(), child_id)?;
    let photos: Vec<Uuid> = photo_ids
        .into_iter()
        .filter(|id| visible_photo(hub, parent, *id).is_ok())
        .collect();

    let mark = viewer_mark(hub, &parent.name, ip);
    let consents = consent_state(hub, child_id)?;
    let child_json = json!({
        "id": child.id,
        "name": child.name,
        "classroom_id": child.classroom_id,
        "consents": consents,
        "exported_at": rfc3339(mark.at),
        "exported_for": parent.name,
    });
    let audit_json = audit_entries(hub, parent, child_id, &photos)?;

    record(
        hub,
        AuditEvent::new(AuditKind::ExportStarted, Actor::Parent(parent.id))
            .subject(child_id)
            .ip(ip)
            .detail(json!({ "access_id": mark.access_id, "photos": photos })),
    )?;

    Ok(Contents {
        exported_at: mark.at,
        child,
        child_json,
        photos,
        audit_json,
        mark,
    })
}

/// What another person's entry about one of the archive's photos may tell:
/// that the photo arrived, was released, was looked at (by a family or by
/// the reviewing teacher), and when.
const PHOTO_EVENTS: [&str; 5] = [
    "photo_received",
    "photo_released",
    "preview_viewed",
    "original_delivered",
    "review_viewed",
];

/// The audit entries of the archive, oldest first:
/// - about the child (its record, consents, links, exports), whole;
/// - the guardian's own entries about the archive's photos and about their
///   original requests for them (asked, code sent, wrong or right code,
///   download refused or delivered), whole but for other children's ids;
/// - of other people's entries about those photos, only the kind, the time
///   and the role of who acted: a photo arriving, being released, viewed or
///   reviewed, and a face in it being named as this child or drawn and then
///   named as this child. Not their id, address or details, which could name
///   other children or other families; a face named as another child is left
///   out altogether.
fn audit_entries(
    hub: &Hub,
    parent: &Parent,
    child_id: Uuid,
    photo_ids: &[Uuid],
) -> Result<Value, ApiError> {
    let conn = hub.db.lock();
    let child = child_id.to_string();
    let own_actor = Actor::Parent(parent.id).to_string();
    let photo_list = serde_json::to_string(photo_ids).map_err(ApiError::internal)?;

    // The faces of the archive's photos that are this child, by (photo, n):
    // a drawn face is told of only if it is the child's.
    let mut statement = conn.prepare("SELECT photo_id, n FROM photo_faces WHERE child_id = ?1")?;
    let childs_faces = statement
        .query_map([&child], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, u32>(1)?))
        })?
        .collect::<Result<HashSet<_>, _>>()?;

    // Original requests have their own ids as subjects; the guardian's own
    // requests for the archive's photos are found through their table.
    let mut statement = conn.prepare(
        "SELECT seq, at, kind, actor, subject, ip, detail FROM audit_log
         WHERE subject = ?1
            OR subject IN (SELECT value FROM json_each(?2))
            OR subject IN (SELECT id FROM original_requests
                           WHERE parent_id = ?3
                             AND photo_id IN (SELECT value FROM json_each(?2)))
         ORDER BY seq",
    )?;
    let rows = statement.query_map([child.clone(), photo_list, parent.id.to_string()], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, Option<String>>(4)?,
            row.get::<_, Option<String>>(5)?,
            row.get::<_, String>(6)?,
        ))
    })?;

    let mut entries = Vec::new();
    for row in rows {
        let (seq, at, kind, actor, subject, ip, detail) = row?;
        let about_child = subject.as_deref() == Some(child.as_str());
        let own = actor == own_actor;
        let detail: Value = serde_json::from_str(&detail).unwrap_or(Value::Null);

        let entry = if own || about_child {
            json!({
                "seq": seq,
                "at": rfc3339(from_millis(at)),
                "kind": kind,
                "actor": actor,
                "subject": subject,
                "ip": if own { ip } else { None },
                "detail": without_other_children(detail, &child),
            })
        } else {
            let face_is_childs = |detail: &Value| {
                let n = detail["n"].as_u64().and_then(|n| u32::try_from(n).ok());
                match (&subject, n) {
                    (Some(photo), Some(n)) => childs_faces.contains(&(photo.clone(), n)),
                    _ => false,
                }
            };
            let tellable = match kind.as_str() {
                "face_named" => detail["child_id"].as_str() == Some(child.as_str()),
                "face_added" => face_is_childs(&detail),
                other => PHOTO_EVENTS.contains(&other),
            };
            if !tellable {
                continue;
            }
            let role = actor.split(':').next().unwrap_or("someone");
            json!({
                "seq": seq,
                "at": rfc3339(from_millis(at)),
                "kind": kind,
                "actor": role,
                "subject": subject,
            })
        };
        entries.push(entry);
    }
    Ok(Value::Array(entries))
}

/// The guardian's own entries may hold other children's ids (the children
/// an original showed uncovered, a face named as someone else): those are
/// dropped, so the archive names no other child.
fn without_other_children(mut detail: Value, child: &str) -> Value {
    if let Some(uncovered) = detail.get_mut("uncovered_children") {
        if let Some(ids) = uncovered.as_array_mut() {
            ids.retain(|id| id.as_str() == Some(child));
        }
    }
    if let Some(named) = detail.get_mut("child_id") {
        if named.as_str().is_some_and(|id| id != child) {
            *named = Value::Null;
        }
    }
    detail
}

/// Writes an archive, one photo at a time, each rendered by what the
/// guardian may see as it is written.
struct ArchiveWriter {
    hub: Arc<Hub>,
    parent: Parent,
    renders: Arc<Semaphore>,
    runtime: tokio::runtime::Handle,
    marked: bool,
}

impl ArchiveWriter {
    /// Returns how many photos went in.
    fn write(&self, contents: &Contents, out: ChunkSender) -> Result<usize, ApiError> {
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        let mut zip = ZipWriter::new_stream(out);
        let add = |zip: &mut ZipWriter<_>, name: &str, bytes: &[u8]| -> Result<(), ApiError> {
            zip.start_file(name, options).map_err(ApiError::internal)?;
            zip.write_all(bytes).map_err(ApiError::internal)
        };

        add(&mut zip, "README.txt", readme(contents).as_bytes())?;
        add(
            &mut zip,
            "child.json",
            &serde_json::to_vec_pretty(&contents.child_json).map_err(ApiError::internal)?,
        )?;

        let mut written = 0;
        for &photo_id in &contents.photos {
            // A guardian unlinked or a child erased meanwhile ends the export.
            if !children::is_guardian_of(&self.hub, self.parent.id, contents.child.id)? {
                return Err(ApiError::NotFound);
            }
            // One rendering slot per photo, so a slow download does not hold
            // one while it waits for the network.
            let permit = self.runtime.block_on(render_slot(&self.renders))?;
            let rendered = render_for(
                &self.hub,
                &self.parent,
                photo_id,
                Size::Preview,
                self.marked.then_some(&contents.mark),
            );
            drop(permit);
            let (jpeg, photo) = match rendered {
                // No longer theirs to see (unnamed, purged, erased): left out.
                Err(ApiError::NotFound) => continue,
                other => other?,
            };
            if !photo.viewing.own_children().contains(&contents.child.id) {
                continue;
            }
            add(&mut zip, &format!("photos/{photo_id}.jpg"), &jpeg)?;
            written += 1;
        }
        add(
            &mut zip,
            "audit.json",
            &serde_json::to_vec_pretty(&contents.audit_json).map_err(ApiError::internal)?,
        )?;

        let mut out = zip.finish().map_err(ApiError::internal)?.into_inner();
        out.flush().map_err(ApiError::internal)?;
        Ok(written)
    }
}

fn readme(contents: &Contents) -> String {
    format!(
        "Guardian: everything the school's hub holds about {name}\n\
         Made for {viewer} on {at} (UTC), access {access}.\n\n\
         child.json   {name}'s record and every consent decision, with who made it and when.\n\
         photos/      the {count} photo(s) in which {name} is named, as you see them on the\n\
         \x20            school's page: other children covered unless their families agreed.\n\
         \x20            Full-size originals are still requested one by one with an SMS code.\n\
         audit.json   the record of {name}'s data and of these photos:\n\
         \x20            - everything recorded about {name}: added, consents, links to\n\
         \x20              parents, archives;\n\
         \x20            - your own actions on these photos, in full: previews viewed,\n\
         \x20              originals asked for, codes sent, wrong and right codes,\n\
         \x20              downloads refused and delivered;\n\
         \x20            - other people's actions on these photos, only as what happened,\n\
         \x20              when and in which role (parent, teacher, device…): the photo\n\
         \x20              arrived, a teacher looked at it to review it, named a face as\n\
         \x20              {name} or drew a face that is {name}'s, released it, and\n\
         \x20              families viewed it or downloaded its original.\n\
         \x20            No other child and no other family is named, and nobody else's\n\
         \x20            address is given.\n",
        name = contents.child.name,
        viewer = contents.mark.viewer_name,
        at = rfc3339(contents.exported_at),
        access = contents.mark.access_id,
        count = contents.photos.len(),
    )
}

/// Hands the archive to the connection in pieces of [`CHUNK_BYTES`]. Once
/// the guardian's browser goes away, writing fails and the export stops.
struct ChunkSender {
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
    runtime: tokio::runtime::Handle,
    buffer: Vec<u8>,
}

/// How long a piece of the archive may wait for the browser to take it
/// before the export is given up.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

impl ChunkSender {
    fn new(
        sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            sender,
            runtime,
            buffer: Vec::with_capacity(CHUNK_BYTES),
        }
    }

    fn send_buffer(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK_BYTES),
        ));
        let sent = self.runtime.block_on(tokio::time::timeout(
            SEND_TIMEOUT,
            self.sender.send(Ok(chunk)),
        ));
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe)),
            Err(_) => Err(std::io::Error::from(std::io::ErrorKind::TimedOut)),
        }
    }
}

impl Write for ChunkSender {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK_BYTES {
            self.send_buffer()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send_buffer()
    }
}
