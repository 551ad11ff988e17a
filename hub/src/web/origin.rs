//! Refusing requests that another site makes a parent's browser send (CSRF,
//! case C16).
//!
//! Two checks run on every routed request before its handler:
//! - an `Origin` header must name the hub itself (the same host and port as the
//!   `Host` header); a request without `Origin` is allowed, as browsers omit it
//!   on same-origin GETs and non-browser clients send none;
//! - a request that may change state (anything but GET, HEAD and OPTIONS) must
//!   be `Content-Type: application/json`, which an HTML form on another site
//!   cannot send without the browser asking the hub first.
//!
//! The session cookie is also `SameSite=Strict`, so a cross-site request
//! normally arrives without it; these checks hold even where it does not.
//! Refusals are audited as `request_refused`.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::client_ip::ClientIp;
use super::error::ApiError;
use super::{blocking, record, session, AppState};
use crate::audit::{Actor, AuditEvent, AuditKind};

/// Middleware: lets a request through or refuses it with 403 `foreign_origin`
/// or 415 `unsupported_media_type`, and audits the refusal.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(refusal) = check(request.method(), request.headers(), request.uri()) else {
        return next.run(request).await;
    };
    let (parts, _body) = request.into_parts();
    refuse(&state, &parts, refusal).await
}

/// The fallback for a known path with a method it does not take, audited like
/// the other refusals: a GET aimed at an action is what a cross-site link or
/// image tag tries (C16).
pub async fn method_not_allowed(State(state): State<AppState>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    refuse(&state, &parts, ApiError::MethodNotAllowed).await
}

/// Audits a refused request and answers it.
async fn refuse(
    state: &AppState,
    parts: &axum::http::request::Parts,
    refusal: ApiError,
) -> Response {
    // What the auditor needs: who (if a session came along), from where, what.
    let ip = ClientIp::from_parts(parts).ok();
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| route_of(parts.uri.path()));
    let method = parts.method.to_string();
    let origin = parts
        .headers
        .get(header::ORIGIN)
        .map(|value| printable(value.as_bytes()));
    let session_hash = session::presented_hash(&state.hub, &parts.headers);
    let reason = refusal.code();

    match &refusal {
        ApiError::ForeignOrigin => tracing::warn!(reason, "refused a cross-site request"),
        ApiError::MethodNotAllowed => tracing::info!(reason, method, "refused a method"),
        _ => tracing::info!(reason, "refused a request that is not JSON"),
    }

    let hub = state.hub.clone();
    let audited = blocking(move || {
        let actor = match session_hash {
            Some(hash) => session::find(&hub, &hash)?
                .map(|account| Actor::account(account.role, account.id))
                .unwrap_or(Actor::Anonymous),
            None => Actor::Anonymous,
        };
        let mut event = AuditEvent::new(AuditKind::RequestRefused, actor).detail(json!({
            "reason": reason,
            "method": method,
            "route": route,
            "origin": origin,
        }));
        if let Some(ip) = ip {
            event = event.ip(ip);
        }
        record(&hub, event)
    })
    .await;
    if let Err(error) = audited {
        // The refusal stands; only its audit entry is missing.
        tracing::error!(error = %error_detail(&error), "cannot audit a refused request");
    }

    refusal.into_response()
}

/// The path as the audit may keep it: a download token is a secret, so that
/// segment is replaced by the route's placeholder.
fn route_of(path: &str) -> String {
    match path.strip_prefix(crate::codes::DOWNLOAD_PATH_PREFIX) {
        Some(_) => format!("{}{{token}}", crate::codes::DOWNLOAD_PATH_PREFIX),
        None => path.chars().take(200).collect(),
    }
}

/// The refusal a request earns, if any.
fn check(method: &Method, headers: &HeaderMap, uri: &axum::http::Uri) -> Option<ApiError> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .or_else(|| uri.authority().map(|authority| authority.as_str()));
        let same = match (origin.to_str(), host) {
            (Ok(origin), Some(host)) => same_origin(origin, host),
            _ => false,
        };
        if !same {
            return Some(ApiError::ForeignOrigin);
        }
    }

    let may_change_state = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if may_change_state && !is_json(headers) {
        return Some(ApiError::UnsupportedMediaType);
    }
    None
}

/// Whether an `Origin` value names the host and port of a `Host` value. A
/// missing port means the scheme's default, on both sides.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        // "null" (sandboxed frames, file: pages) and anything malformed.
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    match (
        host_and_port(authority, default_port),
        host_and_port(host, default_port),
    ) {
        (Some((origin_host, origin_port)), Some((host, port))) => {
            origin_host.eq_ignore_ascii_case(host) && origin_port == port
        }
        _ => false,
    }
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`. Anything with a path,
/// user info or a bad port is refused.
fn host_and_port(authority: &str, default_port: u16) -> Option<(&str, u16)> {
    if authority.is_empty() || authority.contains(['/', '@', '?', '#', ' ']) {
        return None;
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (inside, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(port) => port.parse().ok()?,
        None => default_port,
    };
    (!host.is_empty()).then_some((host, port))
}

/// `application/json`, with or without parameters such as a charset.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// A header value as printable ASCII, cut to a length fit for an audit entry.
fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(100)
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect()
}

fn error_detail(error: &ApiError) -> String {
    match error {
        ApiError::Internal(detail) => detail.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hubs_own_host_and_port_are_the_same_origin() {
        assert!(same_origin("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(same_origin("http://Hub.Local", "hub.local:80"));
        assert!(same_origin("https://hub.local", "hub.local"));
        assert!(same_origin("http://[::1]:8080", "[::1]:8080"));

        for (origin, host) in [
            ("http://127.0.0.2:8081", "127.0.0.1:8080"),
            ("http://127.0.0.1:8081", "127.0.0.1:8080"),
            ("http://127.0.0.1", "127.0.0.1:8080"),
            ("https://hub.local", "hub.local:80"),
            ("null", "127.0.0.1:8080"),
            ("http://127.0.0.1:8080/path", "127.0.0.1:8080"),
            ("http://evil@127.0.0.1:8080", "127.0.0.1:8080"),
            ("ftp://127.0.0.1:8080", "127.0.0.1:8080"),
            ("http://127.0.0.1:99999", "127.0.0.1:99999"),
            ("http://", ""),
        ] {
            assert!(!same_origin(origin, host), "{origin} vs {host} accepted");
        }
    }

    #[test]
    fn json_with_a_charset_is_json_and_forms_are_not() {
        let mut headers = HeaderMap::new();
        assert!(!is_json(&headers));
        headers.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().expect("header"),
        );
        assert!(is_json(&headers));
        for form in [
            "application/x-www-form-urlencoded",
            "text/plain",
            "multipart/form-data; boundary=x",
        ] {
            headers.insert(header::CONTENT_TYPE, form.parse().expect("header"));
            assert!(!is_json(&headers), "{form}");
        }
    }
}
