//! The real camera: a USB (UVC) camera on Linux, through nokhwa's V4L2 backend.
//!
//! Kept thin on purpose, since it cannot run without a camera: it resolves the device,
//! lists the modes, opens the one [`choose`] picks, hands out raw frames, and sorts
//! nokhwa's errors into [`CameraError`]'s kinds. Everything that can be tested without
//! hardware lives in `choice`, `frame` and `supervisor`.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use nokhwa::utils::{
    frame_formats, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
};
use nokhwa::NokhwaError;
use tracing::{debug, info};

use super::choice::{choose, MaxSize, Offer};
use super::{Camera, CameraError, Frame, OpenedFormat, PixelFormat};

/// Which camera to use: a device node such as `/dev/video0` (or a udev link to one, such
/// as `/dev/v4l/by-id/...`), or just its number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    Path(PathBuf),
    Index(u32),
}

impl Default for Device {
    fn default() -> Self {
        Device::Index(0)
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Path(path) => write!(f, "{}", path.display()),
            Device::Index(index) => write!(f, "/dev/video{index}"),
        }
    }
}

/// A camera setting that names no device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("camera {0:?} is not understood; write a device path such as /dev/video0, or its number")]
pub struct BadDevice(String);

impl FromStr for Device {
    type Err = BadDevice;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(index) = text.parse() {
            return Ok(Device::Index(index));
        }
        if text.starts_with('/') {
            return Ok(Device::Path(PathBuf::from(text)));
        }
        Err(BadDevice(text.into()))
    }
}

impl Device {
    /// The number of the `/dev/videoN` node this names, found again at every open: a
    /// replugged camera may come back under another number behind the same udev link.
    fn index(&self) -> Result<u32, CameraError> {
        let path = match self {
            Device::Index(index) => PathBuf::from(format!("/dev/video{index}")),
            Device::Path(path) => path.clone(),
        };

        let real = match path.canonicalize() {
            Ok(real) => real,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(CameraError::Missing)
            }
            Err(error) => {
                return Err(CameraError::Other(format!(
                    "cannot look up {}: {error}",
                    path.display()
                )))
            }
        };
        video_index(&real).ok_or_else(|| {
            CameraError::Other(format!(
                "{} is not a video device; set the camera to a /dev/videoN device",
                path.display()
            ))
        })
    }
}

/// What [`V4lCamera`] needs to know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct V4lSettings {
    pub device: Device,
    pub max_size: MaxSize,
}

/// A V4L2 camera. Build it on the thread that reads it: nokhwa's camera cannot move
/// between threads.
pub struct V4lCamera {
    settings: V4lSettings,
    camera: Option<nokhwa::Camera>,
}

impl V4lCamera {
    pub fn new(settings: V4lSettings) -> Self {
        V4lCamera {
            settings,
            camera: None,
        }
    }
}

impl Camera for V4lCamera {
    fn open(&mut self) -> Result<OpenedFormat, CameraError> {
        self.close();

        // Step 1: the device node must exist; nokhwa's own error for that is vague.
        let index = self.settings.device.index()?;

        // Step 2: open it in any mode, only to list the modes it offers.
        let any = RequestedFormat::with_formats(RequestedFormatType::None, frame_formats());
        let mut camera = nokhwa::Camera::new(CameraIndex::Index(index), any).map_err(open_error)?;
        let modes = camera.compatible_camera_formats().map_err(open_error)?;

        // Step 3: choose, then open the chosen mode at its highest frame rate.
        let offers: Vec<Offer> = modes.iter().map(offer).collect();
        let chosen = choose(&offers, self.settings.max_size)?;
        let mode = modes
            .iter()
            .filter(|mode| is_mode(mode, chosen))
            .max_by_key(|mode| mode.frame_rate())
            .copied()
            .ok_or_else(|| CameraError::Other("the chosen mode is no longer offered".into()))?;
        let exact = [mode.format()];
        camera
            .set_camera_requset(RequestedFormat::with_formats(
                RequestedFormatType::Exact(mode),
                &exact,
            ))
            .map_err(open_error)?;
        camera.open_stream().map_err(open_error)?;

        info!(
            device = %self.settings.device,
            index,
            format = %chosen.format,
            width = chosen.width,
            height = chosen.height,
            fps = mode.frame_rate(),
            "camera open"
        );
        self.camera = Some(camera);
        Ok(chosen)
    }

    fn frame(&mut self) -> Result<Frame, CameraError> {
        let Some(camera) = self.camera.as_mut() else {
            return Err(CameraError::Other(
                "the camera is not open; open it first".into(),
            ));
        };

        let buffer = camera.frame().map_err(read_error)?;
        let format = pixel_format(buffer.source_frame_format()).ok_or_else(|| {
            CameraError::Other(format!(
                "the camera sent a {} frame, which is not the mode it was opened in",
                buffer.source_frame_format()
            ))
        })?;
        let resolution = buffer.resolution();
        Ok(Frame {
            format,
            width: resolution.width(),
            height: resolution.height(),
            data: buffer.buffer().to_vec(),
        })
    }

    fn close(&mut self) {
        // Dropping nokhwa's camera stops the stream and closes the device node.
        if let Some(mut camera) = self.camera.take() {
            if let Err(error) = camera.stop_stream() {
                debug!(%error, "stopping the camera stream failed; closing it anyway");
            }
        }
    }
}

/// `N` for a path whose file name is `videoN`.
fn video_index(path: &Path) -> Option<u32> {
    path.file_name()?
        .to_str()?
        .strip_prefix("video")?
        .parse()
        .ok()
}

fn offer(mode: &CameraFormat) -> Offer {
    Offer {
        format: pixel_format(mode.format()),
        name: mode.format().to_string(),
        width: mode.width(),
        height: mode.height(),
    }
}

fn is_mode(mode: &CameraFormat, chosen: OpenedFormat) -> bool {
    pixel_format(mode.format()) == Some(chosen.format)
        && mode.width() == chosen.width
        && mode.height() == chosen.height
}

/// nokhwa's name for a format this device reads. nokhwa 0.10 looks for grey under the
/// fourcc `GRAY`, while V4L2 calls it `GREY`, so through nokhwa a grey camera offers
/// nothing; the mapping stays so that a fixed nokhwa works unchanged.
fn pixel_format(format: FrameFormat) -> Option<PixelFormat> {
    match format {
        FrameFormat::MJPEG => Some(PixelFormat::Mjpeg),
        FrameFormat::YUYV => Some(PixelFormat::Yuyv),
        FrameFormat::GRAY => Some(PixelFormat::Grey),
        FrameFormat::NV12 | FrameFormat::RAWRGB | FrameFormat::RAWBGR => None,
    }
}

// Linux errno values. nokhwa passes the driver's errors on only as text, which ends with
// Rust's "(os error N)".
const ENOENT: i32 = 2;
const EIO: i32 = 5;
const ENXIO: i32 = 6;
const EACCES: i32 = 13;
const EBUSY: i32 = 16;
const ENODEV: i32 = 19;

/// Sorts an error met while opening.
fn open_error(error: NokhwaError) -> CameraError {
    // nokhwa's words when no listed mode is one it knows (a grey-only camera, see above).
    if let NokhwaError::GetPropertyError { property, .. } = &error {
        if property == "CameraFormat" {
            return CameraError::NoUsableFormat {
                offered: vec!["no format nokhwa reads".into()],
            };
        }
    }

    let text = error.to_string();
    match os_error(&text) {
        // The node vanished between the check and the open: unplugged just then.
        Some(ENOENT | ENODEV | ENXIO) => CameraError::Missing,
        Some(EBUSY) => CameraError::Busy,
        Some(EACCES) => CameraError::Other(format!(
            "{text}; run the device as a user in the video group"
        )),
        _ => CameraError::Other(text),
    }
}

/// Sorts an error met while streaming.
fn read_error(error: NokhwaError) -> CameraError {
    let text = error.to_string();
    match os_error(&text) {
        Some(ENODEV | EIO | ENXIO | ENOENT) => CameraError::Lost,
        Some(EBUSY) => CameraError::Busy,
        _ => CameraError::Other(text),
    }
}

/// The errno in a message ending like Rust's `io::Error`: `"... (os error 16)"`.
fn os_error(text: &str) -> Option<i32> {
    let (_, rest) = text.rsplit_once("(os error ")?;
    let (number, _) = rest.split_once(')')?;
    number.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_given_as_a_path_or_a_number() {
        assert_eq!("0".parse(), Ok(Device::Index(0)));
        assert_eq!(
            "/dev/video2".parse(),
            Ok(Device::Path("/dev/video2".into()))
        );
        assert!("video0".parse::<Device>().is_err());
        assert!("".parse::<Device>().is_err());
        assert_eq!(Device::Index(3).to_string(), "/dev/video3");
    }

    #[test]
    fn only_video_nodes_have_an_index() {
        assert_eq!(video_index(Path::new("/dev/video12")), Some(12));
        assert_eq!(video_index(Path::new("/dev/media0")), None);
        assert_eq!(video_index(Path::new("/dev/video")), None);
    }

    #[test]
    fn opening_a_device_that_is_not_there_says_missing() {
        let scratch = crate::testutil::TempDir::new();
        for device in [
            Device::Index(250),
            Device::Path(scratch.path().join("video0")),
        ] {
            let mut camera = V4lCamera::new(V4lSettings {
                device,
                ..V4lSettings::default()
            });
            assert_eq!(camera.open(), Err(CameraError::Missing));
            assert!(matches!(camera.frame(), Err(CameraError::Other(_))));
            camera.close();
        }
    }

    #[test]
    fn a_file_that_is_not_a_video_node_is_refused_plainly() {
        let scratch = crate::testutil::TempDir::new();
        let file = scratch.path().join("camera");
        std::fs::write(&file, b"").unwrap();
        let mut camera = V4lCamera::new(V4lSettings {
            device: Device::Path(file),
            ..V4lSettings::default()
        });
        let error = camera.open().unwrap_err();
        assert!(error.to_string().contains("not a video device"), "{error}");
    }

    #[test]
    fn driver_errors_are_sorted_into_busy_missing_and_lost() {
        let busy = || NokhwaError::SetPropertyError {
            property: "Resolution, FrameFormat".into(),
            value: "1920x1080@30FPS, MJPEG".into(),
            error: "Device or resource busy (os error 16)".into(),
        };
        assert_eq!(open_error(busy()), CameraError::Busy);
        assert_eq!(
            open_error(NokhwaError::OpenStreamError(
                "Device or resource busy (os error 16)".into()
            )),
            CameraError::Busy
        );
        assert_eq!(
            open_error(NokhwaError::OpenDeviceError(
                "0".into(),
                "V4L2 Error: No such file or directory (os error 2)".into()
            )),
            CameraError::Missing
        );
        assert_eq!(
            read_error(NokhwaError::ReadFrameError(
                "No such device (os error 19)".into()
            )),
            CameraError::Lost
        );
        assert_eq!(
            read_error(NokhwaError::ReadFrameError(
                "Input/output error (os error 5)".into()
            )),
            CameraError::Lost
        );
        assert!(matches!(
            open_error(NokhwaError::OpenDeviceError(
                "0".into(),
                "V4L2 Error: Permission denied (os error 13)".into()
            )),
            CameraError::Other(text) if text.contains("video group")
        ));
        assert!(matches!(
            open_error(NokhwaError::GetPropertyError {
                property: "CameraFormat".into(),
                error: "Failed to Fufill".into()
            }),
            CameraError::NoUsableFormat { .. }
        ));
    }
}
