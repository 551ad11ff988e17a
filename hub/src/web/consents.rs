//! Children and their consents on the web: list the children a session may
//! see, read a child's consents, give or withdraw one.
//!
//! `GET /api/children` lists a guardian's own children, a teacher's
//! classrooms' children (without consents) and, for an admin, every child.
//! A guardian acts only for the children linked to them; another child, or an
//! id that is no child at all, is 404 alike, so ids cannot be probed. An admin
//! acts for any child of the school (a form handed in on paper, say). A
//! teacher neither reads nor changes consents here: 403 `wrong_role`.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::instrument;
use uuid::Uuid;

use super::client_ip::ClientIp;
use super::error::ApiError;
use super::json::ApiJson;
use super::photos::{parse_id, rfc3339};
use super::session::CurrentSession;
use super::{blocking, record, AppState};
use crate::accounts::Role;
use crate::audit::{Acting, Actor, AuditEvent, AuditKind};
use crate::children::Child;
use crate::consent::{self, ConsentRecord, Purpose};
use crate::{children, Hub};

/// The body of `PUT /api/children/{id}/consent`.
#[derive(Debug, Deserialize)]
pub struct ConsentBody {
    purpose: String,
    granted: bool,
}

/// One decision, as the API shows it.
#[derive(Debug, Serialize)]
pub struct ConsentDecision {
    pub purpose: Purpose,
    pub granted: bool,
    /// Who decided: `parent:<id>`, `admin:<id>`…
    pub by: String,
    /// RFC 3339, UTC.
    pub at: String,
}

impl From<ConsentRecord> for ConsentDecision {
    fn from(record: ConsentRecord) -> Self {
        Self {
            purpose: record.purpose,
            granted: record.granted,
            by: record.by,
            at: rfc3339(record.at),
        }
    }
}

/// A child's consents: the current answer per purpose and every decision.
#[derive(Debug, Serialize)]
pub struct ConsentState {
    pub child_id: Uuid,
    pub visible_to_classmates: bool,
    pub originals: bool,
    /// Oldest first.
    pub history: Vec<ConsentDecision>,
}

/// One child in a listing. Consents are shown to guardians and admins only.
#[derive(Debug, Serialize)]
pub struct ChildSummary {
    pub id: Uuid,
    pub name: String,
    pub classroom_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visible_to_classmates: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub originals: Option<bool>,
}

/// `GET /api/children`: the children this session may see.
#[instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    session: CurrentSession,
    ip: ClientIp,
) -> Result<Json<Vec<ChildSummary>>, ApiError> {
    let hub = state.hub.clone();
    let listed = blocking(move || {
        let account = &session.account;
        let (children, with_consents) = match account.role {
            Role::Guardian => (children::of_guardian(&hub, account.id)?, true),
            Role::Teacher => (children::of_teacher(&hub, account.id)?, false),
            Role::Admin => (children::all(&hub)?, true),
        };
        let listed = children
            .into_iter()
            .map(|child| summary(&hub, child, with_consents))
            .collect::<Result<Vec<_>, ApiError>>()?;
        record(
            &hub,
            AuditEvent::new(
                AuditKind::ChildrenListed,
                Actor::account(account.role, account.id),
            )
            .ip(ip)
            .detail(json!({ "count": listed.len() })),
        )?;
        Ok(listed)
    })
    .await?;
    Ok(Json(listed))
}

/// A child with, if asked, the current answer of each consent.
pub fn summary(hub: &Hub, child: Child, with_consents: bool) -> Result<ChildSummary, ApiError> {
    let consents = if with_consents {
        Some((
            consent::current(hub, child.id, Purpose::VisibleToClassmates)?,
            consent::current(hub, child.id, Purpose::Originals)?,
        ))
    } else {
        None
    };
    Ok(ChildSummary {
        id: child.id,
        name: child.name,
        classroom_id: child.classroom_id,
        visible_to_classmates: consents.map(|(visible, _)| visible),
        originals: consents.map(|(_, originals)| originals),
    })
}

/// `GET /api/children/{id}/consent`
#[instrument(skip_all, fields(child_id))]
pub async fn show(
    State(state): State<AppState>,
    session: CurrentSession,
    Path(id): Path<String>,
) -> Result<Json<ConsentState>, ApiError> {
    let child_id = parse_id(&id)?;
    tracing::Span::current().record("child_id", tracing::field::display(child_id));

    let hub = state.hub.clone();
    let shown = blocking(move || {
        may_act_for(&hub, &session, child_id)?;
        consent_state(&hub, child_id)
    })
    .await?;
    Ok(Json(shown))
}

/// `PUT /api/children/{id}/consent {"purpose","granted"}`: gives
/// (`granted: true`) or withdraws (`false`) one consent, at once.
#[instrument(skip_all, fields(child_id))]
pub async fn change(
    State(state): State<AppState>,
    session: CurrentSession,
    ip: ClientIp,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ConsentBody>,
) -> Result<Json<ConsentState>, ApiError> {
    let child_id = parse_id(&id)?;
    tracing::Span::current().record("child_id", tracing::field::display(child_id));

    let hub = state.hub.clone();
    let shown = blocking(move || {
        may_act_for(&hub, &session, child_id)?;
        let purpose: Purpose = body.purpose.parse()?;
        let actor = Actor::account(session.account.role, session.account.id);
        consent::set(
            &hub,
            child_id,
            purpose,
            body.granted,
            Acting::web(actor, ip),
        )?;
        consent_state(&hub, child_id)
    })
    .await?;

    tracing::info!("consent changed");
    Ok(Json(shown))
}

/// Whether this session may read and change this child's consents.
fn may_act_for(hub: &Hub, session: &CurrentSession, child_id: Uuid) -> Result<(), ApiError> {
    session.require(&[Role::Guardian, Role::Admin])?;
    let allowed = match session.account.role {
        Role::Guardian => children::is_guardian_of(hub, session.account.id, child_id)?,
        _ => children::get(hub, child_id)?.is_some(),
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

pub(crate) fn consent_state(hub: &Hub, child_id: Uuid) -> Result<ConsentState, ApiError> {
    Ok(ConsentState {
        child_id,
        visible_to_classmates: consent::current(hub, child_id, Purpose::VisibleToClassmates)?,
        originals: consent::current(hub, child_id, Purpose::Originals)?,
        history: consent::history(hub, child_id)?
            .into_iter()
            .map(ConsentDecision::from)
            .collect(),
    })
}
