//! Rendering what a viewer receives: the covered preview as sealed by the
//! device, and a watermarked original made for one viewer.
//!
//! Photos are opened in memory only; nothing decrypted is written anywhere.
//! Which faces a viewer may see is a [`FacePolicy`], chosen per delivery: today
//! a parent who passed the code check sees every face ([`RevealAll`]); a later
//! policy may cover the faces of other people's children.

use guardian_models::photo::{decode_upright, DecodeError, DecodeLimits};
use guardian_protocol::{FaceRect, PhotoDetails, PhotoEnvelope, ProtocolError};
use image::{Rgb, RgbImage};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::metadata::{encode_original, MetadataError};
use crate::store::StoreError;
use crate::watermark::{self, ViewerMark};
use crate::Hub;

/// Why a photo could not be rendered. All are the hub's problem, not the
/// viewer's: the viewer is told to try later, the log gets this.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The stored envelope is missing, altered or unreadable; restore the
    /// photos directory from backup.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// The envelope does not decode or decrypt with this hub's key; it was
    /// stored by another hub or damaged after its digest was taken.
    #[error("photo {photo_id} cannot be opened: {source}")]
    Open {
        photo_id: Uuid,
        source: ProtocolError,
    },

    /// The envelope names another photo than the row that points at it.
    #[error("the envelope stored for photo {photo_id} belongs to photo {found}; the store is inconsistent")]
    WrongPhoto { photo_id: Uuid, found: Uuid },

    /// The decrypted original is not a photo the hub can decode.
    #[error("the original of photo {photo_id} cannot be decoded: {source}")]
    Decode { photo_id: Uuid, source: DecodeError },

    /// The watermarked original could not be encoded.
    #[error("the original of photo {photo_id} cannot be encoded: {source}")]
    Encode {
        photo_id: Uuid,
        source: MetadataError,
    },
}

/// Which faces a viewer of an original may not see.
pub trait FacePolicy: Send + Sync {
    /// The face boxes (in upright original pixels) to cover for this viewer.
    fn faces_to_cover(&self, details: &PhotoDetails) -> Vec<FaceRect>;
}

/// Every face visible: the rule for a parent who passed the code check.
#[derive(Debug, Default, Clone, Copy)]
pub struct RevealAll;

impl FacePolicy for RevealAll {
    fn faces_to_cover(&self, _details: &PhotoDetails) -> Vec<FaceRect> {
        Vec::new()
    }
}

/// The preview JPEG as the device sealed it, faces already covered.
pub fn preview(hub: &Hub, photo_id: Uuid) -> Result<Vec<u8>, RenderError> {
    let envelope = open_envelope(hub, photo_id)?;
    let opened = envelope
        .sealed
        .open(&hub.keys.sealing, photo_id)
        .map_err(|source| RenderError::Open { photo_id, source })?;
    opened
        .preview()
        .map_err(|source| RenderError::Open { photo_id, source })
}

/// The original for one viewer: decrypted, turned upright, faces covered as
/// `policy` says, watermarked with `mark`, and re-encoded with the mark in its
/// metadata and nothing of the camera's (no GPS, no serial numbers).
///
/// CPU-heavy (a full decode and encode): call it from a blocking thread.
pub fn original(
    hub: &Hub,
    photo_id: Uuid,
    mark: &ViewerMark,
    policy: &dyn FacePolicy,
) -> Result<Vec<u8>, RenderError> {
    // Open the sealed parts in memory.
    let envelope = open_envelope(hub, photo_id)?;
    let opened = envelope
        .sealed
        .open(&hub.keys.sealing, photo_id)
        .map_err(|source| RenderError::Open { photo_id, source })?;
    let details = opened
        .details()
        .map_err(|source| RenderError::Open { photo_id, source })?;
    let bytes = Zeroizing::new(
        opened
            .original()
            .map_err(|source| RenderError::Open { photo_id, source })?,
    );

    // Upright pixels, as the device saw them when it found the faces.
    let mut image = decode_upright(&bytes, &DecodeLimits::default())
        .map_err(|source| RenderError::Decode { photo_id, source })?
        .image;
    drop(bytes);

    // Cover what this viewer may not see, then name the viewer on top.
    let to_cover = policy.faces_to_cover(&details);
    if !to_cover.is_empty() {
        let same_frame = image.dimensions() == (details.width, details.height);
        if same_frame {
            for face in &to_cover {
                cover(&mut image, face);
            }
        } else {
            // The boxes were measured on another frame and cannot be trusted
            // to line up, so nothing is shown rather than a face.
            let whole = FaceRect {
                x: 0,
                y: 0,
                width: image.width(),
                height: image.height(),
            };
            cover(&mut image, &whole);
        }
    }
    watermark::draw(&mut image, mark);

    encode_original(&image, mark).map_err(|source| RenderError::Encode { photo_id, source })
}

/// The grey that covers a face.
const COVER_COLOUR: Rgb<u8> = Rgb([128, 128, 128]);

/// Fills a face box, grown by a fifth of its size on every side for hair and
/// ears, clamped to the image.
fn cover(image: &mut RgbImage, face: &FaceRect) {
    let (width, height) = image.dimensions();
    let margin_x = face.width / 5;
    let margin_y = face.height / 5;
    let left = face.x.saturating_sub(margin_x).min(width);
    let top = face.y.saturating_sub(margin_y).min(height);
    let right = face
        .x
        .saturating_add(face.width)
        .saturating_add(margin_x)
        .min(width);
    let bottom = face
        .y
        .saturating_add(face.height)
        .saturating_add(margin_y)
        .min(height);

    for y in top..bottom {
        for x in left..right {
            image.put_pixel(x, y, COVER_COLOUR);
        }
    }
}

fn open_envelope(hub: &Hub, photo_id: Uuid) -> Result<PhotoEnvelope, RenderError> {
    let bytes = hub.store.envelope(photo_id)?;
    let envelope = PhotoEnvelope::from_bytes(&bytes)
        .map_err(|source| RenderError::Open { photo_id, source })?;
    if envelope.photo_id != photo_id {
        return Err(RenderError::WrongPhoto {
            photo_id,
            found: envelope.photo_id,
        });
    }
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cover_is_clamped_to_the_image() {
        let mut image = RgbImage::from_pixel(100, 80, Rgb([0, 0, 0]));
        // Half off the right edge and the bottom, as in case C03.
        cover(
            &mut image,
            &FaceRect {
                x: 80,
                y: 60,
                width: 40,
                height: 40,
            },
        );
        assert_eq!(*image.get_pixel(99, 79), COVER_COLOUR);
        // The margin reaches a fifth of the box beyond it on the left.
        assert_eq!(*image.get_pixel(72, 52), COVER_COLOUR);
        assert_eq!(*image.get_pixel(71, 52), Rgb([0, 0, 0]));

        // A box wholly outside the image changes nothing and does not panic.
        cover(
            &mut image,
            &FaceRect {
                x: u32::MAX - 1,
                y: u32::MAX - 1,
                width: u32::MAX,
                height: 5,
            },
        );
    }
}
