//! Which address a request came from: the one printed on a delivered original
//! and kept in the audit log.
//!
//! By default the address is the socket peer, and headers a client writes
//! itself (`X-Forwarded-For`, `Forwarded`, `X-Real-IP`) are ignored: anyone
//! could put any address there. When the hub sits behind reverse proxies the
//! school lists (`serve --trusted-proxy`), a request from one of them is taken
//! to come from the rightmost `X-Forwarded-For` entry that is not itself a
//! trusted proxy: everything left of it was written by the client, or by
//! proxies nobody vouches for. The `Forwarded` header (RFC 7239) is not read.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::Json;
use ipnet::{IpNet, Ipv4Net};
use serde_json::{json, Value};

use super::error::ApiError;
use crate::audit::RequestAddress;

/// Forwarded entries looked at, right to left. A longer chain of trusted
/// proxies is not a school network, and a client cannot make the hub parse a
/// 10 KB header entry by entry.
const MAX_FORWARDING_HOPS: usize = 16;

/// The addresses of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp {
    /// The TCP peer.
    pub peer: IpAddr,
    /// The address taken to be the client's: the peer, or behind trusted
    /// proxies the rightmost forwarded address that is not one of them.
    pub chosen: IpAddr,
}

impl From<ClientIp> for RequestAddress {
    fn from(ip: ClientIp) -> Self {
        Self {
            client: ip.chosen,
            forwarded_by: (ip.peer != ip.chosen).then_some(ip.peer),
        }
    }
}

/// The reverse proxies whose `X-Forwarded-For` the hub believes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// A `--trusted-proxy` value the hub will not take.
#[derive(Debug, thiserror::Error)]
pub enum BadTrustedProxy {
    #[error(
        "trusted proxy {0:?} is not an IP address or a network such as 192.0.2.10 or 10.0.0.0/24"
    )]
    NotAnAddress(String),

    #[error(
        "trusted proxy {0:?} covers far more than a school's proxies: any client there could \
         put any address on the photos it downloads; list the proxies' own addresses"
    )]
    TooWide(String),
}

/// The shortest IPv4 prefix believed: a /8 is already a whole private range
/// (10.0.0.0/8); anything wider reaches into the internet.
const SHORTEST_V4_PREFIX: u8 = 8;

/// The shortest IPv6 prefix believed: a /32 is what a whole internet provider
/// is given, far more than any school's site (a /48).
const SHORTEST_V6_PREFIX: u8 = 32;

impl FromStr for TrustedProxies {
    type Err = BadTrustedProxy;

    /// Reads a comma-separated list of addresses and networks.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut networks = Vec::new();
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let network = match item.parse::<IpNet>() {
                Ok(network) => network,
                Err(_) => item
                    .parse::<IpAddr>()
                    .map(|ip| IpNet::from(ip.to_canonical()))
                    .map_err(|_| BadTrustedProxy::NotAnAddress(item.to_owned()))?,
            };
            let network = as_ipv4_where_mapped(network);
            let shortest = match network {
                IpNet::V4(_) => SHORTEST_V4_PREFIX,
                IpNet::V6(_) => SHORTEST_V6_PREFIX,
            };
            // An IPv6 network around the whole mapped block would believe
            // every IPv4 client.
            let holds_all_ipv4 = matches!(network, IpNet::V6(v6)
                if v6.contains(&Ipv4Addr::UNSPECIFIED.to_ipv6_mapped()));
            if network.prefix_len() < shortest || holds_all_ipv4 {
                return Err(BadTrustedProxy::TooWide(item.to_owned()));
            }
            networks.push(network);
        }
        Ok(Self(networks))
    }
}

/// Peers are compared as plain IPv4 (`::ffff:192.0.2.10` is 192.0.2.10), so
/// a network written in the mapped form must be too, or it would match nothing.
fn as_ipv4_where_mapped(network: IpNet) -> IpNet {
    let IpNet::V6(v6) = network else {
        return network;
    };
    match (v6.addr().to_ipv4_mapped(), v6.prefix_len().checked_sub(96)) {
        (Some(v4), Some(prefix)) => Ipv4Net::new(v4, prefix).map_or(network, IpNet::V4),
        _ => network,
    }
}

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(networks)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The networks, as written in settings.
    pub fn networks(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(&ip))
    }

    /// The client's address for a request from `peer` with these headers.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> ClientIp {
        let peer = peer.to_canonical();
        let mut chosen = peer;
        if !self.contains(peer) {
            return ClientIp { peer, chosen };
        }

        // Proxies append, so the entries nearest the hub are at the end of
        // the last header.
        let entries = headers
            .get_all("x-forwarded-for")
            .iter()
            .rev()
            .flat_map(|value| {
                let text = value.to_str().ok();
                let entries = text.into_iter().flat_map(|text| text.rsplit(','));
                // A value that is not text counts as one junk entry.
                entries.map(Some).chain(text.is_none().then_some(None))
            })
            .take(MAX_FORWARDING_HOPS);
        for entry in entries {
            let Some(ip) = entry.and_then(forwarded_address) else {
                // Junk no trusted proxy writes: what lies left of it is the
                // client's own say, so the last trusted hop is the answer.
                tracing::warn!(%peer, "ignoring an X-Forwarded-For entry that is not an address");
                break;
            };
            chosen = ip;
            if !self.contains(ip) {
                break;
            }
        }
        ClientIp { peer, chosen }
    }
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port
/// (`203.0.113.7:4711`, `[2001:db8::1]:4711`) as some proxies write it.
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let ip = entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|address| address.ip()))
        .ok()?;
    Some(ip.to_canonical())
}

/// The proxies of a router that trusts none.
static NO_TRUSTED_PROXIES: TrustedProxies = TrustedProxies(Vec::new());

impl ClientIp {
    /// Finds the peer in a request's extensions, where
    /// `into_make_service_with_connect_info` puts it, and the trusted
    /// proxies, where the router's layer puts them.
    pub fn from_parts(parts: &Parts) -> Result<Self, ApiError> {
        let ConnectInfo(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .ok_or_else(|| {
                ApiError::internal(
                    "the request carries no peer address; serve the router with \
                     into_make_service_with_connect_info::<SocketAddr>()",
                )
            })?;
        let proxies = parts
            .extensions
            .get::<Arc<TrustedProxies>>()
            .map_or(&NO_TRUSTED_PROXIES, |proxies| proxies.as_ref());
        Ok(proxies.client_of(peer.ip(), &parts.headers))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let none = TrustedProxies::default();
        let got = none.client_of(ip("192.0.2.10"), &headers(&["203.0.113.7"]));
        assert_eq!(got.chosen, ip("192.0.2.10"));
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_entry_is_the_client() {
        let proxies: TrustedProxies = "192.0.2.10, 10.0.0.0/8".parse().unwrap();
        let chain = headers(&["203.0.113.7, 198.51.100.20"]);
        let got = proxies.client_of(ip("192.0.2.10"), &chain);
        assert_eq!(got.peer, ip("192.0.2.10"));
        assert_eq!(got.chosen, ip("198.51.100.20"));

        // A second trusted proxy inside the school is skipped, across headers.
        let chain = headers(&["203.0.113.7, 198.51.100.20", "10.1.2.3"]);
        assert_eq!(
            proxies.client_of(ip("192.0.2.10"), &chain).chosen,
            ip("198.51.100.20")
        );

        // An untrusted peer's header is the client's own say.
        assert_eq!(
            proxies.client_of(ip("198.51.100.99"), &chain).chosen,
            ip("198.51.100.99")
        );
    }

    #[test]
    fn junk_stops_the_walk_at_the_last_trusted_hop() {
        let proxies: TrustedProxies = "192.0.2.10,10.0.0.0/8".parse().unwrap();
        for junk in ["not-an-ip", "", "unknown", &"9".repeat(10 * 1024)] {
            let got = proxies.client_of(ip("192.0.2.10"), &headers(&[junk]));
            assert_eq!(got.chosen, ip("192.0.2.10"), "{junk:.20}");
        }
        let got = proxies.client_of(ip("192.0.2.10"), &headers(&["junk, 10.0.0.7"]));
        assert_eq!(got.chosen, ip("10.0.0.7"));
        let got = proxies.client_of(ip("192.0.2.10"), &headers(&["1.2.3.4, junk, 10.0.0.7"]));
        assert_eq!(got.chosen, ip("10.0.0.7"));
    }

    #[test]
    fn ports_and_mapped_addresses_are_understood() {
        let proxies: TrustedProxies = "192.0.2.10".parse().unwrap();
        let got = proxies.client_of(ip("::ffff:192.0.2.10"), &headers(&["198.51.100.20:4711"]));
        assert_eq!(got.peer, ip("192.0.2.10"));
        assert_eq!(got.chosen, ip("198.51.100.20"));
        let got = proxies.client_of(ip("192.0.2.10"), &headers(&["[2001:db8::1]:80"]));
        assert_eq!(got.chosen, ip("2001:db8::1"));

        // A network written in the mapped form matches the plain IPv4 peer.
        let mapped: TrustedProxies = "::ffff:192.0.2.0/120".parse().unwrap();
        assert_eq!(mapped.networks(), ["192.0.2.0/24"]);
        let got = mapped.client_of(ip("192.0.2.10"), &headers(&["198.51.100.20"]));
        assert_eq!(got.chosen, ip("198.51.100.20"));
    }

    #[test]
    fn a_long_chain_of_trusted_entries_is_cut_short() {
        let proxies: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let chain = vec!["10.0.0.1"; 100].join(",");
        let chain = format!("198.51.100.20,{chain}");
        let got = proxies.client_of(ip("10.9.9.9"), &headers(&[&chain]));
        assert_eq!(got.chosen, ip("10.0.0.1"));
    }

    #[test]
    fn bad_proxy_settings_are_refused() {
        for bad in ["hub.local", "10.0.0.0/33", "192.0.2.300"] {
            assert!(matches!(
                bad.parse::<TrustedProxies>(),
                Err(BadTrustedProxy::NotAnAddress(_))
            ));
        }
        for wide in [
            "0.0.0.0/0",
            "::/0",
            "128.0.0.0/1",
            "10.0.0.0/8,0.0.0.0/7",
            "2000::/8",
            "2001:db8::/31",
            "::ffff:0.0.0.0/96",
            "::ffff:192.0.2.0/95",
        ] {
            assert!(matches!(
                wide.parse::<TrustedProxies>(),
                Err(BadTrustedProxy::TooWide(_))
            ));
        }
        assert!("10.0.0.0/8".parse::<TrustedProxies>().is_ok());
        assert!("2001:db8::/32".parse::<TrustedProxies>().is_ok());
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
    }
}
