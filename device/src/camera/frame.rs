//! Camera frames as the camera delivers them, and turning one into RGB pixels.
//!
//! A frame comes from hardware that can fail half-way (a loose cable, a busy USB bus), so
//! every frame is checked before its pixels are touched: its size against a limit, its
//! byte count against what its format and size need, and an MJPEG frame for its end
//! marker and its decoded size. A bad frame is a [`FrameError`], never a panic.

use std::fmt;
use std::io::Cursor;

use image::codecs::jpeg::JpegDecoder;
use image::{DynamicImage, GrayImage, ImageDecoder, Limits, RgbImage};

/// The most pixels a frame may have: a 16:9 8K frame, well above any USB camera in use and
/// well below what would exhaust a Raspberry Pi's memory as RGB.
pub const MAX_FRAME_PIXELS: u64 = 7680 * 4320;

/// How the bytes of a frame encode its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Each frame is a JPEG file (V4L2 `MJPG`).
    Mjpeg,
    /// YUV 4:2:2, packed as Y0 U Y1 V, two pixels in four bytes (V4L2 `YUYV`).
    Yuyv,
    /// 8-bit luma only, one byte per pixel (V4L2 `GREY`).
    Grey,
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PixelFormat::Mjpeg => "mjpeg",
            PixelFormat::Yuyv => "yuyv",
            PixelFormat::Grey => "grey",
        })
    }
}

/// One frame, undecoded, with the size the camera announced for it.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl fmt::Debug for Frame {
    // The pixels are a photo of children: the size is enough for any log or test message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("format", &self.format)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("bytes", &self.data.len())
            .finish()
    }
}

impl Frame {
    /// The JPEG file inside an MJPEG frame, up to and including its end-of-image marker.
    ///
    /// V4L2 hands out the whole capture buffer, so an MJPEG frame is usually followed by
    /// padding or by the tail of an older frame; those bytes are no part of this picture.
    /// `None` when the frame is not MJPEG or its JPEG has no end (it was cut short).
    pub fn jpeg(&self) -> Option<&[u8]> {
        if self.format != PixelFormat::Mjpeg {
            return None;
        }
        jpeg_end(&self.data).map(|end| &self.data[..end])
    }
}

/// A frame that cannot be turned into a picture. The camera delivered it damaged or in a
/// shape this device does not read; the next frame may well be fine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The camera announced a frame with no pixels.
    #[error(
        "the camera frame is {width}x{height} pixels, which holds no picture; reopen the camera"
    )]
    NoPixels { width: u32, height: u32 },

    /// The announced size is over [`MAX_FRAME_PIXELS`].
    #[error(
        "the camera frame is {width}x{height} pixels, over the limit of {limit} pixels; \
         lower the camera's maximum resolution"
    )]
    TooLarge { width: u32, height: u32, limit: u64 },

    /// YUYV shares each U and V between two pixels, so its width must be even.
    #[error(
        "the yuyv frame is {width} pixels wide, but yuyv needs an even width; choose another \
         camera resolution"
    )]
    OddWidth { width: u32 },

    /// An uncompressed frame whose byte count does not fit its size.
    #[error(
        "the {format} frame of {width}x{height} pixels has {actual} bytes instead of \
         {expected}; the frame is damaged, or the camera pads its lines, which is not supported"
    )]
    WrongLength {
        format: PixelFormat,
        width: u32,
        height: u32,
        expected: u64,
        actual: usize,
    },

    /// An MJPEG frame without an end-of-image marker: the decoder would fill the missing part
    /// with grey, and a face there would go unseen.
    #[error(
        "the mjpeg frame has no end-of-image marker, it was cut short; check the camera's \
         cable and that nothing else uses the same usb bus"
    )]
    CutShort,

    /// An MJPEG frame whose picture is not the size the camera announced.
    #[error(
        "the mjpeg frame holds a {decoded_width}x{decoded_height} picture, but the camera \
         announced {width}x{height}; the frame is damaged, reopen the camera"
    )]
    SizeMismatch {
        width: u32,
        height: u32,
        decoded_width: u32,
        decoded_height: u32,
    },

    /// The frame's bytes could not be decoded.
    #[error("the {format} frame cannot be decoded ({reason}); the frame is damaged")]
    Undecodable { format: PixelFormat, reason: String },
}

/// Converts a frame into 8-bit RGB pixels of the size the camera announced.
///
/// MJPEG is decoded by the `image` crate; YUYV is read as BT.601 limited range, the range
/// USB cameras send; GREY becomes three equal channels.
pub fn to_rgb(frame: &Frame) -> Result<RgbImage, FrameError> {
    // Step 1: the announced size, before any allocation depends on it.
    let pixels = checked_pixels(frame.width, frame.height)?;

    // Step 2: the conversion for the format.
    match frame.format {
        PixelFormat::Mjpeg => mjpeg_to_rgb(frame, pixels),
        PixelFormat::Yuyv => yuyv_to_rgb(frame, pixels),
        PixelFormat::Grey => grey_to_rgb(frame, pixels),
    }
}

/// The pixel count of a `width` x `height` frame, if it is not empty and within the limit.
fn checked_pixels(width: u32, height: u32) -> Result<u64, FrameError> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels == 0 {
        return Err(FrameError::NoPixels { width, height });
    }
    if pixels > MAX_FRAME_PIXELS {
        return Err(FrameError::TooLarge {
            width,
            height,
            limit: MAX_FRAME_PIXELS,
        });
    }
    Ok(pixels)
}

fn mjpeg_to_rgb(frame: &Frame, pixels: u64) -> Result<RgbImage, FrameError> {
    // A frame cut short still decodes, with grey where data is missing; refuse it instead.
    let jpeg = frame.jpeg().ok_or(FrameError::CutShort)?;
    let undecodable = |error: image::ImageError| FrameError::Undecodable {
        format: PixelFormat::Mjpeg,
        reason: error.to_string(),
    };

    // The header must announce the size the camera did, before any pixel is decoded.
    let mut decoder = JpegDecoder::new(Cursor::new(jpeg)).map_err(undecodable)?;
    let (decoded_width, decoded_height) = decoder.dimensions();
    if (decoded_width, decoded_height) != (frame.width, frame.height) {
        return Err(FrameError::SizeMismatch {
            width: frame.width,
            height: frame.height,
            decoded_width,
            decoded_height,
        });
    }

    // A second line of defence inside the decoder: exactly this size, and memory for
    // the RGB pixels plus its working buffers.
    const WORKING_MEMORY: u64 = 64 * 1024 * 1024;
    let mut limits = Limits::default();
    limits.max_image_width = Some(frame.width);
    limits.max_image_height = Some(frame.height);
    limits.max_alloc = Some(pixels * 4 + WORKING_MEMORY);
    decoder.set_limits(limits).map_err(undecodable)?;

    let image = DynamicImage::from_decoder(decoder).map_err(undecodable)?;
    Ok(image.into_rgb8())
}

fn yuyv_to_rgb(frame: &Frame, pixels: u64) -> Result<RgbImage, FrameError> {
    if !frame.width.is_multiple_of(2) {
        return Err(FrameError::OddWidth { width: frame.width });
    }
    exact_length(frame, pixels, 2)?;
    let rgb_len = buffer_len(frame, pixels * 3)?;

    // nokhwa-core's converter is the usual fixed-point BT.601 limited-range formula and
    // checks both buffer lengths itself; it works on plain slices, so no camera is needed.
    let mut rgb = vec![0; rgb_len];
    nokhwa::utils::buf_yuyv422_to_rgb(&frame.data, &mut rgb, false).map_err(|error| {
        FrameError::Undecodable {
            format: PixelFormat::Yuyv,
            reason: error.to_string(),
        }
    })?;
    into_image(frame, rgb)
}

fn grey_to_rgb(frame: &Frame, pixels: u64) -> Result<RgbImage, FrameError> {
    exact_length(frame, pixels, 1)?;

    // The length was checked just above, so `from_raw` always takes the buffer.
    let grey = GrayImage::from_raw(frame.width, frame.height, frame.data.clone()).ok_or(
        FrameError::Undecodable {
            format: PixelFormat::Grey,
            reason: "the luma does not fill the frame".into(),
        },
    )?;
    Ok(DynamicImage::ImageLuma8(grey).into_rgb8())
}

/// Checks that an uncompressed frame has exactly `bytes_per_pixel` bytes for each pixel.
fn exact_length(frame: &Frame, pixels: u64, bytes_per_pixel: u64) -> Result<(), FrameError> {
    let expected = pixels * bytes_per_pixel;
    if u64::try_from(frame.data.len()) == Ok(expected) {
        Ok(())
    } else {
        Err(FrameError::WrongLength {
            format: frame.format,
            width: frame.width,
            height: frame.height,
            expected,
            actual: frame.data.len(),
        })
    }
}

/// A byte count as a buffer length. Within [`MAX_FRAME_PIXELS`] it fits even on a 32-bit
/// Raspberry Pi OS; the check keeps that an error rather than an assumption.
fn buffer_len(frame: &Frame, bytes: u64) -> Result<usize, FrameError> {
    usize::try_from(bytes).map_err(|_| FrameError::TooLarge {
        width: frame.width,
        height: frame.height,
        limit: MAX_FRAME_PIXELS,
    })
}

/// Wraps RGB bytes as an image of the frame's size; the caller sized them to fit.
fn into_image(frame: &Frame, rgb: Vec<u8>) -> Result<RgbImage, FrameError> {
    let len = rgb.len();
    RgbImage::from_raw(frame.width, frame.height, rgb).ok_or(FrameError::Undecodable {
        format: frame.format,
        reason: format!(
            "{len} bytes of rgb do not fill {}x{}",
            frame.width, frame.height
        ),
    })
}

/// Where the JPEG in `data` ends: the index just past its end-of-image marker, found by
/// walking the marker segments and the scan data. `None` if it does not start like a JPEG
/// or ends before that marker.
fn jpeg_end(data: &[u8]) -> Option<usize> {
    const START: u8 = 0xD8;
    const END: u8 = 0xD9;
    const START_OF_SCAN: u8 = 0xDA;

    if data.get(..2)? != [0xFF, START] {
        return None;
    }

    let mut i = 2;
    loop {
        // A marker: 0xFF, any number of 0xFF fill bytes, then the marker code.
        if *data.get(i)? != 0xFF {
            return None;
        }
        while *data.get(i)? == 0xFF {
            i += 1;
        }
        let marker = data[i];
        i += 1;

        match marker {
            END => return Some(i),
            // Restart markers and TEM stand alone, without a length.
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }

        // Every other segment gives its length, which counts the two length bytes.
        let length = data.get(i..i + 2)?;
        let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
        if length < 2 || i + length > data.len() {
            return None;
        }
        i += length;

        if marker == START_OF_SCAN {
            i = scan_end(data, i)?;
        }
    }
}

/// The index of the marker that ends the entropy-coded data starting at `i`. In that data
/// a 0xFF byte is followed by 0x00 (a stuffed data byte) or by a restart marker.
fn scan_end(data: &[u8], mut i: usize) -> Option<usize> {
    loop {
        if *data.get(i)? != 0xFF {
            i += 1;
            continue;
        }
        match *data.get(i + 1)? {
            0x00 | 0xD0..=0xD7 => i += 2,
            // A fill byte; the marker follows it.
            0xFF => i += 1,
            _ => return Some(i),
        }
    }
}

#[cfg(test)]
mod tests {
    use guardian_e2e::measure::psnr_where;
    use image::codecs::jpeg::JpegEncoder;
    use image::Rgb;

    use super::*;
    use crate::camera::fake;

    fn jpeg_of(image: &RgbImage) -> Vec<u8> {
        let mut bytes = Vec::new();
        JpegEncoder::new_with_quality(&mut bytes, 90)
            .encode_image(image)
            .unwrap();
        bytes
    }

    fn gradient(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            Rgb([(x * 7) as u8, (y * 5) as u8, ((x + y) * 3) as u8])
        })
    }

    fn frame(format: PixelFormat, width: u32, height: u32, data: Vec<u8>) -> Frame {
        Frame {
            format,
            width,
            height,
            data,
        }
    }

    #[test]
    fn yuyv_greys_and_primaries_convert_by_bt601_limited_range() {
        // Black, white and mid grey sit at Y 16, 235 and 126 with neutral chroma.
        let data = vec![16, 128, 235, 128, 126, 128, 126, 128];
        let rgb = to_rgb(&frame(PixelFormat::Yuyv, 2, 2, data)).unwrap();
        assert_eq!(rgb.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(rgb.get_pixel(1, 0).0, [255, 255, 255]);
        assert_eq!(rgb.get_pixel(0, 1).0, [128, 128, 128]);

        // Pure red in BT.601 limited range: Y 81, Cb 90, Cr 240.
        let red = to_rgb(&frame(PixelFormat::Yuyv, 2, 1, vec![81, 90, 81, 240])).unwrap();
        for pixel in red.pixels() {
            let [r, g, b] = pixel.0;
            assert!(r >= 250 && g <= 3 && b <= 3, "red became {:?}", pixel.0);
        }
    }

    #[test]
    fn grey_becomes_three_equal_channels() {
        let rgb = to_rgb(&frame(PixelFormat::Grey, 3, 1, vec![0, 77, 255])).unwrap();
        let pixels: Vec<_> = rgb.pixels().map(|p| p.0).collect();
        assert_eq!(pixels, [[0, 0, 0], [77, 77, 77], [255, 255, 255]]);
    }

    #[test]
    fn uncompressed_frames_of_the_wrong_length_are_refused() {
        for (format, data) in [
            (PixelFormat::Yuyv, vec![0; 4 * 2 * 2 - 1]),
            (PixelFormat::Yuyv, vec![0; 4 * 2 * 2 + 4]),
            (PixelFormat::Grey, vec![0; 4 * 2 + 1]),
            (PixelFormat::Grey, Vec::new()),
        ] {
            let error = to_rgb(&frame(format, 4, 2, data)).unwrap_err();
            assert!(matches!(error, FrameError::WrongLength { .. }), "{error}");
        }
    }

    #[test]
    fn yuyv_of_odd_width_is_refused() {
        let error = to_rgb(&frame(PixelFormat::Yuyv, 3, 1, vec![0; 6])).unwrap_err();
        assert_eq!(error, FrameError::OddWidth { width: 3 });
    }

    #[test]
    fn empty_and_huge_sizes_are_refused_before_decoding() {
        let error = to_rgb(&frame(PixelFormat::Grey, 0, 10, Vec::new())).unwrap_err();
        assert!(matches!(error, FrameError::NoPixels { .. }));

        // No buffer of this size exists: the check must come before any allocation.
        for format in [PixelFormat::Grey, PixelFormat::Yuyv, PixelFormat::Mjpeg] {
            let error = to_rgb(&frame(format, 100_000, 100_000, vec![0; 16])).unwrap_err();
            assert!(matches!(error, FrameError::TooLarge { .. }), "{error}");
        }
    }

    #[test]
    fn mjpeg_decodes_and_padding_after_the_end_is_ignored() {
        let source = gradient(32, 16);
        let mut data = jpeg_of(&source);
        let jpeg_len = data.len();
        data.extend([0u8; 300]);
        data.extend([0xFF, 0xD8, 0xFF, 0xD9]);

        let frame = frame(PixelFormat::Mjpeg, 32, 16, data);
        assert_eq!(frame.jpeg().map(<[u8]>::len), Some(jpeg_len));
        let rgb = to_rgb(&frame).unwrap();
        assert_eq!(rgb.dimensions(), (32, 16));
    }

    #[test]
    fn mjpeg_cut_short_is_refused() {
        let data = jpeg_of(&gradient(64, 64));
        for keep in [data.len() - 2, data.len() / 2, 40, 3, 0] {
            let error = to_rgb(&frame(PixelFormat::Mjpeg, 64, 64, data[..keep].to_vec()));
            assert_eq!(
                error.unwrap_err(),
                FrameError::CutShort,
                "kept {keep} bytes"
            );
        }
    }

    #[test]
    fn mjpeg_of_another_size_than_announced_is_refused() {
        let data = jpeg_of(&gradient(32, 16));
        let error = to_rgb(&frame(PixelFormat::Mjpeg, 640, 480, data)).unwrap_err();
        assert!(matches!(
            error,
            FrameError::SizeMismatch {
                decoded_width: 32,
                decoded_height: 16,
                ..
            }
        ));
    }

    #[test]
    fn garbage_is_an_error_in_every_format() {
        let noise = crate::testutil::noise(5000);
        for format in [PixelFormat::Mjpeg, PixelFormat::Yuyv, PixelFormat::Grey] {
            assert!(to_rgb(&frame(format, 64, 48, noise.clone())).is_err());
        }

        // A JPEG start and end around noise: the walk finds an end, the decoder refuses it.
        let mut fake = vec![0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02];
        fake.extend(noise.iter().map(|b| if *b == 0xFF { 0 } else { *b }));
        fake.extend([0xFF, 0xD9]);
        let error = to_rgb(&frame(PixelFormat::Mjpeg, 64, 48, fake)).unwrap_err();
        assert!(matches!(error, FrameError::Undecodable { .. }), "{error}");
    }

    /// A real photo at an even width, as a camera would see the scene.
    fn scene() -> RgbImage {
        fake::photo("voc_2008_001322.jpg", 500, 375)
    }

    #[test]
    fn c34_yuyv_of_a_real_photo_converts_back_within_30_db() {
        let source = scene();
        let rgb = to_rgb(&fake::yuyv_frame(&source)).unwrap();
        let psnr = psnr_where(&rgb, &source, |_, _| true);
        assert!(psnr >= 30.0, "yuyv came back {psnr:.1} dB from the photo");
    }

    #[test]
    fn c34_grey_of_a_real_photo_converts_to_its_luma() {
        let source = scene();
        let luma = DynamicImage::ImageRgb8(source.clone()).into_luma8();
        let rgb = to_rgb(&fake::grey_frame(&source)).unwrap();
        let expected = DynamicImage::ImageLuma8(luma).into_rgb8();
        let psnr = psnr_where(&rgb, &expected, |_, _| true);
        assert!(psnr >= 30.0, "grey came back {psnr:.1} dB from the luma");
        assert_eq!(rgb, expected);
    }

    #[test]
    fn mjpeg_of_a_real_photo_converts_back_within_30_db() {
        let source = scene();
        let rgb = to_rgb(&fake::mjpeg_frame(&source)).unwrap();
        let psnr = psnr_where(&rgb, &source, |_, _| true);
        assert!(psnr >= 30.0, "mjpeg came back {psnr:.1} dB from the photo");
    }

    #[test]
    fn the_jpeg_end_is_found_past_stuffed_bytes_and_restart_markers() {
        let scan = [1, 0xFF, 0x00, 2, 0xFF, 0xD3, 3, 0xFF, 0xFF, 0xD9, 0xAA];
        let mut data = vec![
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0xAA, 0xBB, 0xFF, 0xDA, 0x00, 0x02,
        ];
        data.extend(scan);
        assert_eq!(jpeg_end(&data), Some(data.len() - 1));

        assert_eq!(jpeg_end(b"not a jpeg"), None);
        assert_eq!(jpeg_end(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01]), None);
    }
}
