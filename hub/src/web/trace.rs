//! One span per request, named by its route template.
//!
//! The span carries the method, the route template (`/api/downloads/{token}`,
//! never the path itself, which can hold a download token) and, once known,
//! the account's id and role (and, for a guardian, `parent_id` as before). No header, cookie, body or address is logged.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// Middleware: opens the request's span and logs how the request ended.
pub async fn trace(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("<unrouted>", |path| path.as_str())
        .to_owned();
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        route = %route,
        account_id = tracing::field::Empty,
        role = tracing::field::Empty,
        parent_id = tracing::field::Empty,
    );
    let started = Instant::now();

    async move {
        let response = next.run(request).await;
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "request finished"
        );
        response
    }
    .instrument(span)
    .await
}
