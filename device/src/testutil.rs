//! Helpers shared by the unit tests: scratch directories and the team's test photos.

use std::path::{Path, PathBuf};

/// A scratch directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(format!("guardian-device-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).expect("create a scratch directory");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub use guardian_e2e::testdata;

/// Bytes that look random and are no photo, the same on every run.
pub fn noise(len: usize) -> Vec<u8> {
    use sha2::{Digest, Sha256};

    let mut bytes = Vec::with_capacity(len + 32);
    let mut block = Sha256::digest(b"guardian test noise");
    while bytes.len() < len {
        bytes.extend_from_slice(&block);
        block = Sha256::digest(block);
    }
    bytes.truncate(len);
    bytes
}
