//! Helpers for Guardian's end-to-end tests: the shared photos, the two real
//! binaries started as processes, a small HTTP client that keeps a session
//! cookie, and the image measures the tests assert on.
//!
//! The binaries are the ones `cargo test --workspace` builds beside the test
//! executables (`target/<profile>/guardian-hub` and `guardian-device`).

pub mod exif;
pub mod hub;
pub mod kiosk;
pub mod measure;
pub mod watermark;
pub mod web;

use std::path::{Path, PathBuf};

/// The folder that holds `testdata/`: `$GUARDIAN_SHARED`, or the `shared`
/// folder beside the repository. Tests fail, never skip, when it is missing.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("GUARDIAN_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    assert!(
        dir.join("testdata/faces.json").is_file(),
        "the shared test photos are missing: expected {}/testdata/faces.json; set GUARDIAN_SHARED",
        dir.display()
    );
    dir
}

/// One shared test photo (or `faces.json`); a missing file fails the test.
pub fn testdata(name: &str) -> PathBuf {
    let path = shared_dir().join("testdata").join(name);
    assert!(path.is_file(), "test photo {} is missing", path.display());
    path
}

/// The face annotations of `testdata/faces.json`.
pub fn faces_json() -> serde_json::Value {
    let text = std::fs::read_to_string(testdata("faces.json")).expect("faces.json");
    serde_json::from_str(&text).expect("faces.json parses")
}

/// A built binary of this workspace, next to the running test executable.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built; run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

/// Where tests leave files for a person to look at.
pub fn artefact_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("artefact dir");
    dir
}
