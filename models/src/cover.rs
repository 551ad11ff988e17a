//! Where a face's cover goes: the face box grown by margins for hair, ears and chin,
//! clamped to the picture, mapped to the size it is drawn at and widened to whole JPEG
//! blocks. The device covers its preview with it and the hub every rendering it makes
//! for a viewer, so a face is hidden the same way wherever it is shown.

use image::{Rgb, RgbImage};

/// The cover colour: a neutral mid grey that reads as "hidden" on light and dark photos
/// and, being flat, compresses to almost nothing.
pub const COVER_FILL: Rgb<u8> = Rgb([128, 128, 128]);

/// How far a cover reaches beyond the face box, as a fraction of the box's size. Detector
/// boxes hug the eyes, nose and mouth; ears, chin and cheeks lie outside them.
pub const MARGIN_SIDE: f64 = 0.25;
pub const MARGIN_BOTTOM: f64 = 0.25;
/// More above the box, because hair identifies a child as well as a face does.
pub const MARGIN_TOP: f64 = 0.40;

/// Covers are widened to whole 16x16 JPEG blocks (8x8 luma, 2x2-subsampled chroma).
/// A block that straddles a cover's edge rings with the photo's detail on the cover
/// side; on a small face that ringing kept a quarter of the detail. A cover made of
/// whole blocks encodes flat.
pub const JPEG_BLOCK: u32 = 16;

/// A face, in pixels of the upright original (top-left origin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoverBox {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// A half-open rectangle in the pixels of the picture being covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cover {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl Cover {
    pub fn from_edges(x0: u32, y0: u32, x1: u32, y1: u32) -> Self {
        Cover { x0, y0, x1, y1 }
    }

    pub fn whole(width: u32, height: u32) -> Self {
        Cover::from_edges(0, 0, width, height)
    }

    pub fn contains(&self, x: u32, y: u32) -> bool {
        (self.x0..self.x1).contains(&x) && (self.y0..self.y1).contains(&y)
    }
}

/// Grows a face box by the margins (25 % of the box on the sides and below, 40 % above),
/// clamps it to the `original` picture and maps it into a picture of size `target` (the
/// original's own size, or a scaled-down copy), rounding outwards to whole JPEG blocks so
/// a cover never falls short of the face. `None` when the box is empty or lies wholly
/// outside the picture.
pub fn cover_in(face: &CoverBox, original: (u32, u32), target: (u32, u32)) -> Option<Cover> {
    if face.width == 0 || face.height == 0 || original.0 == 0 || original.1 == 0 {
        return None;
    }

    // f64 holds every u32 exactly, so x + width cannot overflow as it could in u32.
    let (w, h) = (f64::from(face.width), f64::from(face.height));
    let (x, y) = (f64::from(face.x), f64::from(face.y));
    let (original_w, original_h) = (f64::from(original.0), f64::from(original.1));

    let left = (x - MARGIN_SIDE * w).max(0.0);
    let right = (x + w + MARGIN_SIDE * w).min(original_w);
    let top = (y - MARGIN_TOP * h).max(0.0);
    let bottom = (y + h + MARGIN_BOTTOM * h).min(original_h);
    if left >= right || top >= bottom {
        return None;
    }

    let scale_x = f64::from(target.0) / original_w;
    let scale_y = f64::from(target.1) / original_h;
    // Each value is clamped into 0..=target side before the cast, so `as` cannot truncate.
    let to_px = |v: f64, max: u32| v.clamp(0.0, f64::from(max)) as u32;
    let block_down = |v: u32| v - v % JPEG_BLOCK;
    let block_up = |v: u32, max: u32| v.div_ceil(JPEG_BLOCK).saturating_mul(JPEG_BLOCK).min(max);
    Some(Cover {
        x0: block_down(to_px((left * scale_x).floor(), target.0)),
        y0: block_down(to_px((top * scale_y).floor(), target.1)),
        x1: block_up(to_px((right * scale_x).ceil(), target.0), target.0),
        y1: block_up(to_px((bottom * scale_y).ceil(), target.1), target.1),
    })
}

/// Paints a cover with the flat fill, clamped to the image.
pub fn fill(image: &mut RgbImage, cover: Cover) {
    for y in cover.y0..cover.y1.min(image.height()) {
        for x in cover.x0..cover.x1.min(image.width()) {
            image.put_pixel(x, y, COVER_FILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cover_of_the_original_size_is_grown_and_made_of_whole_blocks() {
        let face = CoverBox {
            x: 100,
            y: 100,
            width: 40,
            height: 40,
        };
        // 100 - 10 = 90 -> 80; 100 - 16 = 84 -> 80; 140 + 10 = 150 -> 160.
        assert_eq!(
            cover_in(&face, (640, 480), (640, 480)),
            Some(Cover::from_edges(80, 80, 160, 160))
        );
        // Half the size: every edge halves, then rounds out to blocks.
        assert_eq!(
            cover_in(&face, (640, 480), (320, 240)),
            Some(Cover::from_edges(32, 32, 80, 80))
        );
        assert_eq!(cover_in(&face, (0, 0), (0, 0)), None);
    }
}
