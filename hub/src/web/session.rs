//! Sessions: server-side rows named by a random id in a cookie.
//!
//! The id is 256 random bits; the database keeps only its HMAC under the hub's
//! `secrets` key, so a copy of the database cannot be replayed as cookies. A
//! session lasts [`SESSION_LIFETIME`] from login, ends at logout, and its id
//! is never reused: every login makes a new one and deletes the session whose
//! cookie came with the login request (case C15, session fixation).
//!
//! A session belongs to one account and carries its role. Handlers say which
//! role they serve by the extractor they take: [`GuardianSession`] for the
//! parents' routes, [`CurrentSession`] for any role (checking the role
//! themselves). A logged-in account of another role is refused with 403
//! `wrong_role`: the route exists, but not for them.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Duration;
use rand::RngCore;
use rusqlite::{params, OptionalExtension};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::error::ApiError;
use super::{blocking, AppState};
use crate::accounts::{Account, Parent, Role};
use crate::codes::digest;
use crate::db::to_millis;
use crate::store::sqlite_uuid;
use crate::Hub;

/// The cookie's name.
pub const COOKIE_NAME: &str = "guardian_session";

/// How long a session lasts after login, whatever the parent does.
pub const SESSION_LIFETIME: Duration = Duration::hours(12);

/// A session id, as sent in the cookie. Not `Clone`, redacted in `Debug`,
/// wiped on drop.
pub struct SessionId(Zeroizing<String>);

impl SessionId {
    fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        Self(Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_ref())))
    }

    /// The `Set-Cookie` header that hands this id to the browser.
    /// `Secure` only when browsers reach the hub over HTTPS: over plain HTTP
    /// a browser would never send the cookie back.
    pub fn set_cookie(&self, https: bool) -> HeaderValue {
        let cookie = format!(
            "{COOKIE_NAME}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
            self.0.as_str(),
            SESSION_LIFETIME.num_seconds(),
            if https { "; Secure" } else { "" }
        );
        // Base64url and the fixed attributes are all visible ASCII.
        HeaderValue::from_str(&cookie).unwrap_or_else(|_| clear_cookie())
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionId(redacted)")
    }
}

/// The `Set-Cookie` header that makes the browser forget its session.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("guardian_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

/// The HMAC of a session id, as stored in `sessions.id_hash`.
pub fn id_hash(hub: &Hub, cookie_value: &str) -> [u8; 32] {
    digest(&hub.keys, SESSION_PURPOSE, cookie_value.as_bytes())
}

/// The HMAC of the session id a request presents, if it presents a
/// well-formed one.
pub fn presented_hash(hub: &Hub, headers: &HeaderMap) -> Option<[u8; 32]> {
    presented(headers).map(|value| id_hash(hub, value))
}

/// Makes a session for an account that has just logged in, and clears out
/// sessions that have expired.
pub fn start(hub: &Hub, account_id: Uuid) -> Result<SessionId, rusqlite::Error> {
    let id = SessionId::generate();
    let hash = id_hash(hub, &id.0);
    let now = hub.clock.now();

    let conn = hub.db.lock();
    conn.execute(
        "DELETE FROM sessions WHERE expires_at <= ?1",
        [to_millis(now)],
    )?;
    conn.execute(
        "INSERT INTO sessions (id_hash, account_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![
            hash.as_slice(),
            account_id.to_string(),
            to_millis(now),
            to_millis(now + SESSION_LIFETIME)
        ],
    )?;
    Ok(id)
}

/// Deletes a session; returns the account it belonged to, if it existed.
pub fn end(hub: &Hub, hash: &[u8; 32]) -> Result<Option<Uuid>, rusqlite::Error> {
    let conn = hub.db.lock();
    conn.query_row(
        "DELETE FROM sessions WHERE id_hash = ?1 RETURNING account_id",
        [hash.as_slice()],
        |row| sqlite_uuid(row, 0),
    )
    .optional()
}

/// The account of a live session.
pub fn find(hub: &Hub, hash: &[u8; 32]) -> Result<Option<Account>, ApiError> {
    let now = hub.clock.now();
    let account_id = {
        let conn = hub.db.lock();
        conn.query_row(
            "SELECT account_id FROM sessions WHERE id_hash = ?1 AND expires_at > ?2",
            params![hash.as_slice(), to_millis(now)],
            |row| sqlite_uuid(row, 0),
        )
        .optional()?
    };
    match account_id {
        Some(id) => Ok(hub.accounts.account(id)?),
        None => Ok(None),
    }
}

/// A request made within a live session, of any role. Extracting it refuses
/// the request with 401 `login_required` when there is none.
#[derive(Debug, Clone)]
pub struct CurrentSession {
    pub account: Account,
    pub id_hash: [u8; 32],
}

impl CurrentSession {
    /// Refuses the request with 403 `wrong_role` unless the account has one
    /// of these roles.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.account.role) {
            Ok(())
        } else {
            Err(ApiError::WrongRole)
        }
    }
}

impl FromRequestParts<AppState> for CurrentSession {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        MaybeSession::from_request_parts(parts, state)
            .await?
            .0
            .ok_or(ApiError::LoginRequired)
    }
}

/// A guardian's session, for the parents' routes. Without a session: 401
/// `login_required`; with another role's: 403 `wrong_role`.
#[derive(Debug, Clone)]
pub struct GuardianSession {
    pub parent: Parent,
    pub id_hash: [u8; 32],
}

impl FromRequestParts<AppState> for GuardianSession {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let session = CurrentSession::from_request_parts(parts, state).await?;
        session.require(&[Role::Guardian])?;

        let hub = state.hub.clone();
        let id = session.account.id;
        let parent = blocking(move || Ok(hub.accounts.parent(id)?)).await?;
        // A guardian account always has its guardians row; were it missing,
        // the account could not use the parents' routes anyway.
        let parent = parent.ok_or(ApiError::WrongRole)?;
        Ok(Self {
            parent,
            id_hash: session.id_hash,
        })
    }
}

/// The live session of a request, if it has one.
#[derive(Debug, Clone)]
pub struct MaybeSession(pub Option<CurrentSession>);

impl FromRequestParts<AppState> for MaybeSession {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(id_hash) = presented_hash(&state.hub, &parts.headers) else {
            return Ok(Self(None));
        };

        let hub = state.hub.clone();
        let account = blocking(move || find(&hub, &id_hash)).await?;
        if let Some(account) = &account {
            let span = tracing::Span::current();
            span.record("account_id", tracing::field::display(account.id));
            span.record("role", account.role.as_str());
            if account.role == Role::Guardian {
                span.record("parent_id", tracing::field::display(account.id));
            }
        }
        Ok(Self(
            account.map(|account| CurrentSession { account, id_hash }),
        ))
    }
}

const SESSION_PURPOSE: &str = "guardian session id v1";

/// Characters of a session id: 256 bits in base64url without padding.
const ID_CHARS: usize = 43;

/// The value of our cookie, if a request carries a well-formed one. Values of
/// another shape are ignored, not looked up.
fn presented(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim())
        .filter(|value| {
            value.len() == ID_CHARS
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others_and_checked_for_shape() {
        let id = SessionId::generate();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("theme=dark; {COOKIE_NAME}={}", id.0.as_str()))
                .expect("header"),
        );
        assert_eq!(presented(&headers), Some(id.0.as_str()));

        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("guardian_session=../../etc"),
        );
        assert_eq!(presented(&headers), None);
    }

    #[test]
    fn the_cookie_is_http_only_and_same_site_strict() {
        let id = SessionId::generate();
        let cookie = id.set_cookie(false);
        let cookie = cookie.to_str().expect("ascii");
        assert!(cookie.contains("HttpOnly"));
        assert!(cookie.contains("SameSite=Strict"));
        assert!(cookie.contains("Path=/"));
        assert!(!cookie.contains("Secure"));
        assert_eq!(format!("{id:?}"), "SessionId(redacted)");

        let over_https = id.set_cookie(true);
        assert!(over_https.to_str().expect("ascii").ends_with("; Secure"));
    }
}
