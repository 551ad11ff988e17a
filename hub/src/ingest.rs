//! Receiving photos from devices over MQTT.
//!
//! A message is trusted only after its signature verifies under the key of the
//! registered device named both in the topic and in the message. Anything
//! else is dropped with a log line and an audit entry and gets no reply, so a
//! forger learns nothing. A revoked device's genuine message is dropped too,
//! answered only by a signed notice that it is revoked. A heartbeat is
//! recorded and, when the device's PIN set is stale, answered with the
//! current one (see [`crate::fleet`]). A genuine message whose envelope cannot
//! be used gets a signed rejection, so the device stops resending it. A photo
//! is acknowledged only after the store has committed it durably.

use std::sync::Arc;
use std::time::Duration;

use guardian_protocol::{
    envelope_sha256, topics, DeviceMessage, Heartbeat, HubNotice, HubReply, PhotoEnvelope,
    PhotoUpload, SignedMessage, SignedReply, MAX_NOTICE_BYTES, MQTT_PACKET_LIMIT, PREVIEW_MAX_SIDE,
};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use serde_json::json;
use uuid::Uuid;

use crate::accounts::HUB_MQTT_USERNAME;
use crate::audit::{Actor, AuditEvent, AuditKind};
use crate::broker::HUB_CLIENT_ID;
use crate::fleet;
use crate::review;
use crate::store::{PhotoRecord, PutOutcome};
use crate::Hub;

/// What a device is told when its envelope is refused. One generic reason for
/// every cause, so a forger with a stolen device key learns nothing about which
/// check failed; the audit log keeps the detail.
pub const GENERIC_REJECTION: &str = "the hub cannot accept this photo";

/// What became of one incoming message.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not from a registered device, or not signed by it: no reply.
    Dropped { reason: String },
    /// Genuine: answer the device on its replies topic.
    Reply {
        device_id: Uuid,
        payload: Vec<u8>,
        stored: bool,
    },
    /// The hub could not store it right now (disk, database); no reply, so the
    /// device sends it again later.
    Retry { reason: String },
    /// Genuine and recorded, nothing to answer (a heartbeat while the device's
    /// PIN set is current).
    Noted,
    /// Genuine: send the device a notice (its PIN set, or that it is revoked).
    Notice { device_id: Uuid, payload: Vec<u8> },
}

/// Connects to the broker and handles messages until the task is dropped.
/// Connection errors are retried with back-off; they never end the hub.
/// `ready` is told once the hub is subscribed and photos can flow.
pub async fn run(hub: Arc<Hub>, broker: BrokerLink, ready: tokio::sync::oneshot::Sender<()>) {
    let mut ready = Some(ready);
    let mut options = MqttOptions::new(
        HUB_CLIENT_ID,
        broker.address.host.clone(),
        broker.address.port,
    );
    options.set_credentials(HUB_MQTT_USERNAME, hub.keys.mqtt_password());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(MQTT_PACKET_LIMIT, MAX_NOTICE_BYTES * 4);
    options.set_clean_session(true);
    if let Some(tls) = broker.tls {
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
    }

    let (client, mut events) = AsyncClient::new(options, 64);
    let mut backoff = Duration::from_millis(200);
    let started = std::time::Instant::now();
    let mut connected_once = false;
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = Duration::from_millis(200);
                connected_once = true;
                tracing::info!("hub connected to the mqtt broker");
                let filters = [topics::ALL_PHOTOS, topics::ALL_STATUS]
                    .map(|path| rumqttc::SubscribeFilter::new(path.to_owned(), QoS::AtLeastOnce));
                if let Err(error) = client.subscribe_many(filters).await {
                    tracing::error!(%error, "cannot subscribe to the devices' topics");
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let hub = hub.clone();
                let topic = publish.topic.clone();
                let payload = publish.payload.to_vec();
                let outcome =
                    tokio::task::spawn_blocking(move || handle_message(&hub, &topic, &payload))
                        .await;
                match outcome {
                    Ok(Outcome::Reply {
                        device_id, payload, ..
                    }) => {
                        if let Err(error) = client
                            .publish(topics::replies(device_id), QoS::AtLeastOnce, false, payload)
                            .await
                        {
                            tracing::error!(%error, %device_id, "cannot queue a reply");
                        }
                    }
                    Ok(Outcome::Notice { device_id, payload }) => {
                        if let Err(error) = client
                            .publish(topics::notices(device_id), QoS::AtLeastOnce, false, payload)
                            .await
                        {
                            tracing::error!(%error, %device_id, "cannot queue a notice");
                        }
                    }
                    Ok(Outcome::Dropped { .. } | Outcome::Retry { .. } | Outcome::Noted) => {}
                    Err(error) => tracing::error!(%error, "photo handling panicked"),
                }
            }
            Ok(_) => {}
            Err(error) => {
                let broker_starting = !connected_once
                    && started.elapsed() < BROKER_START_GRACE
                    && is_refused_connection(&error);
                match guardian_protocol::broker_tls::explain_failure(&broker.address.host, &error) {
                    None if broker_starting => {
                        tracing::debug!(broker = %broker.address, "the broker is not listening yet")
                    }
                    Some(reason) => {
                        tracing::error!(broker = %broker.address, %reason, retry_in_ms = backoff.as_millis() as u64, "the broker's TLS was refused")
                    }
                    None => {
                        tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "mqtt connection problem")
                    }
                }
                tokio::time::sleep(backoff).await;
                // Until the first login, retries stay frequent: `serve` gives
                // up after 15 s, and a broker starting beside the hub should
                // be found within a second of listening.
                let longest = if connected_once {
                    Duration::from_secs(10)
                } else {
                    Duration::from_secs(1)
                };
                backoff = (backoff * 2).min(longest);
            }
        }
    }
}

/// How long after start a broker that refuses connections is taken to be
/// still starting (the embedded one binds from its own thread) rather than a
/// problem worth a warning.
const BROKER_START_GRACE: Duration = Duration::from_secs(5);

fn is_refused_connection(error: &rumqttc::ConnectionError) -> bool {
    matches!(error, rumqttc::ConnectionError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused)
}

/// How the hub reaches its broker: the embedded one over loopback, or an
/// external one (Mosquitto), over TLS pinned to `tls`'s CA when set.
#[derive(Clone)]
pub struct BrokerLink {
    pub address: guardian_protocol::BrokerAddress,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Checks, stores and answers one message. Pure of the network, so tests can
/// drive it with forged and broken input directly.
pub fn handle_message(hub: &Hub, topic: &str, payload: &[u8]) -> Outcome {
    let Some(topic_device) = topics::device_of_device_topic(topic) else {
        return drop_message(hub, None, "the topic does not name a device", payload.len());
    };

    let signed = match SignedMessage::decode(payload) {
        Ok(signed) => signed,
        Err(error) => {
            return drop_message(hub, Some(topic_device), &error.to_string(), payload.len())
        }
    };
    if signed.device_id != topic_device {
        return drop_message(
            hub,
            Some(topic_device),
            "the message names another device than its topic",
            payload.len(),
        );
    }

    let device = match hub.accounts.device(topic_device) {
        Ok(Some(device)) => device,
        Ok(None) => {
            return drop_message(
                hub,
                Some(topic_device),
                "the device is not registered",
                payload.len(),
            )
        }
        Err(error) => return retry(topic_device, &error.to_string()),
    };

    let message = match signed.verify(&device.verifying_key) {
        Ok(message) => message,
        Err(error) => {
            return drop_message(hub, Some(topic_device), &error.to_string(), payload.len())
        }
    };

    // Only a message the revoked device really signed is answered, so a
    // stranger cannot make the hub publish on its behalf.
    if device.revoked {
        return tell_revoked(hub, &device, payload.len());
    }

    match message {
        DeviceMessage::Photo(upload) => receive_photo(hub, &device, upload),
        DeviceMessage::Heartbeat(heartbeat) => receive_heartbeat(hub, &device, &heartbeat),
    }
}

fn receive_heartbeat(
    hub: &Hub,
    device: &crate::accounts::Device,
    heartbeat: &Heartbeat,
) -> Outcome {
    let received_at = hub.clock.now();
    let skew_ms = (received_at - heartbeat.sent_at).num_milliseconds();
    if let Err(error) = hub.accounts.record_device_seen(device.id, skew_ms) {
        tracing::warn!(%error, device_id = %device.id, "cannot record the device's last contact");
    }

    match fleet::record_heartbeat(hub, device, heartbeat, received_at) {
        Ok(Some(pins)) => {
            tracing::info!(
                device_id = %device.id,
                teachers = pins.teachers.len(),
                "sending the device its classroom's PINs"
            );
            Outcome::Notice {
                device_id: device.id,
                payload: HubNotice::Pins(pins).sign(&hub.keys.signing),
            }
        }
        Ok(None) => {
            tracing::debug!(device_id = %device.id, outbox_len = heartbeat.outbox_len, "heartbeat");
            Outcome::Noted
        }
        Err(error) => {
            tracing::warn!(%error, device_id = %device.id, "cannot record a heartbeat");
            Outcome::Retry {
                reason: error.to_string(),
            }
        }
    }
}

/// Answers a revoked device's genuine message with a signed notice, so its
/// screen can say it was withdrawn; the message itself is dropped.
fn tell_revoked(hub: &Hub, device: &crate::accounts::Device, bytes: usize) -> Outcome {
    tracing::warn!(device_id = %device.id, bytes, "message from a revoked device refused");
    fleet::record_told_revoked(hub, device.id, bytes);
    let revoked_at = match fleet::revoked_at(hub, device.id) {
        Ok(Some(at)) => at,
        Ok(None) | Err(_) => hub.clock.now(),
    };
    Outcome::Notice {
        device_id: device.id,
        payload: HubNotice::Revoked {
            device_id: device.id,
            revoked_at,
        }
        .sign(&hub.keys.signing),
    }
}

fn receive_photo(hub: &Hub, device: &crate::accounts::Device, upload: PhotoUpload) -> Outcome {
    let digest = envelope_sha256(&upload.envelope);
    let received_at = hub.clock.now();
    let skew_ms = (received_at - upload.sent_at).num_milliseconds();
    if let Err(error) = hub.accounts.record_device_seen(device.id, skew_ms) {
        tracing::warn!(%error, device_id = %device.id, "cannot record the device's last contact");
    }

    let envelope = match PhotoEnvelope::from_bytes(&upload.envelope) {
        Ok(envelope) => envelope,
        Err(error) => return reject(hub, device.id, Uuid::nil(), digest, &error.to_string()),
    };
    let photo_id = envelope.photo_id;
    if envelope.device_id != device.id {
        return reject(
            hub,
            device.id,
            photo_id,
            digest,
            "the envelope names another device",
        );
    }

    // Open in memory only to check every part and read the face boxes; the
    // decrypted bytes are dropped here and never written.
    let details = match envelope
        .sealed
        .open(&hub.keys.sealing, photo_id)
        .map_err(|error| error.to_string())
        .and_then(|opened| {
            // Each part is decrypted once: the original only for its integrity.
            let details = opened.details().map_err(|error| error.to_string())?;
            check_preview(&opened.preview().map_err(|error| error.to_string())?)?;
            opened.original().map_err(|error| error.to_string())?;
            Ok(details)
        }) {
        Ok(details) => details,
        Err(reason) => return reject(hub, device.id, photo_id, digest, &reason),
    };

    let record = PhotoRecord {
        id: photo_id,
        device_id: device.id,
        classroom_id: device.classroom_id,
        captured_at: envelope.captured_at,
        received_at,
        device_sent_at: upload.sent_at,
        faces: details.faces.len() as u32,
        width: details.width,
        height: details.height,
        damaged: details.damaged,
        envelope_sha256: digest,
    };

    match hub.store.put(&record, &upload.envelope) {
        Ok(PutOutcome::Stored) => {
            // The photo is safe; its faces wait for a teacher's review. Were
            // this to fail, the review reads them from the sealed photo later.
            if let Err(error) = review::record_device_faces(hub, photo_id, &details.faces) {
                tracing::warn!(%error, %photo_id, "cannot record the photo's faces for review yet");
            }
            let event = AuditEvent::new(AuditKind::PhotoReceived, Actor::Device(device.id))
                .subject(photo_id)
                .detail(json!({
                    "classroom_id": device.classroom_id,
                    "faces": record.faces,
                    "damaged": record.damaged,
                    "bytes": upload.envelope.len(),
                    "device_clock_skew_ms": skew_ms,
                }));
            if let Err(error) = hub.audit.record(&mut hub.db.lock(), received_at, &event) {
                tracing::error!(%error, %photo_id, "photo stored but its audit entry failed");
            }
            tracing::info!(%photo_id, device_id = %device.id, faces = record.faces, skew_ms, "photo stored");
            stored(hub, device.id, photo_id, digest)
        }
        Ok(PutOutcome::AlreadyStored) => {
            tracing::info!(%photo_id, device_id = %device.id, "photo already stored; acknowledging again");
            stored(hub, device.id, photo_id, digest)
        }
        Ok(PutOutcome::Conflict) => reject(
            hub,
            device.id,
            photo_id,
            digest,
            "a photo with this id is already stored with other bytes",
        ),
        Err(error) => retry(device.id, &error.to_string()),
    }
}

/// The preview is served to parents as `image/jpeg`: refuse anything that is
/// not a JPEG of preview size (a header check; the pixels are the device's).
fn check_preview(preview: &[u8]) -> Result<(), String> {
    let dimensions =
        image::ImageReader::with_format(std::io::Cursor::new(preview), image::ImageFormat::Jpeg)
            .into_dimensions()
            .map_err(|error| format!("the preview is not a JPEG: {error}"))?;

    match dimensions {
        (0, _) | (_, 0) => Err("the preview is empty".to_owned()),
        (width, height) if width.max(height) > PREVIEW_MAX_SIDE => Err(format!(
            "the preview is {width}x{height}, over {PREVIEW_MAX_SIDE} px on its long side"
        )),
        _ => Ok(()),
    }
}

fn stored(hub: &Hub, device_id: Uuid, photo_id: Uuid, envelope_sha256: [u8; 32]) -> Outcome {
    let reply = HubReply::Stored {
        device_id,
        photo_id,
        envelope_sha256,
    };
    Outcome::Reply {
        device_id,
        payload: SignedReply::sign(&reply, &hub.keys.signing),
        stored: true,
    }
}

fn reject(
    hub: &Hub,
    device_id: Uuid,
    photo_id: Uuid,
    envelope_sha256: [u8; 32],
    reason: &str,
) -> Outcome {
    tracing::warn!(%device_id, %photo_id, reason, "photo rejected");
    let event = AuditEvent::new(AuditKind::PhotoRejected, Actor::Device(device_id))
        .subject(photo_id)
        .detail(json!({ "reason": reason }));
    if let Err(error) = hub
        .audit
        .record(&mut hub.db.lock(), hub.clock.now(), &event)
    {
        tracing::error!(%error, %photo_id, "cannot audit a rejected photo");
    }

    let reply = HubReply::Rejected {
        device_id,
        photo_id,
        envelope_sha256,
        reason: GENERIC_REJECTION.to_owned(),
    };
    Outcome::Reply {
        device_id,
        payload: SignedReply::sign(&reply, &hub.keys.signing),
        stored: false,
    }
}

fn drop_message(hub: &Hub, claimed_device: Option<Uuid>, reason: &str, bytes: usize) -> Outcome {
    tracing::warn!(device_id = ?claimed_device, reason, bytes, "mqtt message dropped");
    let mut event = AuditEvent::new(AuditKind::MessageDropped, Actor::Anonymous)
        .detail(json!({ "reason": reason, "bytes": bytes }));
    if let Some(device_id) = claimed_device {
        event = event.subject(format!("device:{device_id}"));
    }
    if let Err(error) = hub
        .audit
        .record(&mut hub.db.lock(), hub.clock.now(), &event)
    {
        tracing::error!(%error, "cannot audit a dropped message");
    }
    Outcome::Dropped {
        reason: reason.to_owned(),
    }
}

fn retry(device_id: Uuid, reason: &str) -> Outcome {
    tracing::error!(%device_id, reason, "cannot store a photo now; the device will resend it");
    Outcome::Retry {
        reason: reason.to_owned(),
    }
}
