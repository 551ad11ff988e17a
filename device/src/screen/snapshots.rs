//! Snapshot tests of the kiosk screen: every state is drawn in both languages and
//! compared pixel by pixel with the PNG kept in `device/tests/snapshots/screen/`.
//!
//! After a deliberate change to the look, write the PNGs again with
//! `GUARDIAN_UPDATE_SNAPSHOTS=1 cargo test -p guardian-device screen`, then open every
//! changed PNG and look at it before committing.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use embedded_graphics::prelude::*;
use image::RgbImage;

use super::canvas::Canvas;
use super::draw::draw;
use super::state::{ClockStatus, HubLink, Language, LastCapture, LockView, Problem, ScreenState};
use crate::cover::{make_preview, CoverBox};
use crate::testutil::testdata;

/// The 7" official touchscreen and the common 3.5" TFT.
const LARGE: Size = Size::new(800, 480);
const SMALL: Size = Size::new(480, 320);

/// The states also drawn at 480x320: one of each kind of screen, and the longest
/// words of the status bar.
const SMALL_SUBSET: &[&str] = &[
    "locked-3-digits",
    "locked-wrong-pin-wait",
    "unlocked-last-photo",
    "no-pins",
    "camera-missing",
    "revoked",
    "offline-clock-unknown",
];

/// How far a channel may differ from the snapshot. The photo thumbnail comes from a
/// JPEG, and decoders may round an IDCT differently on another CPU; text and shapes
/// are exact either way, and any change of layout moves far more than this.
const TOLERANCE: u8 = 2;

/// The photo shown as the last capture: the 1927 Solvay conference, a public-domain
/// group photo that looks like a class, with its 29 faces annotated in faces.json.
const PHOTO: &str = "solvay_1927_rustface.png";

#[test]
fn every_screen_state_matches_its_snapshot() {
    let update = std::env::var("GUARDIAN_UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1");
    let dir = snapshot_dir();
    let mut failures = Vec::new();
    let mut names = Vec::new();

    for (name, size, state) in cases() {
        let file = format!("{}x{}-{name}.png", size.width, size.height);
        let path = dir.join(&file);
        let mut canvas = Canvas::new(size);
        let Ok(()) = draw(&state, &mut canvas);
        names.push(file.clone());

        if update {
            canvas.save_png(&path).expect("write the snapshot");
            continue;
        }
        if let Err(failure) = compare(&canvas, &path) {
            failures.push(failure);
        }
    }

    // A snapshot no state draws any more would never be looked at again.
    for entry in std::fs::read_dir(&dir).expect("list the snapshot folder") {
        let path = entry.expect("read the snapshot folder").path();
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        if file.ends_with(".png") && !names.iter().any(|n| n == file) {
            if update {
                std::fs::remove_file(&path).expect("remove a stale snapshot");
            } else {
                failures.push(format!(
                    "{file}: no state draws this snapshot any more; delete it"
                ));
            }
        }
    }

    assert!(
        failures.is_empty(),
        "{} snapshot(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every state worth a picture: each lock view, each problem, the unhappy status bar,
/// in both languages at 800x480, and a subset at 480x320.
fn cases() -> Vec<(String, Size, ScreenState)> {
    let mut cases = Vec::new();
    for language in [Language::Es, Language::En] {
        let code = match language {
            Language::Es => "es",
            Language::En => "en",
        };
        for (name, state) in states(language) {
            cases.push((format!("{code}-{name}"), LARGE, state.clone()));
            if SMALL_SUBSET.contains(&name) {
                cases.push((format!("{code}-{name}"), SMALL, state));
            }
        }
    }
    cases
}

fn states(language: Language) -> Vec<(&'static str, ScreenState)> {
    let base = ScreenState {
        language,
        classroom: "Aula 3B - Primaria".to_string(),
        lock: locked(0, 0, None),
        last_capture: None,
        outbox_len: 0,
        hub: HubLink::Connected,
        clock: ClockStatus::Synced,
        problem: None,
    };
    let unlocked = ScreenState {
        lock: LockView::Unlocked {
            teacher: "Ana Ruiz".to_string(),
            locks_in_secs: 245,
        },
        last_capture: Some(last_capture().clone()),
        outbox_len: 1,
        ..base.clone()
    };
    let with_problem = |problem| ScreenState {
        problem: Some(problem),
        ..unlocked.clone()
    };

    vec![
        ("locked-empty", base.clone()),
        (
            "locked-3-digits",
            ScreenState {
                lock: locked(3, 0, None),
                outbox_len: 3,
                ..base.clone()
            },
        ),
        (
            "locked-wrong-pin-wait",
            ScreenState {
                lock: locked(0, 3, Some(30)),
                ..base.clone()
            },
        ),
        (
            // The longest name the school might type, to see it wrap and shorten.
            "unlocked-no-photo",
            ScreenState {
                lock: LockView::Unlocked {
                    teacher: "María Ángeles Fernández de la Fuente Ibáñez".to_string(),
                    locks_in_secs: 600,
                },
                last_capture: None,
                outbox_len: 0,
                ..unlocked.clone()
            },
        ),
        ("unlocked-last-photo", unlocked.clone()),
        ("camera-missing", with_problem(Problem::CameraMissing)),
        ("camera-busy", with_problem(Problem::CameraBusy)),
        (
            "disk-full",
            ScreenState {
                outbox_len: 27,
                ..with_problem(Problem::DiskFull)
            },
        ),
        ("capture-failed", with_problem(Problem::CaptureFailed)),
        (
            "no-pins",
            ScreenState {
                problem: Some(Problem::NoPins),
                hub: HubLink::Connecting,
                ..base.clone()
            },
        ),
        ("revoked", with_problem(Problem::Revoked)),
        (
            "offline-clock-unknown",
            ScreenState {
                outbox_len: 128,
                hub: HubLink::Offline {
                    since_local: "09:15".to_string(),
                },
                clock: ClockStatus::Unknown,
                ..unlocked.clone()
            },
        ),
    ]
}

fn locked(digits_entered: usize, wrong_attempts: u32, retry_in_secs: Option<u64>) -> LockView {
    LockView::Locked {
        digits_entered,
        wrong_attempts,
        retry_in_secs,
    }
}

/// The shared photo with its annotated faces covered by the device's own preview maker,
/// decoded back from the preview JPEG just as the capture loop would.
fn last_capture() -> &'static LastCapture {
    static CAPTURE: OnceLock<LastCapture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let photo = image::open(testdata(PHOTO))
            .unwrap_or_else(|e| panic!("cannot decode {PHOTO}: {e}"))
            .to_rgb8();
        let faces = annotated_faces(PHOTO);
        let preview = make_preview(&photo, &faces, false).expect("make the preview");
        let preview = image::load_from_memory_with_format(&preview.jpeg, image::ImageFormat::Jpeg)
            .expect("the preview decodes")
            .to_rgb8();
        LastCapture {
            preview,
            faces: faces.len(),
            at_local: "10:42".to_string(),
        }
    })
}

fn annotated_faces(file: &str) -> Vec<CoverBox> {
    let all = guardian_e2e::faces_json();
    let boxes = all[file]["faces"]
        .as_array()
        .unwrap_or_else(|| panic!("faces.json has no boxes for {file}"));
    boxes
        .iter()
        .map(|b| {
            let n = |i: usize| b[i].as_u64().expect("a box coordinate") as u32;
            CoverBox {
                x: n(0),
                y: n(1),
                width: n(2),
                height: n(3),
            }
        })
        .collect()
}

fn snapshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/screen")
}

/// Compares the frame with its snapshot; on a difference, saves the frame beside the
/// temp dir's other files so it can be looked at, and says where.
fn compare(canvas: &Canvas, path: &Path) -> Result<(), String> {
    let file = path
        .file_name()
        .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
    if !path.is_file() {
        return Err(format!(
            "{file}: the snapshot is missing; create it with \
             `GUARDIAN_UPDATE_SNAPSHOTS=1 cargo test -p guardian-device screen` and look at it"
        ));
    }
    let expected: RgbImage = image::open(path)
        .unwrap_or_else(|e| panic!("cannot read the snapshot {}: {e}", path.display()))
        .to_rgb8();

    let actual = canvas.image();
    let differing = if expected.dimensions() != actual.dimensions() {
        None
    } else {
        Some(
            expected
                .pixels()
                .zip(actual.pixels())
                .filter(|(e, a)| e.0.iter().zip(a.0).any(|(e, a)| e.abs_diff(a) > TOLERANCE))
                .count(),
        )
    };
    if differing == Some(0) {
        return Ok(());
    }

    let saved = std::env::temp_dir().join(format!("guardian-screen-{file}"));
    canvas.save_png(&saved).expect("save the differing frame");
    let what = match differing {
        Some(count) => format!("{count} pixels differ"),
        None => format!(
            "the size differs ({:?} drawn, {:?} stored)",
            actual.dimensions(),
            expected.dimensions()
        ),
    };
    Err(format!(
        "{file}: {what}; the new frame is at {}; if the change is intended, run \
         `GUARDIAN_UPDATE_SNAPSHOTS=1 cargo test -p guardian-device screen`",
        saved.display()
    ))
}
