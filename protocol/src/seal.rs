//! The sealed photo: original, preview and face boxes encrypted so that only the
//! hub can open them.
//!
//! For every photo the device makes a fresh X25519 key pair, agrees a secret with
//! the hub's public key, and derives a Fernet key from it with HKDF-SHA256 bound to
//! the photo id. The device then forgets the ephemeral secret, so nothing it keeps
//! can open the photo again. Fernet tokens travel as their raw bytes, not base64.

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;
use hkdf::Hkdf;
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::{HubSealingKey, HubSealingPublic, ProtocolError};

/// The latest Fernet token timestamp accepted: 9999-12-31T23:59:59Z.
///
/// A token's timestamp is never a reason to refuse a photo (a device may have
/// waited offline for weeks, or have had no clock), but one beyond this bound
/// would overflow the time arithmetic inside the fernet crate, so such a token
/// is treated as malformed.
pub const MAX_TOKEN_TIMESTAMP: u64 = 253_402_300_799;

/// HKDF context, versioned so that a future scheme cannot collide with this one.
const KEY_INFO: &[u8] = b"guardian sealed photo v1";

/// Version byte, timestamp, IV, one AES block and the HMAC.
const MIN_TOKEN_LEN: usize = 1 + 8 + 16 + 16 + 32;

/// A face box in the upright original's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaceRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// What the device learnt about a photo, sealed beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoDetails {
    /// Size of the upright original.
    pub width: u32,
    pub height: u32,
    /// Every face the detector found, in upright original pixels.
    pub faces: Vec<FaceRect>,
    /// The decoder accepted the file but it is evidently broken; the preview is
    /// covered whole.
    pub damaged: bool,
    /// Which detector ran ("centerface" or "rustface").
    pub detector: String,
    /// Media type of the original file ("image/jpeg" or "image/png").
    pub media_type: String,
}

/// The three sealed parts of one photo.
#[derive(Clone, Serialize, Deserialize)]
pub struct SealedPhoto {
    #[serde(with = "serde_bytes")]
    ephemeral_public: [u8; 32],
    #[serde(with = "serde_bytes")]
    details: Vec<u8>,
    #[serde(with = "serde_bytes")]
    preview: Vec<u8>,
    #[serde(with = "serde_bytes")]
    original: Vec<u8>,
}

/// A sealed photo whose key has been derived: its parts can be opened one by one,
/// so serving a preview never decrypts the original.
pub struct OpenedPhoto<'a> {
    fernet: fernet::Fernet,
    sealed: &'a SealedPhoto,
}

impl SealedPhoto {
    /// Seals a photo for the hub that owns `hub`.
    pub fn seal(
        hub: &HubSealingPublic,
        photo_id: Uuid,
        details: &PhotoDetails,
        preview_jpeg: &[u8],
        original: &[u8],
    ) -> Result<Self, ProtocolError> {
        let ephemeral = x25519_dalek::EphemeralSecret::random_from_rng(OsRng);
        let ephemeral_public = x25519_dalek::PublicKey::from(&ephemeral);
        let shared = ephemeral.diffie_hellman(&hub.0);

        if !shared.was_contributory() {
            return Err(ProtocolError::NonContributory);
        }

        let fernet = derive_fernet(shared.as_bytes(), &ephemeral_public, hub, photo_id);
        Ok(Self {
            ephemeral_public: ephemeral_public.to_bytes(),
            details: raw_token(&fernet, &crate::encode_cbor(details)),
            preview: raw_token(&fernet, preview_jpeg),
            original: raw_token(&fernet, original),
        })
    }

    /// Derives the photo key with the hub's secret. Fails on a low-order
    /// ephemeral key; the parts themselves are checked as they are opened.
    pub fn open<'a>(
        &'a self,
        hub: &HubSealingKey,
        photo_id: Uuid,
    ) -> Result<OpenedPhoto<'a>, ProtocolError> {
        let ephemeral_public = x25519_dalek::PublicKey::from(self.ephemeral_public);
        let shared = hub.diffie_hellman(&ephemeral_public);

        if !shared.was_contributory() {
            return Err(ProtocolError::NonContributory);
        }

        let fernet = derive_fernet(
            shared.as_bytes(),
            &ephemeral_public,
            &hub.public(),
            photo_id,
        );
        Ok(OpenedPhoto {
            fernet,
            sealed: self,
        })
    }

    /// Total size of the sealed parts, for logs and limits.
    pub fn sealed_len(&self) -> usize {
        self.details.len() + self.preview.len() + self.original.len()
    }
}

impl OpenedPhoto<'_> {
    pub fn details(&self) -> Result<PhotoDetails, ProtocolError> {
        let bytes = open_token(&self.fernet, &self.sealed.details, "details")?;
        crate::decode_cbor(&bytes, bytes.len(), "photo details")
    }

    pub fn preview(&self) -> Result<Vec<u8>, ProtocolError> {
        open_token(&self.fernet, &self.sealed.preview, "preview")
    }

    pub fn original(&self) -> Result<Vec<u8>, ProtocolError> {
        open_token(&self.fernet, &self.sealed.original, "original")
    }

    /// Checks every part's integrity and returns the details; the decrypted
    /// preview and original are dropped at once, never written anywhere.
    pub fn verify_all(&self) -> Result<PhotoDetails, ProtocolError> {
        let details = self.details()?;
        self.preview()?;
        self.original()?;
        Ok(details)
    }
}

fn derive_fernet(
    shared_secret: &[u8; 32],
    ephemeral_public: &x25519_dalek::PublicKey,
    hub: &HubSealingPublic,
    photo_id: Uuid,
) -> fernet::Fernet {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral_public.as_bytes());
    salt[32..].copy_from_slice(&hub.to_bytes());

    let mut info = Vec::with_capacity(KEY_INFO.len() + 16);
    info.extend_from_slice(KEY_INFO);
    info.extend_from_slice(photo_id.as_bytes());

    let mut key = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte output limit.
    Hkdf::<Sha256>::new(Some(&salt), shared_secret)
        .expand(&info, key.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 output length");

    let key_text = Zeroizing::new(URL_SAFE.encode(key.as_ref()));
    // A base64url text of 32 bytes is exactly what Fernet::new accepts.
    fernet::Fernet::new(&key_text).expect("a 32-byte base64url key is a valid Fernet key")
}

fn raw_token(fernet: &fernet::Fernet, plaintext: &[u8]) -> Vec<u8> {
    // The fernet crate only speaks base64url text; its output always decodes.
    URL_SAFE
        .decode(fernet.encrypt(plaintext))
        .expect("fernet emits valid base64url")
}

fn open_token(
    fernet: &fernet::Fernet,
    token: &[u8],
    part: &'static str,
) -> Result<Vec<u8>, ProtocolError> {
    let malformed = || ProtocolError::BadToken { part };

    if token.len() < MIN_TOKEN_LEN || token[0] != 0x80 {
        return Err(malformed());
    }

    // Decrypt "at the token's own time": the fernet crate refuses tokens from
    // more than 60 s in the future, which would drop photos from a device whose
    // clock runs ahead. Bounding the timestamp first keeps its `time + 60`
    // from overflowing on a forged token.
    let mut stamp = [0u8; 8];
    stamp.copy_from_slice(&token[1..9]);
    let timestamp = u64::from_be_bytes(stamp);
    if timestamp > MAX_TOKEN_TIMESTAMP {
        return Err(malformed());
    }

    fernet
        .decrypt_at_time(&URL_SAFE.encode(token), None, timestamp)
        .map_err(|_| malformed())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details() -> PhotoDetails {
        PhotoDetails {
            width: 640,
            height: 480,
            faces: vec![FaceRect {
                x: 10,
                y: 20,
                width: 30,
                height: 40,
            }],
            damaged: false,
            detector: "centerface".into(),
            media_type: "image/jpeg".into(),
        }
    }

    #[test]
    fn only_the_hub_key_opens_a_sealed_photo() {
        let hub = HubSealingKey::generate();
        let id = Uuid::new_v4();
        let sealed = SealedPhoto::seal(&hub.public(), id, &details(), b"preview", b"original")
            .expect("seal");

        let opened = sealed.open(&hub, id).expect("open");
        assert_eq!(opened.verify_all().expect("verify"), details());
        assert_eq!(opened.original().expect("original"), b"original");

        let stranger = HubSealingKey::generate();
        let wrong = sealed.open(&stranger, id).expect("derive");
        assert!(matches!(
            wrong.details(),
            Err(ProtocolError::BadToken { .. })
        ));

        let other_id = sealed.open(&hub, Uuid::new_v4()).expect("derive");
        assert!(
            other_id.preview().is_err(),
            "the key is bound to the photo id"
        );
    }

    #[test]
    fn tokens_travel_as_raw_bytes() {
        let hub = HubSealingKey::generate();
        let sealed =
            SealedPhoto::seal(&hub.public(), Uuid::new_v4(), &details(), b"p", b"o").unwrap();
        assert_eq!(
            sealed.original[0], 0x80,
            "a raw token starts with its version byte"
        );
    }

    #[test]
    fn a_low_order_ephemeral_key_is_refused() {
        let hub = HubSealingKey::generate();
        let mut sealed =
            SealedPhoto::seal(&hub.public(), Uuid::new_v4(), &details(), b"p", b"o").unwrap();
        sealed.ephemeral_public = [0u8; 32];
        assert!(matches!(
            sealed.open(&hub, Uuid::new_v4()),
            Err(ProtocolError::NonContributory)
        ));
    }

    #[test]
    fn broken_tokens_are_refused_without_panicking() {
        let hub = HubSealingKey::generate();
        let id = Uuid::new_v4();
        let good = SealedPhoto::seal(&hub.public(), id, &details(), b"p", b"o").unwrap();

        let mut cases: Vec<Vec<u8>> = Vec::new();
        let mut flipped = good.original.clone();
        flipped[40] ^= 1;
        cases.push(flipped);
        let mut bad_mac = good.original.clone();
        let last = bad_mac.len() - 1;
        bad_mac[last] ^= 0x55;
        cases.push(bad_mac);
        cases.push(good.original[..good.original.len() - 5].to_vec());
        let mut version = good.original.clone();
        version[0] = 0x81;
        cases.push(version);
        let mut far_future = good.original.clone();
        far_future[1..9].copy_from_slice(&u64::MAX.to_be_bytes());
        cases.push(far_future);
        cases.push(Vec::new());

        for broken in cases {
            let mut sealed = good.clone();
            sealed.original = broken;
            let opened = sealed.open(&hub, id).unwrap();
            assert!(matches!(
                opened.original(),
                Err(ProtocolError::BadToken { part: "original" })
            ));
        }
    }

    #[test]
    fn a_token_stamped_in_the_future_still_opens() {
        // A device whose clock runs days ahead must not lose its photos.
        let hub = HubSealingKey::generate();
        let id = Uuid::new_v4();
        let sealed = SealedPhoto::seal(&hub.public(), id, &details(), b"p", b"o").unwrap();
        let opened = sealed.open(&hub, id).unwrap();
        let future = opened.fernet.encrypt_at_time(b"late", 4_000_000_000);
        let raw = URL_SAFE.decode(future).unwrap();
        assert_eq!(open_token(&opened.fernet, &raw, "x").unwrap(), b"late");
    }
}
