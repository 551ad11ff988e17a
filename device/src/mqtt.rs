//! The MQTT connection to the school's broker: client options, and an event
//! loop task that keeps reconnecting with back-off for as long as it runs.
//!
//! rumqttc's event loop returns an error every time the broker is unreachable;
//! polling it again reconnects. This module turns that into a stream of
//! [`LinkEvent`]s, so the sync worker only sees "connected", "disconnected" and
//! the messages that arrive.
//!
//! A provisioning file that pins a CA makes the link MQTT over TLS, checked
//! against that CA alone (see `guardian_protocol::broker_tls`); there is no
//! way from there back to plain MQTT.

use std::time::Duration;

use guardian_protocol::broker_tls::{self, BrokerCaError};
pub use guardian_protocol::{BadBrokerAddress, BrokerAddress};
use guardian_protocol::{Provisioning, MQTT_PACKET_LIMIT};
use rumqttc::{
    AsyncClient, ClientError, ConnectionError, Event, EventLoop, MqttOptions, Packet, QoS,
    TlsConfiguration, Transport,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// How often the client pings an idle broker.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// First and longest wait before reconnecting to a broker that is down.
const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Requests (publications, subscriptions) queued for the event loop at once.
/// Each publication holds a whole photo, so the queue is kept short.
const REQUEST_QUEUE: usize = 8;

/// What the connection reports to the sync worker.
#[derive(Debug)]
pub enum LinkEvent {
    /// A new session with the broker: subscriptions and unacknowledged
    /// publications of the old one are gone (clean session).
    Connected,
    /// The connection dropped; the task is already retrying.
    Disconnected,
    /// A message arrived on a subscribed topic.
    Message { topic: String, payload: Vec<u8> },
}

/// A running connection: the client to send through and the events that come back.
pub struct Link {
    pub client: AsyncClient,
    pub events: mpsc::Receiver<LinkEvent>,
    task: JoinHandle<()>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Link {
    /// Queues a QoS 1 publication without waiting; fails when the queue is full.
    pub fn try_publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), ClientError> {
        self.client
            .try_publish(topic, QoS::AtLeastOnce, false, payload)
    }

    /// Queues a QoS 1 subscription without waiting.
    pub fn try_subscribe(&self, topic: &str) -> Result<(), ClientError> {
        self.client.try_subscribe(topic, QoS::AtLeastOnce)
    }
}

/// Client options for this device: its id as client id, its credentials, a
/// clean session, and packet limits that fit a whole photo out and in.
///
/// Replies are tiny, but the incoming limit is the broker's own: the broker
/// lets any logged-in device publish on this device's replies topic, and a
/// packet over the client's limit would drop the connection before the reply
/// could be checked and ignored. Oversized replies are refused unparsed later.
pub fn options(
    provisioning: &Provisioning,
    broker: &BrokerAddress,
) -> Result<MqttOptions, BrokerCaError> {
    let mut options = MqttOptions::new(
        provisioning.device_id.to_string(),
        broker.host.clone(),
        broker.port,
    );
    options
        .set_credentials(
            provisioning.mqtt_username.clone(),
            provisioning.mqtt_password(),
        )
        .set_clean_session(true)
        .set_keep_alive(KEEP_ALIVE)
        .set_max_packet_size(MQTT_PACKET_LIMIT, MQTT_PACKET_LIMIT);
    if let Some(ca) = &provisioning.broker_ca {
        let tls = broker_tls::pinned_client_config(ca)?;
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
    }
    Ok(options)
}

/// Starts the event loop task. Must be called inside a Tokio runtime.
pub fn connect(options: MqttOptions, broker: &BrokerAddress) -> Link {
    let (client, event_loop) = AsyncClient::new(options, REQUEST_QUEUE);
    let (events_tx, events) = mpsc::channel(64);
    let task = tokio::spawn(drive(event_loop, events_tx, broker.clone()));
    Link {
        client,
        events,
        task,
    }
}

/// Polls the event loop forever, reconnecting with exponential back-off, and
/// forwards what matters. Ends when the receiving side is dropped.
async fn drive(mut event_loop: EventLoop, events: mpsc::Sender<LinkEvent>, broker: BrokerAddress) {
    let mut backoff = MIN_BACKOFF;
    let mut connected = false;
    let mut failures: u32 = 0;

    loop {
        let forward = match event_loop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                info!(%broker, "connected to the broker");
                connected = true;
                backoff = MIN_BACKOFF;
                failures = 0;
                Some(LinkEvent::Connected)
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => Some(LinkEvent::Message {
                topic: publish.topic,
                payload: publish.payload.to_vec(),
            }),
            Ok(_) => None,
            Err(error) => {
                failures += 1;
                // Loud once, quiet while the broker stays down; a certificate
                // problem is named in words, since only a person can fix it.
                let tls_failure = broker_tls::explain_failure(&broker.host, &error).or_else(|| {
                    matches!(error, ConnectionError::Tls(_)).then(|| {
                        format!(
                            "the TLS handshake failed ({error}); is {broker} the broker's TLS \
                             port, and not its plain MQTT one?"
                        )
                    })
                });
                if connected || failures == 1 {
                    match &tls_failure {
                        Some(reason) => {
                            warn!(%broker, %reason, "the broker's TLS was refused; retrying with back-off")
                        }
                        None => {
                            warn!(%broker, %error, "broker unreachable; retrying with back-off")
                        }
                    }
                } else {
                    debug!(%broker, %error, failures, "broker still unreachable");
                }
                let was_connected = std::mem::replace(&mut connected, false);
                if was_connected && events.send(LinkEvent::Disconnected).await.is_err() {
                    return;
                }

                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                None
            }
        };

        if let Some(event) = forward {
            if events.send(event).await.is_err() {
                return;
            }
        }
    }
}
