//! The review page's API, for teachers: the photos of their classrooms that
//! await review, each face outlined, naming faces, drawing a face the
//! detector missed, and releasing a photo to families.
//!
//! Only a teacher reaches these routes (others get 403 `wrong_role`), and
//! only for the classrooms they teach: another classroom's photo is 404, like
//! one that does not exist. The review image is shown inline and never as a
//! download; it is watermarked with the teacher's name like anything else
//! the hub renders.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use guardian_protocol::FaceRect;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::instrument;
use uuid::Uuid;

use super::client_ip::ClientIp;
use super::error::ApiError;
use super::json::ApiJson;
use super::photos::{jpeg_response, local_time, parse_id, rfc3339, viewer_mark};
use super::session::CurrentSession;
use super::{blocking, record, AppState};
use crate::accounts::Role;
use crate::audit::{Acting, Actor, AuditEvent, AuditKind};
use crate::children;
use crate::render;
use crate::review::{self, Review};
use crate::Hub;

/// Photos listed at once on the review page, oldest first; the next ones
/// appear as these are released.
pub const REVIEW_PAGE_SIZE: u32 = 100;

/// One face, as the review page shows it.
#[derive(Debug, Serialize)]
pub struct FaceView {
    pub n: u32,
    /// `[x, y, width, height]` in pixels of the full upright photo.
    #[serde(rename = "box")]
    pub rect: [u32; 4],
    /// `device` or `teacher`.
    pub origin: &'static str,
    pub child_id: Option<Uuid>,
}

/// A child the teacher may name on a face.
#[derive(Debug, Serialize)]
pub struct NameableChild {
    pub id: Uuid,
    pub name: String,
}

/// A photo on the review page.
#[derive(Debug, Serialize)]
pub struct ReviewPhoto {
    pub id: Uuid,
    pub classroom_id: Uuid,
    pub captured_at: String,
    pub received_at: String,
    pub width: u32,
    pub height: u32,
    pub damaged: bool,
    pub released_at: Option<String>,
    /// The same times in the school's time zone, as the review page shows them.
    pub local: LocalTimes,
    pub faces: Vec<FaceView>,
    /// The children of the photo's classroom, by name.
    pub children: Vec<NameableChild>,
}

/// A photo's times as a person at the school reads them (see [`local_time`]).
#[derive(Debug, Serialize)]
pub struct LocalTimes {
    pub captured_at: String,
    pub received_at: String,
    pub released_at: Option<String>,
}

/// The body of `POST /api/photos/{id}/faces/{n}/name`. `child_id` must be
/// there, `null` to make the face unknown: a misspelt or missing field is
/// refused rather than taken as "unknown", which would hide the photo from
/// the child's family without a word.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameBody {
    #[serde(deserialize_with = "present")]
    child_id: Option<Uuid>,
}

/// Reads an `Option` that must be present in the JSON, even if `null`.
fn present<'de, D>(deserializer: D) -> Result<Option<Uuid>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<Uuid>::deserialize(deserializer)
}

/// The body of `POST /api/photos/{id}/faces`.
#[derive(Debug, Deserialize)]
pub struct AddFaceBody {
    #[serde(rename = "box")]
    rect: [u32; 4],
}

/// The body of `POST /api/photos/{id}/release`.
#[derive(Debug, Default, Deserialize)]
pub struct ReleaseBody {
    #[serde(default)]
    no_faces: bool,
}

/// `GET /api/review`: the teacher's classrooms' photos awaiting review.
#[instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    session: CurrentSession,
    ip: ClientIp,
) -> Result<Json<Vec<ReviewPhoto>>, ApiError> {
    let teacher_id = teacher(&session)?;
    let hub = state.hub.clone();
    let listed = blocking(move || {
        let awaiting = review::awaiting(&hub, teacher_id, REVIEW_PAGE_SIZE)?;
        let listed = awaiting
            .into_iter()
            .map(|review| review_photo(&hub, review))
            .collect::<Result<Vec<_>, _>>()?;
        record(
            &hub,
            AuditEvent::new(AuditKind::ReviewListed, Actor::Teacher(teacher_id))
                .ip(ip)
                .detail(json!({ "count": listed.len() })),
        )?;
        Ok(listed)
    })
    .await?;
    Ok(Json(listed))
}

/// `GET /api/review/{id}`: one photo of the teacher's classrooms, released
/// or not.
#[instrument(skip_all, fields(photo_id))]
pub async fn show(
    State(state): State<AppState>,
    session: CurrentSession,
    Path(id): Path<String>,
) -> Result<Json<ReviewPhoto>, ApiError> {
    let teacher_id = teacher(&session)?;
    let photo_id = parse_id(&id)?;
    tracing::Span::current().record("photo_id", tracing::field::display(photo_id));

    let hub = state.hub.clone();
    let shown = blocking(move || {
        let review = reviewable(&hub, teacher_id, photo_id)?;
        review_photo(&hub, review)
    })
    .await?;
    Ok(Json(shown))
}

/// `GET /api/review/{id}/image`: the photo with every face uncovered and
/// outlined, preview-sized, watermarked with the teacher's name.
#[instrument(skip_all, fields(photo_id, access_id))]
pub async fn image(
    State(state): State<AppState>,
    session: CurrentSession,
    ip: ClientIp,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let teacher_id = teacher(&session)?;
    let photo_id = parse_id(&id)?;
    tracing::Span::current().record("photo_id", tracing::field::display(photo_id));

    let _permit = state.render_permit().await?;
    let hub = state.hub.clone();
    let name = session.account.name.clone();
    let jpeg = blocking(move || {
        let review = reviewable(&hub, teacher_id, photo_id)?;
        let mark = viewer_mark(&hub, &name, ip);
        tracing::Span::current().record("access_id", tracing::field::display(mark.access_id));

        let jpeg = render::for_review(&hub, photo_id, &review.faces, &mark)?;
        record(
            &hub,
            AuditEvent::new(AuditKind::ReviewViewed, Actor::Teacher(teacher_id))
                .subject(photo_id)
                .ip(ip)
                .detail(json!({ "access_id": mark.access_id })),
        )?;
        Ok(jpeg)
    })
    .await?;

    Ok(jpeg_response(jpeg))
}

/// `POST /api/photos/{id}/faces/{n}/name {"child_id"}`: says which child a
/// face is; `null` makes it unknown again.
#[instrument(skip_all, fields(photo_id, n))]
pub async fn name_face(
    State(state): State<AppState>,
    session: CurrentSession,
    ip: ClientIp,
    Path((id, n)): Path<(String, String)>,
    ApiJson(body): ApiJson<NameBody>,
) -> Result<Json<ReviewPhoto>, ApiError> {
    let teacher_id = teacher(&session)?;
    let photo_id = parse_id(&id)?;
    let n: u32 = n.parse().map_err(|_| ApiError::NotFound)?;
    tracing::Span::current().record("photo_id", tracing::field::display(photo_id));
    tracing::Span::current().record("n", n);

    let hub = state.hub.clone();
    let named = blocking(move || {
        check_classroom(&hub, teacher_id, photo_id)?;
        let by = Acting::web(Actor::Teacher(teacher_id), ip);
        let review = review::name_face(&hub, photo_id, n, body.child_id, by)?;
        review_photo(&hub, review)
    })
    .await?;

    tracing::info!("face named");
    Ok(Json(named))
}

/// `POST /api/photos/{id}/faces {"box":[x,y,w,h]}`: adds a face the
/// detector missed; answers `{"n", "photo"}`.
#[instrument(skip_all, fields(photo_id))]
pub async fn add_face(
    State(state): State<AppState>,
    session: CurrentSession,
    ip: ClientIp,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AddFaceBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let teacher_id = teacher(&session)?;
    let photo_id = parse_id(&id)?;
    tracing::Span::current().record("photo_id", tracing::field::display(photo_id));

    let [x, y, width, height] = body.rect;
    let rect = FaceRect {
        x,
        y,
        width,
        height,
    };
    let hub = state.hub.clone();
    let (n, photo) = blocking(move || {
        check_classroom(&hub, teacher_id, photo_id)?;
        let by = Acting::web(Actor::Teacher(teacher_id), ip);
        let (n, review) = review::add_face(&hub, photo_id, rect, by)?;
        Ok((n, review_photo(&hub, review)?))
    })
    .await?;

    tracing::info!(n, "face added");
    Ok(Json(json!({ "n": n, "photo": photo })))
}

/// `POST /api/photos/{id}/release {}`: releases the photo to the families
/// of the children named in it. A photo without faces needs
/// `{"no_faces": true}`.
#[instrument(skip_all, fields(photo_id))]
pub async fn release(
    State(state): State<AppState>,
    session: CurrentSession,
    ip: ClientIp,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReleaseBody>,
) -> Result<Json<ReviewPhoto>, ApiError> {
    let teacher_id = teacher(&session)?;
    let photo_id = parse_id(&id)?;
    tracing::Span::current().record("photo_id", tracing::field::display(photo_id));

    let hub = state.hub.clone();
    let released = blocking(move || {
        check_classroom(&hub, teacher_id, photo_id)?;
        let by = Acting::web(Actor::Teacher(teacher_id), ip);
        let review = review::release(&hub, photo_id, body.no_faces, by)?;
        review_photo(&hub, review)
    })
    .await?;

    tracing::info!("photo released");
    Ok(Json(released))
}

/// The teacher's id, or 403 `wrong_role` for anyone else.
fn teacher(session: &CurrentSession) -> Result<Uuid, ApiError> {
    session.require(&[Role::Teacher])?;
    Ok(session.account.id)
}

/// The photo's review, if the photo is in one of this teacher's classrooms;
/// 404 otherwise.
/// The classroom is checked before the review is built: building it may
/// open the sealed photo, which nobody outside the classroom may cause.
fn reviewable(hub: &Hub, teacher_id: Uuid, photo_id: Uuid) -> Result<Review, ApiError> {
    check_classroom(hub, teacher_id, photo_id)?;
    review::get(hub, photo_id)?.ok_or(ApiError::NotFound)
}

/// 404 unless the photo is in one of this teacher's classrooms. The edit
/// routes need no more: the change itself reads the review.
fn check_classroom(hub: &Hub, teacher_id: Uuid, photo_id: Uuid) -> Result<(), ApiError> {
    let Some(photo) = hub.store.get(photo_id)? else {
        return Err(ApiError::NotFound);
    };
    if !hub.accounts.teaches(teacher_id, photo.classroom_id)? {
        return Err(ApiError::NotFound);
    }
    Ok(())
}

fn review_photo(hub: &Hub, review: Review) -> Result<ReviewPhoto, ApiError> {
    let photo = &review.photo;
    let children = children::in_classroom(hub, photo.classroom_id)?
        .into_iter()
        .map(|child| NameableChild {
            id: child.id,
            name: child.name,
        })
        .collect();
    Ok(ReviewPhoto {
        id: photo.id,
        classroom_id: photo.classroom_id,
        captured_at: rfc3339(photo.captured_at),
        received_at: rfc3339(photo.received_at),
        width: photo.width,
        height: photo.height,
        damaged: photo.damaged,
        released_at: review.released_at.map(rfc3339),
        local: LocalTimes {
            captured_at: local_time(photo.captured_at, hub.timezone),
            received_at: local_time(photo.received_at, hub.timezone),
            released_at: review.released_at.map(|at| local_time(at, hub.timezone)),
        },
        faces: review
            .faces
            .iter()
            .map(|face| FaceView {
                n: face.n,
                rect: [face.rect.x, face.rect.y, face.rect.width, face.rect.height],
                origin: face.origin.as_str(),
                child_id: face.child_id,
            })
            .collect(),
        children,
    })
}
