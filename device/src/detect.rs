//! The `detect` command: runs the face detector on photo files and prints the
//! raw boxes, in the upright photo's pixels, without capturing anything.
//!
//! It exists to check a detector on the device's own hardware and photos, and
//! for tests that compare the device's detections with annotated boxes.

use std::io::Write;
use std::path::{Path, PathBuf};

use guardian_models::photo::{decode_upright, DecodeError, DecodeLimits};
use guardian_models::{detector, DetectError, DetectorKind, FaceBox, ModelError};
use serde_json::{json, Map, Value};

/// Why `detect` failed.
#[derive(Debug, thiserror::Error)]
pub enum DetectCommandError {
    #[error(transparent)]
    Model(#[from] ModelError),

    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{path}: {source}")]
    Decode { path: PathBuf, source: DecodeError },

    #[error("{path}: {source}")]
    Detect { path: PathBuf, source: DetectError },

    #[error("cannot write the result to stdout: {0}")]
    Output(std::io::Error),
}

/// Detects faces in each image and prints them: one JSON object mapping each
/// image, as given, to its `[x, y, width, height]` boxes, or one text line per image.
pub fn run(
    kind: DetectorKind,
    images: &[PathBuf],
    as_json: bool,
) -> Result<(), DetectCommandError> {
    let mut faces = detector(kind)?;
    let limits = DecodeLimits::default();

    let mut found = Vec::with_capacity(images.len());
    for path in images {
        let bytes = std::fs::read(path).map_err(|source| DetectCommandError::Read {
            path: path.clone(),
            source,
        })?;
        let photo =
            decode_upright(&bytes, &limits).map_err(|source| DetectCommandError::Decode {
                path: path.clone(),
                source,
            })?;
        let boxes = faces
            .detect(&photo.image)
            .map_err(|source| DetectCommandError::Detect {
                path: path.clone(),
                source,
            })?;
        tracing::debug!(image = %path.display(), faces = boxes.len(), detector = faces.name(), "detected");
        found.push((path.as_path(), boxes));
    }

    let text = if as_json {
        let mut line = render_json(&found).to_string();
        line.push('\n');
        line
    } else {
        render_text(&found)
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(DetectCommandError::Output)
}

fn render_json(found: &[(&Path, Vec<FaceBox>)]) -> Value {
    let mut object = Map::new();
    for (path, boxes) in found {
        let boxes: Vec<Value> = boxes
            .iter()
            .map(|b| json!([b.x, b.y, b.width, b.height]))
            .collect();
        object.insert(path.display().to_string(), Value::Array(boxes));
    }
    Value::Object(object)
}

fn render_text(found: &[(&Path, Vec<FaceBox>)]) -> String {
    let mut text = String::new();
    for (path, boxes) in found {
        let list: Vec<String> = boxes
            .iter()
            .map(|b| format!("{}x{}+{}+{}", b.width, b.height, b.x, b.y))
            .collect();
        text.push_str(&format!("{}: {} face(s)", path.display(), boxes.len()));
        for face in list {
            text.push(' ');
            text.push_str(&face);
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_maps_each_image_as_given_to_its_boxes() {
        let face = FaceBox {
            x: 1,
            y: 2,
            width: 3,
            height: 4,
            score: 0.9,
        };
        let found = vec![
            (Path::new("in/a.jpg"), vec![face]),
            (Path::new("b.png"), vec![]),
        ];
        assert_eq!(
            render_json(&found),
            json!({"in/a.jpg": [[1, 2, 3, 4]], "b.png": []})
        );
        assert_eq!(
            render_text(&found),
            "in/a.jpg: 1 face(s) 3x4+1+2\nb.png: 0 face(s)\n"
        );
    }
}
