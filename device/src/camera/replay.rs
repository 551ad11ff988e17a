//! A camera that replays JPEG files from a folder as MJPEG frames, in name
//! order and round again. It stands in for the camera where there is none: a
//! technician's demonstration, and the tests that drive the whole device.

use std::path::{Path, PathBuf};

use super::frame::{Frame, PixelFormat};
use super::{Camera, CameraError, OpenedFormat};

/// Replays every `.jpg`/`.jpeg` file directly in a folder.
pub struct ReplayCamera {
    dir: PathBuf,
    files: Vec<PathBuf>,
    next: usize,
}

impl ReplayCamera {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            files: Vec::new(),
            next: 0,
        }
    }
}

impl Camera for ReplayCamera {
    /// A missing or empty folder is a missing camera, so the device behaves
    /// as with an unplugged one and finds files added later.
    fn open(&mut self) -> Result<OpenedFormat, CameraError> {
        self.files = jpeg_files(&self.dir);
        self.next = 0;
        let first = self.files.first().ok_or(CameraError::Missing)?;
        let (width, height) = dimensions(first)?;
        Ok(OpenedFormat {
            format: PixelFormat::Mjpeg,
            width,
            height,
        })
    }

    fn frame(&mut self) -> Result<Frame, CameraError> {
        if self.files.is_empty() {
            return Err(CameraError::Lost);
        }
        let path = &self.files[self.next % self.files.len()];
        self.next = self.next.wrapping_add(1);

        // A file removed since the folder was listed is an unplugged camera.
        let data = std::fs::read(path).map_err(|_| CameraError::Lost)?;
        let (width, height) = dimensions(path)?;
        Ok(Frame {
            format: PixelFormat::Mjpeg,
            width,
            height,
            data,
        })
    }

    fn close(&mut self) {
        self.files.clear();
    }
}

fn jpeg_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .and_then(|ext| ext.to_str())
                .is_some_and(|ext| {
                    ext.eq_ignore_ascii_case("jpg") || ext.eq_ignore_ascii_case("jpeg")
                })
        })
        .collect();
    files.sort();
    files
}

fn dimensions(path: &Path) -> Result<(u32, u32), CameraError> {
    image::image_dimensions(path)
        .map_err(|error| CameraError::Other(format!("cannot read {}: {error}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::supervisor::{CameraSupervisor, SupervisorSettings};
    use crate::testutil::{testdata, TempDir};

    #[test]
    fn replayed_files_come_out_as_stills_round_and_round() {
        let dir = TempDir::new();
        let mut supervisor = CameraSupervisor::new(
            ReplayCamera::new(dir.path()),
            SupervisorSettings {
                warm_up_frames: 0,
                ..SupervisorSettings::default()
            },
        );
        assert!(
            supervisor.take_still().is_err(),
            "an empty folder is no camera"
        );

        std::fs::copy(testdata("hopper.jpg"), dir.path().join("a.jpg")).unwrap();
        std::fs::copy(testdata("voc_2008_001322.jpg"), dir.path().join("b.jpg")).unwrap();
        // The supervisor waits before trying a missing camera again.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let sizes: Vec<(u32, u32)> = (0..3)
            .map(|_| supervisor.take_still().unwrap().image.dimensions())
            .collect();
        assert_eq!(sizes, [(128, 128), (500, 375), (128, 128)]);
    }
}
