//! A scripted camera and clock for the tests, and frames made from the shared photos.
//!
//! The fake plays a script of steps in order, so a test states exactly what the camera
//! does: refuse to open as busy, open in a mode, deliver a frame, deliver garbage, or
//! vanish mid-stream. It refuses to be opened twice without a close in between, so a
//! supervisor that leaks an open device fails its tests.

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, RgbImage};

use super::supervisor::Clock;
use super::{Camera, CameraError, Frame, OpenedFormat, PixelFormat};

/// One thing the fake camera does when asked.
#[derive(Debug, Clone)]
pub enum Step {
    /// The next `open` fails with this error.
    OpenFails(CameraError),
    /// The next `open` succeeds in this mode.
    Opens(OpenedFormat),
    /// The next `frame` returns this frame.
    Frame(Frame),
    /// The next `frame` returns bytes that are no picture.
    CorruptFrame,
    /// The next `frame` finds the camera gone, as after pulling its cable.
    Unplugged,
}

/// A camera that follows a script.
pub struct FakeCamera {
    script: VecDeque<Step>,
    open: bool,
    /// Calls to `open`, successful or not.
    pub opens: u32,
    /// Calls to `close`.
    pub closes: u32,
}

impl FakeCamera {
    pub fn new(script: impl IntoIterator<Item = Step>) -> Self {
        FakeCamera {
            script: script.into_iter().collect(),
            open: false,
            opens: 0,
            closes: 0,
        }
    }

    /// Steps not played yet.
    pub fn remaining(&self) -> usize {
        self.script.len()
    }

    pub fn is_open(&self) -> bool {
        self.open
    }
}

impl Camera for FakeCamera {
    fn open(&mut self) -> Result<OpenedFormat, CameraError> {
        self.opens += 1;
        if self.open {
            return Err(CameraError::Other("opened again without closing".into()));
        }
        match self.script.pop_front() {
            Some(Step::OpenFails(error)) => Err(error),
            Some(Step::Opens(format)) => {
                self.open = true;
                Ok(format)
            }
            other => Err(CameraError::Other(format!(
                "the script expected an open, but has {other:?}"
            ))),
        }
    }

    fn frame(&mut self) -> Result<Frame, CameraError> {
        if !self.open {
            return Err(CameraError::Other("frame asked of a closed camera".into()));
        }
        match self.script.pop_front() {
            Some(Step::Frame(frame)) => Ok(frame),
            Some(Step::CorruptFrame) => Ok(Frame {
                format: PixelFormat::Mjpeg,
                width: 640,
                height: 480,
                data: crate::testutil::noise(2000),
            }),
            Some(Step::Unplugged) => Err(CameraError::Lost),
            other => Err(CameraError::Other(format!(
                "the script expected a frame, but has {other:?}"
            ))),
        }
    }

    fn close(&mut self) {
        self.open = false;
        self.closes += 1;
    }
}

/// A clock that moves only when the test moves it.
#[derive(Debug, Clone)]
pub struct FakeClock(Rc<Cell<Instant>>);

impl FakeClock {
    pub fn new() -> Self {
        FakeClock(Rc::new(Cell::new(Instant::now())))
    }

    pub fn advance(&self, by: Duration) {
        self.0.set(self.0.get() + by);
    }

    pub fn set(&self, to: Instant) {
        self.0.set(to);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        self.0.get()
    }
}

/// The steps of a camera that opens in `format` and plays `warm_up` copies of `frame`
/// before the frame the test is about.
pub fn opens_with(format: OpenedFormat, warm_up: u32, frame: &Frame) -> Vec<Step> {
    let mut steps = vec![Step::Opens(format)];
    steps.extend((0..warm_up).map(|_| Step::Frame(frame.clone())));
    steps
}

/// The mode a frame is in.
pub fn mode_of(frame: &Frame) -> OpenedFormat {
    OpenedFormat {
        format: frame.format,
        width: frame.width,
        height: frame.height,
    }
}

/// A small grey frame whose every pixel is `n`, to tell frames apart.
pub fn numbered(n: u8) -> Frame {
    Frame {
        format: PixelFormat::Grey,
        width: 8,
        height: 8,
        data: vec![n; 64],
    }
}

/// The number of a frame made by [`numbered`], read back from a still.
pub fn number_of(image: &RgbImage) -> u8 {
    image.get_pixel(0, 0)[0]
}

/// A shared photo, upright, at `width` x `height`.
pub fn photo(name: &str, width: u32, height: u32) -> RgbImage {
    let image = guardian_e2e::measure::load_upright(&crate::testutil::testdata(name));
    if image.dimensions() == (width, height) {
        return image;
    }
    guardian_e2e::measure::resize(&image, width, height)
}

/// `image` as a camera sends it in YUYV: BT.601 limited range, each U and V the average
/// of a pixel pair.
pub fn yuyv_frame(image: &RgbImage) -> Frame {
    let (width, height) = image.dimensions();
    assert!(width.is_multiple_of(2), "yuyv needs an even width");

    let mut data = Vec::with_capacity((width * height * 2) as usize);
    for y in 0..height {
        for x in (0..width).step_by(2) {
            let (y0, u0, v0) = ycbcr(image.get_pixel(x, y).0);
            let (y1, u1, v1) = ycbcr(image.get_pixel(x + 1, y).0);
            data.extend([
                to_byte(y0),
                to_byte((u0 + u1) / 2.0),
                to_byte(y1),
                to_byte((v0 + v1) / 2.0),
            ]);
        }
    }
    Frame {
        format: PixelFormat::Yuyv,
        width,
        height,
        data,
    }
}

/// `image`'s luma as a grey camera sends it.
pub fn grey_frame(image: &RgbImage) -> Frame {
    let grey = DynamicImage::ImageRgb8(image.clone()).into_luma8();
    Frame {
        format: PixelFormat::Grey,
        width: grey.width(),
        height: grey.height(),
        data: grey.into_raw(),
    }
}

/// `image` as an MJPEG camera sends it, followed by buffer padding as V4L2 hands it out.
pub fn mjpeg_frame(image: &RgbImage) -> Frame {
    let mut data = Vec::new();
    JpegEncoder::new_with_quality(&mut data, 85)
        .encode_image(image)
        .expect("encode a test jpeg");
    data.extend([0u8; 1024]);
    Frame {
        format: PixelFormat::Mjpeg,
        width: image.width(),
        height: image.height(),
        data,
    }
}

/// BT.601 studio-swing Y, Cb, Cr of an RGB pixel.
fn ycbcr([r, g, b]: [u8; 3]) -> (f64, f64, f64) {
    let (r, g, b) = (f64::from(r), f64::from(g), f64::from(b));
    let y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0;
    let cb = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0;
    let cr = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0;
    (y, cb, cr)
}

fn to_byte(value: f64) -> u8 {
    value.round().clamp(0.0, 255.0) as u8
}
