//! Times both detectors on every shared test photo and prints a table, plus peak memory.
//!
//! Run with `cargo bench -p guardian-models`. The photos are read from
//! `$GUARDIAN_SHARED/testdata` (default: the `shared` folder beside the repository).
//! Set `GUARDIAN_BENCH_DETECTOR` to `centerface` or `rustface` to run only one, and
//! `GUARDIAN_BENCH_PHOTO` to part of a file name to run only the photos that match.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use guardian_models::photo::{decode_upright, DecodeLimits};
use guardian_models::{detector, DetectorKind, FaceBox, FaceDetector};
use serde_json::Value;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = testdata_dir();
    let photo_filter = std::env::var("GUARDIAN_BENCH_PHOTO").ok();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot read {}: {e}; set GUARDIAN_SHARED", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| matches!(extension(p).as_str(), "jpg" | "jpeg" | "png"))
        .filter(|p| {
            photo_filter
                .as_ref()
                .is_none_or(|f| p.to_string_lossy().contains(f))
        })
        .collect();
    files.sort();

    // `GUARDIAN_BENCH_DETECTOR=centerface` benches one detector, to see its own peak memory.
    let only: Option<DetectorKind> = match std::env::var("GUARDIAN_BENCH_DETECTOR") {
        Ok(name) => Some(name.parse()?),
        Err(_) => None,
    };
    let kinds = DetectorKind::ALL
        .into_iter()
        .filter(|k| only.is_none_or(|o| o == *k));

    // Building a detector is a one-off cost; time it apart from detection.
    let mut detectors: Vec<Box<dyn FaceDetector>> = Vec::new();
    for kind in kinds {
        let start = Instant::now();
        detectors.push(detector(kind)?);
        println!("{kind}: built in {}", ms(start.elapsed()));
    }
    println!();

    println!(
        "{:<34} {:>10} {:>7} | {:>24} | {:>24}",
        "photo (upright size)", "", "decode", "centerface", "rustface"
    );
    println!(
        "{:<34} {:>10} {:>7} | {:>24} | {:>24}",
        "", "", "", "1st run / steady, boxes", "1st run / steady, boxes"
    );
    let annotations = annotations(&dir)?;
    for path in &files {
        let bytes = std::fs::read(path)?;
        let start = Instant::now();
        let photo = decode_upright(&bytes, &DecodeLimits::default())?;
        let decode = start.elapsed();

        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        let (w, h) = photo.image.dimensions();
        print!("{:<34} {:>10} {:>7}", name, format!("{w}x{h}"), ms(decode));
        let truth = truth_boxes(&annotations, &name);

        // The first run includes building the plan for a new input shape (CenterFace);
        // the second is the steady state a device sees for photos of one camera.
        for detector in &mut detectors {
            let start = Instant::now();
            detector.detect(&photo.image)?;
            let first = start.elapsed();

            let start = Instant::now();
            let faces = detector.detect(&photo.image)?;
            let steady = start.elapsed();

            let found = match &truth {
                Some(truth) => format!(" {}/{}", found(&faces, truth), truth.len()),
                None => String::new(),
            };
            let cell = format!("{} / {}, {}{found}", ms(first), ms(steady), faces.len());
            print!(" | {cell:>24}");
        }
        println!();
    }

    println!();
    println!(
        "n/m: annotated faces found (IoU >= 0.3 or centre inside), where faces.json has boxes"
    );
    println!("peak resident memory (VmHWM): {}", peak_rss());
    Ok(())
}

fn testdata_dir() -> PathBuf {
    guardian_e2e::shared_dir().join("testdata")
}

fn annotations(dir: &std::path::Path) -> Result<Value, Box<dyn std::error::Error>> {
    Ok(serde_json::from_slice(&std::fs::read(
        dir.join("faces.json"),
    )?)?)
}

/// The annotated boxes of a photo as `[x, y, w, h]`, if `faces.json` has any.
fn truth_boxes(annotations: &Value, name: &str) -> Option<Vec<[u32; 4]>> {
    let faces = annotations[name]["faces"].as_array()?;
    if faces.is_empty() {
        return None;
    }
    faces
        .iter()
        .map(|b| {
            let v = b.as_array()?;
            let n = |i: usize| v.get(i)?.as_u64().map(|n| n as u32);
            Some([n(0)?, n(1)?, n(2)?, n(3)?])
        })
        .collect()
}

/// Annotated faces matched by a detection (IoU >= 0.3 or the detection's centre inside),
/// each detection counting once; the same rule as the tests.
fn found(detections: &[FaceBox], truth: &[[u32; 4]]) -> usize {
    let mut used = vec![false; detections.len()];
    let mut count = 0;
    for &[x, y, width, height] in truth {
        let t = FaceBox {
            x,
            y,
            width,
            height,
            score: 1.0,
        };
        let hit = detections.iter().enumerate().position(|(i, d)| {
            let (cx, cy) = d.centre();
            let inside = cx >= x as f32
                && cx <= (x + width) as f32
                && cy >= y as f32
                && cy <= (y + height) as f32;
            !used[i] && (d.iou(&t) >= 0.3 || inside)
        });
        if let Some(i) = hit {
            used[i] = true;
            count += 1;
        }
    }
    count
}

fn extension(path: &std::path::Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_string())
        })
        .unwrap_or_else(|| "unknown (no /proc/self/status)".to_string())
}
