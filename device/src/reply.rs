//! Deciding whether a message on our replies topic really is our hub's answer
//! about one of our photos.
//!
//! The broker lets anyone with credentials publish on any topic it allows, so a
//! reply is trusted only when it verifies under the hub key from the
//! provisioning file, names this device, and (checked by the outbox) names a
//! waiting photo together with the digest of exactly the envelope we sent.

use guardian_protocol::{HubReply, HubVerifyingKey, ProtocolError, SignedReply};
use uuid::Uuid;

use crate::outbox::{Outbox, OutboxError, Settled};

/// A reply signed by our hub and addressed to this device. Only [`verify`]
/// makes one, so the outbox can demand it before changing a row.
#[derive(Debug, Clone)]
pub struct TrustedReply(HubReply);

impl TrustedReply {
    pub fn reply(&self) -> &HubReply {
        &self.0
    }
}

/// Why a reply was ignored.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    /// Not signed by the hub key in the provisioning file: a forgery, or a hub
    /// that was re-keyed without re-provisioning this device.
    #[error(
        "reply ignored: not signed by this device's hub; if the hub was re-keyed, \
         provision this device again"
    )]
    Forged,

    /// Not a hub reply at all (corrupt, truncated or too large).
    #[error("reply ignored: {0}")]
    Malformed(ProtocolError),

    /// Signed by our hub but about another device: a reply replayed onto our topic.
    #[error("reply ignored: it is for device {named}, not this device")]
    OtherDevice { named: Uuid },

    /// The outbox could not be read or written.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// Opens a reply payload and checks that it is our hub's and about this device.
pub fn verify(
    payload: &[u8],
    hub: &HubVerifyingKey,
    device_id: Uuid,
) -> Result<TrustedReply, ReplyError> {
    let reply = SignedReply::open(payload, hub).map_err(|error| match error {
        ProtocolError::BadSignature { .. } => ReplyError::Forged,
        other => ReplyError::Malformed(other),
    })?;
    if reply.device_id() != device_id {
        return Err(ReplyError::OtherDevice {
            named: reply.device_id(),
        });
    }
    Ok(TrustedReply(reply))
}

/// Verifies a reply payload and applies it to the outbox.
pub fn apply(
    outbox: &mut Outbox,
    payload: &[u8],
    hub: &HubVerifyingKey,
    device_id: Uuid,
) -> Result<Settled, ReplyError> {
    let reply = verify(payload, hub, device_id)?;
    Ok(outbox.settle(&reply)?)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use guardian_protocol::{envelope_sha256, HubSigningKey};

    use super::*;
    use crate::outbox::{NewPhoto, NoMatch};
    use crate::testutil::TempDir;

    struct Fixture {
        _dir: TempDir,
        outbox: Outbox,
        hub: HubSigningKey,
        device_id: Uuid,
        photo_id: Uuid,
        digest: [u8; 32],
    }

    fn fixture() -> Fixture {
        let dir = TempDir::new();
        let mut outbox = Outbox::open_in(dir.path()).unwrap();
        let envelope = b"the sealed envelope";
        let photo_id = Uuid::new_v4();
        outbox
            .record_capture(&NewPhoto {
                photo_id,
                envelope,
                envelope_sha256: envelope_sha256(envelope),
                source: "in/a.jpg",
                captured_at: Utc::now(),
                content_sha256: [9; 32],
            })
            .unwrap();
        Fixture {
            _dir: dir,
            outbox,
            hub: HubSigningKey::generate(),
            device_id: Uuid::new_v4(),
            photo_id,
            digest: envelope_sha256(envelope),
        }
    }

    fn stored(device_id: Uuid, photo_id: Uuid, digest: [u8; 32]) -> HubReply {
        HubReply::Stored {
            device_id,
            photo_id,
            envelope_sha256: digest,
        }
    }

    #[test]
    fn a_genuine_stored_reply_delivers_the_photo() {
        let mut f = fixture();
        let payload = SignedReply::sign(&stored(f.device_id, f.photo_id, f.digest), &f.hub);
        let settled = apply(&mut f.outbox, &payload, &f.hub.verifying_key(), f.device_id);
        assert_eq!(
            settled.unwrap(),
            Settled::Delivered {
                photo_id: f.photo_id
            }
        );
        assert_eq!(f.outbox.pending_count().unwrap(), 0);
    }

    #[test]
    fn a_reply_signed_by_another_key_leaves_the_outbox_untouched() {
        let mut f = fixture();
        let forger = HubSigningKey::generate();
        let payload = SignedReply::sign(&stored(f.device_id, f.photo_id, f.digest), &forger);
        let result = apply(&mut f.outbox, &payload, &f.hub.verifying_key(), f.device_id);
        assert!(matches!(result, Err(ReplyError::Forged)));
        assert_eq!(f.outbox.pending_count().unwrap(), 1);
    }

    #[test]
    fn a_reply_naming_another_device_leaves_the_outbox_untouched() {
        let mut f = fixture();
        let other = Uuid::new_v4();
        let payload = SignedReply::sign(&stored(other, f.photo_id, f.digest), &f.hub);
        let result = apply(&mut f.outbox, &payload, &f.hub.verifying_key(), f.device_id);
        assert!(matches!(result, Err(ReplyError::OtherDevice { named }) if named == other));
        assert_eq!(f.outbox.pending_count().unwrap(), 1);
    }

    #[test]
    fn a_reply_with_a_wrong_digest_leaves_the_outbox_untouched() {
        let mut f = fixture();
        let mut digest = f.digest;
        digest[0] ^= 1;
        let payload = SignedReply::sign(&stored(f.device_id, f.photo_id, digest), &f.hub);
        let result = apply(&mut f.outbox, &payload, &f.hub.verifying_key(), f.device_id);
        assert_eq!(
            result.unwrap(),
            Settled::NoMatch {
                photo_id: f.photo_id,
                why: NoMatch::DigestDiffers
            }
        );
        assert_eq!(f.outbox.pending_count().unwrap(), 1);
    }

    #[test]
    fn a_reply_about_an_unknown_photo_or_garbage_changes_nothing() {
        let mut f = fixture();
        let stranger = Uuid::new_v4();
        let payload = SignedReply::sign(&stored(f.device_id, stranger, f.digest), &f.hub);
        let key = f.hub.verifying_key();
        assert!(matches!(
            apply(&mut f.outbox, &payload, &key, f.device_id),
            Ok(Settled::NoMatch {
                why: NoMatch::UnknownPhoto,
                ..
            })
        ));
        assert!(matches!(
            apply(&mut f.outbox, b"\xa1junk", &key, f.device_id),
            Err(ReplyError::Malformed(_))
        ));
        assert!(matches!(
            apply(&mut f.outbox, &[], &key, f.device_id),
            Err(ReplyError::Malformed(_))
        ));
        assert_eq!(f.outbox.pending_count().unwrap(), 1);
    }

    #[test]
    fn a_rejected_reply_quarantines_the_photo() {
        let mut f = fixture();
        let rejected = HubReply::Rejected {
            device_id: f.device_id,
            photo_id: f.photo_id,
            envelope_sha256: f.digest,
            reason: "envelope does not open".into(),
        };
        let payload = SignedReply::sign(&rejected, &f.hub);
        let settled = apply(&mut f.outbox, &payload, &f.hub.verifying_key(), f.device_id);
        assert!(matches!(settled, Ok(Settled::Quarantined { .. })));
        assert_eq!(f.outbox.pending_count().unwrap(), 0);
        assert_eq!(f.outbox.quarantined().unwrap()[0].photo_id, f.photo_id);
    }
}
