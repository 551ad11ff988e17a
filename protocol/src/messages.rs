//! The signed messages a device publishes and the signed replies the hub sends.
//!
//! The broker authenticates devices, but it does not stop one device from
//! publishing on another's topic or a stranger from publishing a fake reply.
//! So everything is signed: messages by the device's Ed25519 key, replies by the
//! hub's. Each signature covers a domain label, so a signature made for one kind
//! of message can never be replayed as another.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    decode_cbor, encode_cbor, DeviceSigningKey, DeviceVerifyingKey, HubSigningKey, HubVerifyingKey,
    ProtocolError, SealedPhoto, MAX_DEVICE_MESSAGE_BYTES, MAX_HUB_REPLY_BYTES,
};

/// The envelope layout this program writes and reads.
pub const ENVELOPE_VERSION: u8 = 1;

const DEVICE_MESSAGE_DOMAIN: &[u8] = b"guardian device message v1\0";
const HUB_REPLY_DOMAIN: &[u8] = b"guardian hub reply v1\0";

/// One captured photo as the device made it. Its encoded bytes are fixed at
/// capture time and stored by the hub exactly as received, so a resend is
/// byte-identical and recognised as such.
#[derive(Clone, Serialize, Deserialize)]
pub struct PhotoEnvelope {
    pub version: u8,
    pub photo_id: Uuid,
    pub device_id: Uuid,
    /// The device's clock at capture; it may be wrong (no RTC, no NTP yet).
    pub captured_at: DateTime<Utc>,
    pub sealed: SealedPhoto,
}

/// One photo in flight: the envelope plus the device's clock when sending, which
/// lets the hub measure the device's clock skew.
#[derive(Clone, Serialize, Deserialize)]
pub struct PhotoUpload {
    pub sent_at: DateTime<Utc>,
    #[serde(with = "serde_bytes")]
    pub envelope: Vec<u8>,
}

/// How a device is doing, sent every half minute and at each connection. The
/// hub shows it to admins and answers with a new PIN set when `pins_digest`
/// differs from the classroom's current one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The device's clock when sending; the hub derives the skew from it.
    pub sent_at: DateTime<Utc>,
    /// The guardian-device version.
    pub version: String,
    /// Photos waiting in the outbox for the hub's confirmation.
    pub outbox_len: u32,
    /// Photos the hub refused, kept on the device.
    pub quarantined: u32,
    /// What went wrong last, in words for an admin, if anything is wrong now.
    pub last_error: Option<String>,
    /// Whether the device believes its clock (NTP synchronised or an RTC).
    pub clock_synced: bool,
    /// The digest of the PIN set the device holds, `None` when it holds none.
    #[serde(with = "serde_bytes")]
    pub pins_digest: Option<[u8; 32]>,
}

/// What a device says to the hub.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeviceMessage {
    Photo(PhotoUpload),
    Heartbeat(Heartbeat),
}

/// A device message with the signature that proves which device sent it.
#[derive(Clone, Serialize, Deserialize)]
pub struct SignedMessage {
    pub device_id: Uuid,
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
    #[serde(with = "serde_bytes")]
    signature: Vec<u8>,
}

/// What the hub answers about one photo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HubReply {
    /// The envelope with this digest is committed to durable storage.
    Stored {
        device_id: Uuid,
        photo_id: Uuid,
        #[serde(with = "serde_bytes")]
        envelope_sha256: [u8; 32],
    },
    /// The hub will never accept this envelope; resending it is pointless.
    Rejected {
        device_id: Uuid,
        photo_id: Uuid,
        #[serde(with = "serde_bytes")]
        envelope_sha256: [u8; 32],
        reason: String,
    },
}

/// A hub reply with the hub's signature.
#[derive(Clone, Serialize, Deserialize)]
pub struct SignedReply {
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
    #[serde(with = "serde_bytes")]
    signature: Vec<u8>,
}

impl PhotoEnvelope {
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_cbor(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let envelope: Self = decode_cbor(bytes, MAX_DEVICE_MESSAGE_BYTES, "photo envelope")?;
        if envelope.version != ENVELOPE_VERSION {
            return Err(ProtocolError::UnsupportedVersion(envelope.version));
        }
        Ok(envelope)
    }
}

/// The SHA-256 of an encoded envelope: how replies name exactly which bytes
/// they are about.
pub fn envelope_sha256(envelope: &[u8]) -> [u8; 32] {
    Sha256::digest(envelope).into()
}

impl SignedMessage {
    /// Signs and encodes a message, ready to publish.
    pub fn sign(device_id: Uuid, message: &DeviceMessage, key: &DeviceSigningKey) -> Vec<u8> {
        let body = encode_cbor(message);
        let signature = key.sign(&device_signed_bytes(device_id, &body)).to_vec();
        encode_cbor(&SignedMessage {
            device_id,
            body,
            signature,
        })
    }

    /// Parses a published payload without trusting it yet.
    pub fn decode(payload: &[u8]) -> Result<Self, ProtocolError> {
        decode_cbor(payload, MAX_DEVICE_MESSAGE_BYTES, "device message")
    }

    /// Checks the signature with the key registered for `self.device_id` and
    /// returns the message it covers.
    pub fn verify(&self, key: &DeviceVerifyingKey) -> Result<DeviceMessage, ProtocolError> {
        if !key.verify(
            &device_signed_bytes(self.device_id, &self.body),
            &self.signature,
        ) {
            return Err(ProtocolError::BadSignature {
                what: "device message",
            });
        }
        decode_cbor(&self.body, MAX_DEVICE_MESSAGE_BYTES, "device message body")
    }
}

impl HubReply {
    pub fn photo_id(&self) -> Uuid {
        match self {
            HubReply::Stored { photo_id, .. } | HubReply::Rejected { photo_id, .. } => *photo_id,
        }
    }

    pub fn device_id(&self) -> Uuid {
        match self {
            HubReply::Stored { device_id, .. } | HubReply::Rejected { device_id, .. } => *device_id,
        }
    }

    pub fn envelope_sha256(&self) -> [u8; 32] {
        match self {
            HubReply::Stored {
                envelope_sha256, ..
            }
            | HubReply::Rejected {
                envelope_sha256, ..
            } => *envelope_sha256,
        }
    }
}

impl SignedReply {
    /// Signs and encodes a reply, ready to publish.
    pub fn sign(reply: &HubReply, key: &HubSigningKey) -> Vec<u8> {
        let body = encode_cbor(reply);
        let signature = key.sign(&hub_signed_bytes(&body)).to_vec();
        encode_cbor(&SignedReply { body, signature })
    }

    /// Parses and checks a reply; anything not signed by the hub is refused.
    pub fn open(payload: &[u8], hub: &HubVerifyingKey) -> Result<HubReply, ProtocolError> {
        let signed: SignedReply = decode_cbor(payload, MAX_HUB_REPLY_BYTES, "hub reply")?;
        if !hub.verify(&hub_signed_bytes(&signed.body), &signed.signature) {
            return Err(ProtocolError::BadSignature { what: "hub reply" });
        }
        decode_cbor(&signed.body, MAX_HUB_REPLY_BYTES, "hub reply body")
    }
}

fn device_signed_bytes(device_id: Uuid, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(DEVICE_MESSAGE_DOMAIN.len() + 16 + body.len());
    bytes.extend_from_slice(DEVICE_MESSAGE_DOMAIN);
    bytes.extend_from_slice(device_id.as_bytes());
    bytes.extend_from_slice(body);
    bytes
}

fn hub_signed_bytes(body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HUB_REPLY_DOMAIN.len() + body.len());
    bytes.extend_from_slice(HUB_REPLY_DOMAIN);
    bytes.extend_from_slice(body);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload() -> DeviceMessage {
        DeviceMessage::Photo(PhotoUpload {
            sent_at: Utc::now(),
            envelope: vec![1, 2, 3],
        })
    }

    #[test]
    fn a_device_message_verifies_only_under_its_own_key() {
        let device = DeviceSigningKey::generate();
        let other = DeviceSigningKey::generate();
        let id = Uuid::new_v4();
        let payload = SignedMessage::sign(id, &upload(), &device);

        let signed = SignedMessage::decode(&payload).unwrap();
        assert!(signed.verify(&device.verifying_key()).is_ok());
        assert!(matches!(
            signed.verify(&other.verifying_key()),
            Err(ProtocolError::BadSignature { .. })
        ));
    }

    #[test]
    fn a_message_moved_to_another_device_id_fails() {
        let device = DeviceSigningKey::generate();
        let payload = SignedMessage::sign(Uuid::new_v4(), &upload(), &device);
        let mut signed = SignedMessage::decode(&payload).unwrap();
        signed.device_id = Uuid::new_v4();
        assert!(signed.verify(&device.verifying_key()).is_err());
    }

    #[test]
    fn a_forged_reply_is_refused() {
        let hub = HubSigningKey::generate();
        let forger = HubSigningKey::generate();
        let reply = HubReply::Stored {
            device_id: Uuid::new_v4(),
            photo_id: Uuid::new_v4(),
            envelope_sha256: [7; 32],
        };

        let genuine = SignedReply::sign(&reply, &hub);
        assert_eq!(
            SignedReply::open(&genuine, &hub.verifying_key()).unwrap(),
            reply
        );

        let forged = SignedReply::sign(&reply, &forger);
        assert!(SignedReply::open(&forged, &hub.verifying_key()).is_err());
        assert!(SignedReply::open(b"\xff\x00junk", &hub.verifying_key()).is_err());
    }

    #[test]
    fn oversized_payloads_are_refused_before_parsing() {
        let payload = vec![0u8; MAX_DEVICE_MESSAGE_BYTES + 1];
        assert!(matches!(
            SignedMessage::decode(&payload),
            Err(ProtocolError::TooLarge { .. })
        ));
    }
}
