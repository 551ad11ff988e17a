//! The gallery: a parent's list of photos and their covered previews.
//!
//! A parent sees the photos of their own classroom only. Another classroom's
//! photo is answered exactly like one that does not exist (404), so ids
//! cannot be probed.

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
use crate::store::PhotoRecord;
use crate::Hub;
use crate::{render, retention};

/// One photo in the list.
#[derive(Debug, Serialize)]
pub struct PhotoSummary {
    pub id: Uuid,
    /// RFC 3339, UTC. The device's clock, which may have been wrong.
    pub captured_at: String,
    /// RFC 3339, UTC. The hub's clock.
    pub received_at: String,
    /// How many faces the device found (and covered in the preview).
    pub faces: u32,
    /// `YYYY-MM-DD`, the school's date: the last day the photo is kept
    /// (see [`crate::retention`]).
    pub delete_after: String,
}

impl PhotoSummary {
    pub fn new(record: &PhotoRecord, timezone: chrono_tz::Tz) -> Self {
        Self {
            id: record.id,
            captured_at: rfc3339(record.captured_at),
            received_at: rfc3339(record.received_at),
            faces: record.faces,
            delete_after: retention::delete_after(record, timezone).to_string(),
        }
    }
}

/// `GET /api/photos`: the parent's classroom's photos, newest first.
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

/// `GET /api/photos/{id}/preview`: the preview JPEG, every face covered,
/// decrypted in memory.
#[instrument(skip_all, fields(parent_id, photo_id))]
pub async fn preview(
    State(state): State<AppState>,
    session: GuardianSession,
    ip: ClientIp,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let photo_id = parse_id(&id)?;
    tracing::Span::current().record("photo_id", tracing::field::display(photo_id));

    let hub = state.hub.clone();
    let jpeg = blocking(move || {
        visible_photo(&hub, &session.parent, photo_id)?;
        let jpeg = render::preview(&hub, photo_id)?;
        record(
            &hub,
            AuditEvent::new(AuditKind::PreviewViewed, Actor::Parent(session.parent.id))
                .subject(photo_id)
                .ip(ip.chosen),
        )?;
        Ok(jpeg)
    })
    .await?;

    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
        ],
        jpeg,
    )
        .into_response())
}

/// The parent's classroom's photos, newest first, with the listing audited.
pub fn list_for(
    hub: &Hub,
    parent: &Parent,
    ip: ClientIp,
    via: &'static str,
) -> Result<Vec<PhotoRecord>, ApiError> {
    // The first version's classroom-wide listing; a guardian without a
    // classroom sees nothing here until photos are listed per child.
    let photos = match parent.classroom_id {
        Some(classroom_id) => hub.store.list_for_classroom(classroom_id)?,
        None => Vec::new(),
    };
    record(
        hub,
        AuditEvent::new(AuditKind::PhotosListed, Actor::Parent(parent.id))
            .ip(ip.chosen)
            .detail(json!({ "count": photos.len(), "via": via })),
    )?;
    Ok(photos)
}

/// The photo, if this parent may see it; `NotFound` otherwise.
pub fn visible_photo(hub: &Hub, parent: &Parent, photo_id: Uuid) -> Result<PhotoRecord, ApiError> {
    match hub.store.get(photo_id)? {
        Some(record) if Some(record.classroom_id) == parent.classroom_id => Ok(record),
        _ => Err(ApiError::NotFound),
    }
}

/// An id from a path; anything that is not a UUID is simply not found.
pub fn parse_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(text).map_err(|_| ApiError::NotFound)
}

pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}
