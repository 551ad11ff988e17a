//! The face box and the detector trait that every face detector implements.

use crate::error::DetectError;

/// A face found in an upright image, in that image's pixels.
///
/// The box always lies inside the image it was found in and is never empty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceBox {
    /// Left edge, in pixels from the left of the image.
    pub x: u32,
    /// Top edge, in pixels from the top of the image.
    pub y: u32,
    /// Width in pixels, at least 1.
    pub width: u32,
    /// Height in pixels, at least 1.
    pub height: u32,
    /// Detector confidence. Scales differ between detectors: CenterFace gives 0..1,
    /// rustface an unbounded cascade score; compare scores only within one detector.
    pub score: f32,
}

impl FaceBox {
    /// The area of the box in pixels.
    pub fn area(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// The centre of the box, in pixels.
    pub fn centre(&self) -> (f32, f32) {
        (
            self.x as f32 + self.width as f32 / 2.0,
            self.y as f32 + self.height as f32 / 2.0,
        )
    }

    /// Intersection over union with another box: 0 when apart, 1 when identical.
    pub fn iou(&self, other: &FaceBox) -> f32 {
        let a = Corners::of(self);
        let b = Corners::of(other);
        a.iou(&b)
    }

    /// Builds a box from float corners, rounding outwards so the face stays covered, and
    /// clamping to a `width` x `height` image. Returns `None` when nothing is left inside.
    pub(crate) fn from_corners(corners: Corners, width: u32, height: u32) -> Option<FaceBox> {
        let (w, h) = (width as f32, height as f32);

        // NaN from a broken model output must not turn into a box at 0,0.
        if !corners.is_finite() {
            return None;
        }

        let x0 = corners.x0.floor().clamp(0.0, w);
        let y0 = corners.y0.floor().clamp(0.0, h);
        let x1 = corners.x1.ceil().clamp(0.0, w);
        let y1 = corners.y1.ceil().clamp(0.0, h);
        if x1 <= x0 || y1 <= y0 {
            return None;
        }

        // The values are whole numbers in 0..=u32::MAX after the clamps above, so the
        // casts are exact.
        Some(FaceBox {
            x: x0 as u32,
            y: y0 as u32,
            width: (x1 - x0) as u32,
            height: (y1 - y0) as u32,
            score: corners.score,
        })
    }
}

/// Finds faces in photos.
///
/// Implementations keep their model loaded between calls, so build one detector and reuse it
/// for every photo.
pub trait FaceDetector: Send {
    /// Detects faces in an upright RGB image; boxes are clamped to the image.
    fn detect(&mut self, image: &image::RgbImage) -> Result<Vec<FaceBox>, DetectError>;

    /// A short lowercase name for logs and benchmarks, such as `"centerface"`.
    fn name(&self) -> &'static str;
}

/// A box as float corners, used while decoding model output before it is clamped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Corners {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
    pub score: f32,
}

impl Corners {
    fn of(b: &FaceBox) -> Corners {
        Corners {
            x0: b.x as f32,
            y0: b.y as f32,
            x1: b.x as f32 + b.width as f32,
            y1: b.y as f32 + b.height as f32,
            score: b.score,
        }
    }

    fn is_finite(&self) -> bool {
        [self.x0, self.y0, self.x1, self.y1, self.score]
            .iter()
            .all(|v| v.is_finite())
    }

    fn area(&self) -> f32 {
        (self.x1 - self.x0).max(0.0) * (self.y1 - self.y0).max(0.0)
    }

    /// Multiplies every coordinate by `factor`, e.g. to map from a resized image back.
    pub fn scaled(self, factor: f32) -> Corners {
        Corners {
            x0: self.x0 * factor,
            y0: self.y0 * factor,
            x1: self.x1 * factor,
            y1: self.y1 * factor,
            score: self.score,
        }
    }

    pub fn iou(&self, other: &Corners) -> f32 {
        let w = (self.x1.min(other.x1) - self.x0.max(other.x0)).max(0.0);
        let h = (self.y1.min(other.y1) - self.y0.max(other.y0)).max(0.0);
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }
}

/// Greedy non-maximum suppression: keeps the best-scoring box of every group of boxes that
/// overlap by IoU >= `threshold`, as the reference CenterFace decoder does.
pub(crate) fn non_maximum_suppression(mut boxes: Vec<Corners>, threshold: f32) -> Vec<Corners> {
    boxes.sort_by(|a, b| b.score.total_cmp(&a.score));

    let mut kept: Vec<Corners> = Vec::with_capacity(boxes.len());
    for candidate in boxes {
        if kept.iter().all(|k| k.iou(&candidate) < threshold) {
            kept.push(candidate);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corners(x0: f32, y0: f32, x1: f32, y1: f32, score: f32) -> Corners {
        Corners {
            x0,
            y0,
            x1,
            y1,
            score,
        }
    }

    #[test]
    fn from_corners_rounds_outwards_and_clamps_to_the_image() {
        let b = FaceBox::from_corners(corners(-5.5, 2.5, 10.2, 200.0, 0.9), 100, 50).unwrap();
        assert_eq!((b.x, b.y, b.width, b.height), (0, 2, 11, 48));
    }

    #[test]
    fn from_corners_drops_boxes_outside_the_image_or_not_finite() {
        assert!(FaceBox::from_corners(corners(120.0, 0.0, 130.0, 10.0, 1.0), 100, 50).is_none());
        assert!(FaceBox::from_corners(corners(f32::NAN, 0.0, 10.0, 10.0, 1.0), 100, 50).is_none());
        assert!(FaceBox::from_corners(corners(0.0, 0.0, 10.0, 10.0, 1.0), 0, 0).is_none());
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes_and_separate_ones() {
        let kept = non_maximum_suppression(
            vec![
                corners(0.0, 0.0, 10.0, 10.0, 0.5),
                corners(1.0, 1.0, 11.0, 11.0, 0.9),
                corners(50.0, 50.0, 60.0, 60.0, 0.3),
            ],
            0.3,
        );
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.9);
        assert_eq!(kept[1].score, 0.3);
    }

    #[test]
    fn iou_of_identical_boxes_is_one_and_of_apart_boxes_zero() {
        let a = FaceBox {
            x: 0,
            y: 0,
            width: 10,
            height: 10,
            score: 1.0,
        };
        let b = FaceBox { x: 20, ..a };
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&b), 0.0);
    }
}
