//! Rendering a photo for the person asking: the sealed original is opened in
//! memory, the faces this viewer may not see are covered (see
//! [`crate::visibility`] for who sees what), and the result is watermarked
//! for them. The sealed file never changes and nothing decrypted is written
//! anywhere.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};

use guardian_models::cover::{cover_in, fill, Cover, CoverBox};
use guardian_models::photo::{decode_upright, DecodeError, DecodeLimits};
use guardian_protocol::{FaceRect, PhotoDetails, PhotoEnvelope, ProtocolError, PREVIEW_MAX_SIDE};
use image::codecs::jpeg::JpegEncoder;
use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};
use lru::LruCache;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::metadata::{encode_original, MetadataError};
use crate::review::Face;
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

/// What a rendering hides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Covering {
    /// Face boxes to cover, in upright original pixels.
    pub faces: Vec<FaceRect>,
    /// Cover the whole frame (a damaged photo, whose boxes cannot be trusted).
    pub everything: bool,
}

/// How large a rendering is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// The full upright original.
    Original,
    /// At most [`PREVIEW_MAX_SIDE`] pixels on the long side.
    Preview,
}

/// The face boxes and size of the sealed photo, as the device measured them.
pub fn details(hub: &Hub, photo_id: Uuid) -> Result<PhotoDetails, RenderError> {
    let envelope = open_envelope(hub, photo_id)?;
    envelope
        .sealed
        .open(&hub.keys.sealing, photo_id)
        .and_then(|opened| opened.details())
        .map_err(|source| RenderError::Open { photo_id, source })
}

/// The photo for one viewer: decrypted, turned upright, with `covering`
/// applied, scaled to `size`, and, given a `mark`, watermarked with it on
/// the pixels (repeated blocks on an original, a band along the bottom of a
/// preview) and in the metadata. Nothing of the camera's metadata (GPS,
/// serial numbers) is kept. Without a mark the JPEG carries no metadata: that
/// is for tests that measure the pixels, never for a viewer.
///
/// CPU-heavy (a full decode and encode): call it from a blocking thread.
pub fn for_viewer(
    hub: &Hub,
    photo_id: Uuid,
    covering: &Covering,
    size: Size,
    mark: Option<&ViewerMark>,
) -> Result<Vec<u8>, RenderError> {
    // A preview starts from the shared preview-sized copy; an original from
    // a fresh full decode.
    let (mut image, original, same_frame) = match size {
        Size::Preview => {
            let base = hub
                .previews
                .get_or_make(photo_id, || preview_base(hub, photo_id))?;
            (base.image.clone(), base.original, base.same_frame)
        }
        Size::Original => {
            let (details, image) = open_upright(hub, photo_id)?;
            let same_frame = image.dimensions() == (details.width, details.height);
            (image, (details.width, details.height), same_frame)
        }
    };

    if covering.everything || (!covering.faces.is_empty() && !same_frame) {
        // Boxes measured on another frame cannot be trusted to line up, so
        // nothing is shown rather than a face.
        let (width, height) = image.dimensions();
        fill(&mut image, Cover::whole(width, height));
    } else {
        // The device's own rule, so a face is hidden the same way on its
        // screen and for every family.
        let target = image.dimensions();
        for face in &covering.faces {
            let face = CoverBox {
                x: face.x,
                y: face.y,
                width: face.width,
                height: face.height,
            };
            if let Some(cover) = cover_in(&face, original, target) {
                fill(&mut image, cover);
            }
        }
    }

    let style = match size {
        Size::Original => MarkStyle::Repeated,
        Size::Preview => MarkStyle::Strip,
    };
    encode(photo_id, &mut image, mark.map(|mark| (mark, style)))
}

/// How a rendering names its viewer on the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MarkStyle {
    /// Repeated blocks that survive cropping, on what is handed over as a file.
    Repeated,
    /// One band along the bottom, on what is looked at on the page, so the
    /// faces stay clear.
    Strip,
}

/// Originals already decoded and scaled to preview size, uncovered, kept in
/// memory for the next viewer: the families of a class looking at the same
/// photo cost one decode instead of one each. Nothing here is ever written
/// to disk; each entry is at most 1280 x 1280 pixels (4.9 MB).
pub struct PreviewCache {
    bases: Mutex<LruCache<Uuid, Arc<PreviewBase>>>,
}

/// Photos a hub keeps decoded at preview size: about 120 MB for typical
/// 4:3 photos, which a Raspberry Pi with 2 GB or more can spare.
pub const PREVIEW_CACHE_ENTRIES: usize = 32;

/// One photo at preview size, before any face is covered.
pub struct PreviewBase {
    image: RgbImage,
    /// The size of the upright original it was scaled from.
    original: (u32, u32),
    /// The decoded original had the size the device measured its boxes on.
    same_frame: bool,
}

impl PreviewCache {
    pub fn new(entries: usize) -> Self {
        let entries = NonZeroUsize::new(entries).unwrap_or(NonZeroUsize::MIN);
        Self {
            bases: Mutex::new(LruCache::new(entries)),
        }
    }

    /// The cached base of a photo, or one made now (outside the lock, so
    /// other photos are served meanwhile) and kept.
    fn get_or_make(
        &self,
        photo_id: Uuid,
        make: impl FnOnce() -> Result<PreviewBase, RenderError>,
    ) -> Result<Arc<PreviewBase>, RenderError> {
        if let Some(base) = self.lock().get(&photo_id) {
            return Ok(base.clone());
        }
        let base = Arc::new(make()?);
        self.lock().put(photo_id, base.clone());
        Ok(base)
    }

    /// Drops a photo that has been deleted.
    pub fn forget(&self, photo_id: Uuid) {
        self.lock().pop(&photo_id);
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<Uuid, Arc<PreviewBase>>> {
        // The cache holds no invariant a panic could break half-way.
        self.bases
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn preview_base(hub: &Hub, photo_id: Uuid) -> Result<PreviewBase, RenderError> {
    let (details, image) = open_upright(hub, photo_id)?;
    let same_frame = image.dimensions() == (details.width, details.height);
    let (full_width, full_height) = image.dimensions();
    let image = shrink(image, PREVIEW_MAX_SIDE);
    Ok(PreviewBase {
        original: (full_width, full_height),
        same_frame,
        image,
    })
}

/// The photo as a teacher reviews it: every face uncovered and outlined
/// (named ones in green, unknown ones in orange), preview-sized, and
/// watermarked with the teacher's mark.
pub fn for_review(
    hub: &Hub,
    photo_id: Uuid,
    faces: &[Face],
    mark: &ViewerMark,
) -> Result<Vec<u8>, RenderError> {
    let base = hub
        .previews
        .get_or_make(photo_id, || preview_base(hub, photo_id))?;
    let mut image = base.image.clone();
    let scale = f64::from(image.width()) / f64::from(base.original.0.max(1));

    for face in faces {
        let colour = if face.child_id.is_some() {
            NAMED_OUTLINE
        } else {
            UNKNOWN_OUTLINE
        };
        outline(&mut image, &scaled(&face.rect, scale), colour);
    }
    encode(photo_id, &mut image, Some((mark, MarkStyle::Strip)))
}

/// Opens the sealed photo in memory and decodes its original upright, as the
/// device saw it when it found the faces.
fn open_upright(hub: &Hub, photo_id: Uuid) -> Result<(PhotoDetails, RgbImage), RenderError> {
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

    let image = decode_upright(&bytes, &DecodeLimits::default())
        .map_err(|source| RenderError::Decode { photo_id, source })?
        .image;
    Ok((details, image))
}

/// Names the viewer on top, then encodes.
fn encode(
    photo_id: Uuid,
    image: &mut RgbImage,
    mark: Option<(&ViewerMark, MarkStyle)>,
) -> Result<Vec<u8>, RenderError> {
    let encoded = match mark {
        Some((mark, style)) => {
            match style {
                MarkStyle::Repeated => watermark::draw(image, mark),
                MarkStyle::Strip => watermark::draw_strip(image, mark),
            }
            encode_original(image, mark)
        }
        None => {
            let mut jpeg = Vec::new();
            JpegEncoder::new_with_quality(&mut jpeg, UNMARKED_QUALITY)
                .encode_image(&*image)
                .map(|()| jpeg)
                .map_err(MetadataError::from)
        }
    };
    encoded.map_err(|source| RenderError::Encode { photo_id, source })
}

/// The quality of an unmarked rendering, the same as a delivered original's,
/// so that what tests measure is what viewers get.
const UNMARKED_QUALITY: u8 = 90;

/// Scales an image down so its long side is at most `max_side`; a smaller
/// one is kept as it is.
fn shrink(image: RgbImage, max_side: u32) -> RgbImage {
    let (width, height) = image.dimensions();
    let long_side = width.max(height);
    if long_side <= max_side {
        return image;
    }
    let scale = f64::from(max_side) / f64::from(long_side);
    let new_width = ((f64::from(width) * scale).round() as u32).max(1);
    let new_height = ((f64::from(height) * scale).round() as u32).max(1);
    imageops::resize(&image, new_width, new_height, FilterType::Triangle)
}

fn scaled(rect: &FaceRect, scale: f64) -> FaceRect {
    let at = |value: u32| (f64::from(value) * scale).round() as u32;
    FaceRect {
        x: at(rect.x),
        y: at(rect.y),
        width: at(rect.width).max(1),
        height: at(rect.height).max(1),
    }
}

const NAMED_OUTLINE: Rgb<u8> = Rgb([40, 200, 90]);
const UNKNOWN_OUTLINE: Rgb<u8> = Rgb([255, 140, 0]);

/// Draws a three-pixel frame just outside a box, clamped to the image.
fn outline(image: &mut RgbImage, rect: &FaceRect, colour: Rgb<u8>) {
    const THICKNESS: u32 = 3;
    let (width, height) = image.dimensions();
    let inner_right = rect.x.saturating_add(rect.width);
    let inner_bottom = rect.y.saturating_add(rect.height);
    let left = rect.x.saturating_sub(THICKNESS);
    let top = rect.y.saturating_sub(THICKNESS);
    let right = inner_right.saturating_add(THICKNESS).min(width);
    let bottom = inner_bottom.saturating_add(THICKNESS).min(height);

    for y in top..bottom {
        for x in left..right {
            let inside = x >= rect.x && y >= rect.y && x < inner_right && y < inner_bottom;
            if !inside {
                image.put_pixel(x, y, colour);
            }
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
    fn an_outline_sits_just_outside_its_box_and_is_clamped() {
        let mut image = RgbImage::from_pixel(40, 30, Rgb([0, 0, 0]));
        let face = FaceRect {
            x: 10,
            y: 10,
            width: 10,
            height: 10,
        };
        outline(&mut image, &face, NAMED_OUTLINE);
        assert_eq!(*image.get_pixel(9, 10), NAMED_OUTLINE);
        assert_eq!(*image.get_pixel(7, 7), NAMED_OUTLINE);
        assert_eq!(
            *image.get_pixel(10, 10),
            Rgb([0, 0, 0]),
            "the face is left as it is"
        );
        assert_eq!(*image.get_pixel(6, 10), Rgb([0, 0, 0]));

        // Off the edge: clamped, no panic.
        let edge = FaceRect {
            x: 35,
            y: 25,
            width: 100,
            height: 100,
        };
        outline(&mut image, &edge, UNKNOWN_OUTLINE);
        assert_eq!(*image.get_pixel(33, 24), UNKNOWN_OUTLINE);
    }
}
