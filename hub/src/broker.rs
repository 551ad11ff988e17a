//! The embedded MQTT broker (rumqttd), for a hub that needs no other server.
//!
//! Every client logs in with its own credentials: the hub with the password in
//! its key directory, each device with the password from its provisioning file.
//! A client must also use the client id that belongs to its login, so that no
//! device can take over the hub's MQTT session (or another device's) by
//! connecting with the same client id.
//!
//! rumqttd has no per-topic ACLs, so a logged-in device could publish under
//! another device's topic; the hub therefore trusts only signed messages, and
//! devices trust only signed replies. (An external Mosquitto gets per-device
//! ACLs from the hub, see `mosquitto`.)
//!
//! Besides its plain listener, which the hub itself uses over loopback, the
//! broker can listen for devices with MQTT over TLS, with a certificate the
//! hub has checked before the broker starts (see `tls`).

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};

use guardian_protocol::MQTT_PACKET_LIMIT;
use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings, TlsConfig};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::accounts::{Accounts, HUB_MQTT_USERNAME};
use crate::tls::ServerIdentity;

/// The client id the hub itself uses.
pub const HUB_CLIENT_ID: &str = "guardian-hub";

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The address is taken or not ours. The OS error is in the message and
    /// not chained as a source, so it is printed once.
    #[error("cannot listen for MQTT on {addr}: {error}; pick another address with {flag}")]
    Bind {
        addr: SocketAddr,
        flag: &'static str,
        error: std::io::Error,
    },

    #[error("cannot start the embedded MQTT broker: {0}")]
    Start(String),
}

/// Starts the broker on its own threads and returns the address it will listen
/// on. The hub's own MQTT login succeeding is the sign that it is up.
pub fn start_embedded(
    listen: SocketAddr,
    tls: Option<(SocketAddr, &ServerIdentity)>,
    accounts: Accounts,
    hub_password: &str,
) -> Result<Listening, BrokerError> {
    // Both probes are held at once, so that two listeners on one port (the
    // same address twice, or 127.0.0.1:1883 and 0.0.0.0:1883) clash here and
    // not in rumqttd's thread.
    let plain_probe = probe(listen, "--mqtt")?;
    let tls_probe = tls
        .map(|(listen, _)| probe(listen, "--mqtts"))
        .transpose()?;
    let addr = plain_probe.0;
    let tls_addr = tls_probe.as_ref().map(|(addr, _)| *addr);
    drop((plain_probe, tls_probe));
    let hub_password = Zeroizing::new(hub_password.to_owned());

    let mut connections = ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: MQTT_PACKET_LIMIT,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    connections.set_auth_handler(move |client_id, username, password| {
        let allowed =
            client_may_connect(&accounts, &hub_password, &client_id, &username, &password);
        if !allowed {
            tracing::warn!(client_id, username, "mqtt login refused");
        }
        std::future::ready(allowed)
    });

    let mut servers = HashMap::from([(
        "guardian".to_owned(),
        ServerSettings {
            name: "guardian-mqtt".to_owned(),
            listen: addr,
            tls: None,
            next_connection_delay_ms: 1,
            connections: connections.clone(),
        },
    )]);
    if let (Some(listen), Some((_, identity))) = (tls_addr, tls) {
        servers.insert(
            "guardian-tls".to_owned(),
            ServerSettings {
                name: "guardian-mqtts".to_owned(),
                listen,
                tls: Some(TlsConfig::Rustls {
                    capath: None,
                    certpath: identity.cert_path.display().to_string(),
                    keypath: identity.key_path.display().to_string(),
                }),
                next_connection_delay_ms: 1,
                connections,
            },
        );
    }
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 1_000,
            max_outgoing_packet_count: 200,
            // A segment must hold the largest message; four of them bound the
            // broker's memory for messages in flight.
            max_segment_size: 2 * MQTT_PACKET_LIMIT,
            max_segment_count: 4,
            ..Default::default()
        },
        v4: Some(servers),
        ..Default::default()
    };

    let mut broker = rumqttd::Broker::new(config);
    std::thread::Builder::new()
        .name("mqtt-broker".to_owned())
        .spawn(move || {
            if let Err(error) = broker.start() {
                tracing::error!(%error, "the embedded MQTT broker stopped");
            }
        })
        .map_err(|error| BrokerError::Start(error.to_string()))?;
    Ok(Listening {
        plain: addr,
        tls: tls_addr,
    })
}

/// Where the embedded broker listens.
#[derive(Debug, Clone, Copy)]
pub struct Listening {
    /// Plain MQTT, which the hub itself uses.
    pub plain: SocketAddr,
    /// MQTT over TLS, for the devices, when configured.
    pub tls: Option<SocketAddr>,
}

fn client_may_connect(
    accounts: &Accounts,
    hub_password: &str,
    client_id: &str,
    username: &str,
    password: &str,
) -> bool {
    if username == HUB_MQTT_USERNAME {
        return client_id == HUB_CLIENT_ID
            && bool::from(password.as_bytes().ct_eq(hub_password.as_bytes()));
    }

    let Some(device_id) = username.strip_prefix("device-") else {
        return false;
    };
    client_id == device_id && accounts.check_device_mqtt_login(username, password)
}

/// Binds `listen` to resolve port 0 to a free port and to fail early, with a
/// clear message, when the address is taken (rumqttd would only log it from
/// its own thread). The listener is dropped before rumqttd binds the address.
fn probe(listen: SocketAddr, flag: &'static str) -> Result<(SocketAddr, TcpListener), BrokerError> {
    let bind_error = |error| BrokerError::Bind {
        addr: listen,
        flag,
        error,
    };
    let listener = TcpListener::bind(listen).map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    Ok((addr, listener))
}
