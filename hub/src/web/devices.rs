//! The classroom devices on the web, for admins: what each one last reported,
//! and revoking one.
//!
//! ```text
//! GET  /api/admin/devices              -> [{"id","classroom","revoked_at","last_seen_at","clock_skew_ms","heartbeat"}]
//! POST /api/admin/devices/{id}/revoke  -> {"revoked": true|false (already revoked)}
//! ```
//!
//! Teachers and guardians get 403 `wrong_role`.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};
use tracing::instrument;

use super::client_ip::ClientIp;
use super::error::ApiError;
use super::photos::parse_id;
use super::session::CurrentSession;
use super::{blocking, AppState};
use crate::accounts::Role;
use crate::audit::Actor;
use crate::fleet::{self, DeviceStatus, FleetError};

/// `GET /api/admin/devices`
#[instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    session: CurrentSession,
) -> Result<Json<Vec<DeviceStatus>>, ApiError> {
    session.require(&[Role::Admin])?;
    let hub = state.hub.clone();
    let devices = blocking(move || Ok(fleet::list(&hub)?)).await?;
    Ok(Json(devices))
}

/// `POST /api/admin/devices/{id}/revoke`
#[instrument(skip_all, fields(device_id = %id))]
pub async fn revoke(
    State(state): State<AppState>,
    session: CurrentSession,
    ip: ClientIp,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    session.require(&[Role::Admin])?;
    let device_id = parse_id(&id)?;
    let hub = state.hub.clone();
    let admin_id = session.account.id;

    let revoked =
        blocking(move || Ok(fleet::revoke(&hub, device_id, Actor::Admin(admin_id))?)).await?;
    tracing::info!(%device_id, revoked, ip = %ip.chosen, "device revocation asked");
    Ok(Json(json!({ "revoked": revoked })))
}

impl From<FleetError> for ApiError {
    fn from(error: FleetError) -> Self {
        match error {
            FleetError::UnknownDevice(_) | FleetError::UnknownTeacher(_) => Self::NotFound,
            FleetError::PinNotDigits | FleetError::PinTooEasy(_) => Self::BadRequest,
            FleetError::Hash(_)
            | FleetError::Account(_)
            | FleetError::Database(_)
            | FleetError::Audit(_) => Self::internal(error),
        }
    }
}
