//! Which address a request came from: the one printed on a delivered original
//! and kept in the audit log.
//!
//! The hub is reached directly, so the address is the socket peer. Headers a
//! client writes itself (`X-Forwarded-For`, `Forwarded`, `X-Real-IP`) are
//! ignored: anyone could put any address there (case C12). Taking the address
//! from a trusted reverse proxy needs a configured list of proxies and is not
//! supported yet.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;

/// The addresses of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp {
    /// The TCP peer.
    pub peer: IpAddr,
    /// The address taken to be the client's. Today always the peer; behind a
    /// trusted proxy it would be the rightmost untrusted forwarded address.
    pub chosen: IpAddr,
}

impl ClientIp {
    pub fn from_peer(peer: SocketAddr) -> Self {
        // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
        let ip = peer.ip().to_canonical();
        Self {
            peer: ip,
            chosen: ip,
        }
    }

    /// Finds the peer in a request's extensions, where
    /// `into_make_service_with_connect_info` puts it.
    pub fn from_parts(parts: &Parts) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| Self::from_peer(*peer))
            .ok_or_else(|| {
                ApiError::internal(
                    "the request carries no peer address; serve the router with \
                     into_make_service_with_connect_info::<SocketAddr>()",
                )
            })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::from_parts(parts)
    }
}

/// `GET /get_client_ip`: the address the hub sees, so a parent or an operator
/// can check what a watermark will name. Needs no session.
pub async fn get_client_ip(ip: ClientIp) -> Json<Value> {
    Json(json!({ "ip": ip.chosen.to_string() }))
}
