//! rustface (the SeetaFace frontal cascade), wrapped so that it never panics and also finds
//! faces a little smaller than its 40 px scan window.
//!
//! The crate panics on empty images and on a minimum face size under 20, and it only ever
//! shrinks the image it scans, so faces under 40 px are never found. This wrapper refuses
//! nothing: it returns no faces for images too small to hold one, scans an enlarged copy of
//! small and medium photos, and maps the boxes back.

use std::panic::{self, AssertUnwindSafe};

use image::imageops::{self, FilterType};
use image::{GrayImage, RgbImage};
use rustface::{FaceInfo, ImageData, Model};

use crate::embedded;
use crate::error::{DetectError, ModelError};
use crate::face::{Corners, FaceBox, FaceDetector};

/// The cascade's scan window in pixels of the image it scans. rustface hard-codes it.
const WINDOW: u32 = 40;

/// rustface's smallest allowed setting; it panics below this.
const MIN_FACE_SIZE: u32 = 20;

/// Cascade score a face must reach. Lower than the crate default (3.85) to catch more
/// faces: a missed face leaks a child's identity, an extra box only blurs a bit more.
const SCORE_THRESHOLD: f64 = 2.0;

/// Ratio between the sizes of neighbouring pyramid levels.
const PYRAMID_SCALE: f32 = 0.8;

/// Step of the sliding window, in pixels, in both directions.
const WINDOW_STEP: u32 = 4;

/// The smallest face we try to find: photos are enlarged so that a face this size fills
/// the 40 px window.
const SMALLEST_FACE: u32 = 24;

/// The enlarged copy is capped at this many pixels, which bounds time and memory; above
/// it, photos are enlarged less, or not at all, and their smallest findable face is larger.
const ENLARGED_PIXEL_BUDGET: u64 = 4_000_000;

/// Photos with more pixels than this are shrunk before scanning, to bound memory and time.
const MAX_SCANNED_PIXELS: u64 = 64_000_000;

/// Enlarging by less than this is not worth the resize.
const MIN_USEFUL_ENLARGEMENT: f64 = 1.05;

const NAME: &str = "rustface";

/// The rustface detector.
pub struct RustFace {
    model: Model,
}

impl RustFace {
    /// Reads the embedded SeetaFace model.
    pub fn new() -> Result<Self, ModelError> {
        // `read_model` panics on an unknown classifier kind instead of returning an error.
        // The embedded bytes are checked against their recorded sha256 by a unit test, so
        // that cannot happen with this file; catch it anyway so a bad build fails cleanly.
        let read = panic::catch_unwind(|| rustface::read_model(embedded::SEETAFACE_BIN));
        let model = match read {
            Ok(Ok(model)) => model,
            Ok(Err(e)) => return Err(load_error(e.to_string())),
            Err(_) => return Err(load_error("the model parser panicked".to_string())),
        };
        Ok(RustFace { model })
    }
}

impl FaceDetector for RustFace {
    fn detect(&mut self, image: &RgbImage) -> Result<Vec<FaceBox>, DetectError> {
        let (width, height) = image.dimensions();

        // Step 1: pick the scale to scan at; images that cannot hold a face even enlarged
        // have none.
        let Some(scale) = scan_scale(width, height) else {
            return Ok(Vec::new());
        };

        // Step 2: make the grey copy the cascade scans.
        let grey = imageops::grayscale(image);
        let grey = if scale == 1.0 {
            grey
        } else {
            let (w, h) = scaled_size(width, height, scale);
            imageops::resize(&grey, w, h, FilterType::Triangle)
        };

        // Step 3: scan. The detector is cheap to create, and making one per call keeps
        // `RustFace` `Send` (the crate's boxed detector is not).
        let faces = self.scan(&grey).map_err(|cause| DetectError::Inference {
            model: NAME,
            width,
            height,
            cause: cause.into(),
        })?;

        // Step 4: map back to the photo's pixels.
        let back = (1.0 / scale) as f32;
        Ok(faces
            .iter()
            .filter_map(|face| {
                let b = face.bbox();
                let corners = Corners {
                    x0: b.x() as f32,
                    y0: b.y() as f32,
                    x1: b.x() as f32 + b.width() as f32,
                    y1: b.y() as f32 + b.height() as f32,
                    score: face.score() as f32,
                };
                FaceBox::from_corners(corners.scaled(back), width, height)
            })
            .collect())
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

impl RustFace {
    fn scan(&self, grey: &GrayImage) -> Result<Vec<FaceInfo>, String> {
        let mut detector = rustface::create_detector_with_model(self.model.clone());
        detector.set_min_face_size(MIN_FACE_SIZE);
        detector.set_score_thresh(SCORE_THRESHOLD);
        detector.set_pyramid_scale_factor(PYRAMID_SCALE);
        detector.set_slide_window_step(WINDOW_STEP, WINDOW_STEP);

        // The inputs that make rustface panic are ruled out above (see `scan_scale`, and
        // `pyramid_fits` in the tests). Should another one exist, a panic must not take the device
        // down with it: the detector is thrown away afterwards, so no broken state leaks.
        let data = ImageData::new(grey.as_raw(), grey.width(), grey.height());
        panic::catch_unwind(AssertUnwindSafe(|| detector.detect(&data)))
            .map_err(|_| "rustface panicked on this image".to_string())
    }
}

fn load_error(cause: String) -> ModelError {
    ModelError::Load {
        model: NAME,
        cause: cause.into(),
    }
}

/// The factor to resize a `width` x `height` photo by before scanning, or `None` when even
/// the resized photo is smaller than the scan window.
fn scan_scale(width: u32, height: u32) -> Option<f64> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels == 0 {
        return None;
    }

    let wanted = f64::from(WINDOW) / f64::from(SMALLEST_FACE);
    let affordable = (ENLARGED_PIXEL_BUDGET as f64 / pixels as f64).sqrt();
    let scale = if pixels > MAX_SCANNED_PIXELS {
        (MAX_SCANNED_PIXELS as f64 / pixels as f64).sqrt()
    } else if wanted.min(affordable) >= MIN_USEFUL_ENLARGEMENT {
        wanted.min(affordable)
    } else {
        1.0
    };

    let (w, h) = scaled_size(width, height, scale);
    (w.min(h) >= WINDOW).then_some(scale)
}

fn scaled_size(width: u32, height: u32, scale: f64) -> (u32, u32) {
    let side = |s: u32| ((f64::from(s) * scale).round() as u32).max(1);
    (side(width), side(height))
}

/// Replays rustface's pyramid arithmetic (`ImagePyramid` in the crate, in f32 exactly as
/// there) and reports whether every level holds the scan window.
///
/// rustface computes `level_width - 40` in unsigned arithmetic. Were float rounding ever to
/// make a level 39 px, that would overflow: a panic in debug builds, a wild loop over
/// memory in release ones. The test below shows it does not happen for any side rustface
/// can be given here.
#[cfg(test)]
fn pyramid_fits(width: u32, height: u32) -> bool {
    let min_side = width.min(height);
    if min_side < WINDOW {
        return true; // rustface builds no level at all; nothing to overflow
    }

    let min_scale = WINDOW as f32 / min_side as f32;
    let mut scale = 1.0f32;
    while scale >= min_scale {
        let w = (width as f32 * scale) as u32;
        let h = (height as f32 * scale) as u32;
        if w < WINDOW || h < WINDOW {
            return false;
        }
        scale *= PYRAMID_SCALE;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pyramid_level_holds_the_window_for_any_scanned_size() {
        // The shorter side decides; the largest scanned image (64 MP) has one under 8000.
        for side in 1..=10_000 {
            assert!(pyramid_fits(side, side), "side {side}");
            assert!(pyramid_fits(side, side * 3 + 1), "side {side}");
        }
    }

    #[test]
    fn images_too_small_for_a_face_are_not_scanned() {
        assert_eq!(scan_scale(0, 0), None);
        assert_eq!(scan_scale(10000, 1), None);
        assert_eq!(scan_scale(5, 5), None);
        assert_eq!(scan_scale(23, 2000), None);
        assert!(scan_scale(24, 100).is_some());
    }

    #[test]
    fn small_photos_are_enlarged_within_the_budget_and_huge_ones_shrunk() {
        let small = scan_scale(128, 128).unwrap();
        assert!((small - 40.0 / 24.0).abs() < 1e-9);

        let (w, h) = scaled_size(1666, 1136, scan_scale(1666, 1136).unwrap());
        assert!(u64::from(w) * u64::from(h) <= ENLARGED_PIXEL_BUDGET + 4000);

        assert_eq!(scan_scale(4032, 3024), Some(1.0));
        let (w, h) = scaled_size(10000, 10000, scan_scale(10000, 10000).unwrap());
        assert!(u64::from(w) * u64::from(h) <= MAX_SCANNED_PIXELS + 20000);
    }

    #[test]
    fn degenerate_images_give_no_faces_and_no_panic() {
        let mut detector = RustFace::new().unwrap();
        for (w, h) in [
            (0, 0),
            (0, 9),
            (1, 1),
            (5, 5),
            (10000, 1),
            (1, 10000),
            (40, 40),
        ] {
            let boxes = detector.detect(&RgbImage::new(w, h)).unwrap();
            assert!(boxes.is_empty(), "{w}x{h} gave {boxes:?}");
        }
    }
}
