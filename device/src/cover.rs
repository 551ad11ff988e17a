//! The preview maker: scales an upright photo down, covers every face with a flat fill and
//! encodes a JPEG that carries no metadata, so the preview is safe to show on the device's
//! screen and to parents.

use guardian_models::cover::{cover_in, fill, Cover};
use guardian_protocol::PREVIEW_MAX_SIDE;
use image::codecs::jpeg::JpegEncoder;
use image::imageops::{self, FilterType};
use image::RgbImage;
use thiserror::Error;

/// JPEG quality of the preview: the faces are already gone, so this only trades the
/// look of the background against the size on the wire.
const JPEG_QUALITY: u8 = 85;

pub use guardian_models::cover::CoverBox;

/// A finished preview: a baseline JPEG with no EXIF, XMP, ICC or comment segment.
#[derive(Debug, Clone)]
pub struct Preview {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// Why a preview could not be made.
#[derive(Debug, Error)]
pub enum CoverError {
    /// The photo has no pixels, so there is nothing to preview; the capture step handed
    /// over a broken frame and should be retried.
    #[error("cannot make a preview of an empty {width}x{height} image")]
    EmptyImage { width: u32, height: u32 },

    /// The JPEG encoder failed; with an in-memory buffer this points at a bug in the
    /// encoder rather than at the photo.
    #[error("could not encode the preview as JPEG: {0}")]
    Encode(#[from] image::ImageError),
}

/// Scales to at most 1280 px on the long side, covers every face box grown by a margin
/// with a flat fill, or — when `damaged` — covers the whole picture; encodes a JPEG that
/// carries no metadata at all.
///
/// Boxes may reach past the picture's edges (a face cut by the frame); they are clamped.
/// Empty boxes and boxes wholly outside the picture cover nothing. The margin is 25 % of
/// the box on the sides and below and 40 % above, for the hair.
///
/// Only a JFIF APP0 header goes before the image data: nothing of the camera's file can
/// reach the preview, because it is encoded from pixels alone.
pub fn make_preview(
    upright: &RgbImage,
    faces: &[CoverBox],
    damaged: bool,
) -> Result<Preview, CoverError> {
    let (width, height) = upright.dimensions();
    if width == 0 || height == 0 {
        return Err(CoverError::EmptyImage { width, height });
    }

    let (preview_width, preview_height) = preview_size(width, height);
    let mut preview = if (preview_width, preview_height) == (width, height) {
        upright.clone()
    } else {
        // Triangle widens its support when shrinking, so it averages rather than aliases,
        // and it is the cheapest such filter on the device's CPU.
        imageops::resize(upright, preview_width, preview_height, FilterType::Triangle)
    };

    // Covering after scaling keeps the edge of the fill sharp; the margin already absorbs
    // the few pixels of face that the filter smears outwards.
    if damaged {
        fill(&mut preview, Cover::whole(preview_width, preview_height));
    } else {
        for face in faces {
            if let Some(cover) = cover_in(face, (width, height), (preview_width, preview_height)) {
                fill(&mut preview, cover);
            }
        }
    }

    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, JPEG_QUALITY).encode_image(&preview)?;

    Ok(Preview {
        jpeg,
        width: preview_width,
        height: preview_height,
    })
}

/// The preview's size: the long side at most `PREVIEW_MAX_SIDE`, never enlarged, the aspect
/// ratio kept, and no side below one pixel (a 5000x1 strip stays encodable).
fn preview_size(width: u32, height: u32) -> (u32, u32) {
    let long_side = width.max(height);
    if long_side <= PREVIEW_MAX_SIDE {
        return (width, height);
    }

    let scale = f64::from(PREVIEW_MAX_SIDE) / f64::from(long_side);
    let scaled = |side: u32| ((f64::from(side) * scale).round() as u32).clamp(1, PREVIEW_MAX_SIDE);
    (scaled(width), scaled(height))
}

#[cfg(test)]
mod tests {
    use super::*;
    use guardian_models::cover::COVER_FILL;
    use image::Rgb;

    use guardian_e2e::testdata;

    fn face(x: u32, y: u32, width: u32, height: u32) -> CoverBox {
        CoverBox {
            x,
            y,
            width,
            height,
        }
    }

    fn load(file: &str) -> RgbImage {
        image::open(testdata(file))
            .unwrap_or_else(|e| panic!("cannot decode {file}: {e}"))
            .to_rgb8()
    }

    fn annotated_faces(file: &str) -> Vec<CoverBox> {
        let json = std::fs::read_to_string(testdata("faces.json")).expect("read faces.json");
        let all: serde_json::Value = serde_json::from_str(&json).expect("parse faces.json");
        let faces = all[file]["faces"]
            .as_array()
            .unwrap_or_else(|| panic!("faces.json has no boxes for {file}"));
        faces
            .iter()
            .map(|b| {
                let n = |i: usize| b[i].as_u64().expect("box coordinate") as u32;
                face(n(0), n(1), n(2), n(3))
            })
            .collect()
    }

    fn decode(preview: &Preview) -> RgbImage {
        let image = image::load_from_memory_with_format(&preview.jpeg, image::ImageFormat::Jpeg)
            .expect("preview decodes as JPEG")
            .to_rgb8();
        assert_eq!(image.dimensions(), (preview.width, preview.height));
        image
    }

    /// The un-grown face box in preview pixels: the region whose detail must be gone.
    fn face_region(face: &CoverBox, original: (u32, u32), preview: (u32, u32)) -> Cover {
        let sx = f64::from(preview.0) / f64::from(original.0);
        let sy = f64::from(preview.1) / f64::from(original.1);
        let clamp = |v: f64, max: u32| v.clamp(0.0, f64::from(max)) as u32;
        Cover {
            x0: clamp((f64::from(face.x) * sx).floor(), preview.0),
            y0: clamp((f64::from(face.y) * sy).floor(), preview.1),
            x1: clamp((f64::from(face.x + face.width) * sx).ceil(), preview.0),
            y1: clamp((f64::from(face.y + face.height) * sy).ceil(), preview.1),
        }
    }

    fn luma(p: &Rgb<u8>) -> f64 {
        0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])
    }

    /// Variance of the 4-neighbour Laplacian of luma inside `region`: the usual measure of
    /// how much fine detail (edges, texture) a region holds.
    fn laplacian_variance(image: &RgbImage, region: Cover) -> f64 {
        let l = |x: u32, y: u32| luma(image.get_pixel(x, y));
        let mut values = Vec::new();
        for y in region.y0.max(1)..region.y1.min(image.height() - 1) {
            for x in region.x0.max(1)..region.x1.min(image.width() - 1) {
                values.push(l(x - 1, y) + l(x + 1, y) + l(x, y - 1) + l(x, y + 1) - 4.0 * l(x, y));
            }
        }
        assert!(
            !values.is_empty(),
            "region {region:?} has no interior pixels"
        );
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64
    }

    /// PSNR over the pixels outside every cover, in dB.
    fn psnr_outside(a: &RgbImage, b: &RgbImage, covers: &[Cover]) -> f64 {
        let mut squared_error = 0.0;
        let mut samples = 0u64;
        for (x, y, pa) in a.enumerate_pixels() {
            if covers.iter().any(|c| c.contains(x, y)) {
                continue;
            }
            let pb = b.get_pixel(x, y);
            for channel in 0..3 {
                squared_error += (f64::from(pa[channel]) - f64::from(pb[channel])).powi(2);
                samples += 1;
            }
        }
        assert!(samples > 0, "every pixel is covered");
        let mse = squared_error / samples as f64;
        10.0 * (255.0f64.powi(2) / mse).log10()
    }

    fn assert_covered(image: &RgbImage, region: Cover) {
        for y in region.y0..region.y1 {
            for x in region.x0..region.x1 {
                let p = image.get_pixel(x, y);
                // JPEG leaves a flat block exact up to rounding.
                let near_fill = (0..3).all(|c| p[c].abs_diff(COVER_FILL[c]) <= 3);
                assert!(
                    near_fill,
                    "pixel ({x}, {y}) of {region:?} is {p:?}, not the cover fill"
                );
            }
        }
    }

    /// The markers of every segment before the image data.
    fn jpeg_markers(jpeg: &[u8]) -> Vec<u8> {
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "no SOI");
        let mut markers = Vec::new();
        let mut at = 2;
        while at + 4 <= jpeg.len() {
            assert_eq!(jpeg[at], 0xFF, "segment does not start with 0xFF at {at}");
            let marker = jpeg[at + 1];
            markers.push(marker);
            if marker == 0xDA {
                break;
            }
            let length = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
            at += 2 + length;
        }
        markers
    }

    const ANNOTATED: [&str; 5] = [
        "solvay_1927_rustface.png",
        "voc_2007_007763.jpg",
        "voc_2008_002079.jpg",
        "voc_2008_001322.jpg",
        "voc_2008_002470.jpg",
    ];

    #[test]
    fn covered_faces_lose_their_detail_and_the_rest_stays_sharp() {
        for file in ANNOTATED {
            let upright = load(file);
            let faces = annotated_faces(file);
            let preview = make_preview(&upright, &faces, false).expect("preview");
            let decoded = decode(&preview);
            let original = upright.dimensions();
            let size = (preview.width, preview.height);
            let reference = imageops::resize(&upright, size.0, size.1, FilterType::Triangle);

            for face in &faces {
                let region = face_region(face, original, size);
                let before = laplacian_variance(&reference, region);
                let after = laplacian_variance(&decoded, region);
                assert!(
                    after < 0.10 * before,
                    "{file} {face:?}: detail {after:.1} left of {before:.1}"
                );
            }

            let covers: Vec<Cover> = faces
                .iter()
                .filter_map(|f| cover_in(f, original, size))
                .collect();
            let psnr = psnr_outside(&reference, &decoded, &covers);
            assert!(
                psnr >= 25.0,
                "{file}: PSNR outside the covers is {psnr:.1} dB"
            );
        }
    }

    #[test]
    fn a_damaged_photo_is_covered_whole() {
        let upright = load("voc_2008_001322.jpg");
        let preview = make_preview(&upright, &[], true).expect("preview");
        let decoded = decode(&preview);
        assert_covered(&decoded, Cover::whole(preview.width, preview.height));
    }

    #[test]
    fn faces_cut_by_the_frame_are_clamped_and_covered() {
        // C03: a 640x480 photo with a face half out at the left edge (the detector reports
        // only its visible half) and one reaching past the bottom-right corner.
        let upright = load("mde_meeting_room.jpg");
        assert_eq!(upright.dimensions(), (640, 480));
        let left = face(0, 200, 40, 80);
        let corner = face(600, 440, 80, 80);

        let preview = make_preview(&upright, &[left, corner], false).expect("preview");
        assert_eq!((preview.width, preview.height), (640, 480));
        let decoded = decode(&preview);

        // The visible part of each face is flat fill.
        assert_covered(&decoded, Cover::from_edges(0, 200, 40, 280));
        assert_covered(&decoded, Cover::from_edges(600, 440, 640, 480));

        // The covers are the boxes grown by the margin (0..50 x 168..300 and
        // 580..640 x 408..480), clamped to the frame and widened to whole JPEG blocks.
        let size = (640, 480);
        assert_eq!(
            cover_in(&left, size, size),
            Some(Cover::from_edges(0, 160, 64, 304))
        );
        assert_eq!(
            cover_in(&corner, size, size),
            Some(Cover::from_edges(576, 400, 640, 480))
        );
    }

    #[test]
    fn degenerate_boxes_and_images_do_not_panic() {
        let upright = RgbImage::from_pixel(64, 48, Rgb([200, 10, 10]));
        let odd = [
            face(10, 10, 0, 0),
            face(10, 10, 0, 20),
            face(500, 500, 20, 20),
            face(u32::MAX, u32::MAX, u32::MAX, u32::MAX),
            face(0, 0, u32::MAX, 1),
        ];
        let preview = make_preview(&upright, &odd, false).expect("preview");
        assert_eq!((preview.width, preview.height), (64, 48));
        // Only the last box covers anything: it spans the full width.
        assert_eq!(cover_in(&odd[0], (64, 48), (64, 48)), None);
        assert_eq!(cover_in(&odd[2], (64, 48), (64, 48)), None);
        assert_eq!(cover_in(&odd[3], (64, 48), (64, 48)), None);

        let empty = RgbImage::new(0, 0);
        assert!(matches!(
            make_preview(&empty, &[], false),
            Err(CoverError::EmptyImage {
                width: 0,
                height: 0
            })
        ));

        let strip = RgbImage::from_pixel(5000, 1, Rgb([0, 0, 0]));
        let preview = make_preview(&strip, &odd, false).expect("preview of a strip");
        assert_eq!((preview.width, preview.height), (1280, 1));

        let dot = RgbImage::from_pixel(1, 1, Rgb([0, 0, 0]));
        make_preview(&dot, &[face(0, 0, 1, 1)], false).expect("preview of one pixel");
    }

    #[test]
    fn large_photos_shrink_to_1280_and_small_ones_keep_their_size() {
        let large = load("mde_food_counter_12mp_noface.jpg");
        let preview = make_preview(&large, &[], false).expect("preview");
        assert_eq!((preview.width, preview.height), (1280, 960));

        let small = load("hopper.jpg");
        let preview = make_preview(&small, &[], false).expect("preview");
        assert_eq!((preview.width, preview.height), (128, 128));

        assert_eq!(preview_size(2448, 3264), (960, 1280));
    }

    #[test]
    fn the_preview_jpeg_carries_no_metadata() {
        // The source file has camera EXIF with GPS tags; only its pixels reach the preview.
        let upright = load("mde_train_window_phone_exif6.jpg");
        let faces = [face(100, 100, 120, 120)];
        let preview = make_preview(&upright, &faces, false).expect("preview");

        let markers = jpeg_markers(&preview.jpeg);
        assert_eq!(
            markers.first(),
            Some(&0xE0),
            "expected a JFIF APP0 first: {markers:02X?}"
        );
        for marker in markers {
            assert!(
                !(0xE1..=0xEF).contains(&marker) && marker != 0xFE,
                "preview has an APPn or comment segment 0x{marker:02X}"
            );
        }
        let has = |needle: &[u8]| preview.jpeg.windows(needle.len()).any(|w| w == needle);
        assert!(!has(b"Exif\0\0"), "preview contains an EXIF header");
        assert!(
            !has(b"http://ns.adobe.com/xap/1.0/"),
            "preview contains XMP"
        );
    }
}
