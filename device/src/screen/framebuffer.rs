//! Shows a canvas on a Linux framebuffer (`/dev/fbN`) with plain file writes: the
//! geometry comes from sysfs, so no ioctl and no unsafe code is needed.
//!
//! sysfs gives the size, the depth and the row stride, but not the order of the colour
//! channels. 16-bit framebuffers are RGB565 in practice; 32-bit ones on the Raspberry Pi
//! (and most others) are XRGB8888, which is B, G, R, X in memory on a little-endian CPU.
//! A 32-bit framebuffer with another channel order would show red and blue swapped.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use image::Rgb;
use thiserror::Error;

use super::canvas::Canvas;

/// A framebuffer opened for writing, with the geometry it had when opened.
#[derive(Debug)]
pub struct Framebuffer {
    device: PathBuf,
    file: File,
    geometry: Geometry,
}

/// What sysfs says about a framebuffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub width: u32,
    pub height: u32,
    pub bits_per_pixel: u32,
    /// Bytes from the start of one row to the start of the next.
    pub stride: u32,
}

/// Why the screen could not be opened or written.
#[derive(Debug, Error)]
pub enum FramebufferError {
    /// The device file is missing or not writable: no display driver, the screen is
    /// unplugged, or the service user is not in the `video` group.
    #[error("cannot open the framebuffer {path}: {source}; check the screen is connected and the service user is in the video group")]
    MissingDevice {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A sysfs file is missing: the framebuffer driver is not loaded, or the sysfs
    /// directory does not belong to the device.
    #[error("cannot read the framebuffer setting {path}: {source}; check the display driver is loaded and the sysfs directory matches the device")]
    Sysfs {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A sysfs file holds something other than the number(s) expected.
    #[error("the framebuffer setting {path} holds {value:?}, expected {expected}")]
    BadSetting {
        path: PathBuf,
        value: String,
        expected: &'static str,
    },

    /// Only RGB565 and XRGB8888 are written.
    #[error("the framebuffer uses {bits} bits per pixel; only 16 and 32 are supported, so set the display to one of them")]
    UnsupportedDepth { bits: u32 },

    /// The stride is shorter than a row of pixels, which no real driver reports.
    #[error("the framebuffer stride of {stride} bytes is less than a row of {width} pixels at {bits} bits per pixel; the sysfs files do not agree")]
    BadStride { stride: u32, width: u32, bits: u32 },

    /// The canvas would not fit: it was drawn for a larger screen.
    #[error("the screen is {screen_width}x{screen_height} but the picture is {canvas_width}x{canvas_height}; draw the picture at the screen's size")]
    ScreenTooSmall {
        screen_width: u32,
        screen_height: u32,
        canvas_width: u32,
        canvas_height: u32,
    },

    /// Writing the device failed part way; the screen may show a half-drawn frame until
    /// the next one.
    #[error("cannot write to the framebuffer {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Framebuffer {
    /// Reads the geometry from `sysfs_dir` (for example `/sys/class/graphics/fb0`) and
    /// opens `device` (for example `/dev/fb0`) for writing; the device is never created.
    pub fn open(sysfs_dir: &Path, device: &Path) -> Result<Self, FramebufferError> {
        let geometry = Geometry::read(sysfs_dir)?;
        let file = OpenOptions::new()
            .write(true)
            .open(device)
            .map_err(|source| FramebufferError::MissingDevice {
                path: device.to_path_buf(),
                source,
            })?;
        Ok(Framebuffer {
            device: device.to_path_buf(),
            file,
            geometry,
        })
    }

    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Copies `canvas` to the top-left corner of the screen, one row per write. A canvas
    /// smaller than the screen leaves the rest of the screen as it was.
    pub fn show(&self, canvas: &Canvas) -> Result<(), FramebufferError> {
        let image = canvas.image();
        let (width, height) = image.dimensions();
        let geometry = self.geometry;
        if width > geometry.width || height > geometry.height {
            return Err(FramebufferError::ScreenTooSmall {
                screen_width: geometry.width,
                screen_height: geometry.height,
                canvas_width: width,
                canvas_height: height,
            });
        }

        let bytes_per_pixel = (geometry.bits_per_pixel / 8) as usize;
        let mut row = Vec::with_capacity(width as usize * bytes_per_pixel);
        for (y, pixels) in image.rows().enumerate() {
            row.clear();
            for pixel in pixels {
                match geometry.bits_per_pixel {
                    16 => row.extend_from_slice(&rgb565(pixel)),
                    _ => row.extend_from_slice(&xrgb8888(pixel)),
                }
            }

            let offset = y as u64 * u64::from(geometry.stride);
            self.file
                .write_all_at(&row, offset)
                .map_err(|source| FramebufferError::Write {
                    path: self.device.clone(),
                    source,
                })?;
        }
        Ok(())
    }
}

impl Geometry {
    /// Reads `virtual_size`, `bits_per_pixel` and `stride` from a framebuffer's sysfs
    /// directory and checks they agree.
    pub fn read(sysfs_dir: &Path) -> Result<Self, FramebufferError> {
        let (width, height) = {
            let path = sysfs_dir.join("virtual_size");
            let value = read_setting(&path)?;
            let parsed = value
                .split_once(',')
                .and_then(|(w, h)| Some((w.trim().parse().ok()?, h.trim().parse().ok()?)));
            parsed.ok_or(FramebufferError::BadSetting {
                path,
                value,
                expected: "a width and a height such as 800,480",
            })?
        };
        let bits_per_pixel = read_number(&sysfs_dir.join("bits_per_pixel"))?;
        let stride = read_number(&sysfs_dir.join("stride"))?;

        if bits_per_pixel != 16 && bits_per_pixel != 32 {
            return Err(FramebufferError::UnsupportedDepth {
                bits: bits_per_pixel,
            });
        }
        if u64::from(stride) < u64::from(width) * u64::from(bits_per_pixel / 8) {
            return Err(FramebufferError::BadStride {
                stride,
                width,
                bits: bits_per_pixel,
            });
        }

        Ok(Geometry {
            width,
            height,
            bits_per_pixel,
            stride,
        })
    }
}

fn read_setting(path: &Path) -> Result<String, FramebufferError> {
    std::fs::read_to_string(path)
        .map(|value| value.trim().to_string())
        .map_err(|source| FramebufferError::Sysfs {
            path: path.to_path_buf(),
            source,
        })
}

fn read_number(path: &Path) -> Result<u32, FramebufferError> {
    let value = read_setting(path)?;
    value.parse().map_err(|_| FramebufferError::BadSetting {
        path: path.to_path_buf(),
        value,
        expected: "a whole number",
    })
}

/// Five bits of red, six of green, five of blue, little-endian as the Pi stores it.
fn rgb565(pixel: &Rgb<u8>) -> [u8; 2] {
    let [r, g, b] = pixel.0;
    let packed = (u16::from(r >> 3) << 11) | (u16::from(g >> 2) << 5) | u16::from(b >> 3);
    packed.to_le_bytes()
}

/// XRGB8888 as a little-endian CPU stores it: blue first. The unused byte is written
/// as 0xFF so a driver that reads it as alpha shows the pixel opaque.
fn xrgb8888(pixel: &Rgb<u8>) -> [u8; 4] {
    let [r, g, b] = pixel.0;
    [b, g, r, 0xFF]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use embedded_graphics::pixelcolor::Rgb888;
    use embedded_graphics::prelude::*;

    /// A temp dir with sysfs-like files and a regular file standing in for /dev/fb0.
    struct FakeFramebuffer {
        dir: TempDir,
    }

    impl FakeFramebuffer {
        fn new(virtual_size: &str, bits_per_pixel: &str, stride: &str) -> Self {
            let dir = TempDir::new();
            let sysfs = dir.path().join("fb0");
            std::fs::create_dir(&sysfs).expect("create the fake sysfs dir");
            std::fs::write(sysfs.join("virtual_size"), format!("{virtual_size}\n"))
                .expect("write virtual_size");
            std::fs::write(sysfs.join("bits_per_pixel"), format!("{bits_per_pixel}\n"))
                .expect("write bits_per_pixel");
            std::fs::write(sysfs.join("stride"), format!("{stride}\n")).expect("write stride");
            std::fs::write(dir.path().join("dev-fb0"), []).expect("create the fake device");
            FakeFramebuffer { dir }
        }

        fn sysfs(&self) -> PathBuf {
            self.dir.path().join("fb0")
        }

        fn device(&self) -> PathBuf {
            self.dir.path().join("dev-fb0")
        }

        fn open(&self) -> Result<Framebuffer, FramebufferError> {
            Framebuffer::open(&self.sysfs(), &self.device())
        }

        fn bytes(&self) -> Vec<u8> {
            std::fs::read(self.device()).expect("read the fake device")
        }
    }

    /// A 2x2 canvas: red, green / blue, white.
    fn four_colours() -> Canvas {
        let mut canvas = Canvas::new(Size::new(2, 2));
        let pixels = [
            Pixel(Point::new(0, 0), Rgb888::new(255, 0, 0)),
            Pixel(Point::new(1, 0), Rgb888::new(0, 255, 0)),
            Pixel(Point::new(0, 1), Rgb888::new(0, 0, 255)),
            Pixel(Point::new(1, 1), Rgb888::new(255, 255, 255)),
        ];
        canvas
            .draw_iter(pixels)
            .expect("drawing on a canvas cannot fail");
        canvas
    }

    #[test]
    fn sixteen_bit_rows_are_rgb565_little_endian_at_the_stride() {
        // A 3-pixel-wide screen with 2 bytes of row padding: stride 3 * 2 + 2 = 8.
        let fake = FakeFramebuffer::new("3,2", "16", "8");
        let framebuffer = fake.open().expect("open the fake framebuffer");

        framebuffer.show(&four_colours()).expect("show the canvas");

        // Row 1 starts at the stride; the third pixel and the padding are left alone,
        // which in a fresh regular file reads back as zeros.
        let expected: Vec<u8> = [
            [0x00, 0xF8],
            [0xE0, 0x07],
            [0x00, 0x00],
            [0x00, 0x00],
            [0x1F, 0x00],
            [0xFF, 0xFF],
        ]
        .concat();
        assert_eq!(fake.bytes(), expected);
    }

    #[test]
    fn thirty_two_bit_rows_are_bgrx_at_the_stride() {
        let fake = FakeFramebuffer::new("2,2", "32", "12");
        let framebuffer = fake.open().expect("open the fake framebuffer");

        framebuffer.show(&four_colours()).expect("show the canvas");

        let expected: Vec<u8> = [
            [0x00, 0x00, 0xFF, 0xFF],
            [0x00, 0xFF, 0x00, 0xFF],
            [0x00, 0x00, 0x00, 0x00],
            [0xFF, 0x00, 0x00, 0xFF],
            [0xFF, 0xFF, 0xFF, 0xFF],
        ]
        .concat();
        assert_eq!(fake.bytes(), expected);
    }

    #[test]
    fn the_geometry_comes_from_sysfs() {
        let fake = FakeFramebuffer::new("800,480", "32", "3200");
        let framebuffer = fake.open().expect("open the fake framebuffer");
        assert_eq!(
            framebuffer.geometry(),
            Geometry {
                width: 800,
                height: 480,
                bits_per_pixel: 32,
                stride: 3200
            }
        );
    }

    #[test]
    fn a_missing_device_is_reported_and_not_created() {
        let fake = FakeFramebuffer::new("800,480", "16", "1600");
        let device = fake.dir.path().join("fb7");

        let error = Framebuffer::open(&fake.sysfs(), &device).unwrap_err();

        assert!(
            matches!(error, FramebufferError::MissingDevice { .. }),
            "{error}"
        );
        assert!(!device.exists());
    }

    #[test]
    fn a_missing_sysfs_dir_names_the_file() {
        let fake = FakeFramebuffer::new("800,480", "16", "1600");
        let error = Framebuffer::open(&fake.dir.path().join("fb1"), &fake.device()).unwrap_err();
        assert!(matches!(error, FramebufferError::Sysfs { .. }), "{error}");
        assert!(error.to_string().contains("virtual_size"), "{error}");
    }

    #[test]
    fn twenty_four_bit_framebuffers_are_refused() {
        let fake = FakeFramebuffer::new("800,480", "24", "2400");
        let error = fake.open().unwrap_err();
        assert!(
            matches!(error, FramebufferError::UnsupportedDepth { bits: 24 }),
            "{error}"
        );
    }

    #[test]
    fn a_garbled_size_is_refused() {
        let fake = FakeFramebuffer::new("800x480", "16", "1600");
        let error = fake.open().unwrap_err();
        assert!(
            matches!(error, FramebufferError::BadSetting { .. }),
            "{error}"
        );
    }

    #[test]
    fn a_stride_shorter_than_a_row_is_refused() {
        let fake = FakeFramebuffer::new("800,480", "32", "1600");
        let error = fake.open().unwrap_err();
        assert!(
            matches!(error, FramebufferError::BadStride { .. }),
            "{error}"
        );
    }

    #[test]
    fn a_canvas_larger_than_the_screen_is_refused_and_nothing_written() {
        let fake = FakeFramebuffer::new("480,320", "16", "960");
        let framebuffer = fake.open().expect("open the fake framebuffer");

        let error = framebuffer
            .show(&Canvas::new(Size::new(800, 480)))
            .unwrap_err();

        assert!(
            matches!(error, FramebufferError::ScreenTooSmall { .. }),
            "{error}"
        );
        assert!(fake.bytes().is_empty());
    }
}
