//! Getting an original: ask, prove the phone with the SMS code, download once.
//!
//! An original is offered only while every child it shows uncovered has
//! consent for originals (see [`crate::visibility`]); that is checked when
//! the parent asks and again when the link is used.
//!
//! `POST /api/photos/{id}/original` opens a request and sends its code;
//! `POST /api/original-requests/{id}/verify` spends the code for a single-use
//! link; `GET /api/downloads/{token}` renders the original for this viewer,
//! watermarked with their name, address, the time and a fresh access id that
//! the audit log records. The rules (limits, expiry, locking) live in
//! [`crate::codes`].

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::instrument;
use zeroize::Zeroizing;

use super::client_ip::ClientIp;
use super::error::ApiError;
use super::json::{ApiJson, Empty};
use super::photos::{parse_id, render_for, viewer_mark};
use super::session::GuardianSession;
use super::{blocking, record, AppState};
use crate::audit::{Actor, AuditEvent, AuditKind};
use crate::codes::{OneTimeCode, Requester, CODE_VALIDITY};
use crate::render::Size;

/// The body of a code check. No `Debug`: it holds the code.
#[derive(Deserialize)]
pub struct VerifyBody {
    code: String,
}

/// `POST /api/photos/{id}/original`: opens a request and sends its code to the
/// parent's phone. Answers only once the SMS provider has taken the message.
#[instrument(skip_all, fields(photo_id, request_id))]
pub async fn request_original(
    State(state): State<AppState>,
    session: GuardianSession,
    ip: ClientIp,
    Path(id): Path<String>,
    ApiJson(_): ApiJson<Empty>,
) -> Result<Json<Value>, ApiError> {
    let photo_id = parse_id(&id)?;
    tracing::Span::current().record("photo_id", tracing::field::display(photo_id));

    let who = requester(&session, ip);
    let phone = session.parent.phone.clone();
    let (hub, codes, sms) = (state.hub.clone(), state.codes.clone(), state.sms.clone());
    let request_id = blocking(move || {
        let new = codes.request_original(&who, photo_id)?;
        tracing::Span::current().record("request_id", tracing::field::display(new.request_id));

        let text = sms_text(&new.code);
        if let Err(error) = sms.send(&phone, &text) {
            // A code nobody received must never be usable.
            codes.cancel(new.request_id)?;
            tracing::error!(error = %error, "cannot send a code by SMS; the request is cancelled");
            return Err(ApiError::SmsFailed);
        }
        record(
            &hub,
            AuditEvent::new(AuditKind::CodeSent, Actor::Parent(who.parent_id))
                .subject(new.request_id)
                .ip(who.ip)
                .detail(json!({ "photo_id": photo_id })),
        )?;
        Ok(new.request_id)
    })
    .await?;

    tracing::info!("original requested, code sent");
    Ok(Json(json!({ "request_id": request_id })))
}

/// `POST /api/original-requests/{id}/verify`: spends the code for a
/// single-use download link, valid for this session only.
#[instrument(skip_all, fields(request_id))]
pub async fn verify(
    State(state): State<AppState>,
    session: GuardianSession,
    ip: ClientIp,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<VerifyBody>,
) -> Result<Json<Value>, ApiError> {
    let request_id = parse_id(&id)?;
    tracing::Span::current().record("request_id", tracing::field::display(request_id));
    let code = Zeroizing::new(body.code);

    let who = requester(&session, ip);
    let codes = state.codes.clone();
    let grant = blocking(move || Ok(codes.verify(&who, request_id, &code)?)).await?;

    tracing::info!("code verified, download granted");
    Ok(Json(json!({ "download": grant.expose_path() })))
}

/// `GET /api/downloads/{token}`: the watermarked original, once.
#[instrument(skip_all, fields(photo_id, request_id, access_id))]
pub async fn download(
    State(state): State<AppState>,
    method: Method,
    session: GuardianSession,
    ip: ClientIp,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    // A HEAD would spend the single use and deliver nothing.
    if method != Method::GET {
        return Err(ApiError::MethodNotAllowed);
    }
    let token = Zeroizing::new(token);

    // A full decode and encode takes memory in proportion to the photo; a
    // few at a time keep a small hub within its RAM.
    let _permit = state.render_permit().await?;
    let who = requester(&session, ip);
    let (hub, codes, marked) = (state.hub.clone(), state.codes.clone(), state.watermarks);

    let (photo_id, jpeg) = blocking(move || {
        let claimed = codes.claim_download(&who, &token)?;
        let span = tracing::Span::current();
        span.record("photo_id", tracing::field::display(claimed.photo_id));
        span.record("request_id", tracing::field::display(claimed.request_id));

        let mark = viewer_mark(&hub, &session.parent.name, ip);
        span.record("access_id", tracing::field::display(mark.access_id));

        // What this parent may see is decided as the original leaves, not
        // when they asked: a consent withdrawn since then (even during the
        // rendering) applies to this download too. Render, then audit; an
        // original the log does not know about is never sent.
        let delivered = render_for(
            &hub,
            &session.parent,
            claimed.photo_id,
            Size::Original,
            marked.then_some(&mark),
        )
        .and_then(|(jpeg, photo)| {
            record(
                &hub,
                AuditEvent::new(AuditKind::OriginalDelivered, Actor::Parent(who.parent_id))
                    .subject(claimed.photo_id)
                    .ip(ip)
                    .detail(json!({
                        "access_id": mark.access_id,
                        "photo_id": claimed.photo_id,
                        "request_id": claimed.request_id,
                        "peer_ip": ip.peer.to_string(),
                        "uncovered_children": photo.viewing.faces.iter()
                            .filter(|face| face.uncovered)
                            .filter_map(|face| face.child_id)
                            .collect::<Vec<_>>(),
                    })),
            )?;
            Ok(jpeg)
        });

        // No longer theirs to have: refused and audited, and the link stays
        // spent. Any other failure is the hub's: the link is given back for
        // another try.
        if let Err(error @ (ApiError::NotFound | ApiError::OriginalNotAllowed)) = &delivered {
            record(
                &hub,
                AuditEvent::new(AuditKind::DownloadRefused, Actor::Parent(who.parent_id))
                    .subject(claimed.request_id)
                    .ip(ip)
                    .detail(json!({ "refused": error.code() })),
            )?;
        }
        match delivered {
            Ok(jpeg) => Ok((claimed.photo_id, jpeg)),
            Err(error @ (ApiError::NotFound | ApiError::OriginalNotAllowed)) => Err(error),
            Err(error) => {
                codes.release(&claimed)?;
                Err(error)
            }
        }
    })
    .await?;

    tracing::info!("original delivered");
    let disposition = format!("attachment; filename=\"guardian-{photo_id}.jpg\"");
    let disposition = HeaderValue::from_str(&disposition).map_err(ApiError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        jpeg,
    )
        .into_response())
}

/// The SMS. The code is its only six-digit number, so a phone's "copy code"
/// suggestion picks the right one.
fn sms_text(code: &OneTimeCode) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "Guardian code {}. It opens one original photo for {} minutes. \
         The school will never ask you for it.",
        code.expose_digits(),
        CODE_VALIDITY.num_minutes()
    ))
}

fn requester(session: &GuardianSession, ip: ClientIp) -> Requester {
    Requester {
        parent_id: session.parent.id,
        session_hash: session.id_hash,
        ip: ip.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_is_the_only_six_digit_number_in_the_sms() {
        let code = OneTimeCode::from_number(81_804).expect("code");
        let text = sms_text(&code);
        let numbers: Vec<&str> = text
            .split(|c: char| !c.is_ascii_digit())
            .filter(|run| !run.is_empty())
            .collect();
        let six: Vec<&&str> = numbers.iter().filter(|n| n.len() == 6).collect();
        assert_eq!(six, [&"081804"]);
    }
}
