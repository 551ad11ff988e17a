//! The hub's web server: the parents' page and a small JSON API.
//!
//! ```text
//! POST /api/login {"login","password"}             -> session cookie, {"name","role"} (any role)
//! POST /api/logout {}                              -> ends the session
//! GET  /api/photos                                 -> [{"id","captured_at","received_at","faces","delete_after","children","original_available"}]
//! GET  /api/photos/{id}/preview                    -> image/jpeg, rendered for the viewer
//! POST /api/photos/{id}/original {}                -> {"request_id"}, code sent by SMS
//! POST /api/original-requests/{id}/verify {"code"} -> {"download"}
//! GET  /api/downloads/{token}                      -> image/jpeg, watermarked, once
//! GET  /api/children                              -> [{"id","name","classroom_id",("visible_to_classmates","originals")}]
//! GET  /api/children/{id}/consent                  -> {"visible_to_classmates","originals","history"}
//! PUT  /api/children/{id}/consent {"purpose","granted"} -> the same, after the change
//! GET  /api/children/{id}/export                   -> application/zip, the child's photos and audit
//! GET  /api/review                                 -> photos awaiting review (teacher)
//! GET  /api/review/{id}                            -> one photo with its faces (teacher)
//! GET  /api/review/{id}/image                      -> image/jpeg, faces outlined (teacher)
//! POST /api/photos/{id}/faces/{n}/name {"child_id"} -> names face n, null = unknown (teacher)
//! POST /api/photos/{id}/faces {"box":[x,y,w,h]}    -> {"n","photo"}, a face the detector missed (teacher)
//! POST /api/photos/{id}/release {("no_faces")}     -> releases the photo to families (teacher)
//! GET  /api/admin/devices                         -> the devices and their last heartbeat (admin)
//! POST /api/admin/devices/{id}/revoke {}           -> {"revoked"} (admin)
//! GET  /get_client_ip                              -> {"ip"}
//! GET  /                                           -> the parents' page
//! ```
//!
//! The photo, original and export routes are for guardians; the consent
//! routes for a child's guardians and for admins; the review routes for the
//! teachers of the photo's classroom (see [`session`] for how roles are told
//! apart, [`consents`] for who may act for which child, [`review`] for
//! teachers, [`crate::visibility`] for what each guardian sees).
//!
//! Errors are `{"error": CODE, "message": "..."}` (see [`error::ApiError`]).
//! Every routed request passes [`origin::guard`] (same-origin, JSON POSTs);
//! sessions are in [`session`], the code rules in [`crate::codes`], the
//! rendering of originals in [`crate::render`].

pub mod client_ip;
pub mod consents;
pub mod devices;
pub mod error;
pub mod export;
pub mod headers;
pub mod json;
pub mod login;
pub mod login_throttle;
pub mod origin;
pub mod originals;
pub mod pages;
pub mod photos;
pub mod redirect;
pub mod review;
pub mod session;
pub mod trace;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, MethodRouter};
use axum::{middleware, Extension, Router};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::audit::AuditEvent;
use crate::codes::{CodeGenerator, Codes, RandomCodes};
use crate::sms::SmsSender;
use crate::Hub;
use error::ApiError;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    hub: Arc<Hub>,
    sms: Arc<dyn SmsSender>,
    codes: Arc<Codes>,
    /// Originals being rendered at once, at most [`MAX_CONCURRENT_RENDERS`].
    renders: Arc<Semaphore>,
    /// Archives being written at once, at most [`MAX_CONCURRENT_EXPORTS`].
    exports: Arc<Semaphore>,
    logins: Arc<login_throttle::LoginThrottle>,
    /// Whether renderings carry the viewer's watermark: always, except in
    /// tests that measure pixels (see [`AppState::unmarked_for_tests`]).
    watermarks: bool,
    /// Whose `X-Forwarded-For` names the client (see [`client_ip`]).
    proxies: Arc<client_ip::TrustedProxies>,
    /// Whether browsers reach the hub over HTTPS, so the session cookie may
    /// be marked `Secure`.
    https: bool,
}

/// Originals rendered at the same time. Each holds a decoded photo (up to
/// 150 MB for 50 megapixels) and a core; more would queue anyway on a Pi.
pub const MAX_CONCURRENT_RENDERS: usize = 2;

/// Children's archives (see [`export`]) written at the same time; more are
/// refused with 429 until one ends.
pub const MAX_CONCURRENT_EXPORTS: usize = 2;

impl AppState {
    pub fn new(hub: Arc<Hub>, sms: Arc<dyn SmsSender>) -> Self {
        let codes = Arc::new(Codes::new(hub.clone(), Arc::new(RandomCodes)));
        Self {
            hub,
            sms,
            codes,
            renders: Arc::new(Semaphore::new(MAX_CONCURRENT_RENDERS)),
            exports: Arc::new(Semaphore::new(MAX_CONCURRENT_EXPORTS)),
            logins: Arc::default(),
            watermarks: true,
            proxies: Arc::default(),
            https: false,
        }
    }

    /// Believes `X-Forwarded-For` from these reverse proxies.
    pub fn with_trusted_proxies(mut self, proxies: client_ip::TrustedProxies) -> Self {
        self.proxies = Arc::new(proxies);
        self
    }

    /// Marks the session cookie `Secure`: set when the hub serves HTTPS
    /// itself, or a trusted proxy does it in front of the hub.
    pub fn with_https(mut self, https: bool) -> Self {
        self.https = https;
        self
    }

    /// Renders previews, originals and archives without the viewer's
    /// watermark, so that tests can measure how much of each face survives.
    /// For tests only: the hub itself never calls this, and a hub serving
    /// unmarked photos would break its promise to schools.
    #[doc(hidden)]
    pub fn unmarked_for_tests(mut self) -> Self {
        self.watermarks = false;
        self
    }

    /// Waits for one of the [`MAX_CONCURRENT_RENDERS`] rendering slots.
    pub(crate) async fn render_permit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        render_slot(&self.renders).await
    }

    /// Replaces the source of one-time codes. For tests that need a known
    /// code (one with leading zeros, say); the hub itself never calls this.
    pub fn with_code_generator(mut self, generator: Arc<dyn CodeGenerator>) -> Self {
        self.codes = Arc::new(Codes::new(self.hub.clone(), generator));
        self
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }
}

/// Waits for a slot of a rendering semaphore (see [`MAX_CONCURRENT_RENDERS`]).
pub(crate) async fn render_slot(
    renders: &Arc<Semaphore>,
) -> Result<OwnedSemaphorePermit, ApiError> {
    renders
        .clone()
        .acquire_owned()
        .await
        .map_err(ApiError::internal)
}

/// The whole web application.
pub fn router(state: AppState) -> Router {
    let guarded = |route: MethodRouter<AppState>| {
        // A route layer, so it runs only for a method the route takes: a GET
        // to a POST-only action is answered 405 before any other check.
        route.route_layer(middleware::from_fn_with_state(state.clone(), origin::guard))
    };

    Router::new()
        .route("/", guarded(get(pages::index)))
        .route("/static/app.js", guarded(get(pages::app_js)))
        .route("/static/app.css", guarded(get(pages::app_css)))
        .route("/get_client_ip", guarded(get(client_ip::get_client_ip)))
        .route("/api/login", guarded(post(login::login)))
        .route("/api/logout", guarded(post(login::logout)))
        .route("/api/photos", guarded(get(photos::list)))
        .route("/api/photos/{id}/preview", guarded(get(photos::preview)))
        .route(
            "/api/photos/{id}/original",
            guarded(post(originals::request_original)),
        )
        .route(
            "/api/original-requests/{id}/verify",
            guarded(post(originals::verify)),
        )
        .route("/api/downloads/{token}", guarded(get(originals::download)))
        .route(
            "/api/photos/{id}/faces/{n}/name",
            guarded(post(review::name_face)),
        )
        .route("/api/photos/{id}/faces", guarded(post(review::add_face)))
        .route("/api/photos/{id}/release", guarded(post(review::release)))
        .route("/api/review", guarded(get(review::list)))
        .route("/api/review/{id}", guarded(get(review::show)))
        .route("/api/review/{id}/image", guarded(get(review::image)))
        .route("/api/children", guarded(get(consents::list)))
        .route("/api/children/{id}/export", guarded(get(export::export)))
        .route(
            "/api/children/{id}/consent",
            guarded(get(consents::show).put(consents::change)),
        )
        .route("/api/admin/devices", guarded(get(devices::list)))
        .route(
            "/api/admin/devices/{id}/revoke",
            guarded(post(devices::revoke)),
        )
        .method_not_allowed_fallback(origin::method_not_allowed)
        .fallback(error::not_found)
        .layer(middleware::from_fn(trace::trace))
        .layer(middleware::from_fn(headers::security_headers))
        .layer(DefaultBodyLimit::max(json::MAX_BODY_BYTES))
        .layer(Extension(state.proxies.clone()))
        .with_state(state)
}

/// Serves the application on a bound listener until the server fails.
pub async fn serve(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    serve_until(listener, state, std::future::pending()).await
}

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn serve_until(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The peer address is the client's address (see `client_ip`).
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves the application over HTTPS on a bound listener until the server
/// fails. A client that never finishes its TLS handshake is dropped after
/// axum-server's handshake timeout (10 s).
pub async fn serve_tls(
    listener: std::net::TcpListener,
    state: AppState,
    tls: Arc<rustls::ServerConfig>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    // Browsers that have seen the page over HTTPS keep to it for a year.
    let app = router(state)
        .layer(middleware::map_response(
            |mut response: axum::response::Response| async {
                response.headers_mut().insert(
                    axum::http::header::STRICT_TRANSPORT_SECURITY,
                    axum::http::HeaderValue::from_static("max-age=31536000"),
                );
                response
            },
        ))
        .into_make_service_with_connect_info::<SocketAddr>();
    let config = axum_server::tls_rustls::RustlsConfig::from_config(tls);
    axum_server::from_tcp_rustls(listener, config)?
        .serve(app)
        .await
}

/// Runs database, audit, argon2 and image work on tokio's blocking threads,
/// inside the current span.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work))
        .await
        .map_err(|error| ApiError::internal(format!("a blocking task failed: {error}")))?
}

/// Records one audit entry now. Call from a blocking thread.
pub(crate) fn record(hub: &Hub, event: AuditEvent) -> Result<(), ApiError> {
    let mut conn = hub.db.lock();
    hub.audit.record(&mut conn, hub.clock.now(), &event)?;
    Ok(())
}
