//! Logging in and out: `POST /api/login` and `POST /api/logout`.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use tracing::instrument;

use super::client_ip::ClientIp;
use super::error::ApiError;
use super::json::{ApiJson, Empty};
use super::login_throttle::Refusal;
use super::{blocking, record, session, AppState};
use crate::audit::{Actor, AuditEvent, AuditKind};

/// The login form. No `Debug`: it holds a password.
#[derive(Deserialize)]
pub struct LoginBody {
    /// The phone number, E.164, of any account.
    login: String,
    password: String,
}

/// Checks a phone number and password and starts a new session. A session
/// cookie sent along is discarded and its session deleted, whoever it was.
#[instrument(skip_all, fields(account_id, role))]
pub async fn login(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    let hub = state.hub.clone();
    let presented = session::presented_hash(&hub, &headers);
    let phone = body.login.clone();

    let now = hub.clock.now();
    let _check = match state.logins.admit(&phone, ip.chosen, now).await {
        Ok(permit) => permit,
        Err(refusal) => {
            tracing::warn!(?refusal, "login refused before the password check");
            record_blocking(
                &hub,
                AuditEvent::new(AuditKind::LoginFailed, Actor::Anonymous)
                    .ip(ip)
                    .detail(json!({ "reason": format!("{refusal:?}") })),
            )
            .await?;
            return Err(match refusal {
                Refusal::TooManyFailures => ApiError::TooManyLogins,
                Refusal::Busy => ApiError::Busy,
            });
        }
    };

    // argon2 takes tens of milliseconds of CPU: off the async threads.
    let started = blocking(move || {
        let account = hub.accounts.check_login(&body.login, &body.password)?;
        let Some(account) = account else {
            record(
                &hub,
                AuditEvent::new(AuditKind::LoginFailed, Actor::Anonymous).ip(ip),
            )?;
            return Ok(None);
        };

        let replaced = match presented {
            Some(old) => session::end(&hub, &old)?.is_some(),
            None => false,
        };
        let id = session::start(&hub, account.id)?;
        record(
            &hub,
            AuditEvent::new(
                AuditKind::LoginSucceeded,
                Actor::account(account.role, account.id),
            )
            .ip(ip)
            .detail(json!({ "replaced_session": replaced })),
        )?;
        Ok(Some((account, id)))
    })
    .await?;

    let Some((account, id)) = started else {
        state.logins.failed(&phone, ip.chosen, now);
        return Err(ApiError::BadLogin);
    };
    state.logins.succeeded(&phone);
    let span = tracing::Span::current();
    span.record("account_id", tracing::field::display(account.id));
    span.record("role", account.role.as_str());
    tracing::info!("logged in");

    let mut response =
        Json(json!({ "name": account.name, "role": account.role.as_str() })).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, id.set_cookie(state.https));
    Ok(response)
}

/// Ends the session on the hub and clears the cookie. Without a live session
/// there is nothing to end, and the answer is the same.
#[instrument(skip_all, fields(account_id))]
pub async fn logout(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    ApiJson(_): ApiJson<Empty>,
) -> Result<Response, ApiError> {
    if let Some(hash) = session::presented_hash(&state.hub, &headers) {
        let hub = state.hub.clone();
        blocking(move || {
            if let Some(account_id) = session::end(&hub, &hash)? {
                tracing::Span::current().record("account_id", tracing::field::display(account_id));
                tracing::info!("logged out");
                let actor = match hub.accounts.account(account_id)? {
                    Some(account) => Actor::account(account.role, account.id),
                    None => Actor::Anonymous,
                };
                record(&hub, AuditEvent::new(AuditKind::Logout, actor).ip(ip))?;
            }
            Ok(())
        })
        .await?;
    }

    let mut response = Json(json!({ "ok": true })).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie());
    Ok(response)
}

async fn record_blocking(
    hub: &std::sync::Arc<crate::Hub>,
    event: AuditEvent,
) -> Result<(), ApiError> {
    let hub = hub.clone();
    blocking(move || record(&hub, event)).await
}
