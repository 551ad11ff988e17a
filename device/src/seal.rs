//! Sealing a captured photo into the envelope the hub stores.
//!
//! The original, the preview and the details are encrypted to the hub's public
//! key with a fresh ephemeral key that is forgotten at once (see
//! `guardian_protocol::SealedPhoto`): the device keeps nothing that opens a
//! photo. The envelope bytes are fixed here, so every resend is byte-identical.

use chrono::{DateTime, Utc};
use guardian_protocol::{
    envelope_sha256, HubSealingPublic, PhotoDetails, PhotoEnvelope, ProtocolError, SealedPhoto,
    ENVELOPE_VERSION, MAX_DEVICE_MESSAGE_BYTES,
};
use uuid::Uuid;

/// Room left in a device message for the signature, the upload's timestamp and
/// the CBOR framing around the envelope.
const MESSAGE_FRAMING: usize = 4 * 1024;

/// A sealed photo, ready for the outbox.
#[derive(Debug)]
pub struct SealedEnvelope {
    pub photo_id: Uuid,
    pub captured_at: DateTime<Utc>,
    pub bytes: Vec<u8>,
    pub sha256: [u8; 32],
}

/// Why a photo could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Encryption failed (a low-order hub key in the provisioning file).
    #[error("cannot seal the photo: {0}; provision this device again from the hub")]
    Seal(#[from] ProtocolError),

    /// The sealed photo would not fit in one MQTT message to the hub.
    #[error(
        "the sealed photo is {size} bytes, too large for one message (limit {limit}); \
         lower the camera's resolution or JPEG quality"
    )]
    TooLarge { size: usize, limit: usize },
}

/// Seals one photo for the hub under a new photo id, stamped with the time now.
pub fn seal_envelope(
    device_id: Uuid,
    hub: &HubSealingPublic,
    details: &PhotoDetails,
    preview_jpeg: &[u8],
    original: &[u8],
) -> Result<SealedEnvelope, SealError> {
    let photo_id = Uuid::new_v4();
    let captured_at = Utc::now();
    let sealed = SealedPhoto::seal(hub, photo_id, details, preview_jpeg, original)?;

    let envelope = PhotoEnvelope {
        version: ENVELOPE_VERSION,
        photo_id,
        device_id,
        captured_at,
        sealed,
    };
    let bytes = envelope.to_bytes();

    let limit = MAX_DEVICE_MESSAGE_BYTES - MESSAGE_FRAMING;
    if bytes.len() > limit {
        return Err(SealError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }

    let sha256 = envelope_sha256(&bytes);
    Ok(SealedEnvelope {
        photo_id,
        captured_at,
        bytes,
        sha256,
    })
}

#[cfg(test)]
mod tests {
    use guardian_protocol::{FaceRect, HubSealingKey};

    use super::*;

    fn details() -> PhotoDetails {
        PhotoDetails {
            width: 4,
            height: 3,
            faces: vec![FaceRect {
                x: 1,
                y: 1,
                width: 2,
                height: 2,
            }],
            damaged: false,
            detector: "centerface".into(),
            media_type: "image/jpeg".into(),
        }
    }

    #[test]
    fn only_the_hub_key_opens_the_envelope() {
        let hub = HubSealingKey::generate();
        let device_id = Uuid::new_v4();
        let sealed = seal_envelope(
            device_id,
            &hub.public(),
            &details(),
            b"preview",
            b"original",
        )
        .unwrap();

        assert_eq!(sealed.sha256, envelope_sha256(&sealed.bytes));
        let envelope = PhotoEnvelope::from_bytes(&sealed.bytes).unwrap();
        assert_eq!(envelope.photo_id, sealed.photo_id);
        assert_eq!(envelope.device_id, device_id);

        let opened = envelope.sealed.open(&hub, sealed.photo_id).unwrap();
        assert_eq!(opened.verify_all().unwrap(), details());
        assert_eq!(opened.original().unwrap(), b"original");

        let stranger = HubSealingKey::generate();
        assert!(envelope
            .sealed
            .open(&stranger, sealed.photo_id)
            .and_then(|opened| opened.details())
            .is_err());
    }

    #[test]
    fn each_seal_gets_a_new_photo_id() {
        let hub = HubSealingKey::generate().public();
        let a = seal_envelope(Uuid::nil(), &hub, &details(), b"p", b"o").unwrap();
        let b = seal_envelope(Uuid::nil(), &hub, &details(), b"p", b"o").unwrap();
        assert_ne!(a.photo_id, b.photo_id);
        assert_ne!(a.bytes, b.bytes);
    }
}
