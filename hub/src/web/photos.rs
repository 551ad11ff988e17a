//! The gallery: a guardian's list of photos and their previews, rendered for
//! them.
//!
//! A guardian sees the released photos in which one of their children is
//! named (see [`crate::visibility`]); any other photo is answered exactly
//! like one that does not exist (404), so ids cannot be probed.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::json;
use tracing::instrument;
use uuid::Uuid;

use super::client_ip::ClientIp;
use super::error::ApiError;
use super::session::GuardianSession;
use super::{blocking, record, AppState};
use crate::accounts::Parent;
use crate::audit::{Actor, AuditEvent, AuditKind};
use crate::render::{self, Size};
use crate::store::PhotoRecord;
use crate::visibility::{self, Viewing};
use crate::watermark::ViewerMark;
use crate::{retention, Hub};

/// A photo a guardian may see, with what they may see of it.
#[derive(Debug, Clone)]
pub struct GuardianPhoto {
    pub record: PhotoRecord,
    pub viewing: Viewing,
}

/// One photo in the list.
#[derive(Debug, Serialize)]
pub struct PhotoSummary {
    pub id: Uuid,
    /// RFC 3339, UTC. The device's clock, which may have been wrong.
    pub captured_at: String,
    /// RFC 3339, UTC. The hub's clock.
    pub received_at: String,
    /// How many faces the photo has: those the device found and those the
    /// reviewing teacher drew.
    pub faces: usize,
    /// `YYYY-MM-DD`, the school's date: the last day the photo is kept
    /// (see [`crate::retention`]).
    pub delete_after: String,
    /// The viewer's own children named in the photo.
    pub children: Vec<Uuid>,
    /// Whether the viewer may ask for the original: every child it shows
    /// uncovered has consented to originals.
    pub original_available: bool,
}

impl PhotoSummary {
    pub fn new(photo: &GuardianPhoto, timezone: chrono_tz::Tz) -> Self {
        let record = &photo.record;
        Self {
            id: record.id,
            captured_at: rfc3339(record.captured_at),
            received_at: rfc3339(record.received_at),
            faces: photo.viewing.faces.len(),
            delete_after: retention::delete_after(record, timezone).to_string(),
            children: photo.viewing.own_children(),
            original_available: photo.viewing.original_allowed(),
        }
    }
}

/// `GET /api/photos`: the photos of the guardian's children, newest first.
#[instrument(skip_all, fields(parent_id))]
pub async fn list(
    State(state): State<AppState>,
    session: GuardianSession,
    ip: ClientIp,
) -> Result<Json<Vec<PhotoSummary>>, ApiError> {
    let hub = state.hub.clone();
    let photos = blocking(move || list_for(&hub, &session.parent, ip, "api")).await?;
    let timezone = state.hub.timezone;
    Ok(Json(
        photos
            .iter()
            .map(|photo| PhotoSummary::new(photo, timezone))
            .collect(),
    ))
}

/// `GET /api/photos/{id}/preview`: the photo at preview size, rendered for
/// this guardian and watermarked for them.
#[instrument(skip_all, fields(parent_id, photo_id, access_id))]
pub async fn preview(
    State(state): State<AppState>,
    session: GuardianSession,
    ip: ClientIp,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let photo_id = parse_id(&id)?;
    tracing::Span::current().record("photo_id", tracing::field::display(photo_id));

    let _permit = state.render_permit().await?;
    let (hub, marked) = (state.hub.clone(), state.watermarks);
    let jpeg = blocking(move || {
        let mark = viewer_mark(&hub, &session.parent.name, ip);
        tracing::Span::current().record("access_id", tracing::field::display(mark.access_id));

        let (jpeg, photo) = render_for(
            &hub,
            &session.parent,
            photo_id,
            Size::Preview,
            marked.then_some(&mark),
        )?;
        record(
            &hub,
            AuditEvent::new(AuditKind::PreviewViewed, Actor::Parent(session.parent.id))
                .subject(photo_id)
                .ip(ip)
                .detail(json!({
                    "access_id": mark.access_id,
                    "uncovered": photo.viewing.faces.iter().filter(|face| face.uncovered).count(),
                    "covered": photo.viewing.faces.iter().filter(|face| !face.uncovered).count(),
                })),
        )?;
        Ok(jpeg)
    })
    .await?;

    Ok(jpeg_response(jpeg))
}

/// A JPEG answer that no shared cache keeps.
pub fn jpeg_response(jpeg: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
        ],
        jpeg,
    )
        .into_response()
}

/// The guardian's photos, newest first, with the listing audited.
pub fn list_for(
    hub: &Hub,
    parent: &Parent,
    ip: ClientIp,
    via: &'static str,
) -> Result<Vec<GuardianPhoto>, ApiError> {
    let ids = visibility::photos_for_guardian(&hub.db.lock(), parent.id)?;
    let mut photos = Vec::with_capacity(ids.len());
    for id in ids {
        // A photo purged or hidden between the two reads is simply not listed.
        if let Ok(photo) = visible_photo(hub, parent, id) {
            photos.push(photo);
        }
    }
    record(
        hub,
        AuditEvent::new(AuditKind::PhotosListed, Actor::Parent(parent.id))
            .ip(ip)
            .detail(json!({ "count": photos.len(), "via": via })),
    )?;
    Ok(photos)
}

/// The photo and what this guardian may see of it; `NotFound` if it is not
/// theirs to see.
pub fn visible_photo(
    hub: &Hub,
    parent: &Parent,
    photo_id: Uuid,
) -> Result<GuardianPhoto, ApiError> {
    let viewing = visibility::for_guardian(&hub.db.lock(), parent.id, photo_id)?;
    match (viewing, hub.store.get(photo_id)?) {
        (Some(viewing), Some(record)) => Ok(GuardianPhoto { record, viewing }),
        _ => Err(ApiError::NotFound),
    }
}

/// Renders a photo for a guardian by what they may see at the moment it
/// leaves the hub: what they may see is read before the rendering and again
/// after it, and a rendering made under a rule that changed meanwhile (a
/// consent withdrawn during a slow render) is thrown away and made again.
/// `NotFound` if the photo is no longer theirs to see; for an original,
/// `OriginalNotAllowed` unless every child it shows uncovered consented.
pub fn render_for(
    hub: &Hub,
    parent: &Parent,
    photo_id: Uuid,
    size: Size,
    mark: Option<&ViewerMark>,
) -> Result<(Vec<u8>, GuardianPhoto), ApiError> {
    for _ in 0..RENDER_ATTEMPTS {
        let before = visible_photo(hub, parent, photo_id)?;
        if size == Size::Original && !before.viewing.original_allowed() {
            return Err(ApiError::OriginalNotAllowed);
        }
        let jpeg = render::for_viewer(hub, photo_id, &before.viewing.covering(), size, mark)?;
        let after = visible_photo(hub, parent, photo_id)?;
        if after.viewing == before.viewing {
            return Ok((jpeg, before));
        }
        tracing::info!(%photo_id, "what the viewer may see changed during the rendering; made again");
    }
    // Consents flipping on every attempt: let the viewer try again later.
    Err(ApiError::Busy)
}

/// Renderings made before giving up on a photo whose rule keeps changing.
const RENDER_ATTEMPTS: usize = 3;

/// The facts a rendering names its viewer by, with a fresh access id.
pub fn viewer_mark(hub: &Hub, name: &str, ip: ClientIp) -> ViewerMark {
    ViewerMark {
        viewer_name: name.to_owned(),
        client_ip: ip.chosen,
        at: hub.clock.now(),
        access_id: Uuid::new_v4(),
    }
}

/// An id from a path; anything that is not a UUID is simply not found.
pub fn parse_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(text).map_err(|_| ApiError::NotFound)
}

pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A time as a person at the school reads it: in the school's time zone, with
/// the zone's name and its offset from UTC, e.g. `2025-03-01 10:04 CET (+01:00)`.
/// The API keeps RFC 3339 UTC for scripts; pages show this.
pub fn local_time(at: DateTime<Utc>, timezone: chrono_tz::Tz) -> String {
    at.with_timezone(&timezone)
        .format("%Y-%m-%d %H:%M %Z (%:z)")
        .to_string()
}
