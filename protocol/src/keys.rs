//! Key types for both ends, as newtypes that keep secrets out of logs.
//!
//! Secret keys have no `Clone`, no `Serialize` and a redacted `Debug`; they are
//! zeroed on drop by the dalek types they wrap. Their raw bytes are reached only
//! through methods whose names say so, for writing key files.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signer, Verifier};
use rand_core::OsRng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ProtocolError;

/// The hub's X25519 secret: the only key that opens a sealed photo.
pub struct HubSealingKey(x25519_dalek::StaticSecret);

/// The hub's X25519 public key, given to every device to seal photos with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HubSealingPublic(pub(crate) x25519_dalek::PublicKey);

/// The hub's Ed25519 key for signing replies to devices.
pub struct HubSigningKey(ed25519_dalek::SigningKey);

/// What a device checks the hub's replies with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HubVerifyingKey(ed25519_dalek::VerifyingKey);

/// A device's Ed25519 key for signing what it publishes.
pub struct DeviceSigningKey(ed25519_dalek::SigningKey);

/// What the hub checks a device's messages with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DeviceVerifyingKey(ed25519_dalek::VerifyingKey);

impl HubSealingKey {
    pub fn generate() -> Self {
        Self(x25519_dalek::StaticSecret::random_from_rng(OsRng))
    }

    pub fn from_secret_bytes(bytes: [u8; 32]) -> Self {
        Self(x25519_dalek::StaticSecret::from(bytes))
    }

    /// The raw secret, for writing the hub's key file and nothing else.
    pub fn secret_bytes_for_key_file(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn public(&self) -> HubSealingPublic {
        HubSealingPublic(x25519_dalek::PublicKey::from(&self.0))
    }

    pub(crate) fn diffie_hellman(
        &self,
        their_public: &x25519_dalek::PublicKey,
    ) -> x25519_dalek::SharedSecret {
        self.0.diffie_hellman(their_public)
    }
}

impl HubSealingPublic {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(x25519_dalek::PublicKey::from(bytes))
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
}

impl HubSigningKey {
    pub fn generate() -> Self {
        Self(ed25519_dalek::SigningKey::generate(&mut OsRng))
    }

    pub fn from_secret_bytes(bytes: [u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(&bytes))
    }

    /// The raw secret, for writing the hub's key file and nothing else.
    pub fn secret_bytes_for_key_file(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn verifying_key(&self) -> HubVerifyingKey {
        HubVerifyingKey(self.0.verifying_key())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl HubVerifyingKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, ProtocolError> {
        ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map(Self)
            .map_err(|error| bad_key("hub verifying key", error))
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        verify_strict(&self.0, message, signature)
    }
}

impl DeviceSigningKey {
    pub fn generate() -> Self {
        Self(ed25519_dalek::SigningKey::generate(&mut OsRng))
    }

    pub fn from_secret_bytes(bytes: [u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(&bytes))
    }

    /// The raw secret, for writing the provisioning file and nothing else.
    pub fn secret_bytes_for_provisioning(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn verifying_key(&self) -> DeviceVerifyingKey {
        DeviceVerifyingKey(self.0.verifying_key())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl DeviceVerifyingKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, ProtocolError> {
        ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map(Self)
            .map_err(|error| bad_key("device verifying key", error))
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        verify_strict(&self.0, message, signature)
    }
}

/// Strict verification refuses the malleable and small-order signatures that
/// plain Ed25519 verification lets through.
fn verify_strict(key: &ed25519_dalek::VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
        return false;
    };
    key.verify_strict(message, &signature).is_ok() && key.verify(message, &signature).is_ok()
}

fn bad_key(what: &'static str, error: impl fmt::Display) -> ProtocolError {
    ProtocolError::BadKey {
        what,
        detail: error.to_string(),
    }
}

/// Decodes a base64 key of exactly 32 bytes.
pub(crate) fn key_bytes_from_base64(
    text: &str,
    what: &'static str,
) -> Result<[u8; 32], ProtocolError> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|error| bad_key(what, error))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| ProtocolError::BadKey {
        what,
        detail: format!("expected 32 bytes, found {}", bytes.len()),
    })
}

pub(crate) fn key_bytes_to_base64(bytes: &[u8; 32]) -> String {
    STANDARD.encode(bytes)
}

macro_rules! redacted_debug {
    ($($name:ident),*) => {$(
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(redacted)"))
            }
        }
    )*};
}
redacted_debug!(HubSealingKey, HubSigningKey, DeviceSigningKey);

macro_rules! public_key_text {
    ($($name:ident => $what:literal),*) => {$(
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), key_bytes_to_base64(&self.to_bytes()))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&key_bytes_to_base64(&self.to_bytes()))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                let bytes = key_bytes_from_base64(&text, $what).map_err(serde::de::Error::custom)?;
                $name::try_from_bytes(bytes).map_err(serde::de::Error::custom)
            }
        }
    )*};
}
public_key_text!(
    HubSealingPublic => "hub sealing public key",
    HubVerifyingKey => "hub verifying key",
    DeviceVerifyingKey => "device verifying key"
);

impl HubSealingPublic {
    fn try_from_bytes(bytes: [u8; 32]) -> Result<Self, ProtocolError> {
        Ok(Self::from_bytes(bytes))
    }
}

impl HubVerifyingKey {
    fn try_from_bytes(bytes: [u8; 32]) -> Result<Self, ProtocolError> {
        Self::from_bytes(&bytes)
    }
}

impl DeviceVerifyingKey {
    fn try_from_bytes(bytes: [u8; 32]) -> Result<Self, ProtocolError> {
        Self::from_bytes(&bytes)
    }
}
