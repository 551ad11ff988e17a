//! Why a message, envelope or key could not be used.

/// Everything that can go wrong reading or checking what crosses the wire.
///
/// The messages are for logs and operators; the hub answers a device with one
/// generic reason so that a forger learns nothing about which check failed.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The bytes are not the CBOR structure expected (corrupt, truncated or forged).
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },

    /// A message is larger than the limit both ends are configured with.
    #[error("{what} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        what: &'static str,
        size: usize,
        limit: usize,
    },

    /// An Ed25519 signature does not verify under the expected key.
    #[error("bad signature on {what}")]
    BadSignature { what: &'static str },

    /// The envelope was written by a newer protocol than this program knows.
    #[error("unsupported envelope version {0}; upgrade this program")]
    UnsupportedVersion(u8),

    /// The X25519 exchange produced a non-contributory (all-zero) secret: the
    /// ephemeral key is a low-order point, so the photo key would be guessable.
    #[error("the photo's ephemeral key is a low-order point; refusing to use it")]
    NonContributory,

    /// A Fernet token failed its integrity check or is malformed.
    #[error("sealed {part} failed its integrity check")]
    BadToken { part: &'static str },

    /// A key in a provisioning file or key file has the wrong length or encoding.
    #[error("invalid {what}: {detail}")]
    BadKey { what: &'static str, detail: String },
}
