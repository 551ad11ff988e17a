//! What crosses the wire between a Guardian classroom device and its school hub.
//!
//! This crate holds only types and pure functions, no I/O: the MQTT topics, the
//! signed messages a device publishes, the signed replies the hub sends back, the
//! sealed-photo envelope that only the hub can open, and the provisioning file the
//! hub writes for each device.

mod broker;
pub mod broker_tls;
mod codec;
mod error;
mod keys;
mod messages;
mod notices;
mod provisioning;
mod seal;
pub mod topics;

pub use broker::{BadBrokerAddress, BrokerAddress};
pub use codec::{decode_cbor, encode_cbor};
pub use error::ProtocolError;
pub use keys::{
    DeviceSigningKey, DeviceVerifyingKey, HubSealingKey, HubSealingPublic, HubSigningKey,
    HubVerifyingKey,
};
pub use messages::{
    envelope_sha256, DeviceMessage, Heartbeat, HubReply, PhotoEnvelope, PhotoUpload, SignedMessage,
    SignedReply, ENVELOPE_VERSION,
};
pub use notices::{
    pins_digest, HubNotice, TeacherPin, TeacherPins, MAX_NOTICE_BYTES, MAX_TEACHERS_PER_DEVICE,
};
pub use provisioning::{HubPublicKeys, Provisioning};
pub use seal::{FaceRect, OpenedPhoto, PhotoDetails, SealedPhoto, MAX_TOKEN_TIMESTAMP};

/// The largest MQTT packet a device may publish to the hub (a sealed photo with
/// its preview and the framing around it). Both the broker and every client are
/// configured with this limit, so a photo that fits is never cut by one of them.
pub const MAX_DEVICE_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// The MQTT packet limit set on the broker and on every client, in both
/// directions. It leaves room beyond [`MAX_DEVICE_MESSAGE_BYTES`] for the topic
/// and MQTT headers, so that the message limit, which the hub checks and
/// reports, is what decides whether a photo fits.
pub const MQTT_PACKET_LIMIT: usize = MAX_DEVICE_MESSAGE_BYTES + 4096;

/// The largest MQTT packet the hub sends to a device (a signed reply).
pub const MAX_HUB_REPLY_BYTES: usize = 16 * 1024;

/// The long side of a preview, in pixels, at most. The hub refuses a preview
/// that is larger or is not a JPEG.
pub const PREVIEW_MAX_SIDE: u32 = 1280;

/// The largest original photo file a device seals. With the preview and the
/// framing it stays under [`MAX_DEVICE_MESSAGE_BYTES`] after Fernet's padding.
pub const MAX_ORIGINAL_BYTES: usize = 12 * 1024 * 1024;
