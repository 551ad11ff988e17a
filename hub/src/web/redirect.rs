//! The plain-HTTP listener of a hub that serves HTTPS: it only sends browsers
//! to the same page over HTTPS, so that a parent who types the school's
//! address without `https://` still arrives. Nothing else is answered on it,
//! and no cookie is ever set or read there.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

/// Where HTTPS listens, for the redirect's address.
#[derive(Debug, Clone, Copy)]
pub struct HttpsPort(pub u16);

/// A router that answers every request with a permanent redirect to HTTPS.
pub fn router(https_port: u16) -> Router {
    Router::new()
        .fallback(redirect)
        .with_state(HttpsPort(https_port))
}

async fn redirect(State(HttpsPort(port)): State<HttpsPort>, request: Request) -> Response {
    let Some(host) = request
        .headers()
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .and_then(host_name)
    else {
        return (
            StatusCode::BAD_REQUEST,
            "use https:// and the school's address\n",
        )
            .into_response();
    };

    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str());
    let location = match port {
        443 => format!("https://{host}{path}"),
        port => format!("https://{host}:{port}{path}"),
    };
    match HeaderValue::from_str(&location) {
        Ok(location) => (
            StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// The host part of a `Host` header (without its port), if it is a plain
/// host name or IP address: anything else could turn the redirect into one
/// to an address of the client's making.
fn host_name(host: &str) -> Option<&str> {
    let name = match host.strip_prefix('[') {
        // An IPv6 literal keeps its brackets.
        Some(rest) => &host[..rest.find(']')? + 2],
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
    (!name.is_empty() && name.len() <= 253 && name.chars().all(allowed)).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    async fn location(https_port: u16, host: Option<&str>, uri: &str) -> (StatusCode, String) {
        let mut request = Request::builder().uri(uri);
        if let Some(host) = host {
            request = request.header(header::HOST, host);
        }
        let answer = router(https_port)
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let location = answer
            .headers()
            .get(header::LOCATION)
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (answer.status(), location)
    }

    #[tokio::test]
    async fn browsers_are_sent_to_the_same_page_over_https() {
        assert_eq!(
            location(443, Some("hub.school.lan"), "/?lang=es").await,
            (
                StatusCode::PERMANENT_REDIRECT,
                "https://hub.school.lan/?lang=es".to_owned()
            )
        );
        assert_eq!(
            location(8443, Some("192.0.2.10:80"), "/api/photos").await.1,
            "https://192.0.2.10:8443/api/photos"
        );
        assert_eq!(
            location(443, Some("[2001:db8::1]:80"), "/").await.1,
            "https://[2001:db8::1]/"
        );
    }

    #[tokio::test]
    async fn a_missing_or_odd_host_gets_no_redirect() {
        for host in [None, Some(""), Some("evil.test/x"), Some("a@evil.test")] {
            let (status, location) = location(443, host, "/").await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{host:?}");
            assert!(location.is_empty());
        }
    }
}
