//! What the hub tells one device outside the photo replies: the PIN hashes of
//! the teachers who may unlock it, and that it was revoked.
//!
//! Notices are signed by the hub under their own domain label, so neither a
//! photo reply nor a device message can be replayed as a notice. A PIN set
//! carries the time the hub issued it; a device keeps only a set newer than the
//! one it holds, so an old set replayed from the wire cannot bring back a PIN
//! that was changed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{decode_cbor, encode_cbor, HubSigningKey, HubVerifyingKey, ProtocolError};

/// The largest signed notice the hub sends, and the most a device reads.
pub const MAX_NOTICE_BYTES: usize = 32 * 1024;

/// The most teachers one PIN set may hold; it keeps a set under
/// [`MAX_NOTICE_BYTES`].
pub const MAX_TEACHERS_PER_DEVICE: usize = 64;

const HUB_NOTICE_DOMAIN: &[u8] = b"guardian hub notice v1\0";

/// One teacher who may unlock the device, with their PIN's argon2id hash in
/// PHC string form. The PIN itself never leaves the hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeacherPin {
    pub teacher_id: Uuid,
    pub name: String,
    pub pin_hash: String,
}

/// Every teacher of the device's classroom who has a PIN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeacherPins {
    pub device_id: Uuid,
    pub issued_at: DateTime<Utc>,
    pub teachers: Vec<TeacherPin>,
}

/// A notice from the hub to one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HubNotice {
    /// Replaces the device's PIN set.
    Pins(TeacherPins),
    /// The school withdrew this device: the hub refuses everything it sends.
    Revoked {
        device_id: Uuid,
        revoked_at: DateTime<Utc>,
    },
}

/// A notice with the hub's signature.
#[derive(Clone, Serialize, Deserialize)]
struct SignedNotice {
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
    #[serde(with = "serde_bytes")]
    signature: Vec<u8>,
}

impl TeacherPins {
    /// A digest of who may unlock and with which hash, not of when the set was
    /// issued: the device reports it in its heartbeat and the hub sends a new
    /// set only when the digests differ.
    pub fn digest(&self) -> [u8; 32] {
        pins_digest(&self.teachers)
    }
}

/// The digest [`TeacherPins::digest`] gives for these teachers, in any order.
pub fn pins_digest(teachers: &[TeacherPin]) -> [u8; 32] {
    let mut sorted: Vec<&TeacherPin> = teachers.iter().collect();
    sorted.sort_by_key(|teacher| teacher.teacher_id);

    let mut hasher = Sha256::new();
    for teacher in sorted {
        // Length-prefixed, so no two different sets hash the same bytes.
        hasher.update(teacher.teacher_id.as_bytes());
        for text in [&teacher.name, &teacher.pin_hash] {
            hasher.update((text.len() as u64).to_be_bytes());
            hasher.update(text.as_bytes());
        }
    }
    hasher.finalize().into()
}

impl HubNotice {
    /// The device the notice is for.
    pub fn device_id(&self) -> Uuid {
        match self {
            HubNotice::Pins(pins) => pins.device_id,
            HubNotice::Revoked { device_id, .. } => *device_id,
        }
    }

    /// Signs and encodes a notice, ready to publish.
    pub fn sign(&self, key: &HubSigningKey) -> Vec<u8> {
        let body = encode_cbor(self);
        let signature = key.sign(&notice_signed_bytes(&body)).to_vec();
        encode_cbor(&SignedNotice { body, signature })
    }

    /// Parses and checks a notice; anything not signed by the hub is refused.
    pub fn open(payload: &[u8], hub: &HubVerifyingKey) -> Result<Self, ProtocolError> {
        let signed: SignedNotice = decode_cbor(payload, MAX_NOTICE_BYTES, "hub notice")?;
        if !hub.verify(&notice_signed_bytes(&signed.body), &signed.signature) {
            return Err(ProtocolError::BadSignature { what: "hub notice" });
        }
        decode_cbor(&signed.body, MAX_NOTICE_BYTES, "hub notice body")
    }
}

fn notice_signed_bytes(body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HUB_NOTICE_DOMAIN.len() + body.len());
    bytes.extend_from_slice(HUB_NOTICE_DOMAIN);
    bytes.extend_from_slice(body);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HubReply, SignedReply};

    fn teacher(name: &str) -> TeacherPin {
        TeacherPin {
            teacher_id: Uuid::new_v4(),
            name: name.into(),
            pin_hash: format!("$argon2id$v=19$m=19456,t=2,p=1${name}"),
        }
    }

    #[test]
    fn a_notice_opens_only_under_the_hub_key() {
        let hub = HubSigningKey::generate();
        let notice = HubNotice::Pins(TeacherPins {
            device_id: Uuid::new_v4(),
            issued_at: Utc::now(),
            teachers: vec![teacher("Ana")],
        });

        let payload = notice.sign(&hub);
        assert_eq!(
            HubNotice::open(&payload, &hub.verifying_key()).unwrap(),
            notice
        );
        let forger = HubSigningKey::generate();
        assert!(matches!(
            HubNotice::open(&notice.sign(&forger), &hub.verifying_key()),
            Err(ProtocolError::BadSignature { .. })
        ));
    }

    #[test]
    fn a_photo_reply_is_not_a_notice() {
        let hub = HubSigningKey::generate();
        let reply = SignedReply::sign(
            &HubReply::Stored {
                device_id: Uuid::new_v4(),
                photo_id: Uuid::new_v4(),
                envelope_sha256: [1; 32],
            },
            &hub,
        );
        assert!(HubNotice::open(&reply, &hub.verifying_key()).is_err());
    }

    #[test]
    fn the_digest_ignores_order_and_issue_time_but_not_content() {
        let (ana, luis) = (teacher("Ana"), teacher("Luis"));
        let set = |teachers: Vec<TeacherPin>, issued_at| TeacherPins {
            device_id: Uuid::nil(),
            issued_at,
            teachers,
        };
        let now = Utc::now();

        let a = set(vec![ana.clone(), luis.clone()], now);
        let b = set(
            vec![luis.clone(), ana.clone()],
            now + chrono::Duration::hours(1),
        );
        assert_eq!(a.digest(), b.digest());

        let mut changed = luis.clone();
        changed.pin_hash.push('x');
        assert_ne!(a.digest(), set(vec![ana.clone(), changed], now).digest());
        assert_ne!(a.digest(), set(vec![ana], now).digest());
    }
}
