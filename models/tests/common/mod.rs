//! Shared helpers for the integration tests: the test photos and their annotations.
//!
//! The photos live in `$GUARDIAN_SHARED/testdata` (default: the `shared` folder beside the
//! repository). A missing folder fails the tests instead of skipping them, so a CI run
//! without the photos cannot pass by testing nothing.

#![allow(dead_code)] // each test binary uses its own subset

use std::path::PathBuf;

use guardian_models::photo::{decode_upright, DecodeLimits, DecodedPhoto};
use guardian_models::FaceBox;
use serde_json::Value;

pub fn testdata_dir() -> PathBuf {
    guardian_e2e::shared_dir().join("testdata")
}

pub fn read(name: &str) -> Vec<u8> {
    let path = testdata_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

pub fn decode(name: &str) -> DecodedPhoto {
    decode_upright(&read(name), &DecodeLimits::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The parsed `faces.json`.
pub fn annotations() -> Value {
    serde_json::from_slice(&read("faces.json")).expect("faces.json is valid json")
}

/// The annotated face boxes of one photo, as `[x, y, w, h]`.
pub fn truth_boxes(name: &str) -> Vec<[u32; 4]> {
    let annotations = annotations();
    let faces = annotations[name]["faces"]
        .as_array()
        .unwrap_or_else(|| panic!("{name} has no face boxes in faces.json"));
    faces
        .iter()
        .map(|b| {
            let v: Vec<u32> = b
                .as_array()
                .expect("a box is an array")
                .iter()
                .map(|n| n.as_u64().expect("a box holds integers") as u32)
                .collect();
            [v[0], v[1], v[2], v[3]]
        })
        .collect()
}

/// Whether a detection matches an annotated face: IoU >= 0.3, or the detection's centre
/// lies inside the annotated box (the README's rule, since box styles differ).
pub fn matches(detection: &FaceBox, truth: [u32; 4]) -> bool {
    let [x, y, w, h] = truth;
    let truth_box = FaceBox {
        x,
        y,
        width: w,
        height: h,
        score: 1.0,
    };
    let (cx, cy) = detection.centre();
    let centre_inside =
        cx >= x as f32 && cx <= (x + w) as f32 && cy >= y as f32 && cy <= (y + h) as f32;
    detection.iou(&truth_box) >= 0.3 || centre_inside
}

/// How many annotated faces are found, each detection counting for at most one face.
pub fn found(detections: &[FaceBox], truth: &[[u32; 4]]) -> usize {
    let mut used = vec![false; detections.len()];
    let mut count = 0;
    for &t in truth {
        let hit = detections
            .iter()
            .enumerate()
            .find(|(i, d)| !used[*i] && matches(d, t));
        if let Some((i, _)) = hit {
            used[i] = true;
            count += 1;
        }
    }
    count
}

/// Mean absolute difference per channel between two images of the same size.
pub fn mean_abs_diff(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    total as f64 / a.as_raw().len() as f64
}
