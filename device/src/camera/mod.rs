//! The classroom camera: the [`Camera`] trait the capture loop takes pictures through,
//! its errors, and the modules around it (see the module table in the device README).

pub mod choice;
#[cfg(test)]
pub mod fake;
pub mod frame;
pub mod replay;
pub mod supervisor;
pub mod v4l;

pub use frame::{to_rgb, Frame, PixelFormat};

/// A camera the device can open, read frames from, and close.
///
/// There is no `Send` bound: nokhwa's V4L2 camera is tied to the thread that opened it,
/// so the capture thread builds its camera itself rather than receiving one.
pub trait Camera {
    /// Opens the camera and starts streaming; returns the mode chosen.
    fn open(&mut self) -> Result<OpenedFormat, CameraError>;

    /// The next frame, undecoded. Blocks until the camera delivers one.
    fn frame(&mut self) -> Result<Frame, CameraError>;

    /// Stops streaming and releases the device, so that a replugged camera gets its old
    /// device node back. Closing a closed camera does nothing.
    fn close(&mut self);
}

/// The mode a camera was opened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenedFormat {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
}

/// Why a camera cannot be opened or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CameraError {
    /// There is no such device node: nothing is plugged in, or the setting names the
    /// wrong device.
    #[error(
        "camera missing: no camera found; plug it in, or check the camera setting names \
         the right device"
    )]
    Missing,

    /// Another process holds the camera (EBUSY).
    #[error("camera busy: another program is using it; close that program or restart the device")]
    Busy,

    /// The camera went away while streaming (ENODEV, EIO): it was unplugged or lost power.
    #[error("camera lost: it stopped answering, it was probably unplugged; plug it back in")]
    Lost,

    /// The camera offers none of MJPEG, YUYV or grey within the maximum size.
    #[error(
        "camera offers no usable picture format (it offers {}); use a camera that gives \
         mjpeg, yuyv or grey, or raise the maximum camera resolution",
        if offered.is_empty() { "nothing".to_string() } else { offered.join(", ") }
    )]
    NoUsableFormat {
        /// Each offered format with its largest size, as `"NV12 up to 1920x1080"`.
        offered: Vec<String>,
    },

    /// Anything else the camera or its driver reported.
    #[error("camera failed: {0}")]
    Other(String),
}
