//! CBOR encoding with the size limits both ends share.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::ProtocolError;

/// Encodes a value as CBOR.
pub fn encode_cbor<T: Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = Vec::new();

    // Writing into a Vec cannot fail, and every type we encode serialises
    // without custom errors, so an error here is a programming mistake.
    ciborium::into_writer(value, &mut bytes).expect("CBOR encoding into memory cannot fail");
    bytes
}

/// Decodes CBOR, refusing input over `limit` bytes before parsing it.
pub fn decode_cbor<T: DeserializeOwned>(
    bytes: &[u8],
    limit: usize,
    what: &'static str,
) -> Result<T, ProtocolError> {
    if bytes.len() > limit {
        return Err(ProtocolError::TooLarge {
            what,
            size: bytes.len(),
            limit,
        });
    }

    ciborium::from_reader(bytes).map_err(|error| ProtocolError::Malformed {
        what,
        detail: error.to_string(),
    })
}
