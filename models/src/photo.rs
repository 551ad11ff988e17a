//! Turning untrusted photo bytes into an upright RGB image, safely.
//!
//! Size and pixel count are checked against [`DecodeLimits`] from the file header before any
//! pixel is decoded. Only JPEG and PNG are accepted. The EXIF orientation is applied, so the
//! detectors always see the photo the way a viewer shows it. Files the decoder accepts but
//! that are evidently broken (cut short, or with a zeroed run of data) are flagged
//! [`DecodedPhoto::damaged`], because the decoder silently fills the missing part with grey
//! and a face there would go unseen.

use std::fmt;
use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbImage};

/// Upper bounds for a photo, checked before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// The largest file accepted, in bytes.
    pub max_bytes: usize,
    /// The most pixels (width x height) accepted.
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    /// 40 MiB and 50 megapixels: above any phone or classroom camera in use, well below what
    /// would exhaust a Raspberry Pi's memory.
    fn default() -> Self {
        DecodeLimits {
            max_bytes: 40 * 1024 * 1024,
            max_pixels: 50_000_000,
        }
    }
}

/// The file formats a photo may come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhotoFormat {
    Jpeg,
    Png,
}

impl fmt::Display for PhotoFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PhotoFormat::Jpeg => "jpeg",
            PhotoFormat::Png => "png",
        })
    }
}

/// A decoded photo, upright, with no metadata left.
#[derive(Debug, Clone)]
pub struct DecodedPhoto {
    /// The pixels, 8-bit RGB, with the EXIF orientation applied and any transparency
    /// flattened onto white.
    pub image: image::RgbImage,
    /// The decoder accepted the file but it is evidently broken (cut short, or a run of
    /// zeroed data). Part of the image may be grey filler, so a face there cannot be seen:
    /// treat the photo as unchecked.
    pub damaged: bool,
    /// The EXIF orientation found in the file (1 to 8), 1 if there was none.
    pub orientation: u8,
    /// The file format.
    pub format: PhotoFormat,
}

/// A photo was refused or could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The file is larger than [`DecodeLimits::max_bytes`].
    #[error(
        "the photo file is {size} bytes, over the limit of {limit} bytes; send a smaller \
         photo or raise the byte limit"
    )]
    TooLarge {
        /// Size of the file in bytes.
        size: usize,
        /// The limit it exceeds.
        limit: usize,
    },

    /// The header announces more pixels than [`DecodeLimits::max_pixels`].
    #[error(
        "the photo is {width}x{height} pixels, over the limit of {limit} pixels; lower the \
         camera resolution or raise the pixel limit"
    )]
    TooManyPixels {
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
        /// The limit it exceeds.
        limit: u64,
    },

    /// The file is empty.
    #[error("the photo file is empty; take or copy the photo again")]
    Empty,

    /// The file is not a JPEG or PNG.
    #[error("the photo is not a jpeg or png file; save it as jpeg or png and try again")]
    Unsupported,

    /// The file claims to be a JPEG or PNG but cannot be decoded.
    #[error("the photo could not be decoded ({0}); the file is damaged, take or copy it again")]
    Corrupt(String),
}

/// Decodes a JPEG or PNG photo into upright 8-bit RGB, refusing it if it exceeds `limits`.
pub fn decode_upright(bytes: &[u8], limits: &DecodeLimits) -> Result<DecodedPhoto, DecodeError> {
    // Step 1: cheap checks on the bytes alone.
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }

    // Step 2: the format from the magic bytes, never from a file name.
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    let format = match reader.format() {
        Some(ImageFormat::Jpeg) => PhotoFormat::Jpeg,
        Some(ImageFormat::Png) => PhotoFormat::Png,
        _ => return Err(DecodeError::Unsupported),
    };

    // Step 3: read the header only and check the dimensions before any pixel is decoded.
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(DecodeError::Corrupt(format!(
            "the header gives a size of {width}x{height}"
        )));
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(DecodeError::TooManyPixels {
            width,
            height,
            limit: limits.max_pixels,
        });
    }
    decoder
        .set_limits(decoder_limits(width, height, limits))
        .map_err(|e| limit_error(e, width, height, limits))?;

    // A malformed EXIF block is common in camera files and is not worth refusing the
    // photo over; the pixels are then taken as stored.
    let orientation = decoder.orientation().unwrap_or_else(|e| {
        tracing::debug!(error = %e, "unreadable exif orientation, assuming upright");
        Orientation::NoTransforms
    });

    // Step 4: decode, turn upright, and normalise to 8-bit RGB.
    let mut image =
        DynamicImage::from_decoder(decoder).map_err(|e| limit_error(e, width, height, limits))?;
    image.apply_orientation(orientation);
    let image = into_rgb_on_white(image);

    // Step 5: look for damage the decoder glossed over.
    let damage = match format {
        PhotoFormat::Jpeg => jpeg_damage(bytes),
        PhotoFormat::Png => png_damage(bytes),
    };
    if let Some(reason) = damage {
        tracing::debug!(%format, reason, "photo decoded but is damaged");
    }

    Ok(DecodedPhoto {
        image,
        damaged: damage.is_some(),
        orientation: orientation.to_exif(),
        format,
    })
}

/// Limits handed to the decoder as a second line of defence: exactly the announced size,
/// and memory for the largest pixel format (16-bit RGBA) plus working buffers.
fn decoder_limits(width: u32, height: u32, limits: &DecodeLimits) -> Limits {
    const WORKING_MEMORY: u64 = 64 * 1024 * 1024;
    let mut decoder_limits = Limits::default();
    decoder_limits.max_image_width = Some(width);
    decoder_limits.max_image_height = Some(height);
    decoder_limits.max_alloc = Some(
        limits
            .max_pixels
            .saturating_mul(8)
            .saturating_add(WORKING_MEMORY),
    );
    decoder_limits
}

fn decode_error(e: ImageError) -> DecodeError {
    match e {
        ImageError::Unsupported(_) => DecodeError::Unsupported,
        other => DecodeError::Corrupt(other.to_string()),
    }
}

fn limit_error(e: ImageError, width: u32, height: u32, limits: &DecodeLimits) -> DecodeError {
    match e {
        ImageError::Limits(_) => DecodeError::TooManyPixels {
            width,
            height,
            limit: limits.max_pixels,
        },
        other => decode_error(other),
    }
}

/// Converts any pixel format to 8-bit RGB; transparent pixels become white, as a viewer
/// shows them on a white page.
fn into_rgb_on_white(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }

    let rgba = image.into_rgba8();
    let (width, height) = rgba.dimensions();
    let mut rgb = Vec::with_capacity(rgba.as_raw().len() / 4 * 3);
    for pixel in rgba.pixels() {
        let [r, g, b, a] = pixel.0.map(u32::from);
        let over_white = |c: u32| ((c * a + 255 * (255 - a) + 127) / 255) as u8;
        rgb.extend([over_white(r), over_white(g), over_white(b)]);
    }

    // `rgb` holds exactly three bytes for each pixel of a width x height image, which is
    // all `from_raw` checks; the fallback is never taken.
    RgbImage::from_raw(width, height, rgb).unwrap_or_else(|| RgbImage::new(width, height))
}

/// A run of this many zero bytes inside the entropy-coded data of a scan that is checked
/// (see [`zero_runs_mean_damage`]) is a zeroed block, not image content.
const ZEROED_RUN: usize = 32;

/// Walks the JPEG marker structure and reports why the file is evidently broken, if it is:
/// no end-of-image marker (the file was cut short), or a zeroed run in scan data where
/// such a run cannot be image content. Bytes after the end-of-image marker, such as zero
/// padding some cameras write, are fine.
pub fn jpeg_damage(bytes: &[u8]) -> Option<&'static str> {
    const TRUNCATED: &str = "no end-of-image marker, the file was cut short";
    const ZEROED: &str = "a run of zero bytes in the image data";
    const BAD_LENGTH: &str = "a segment with an impossible length";

    let mut progressive = false;
    let mut i = 2; // past the start-of-image marker, which the format check already saw
    loop {
        // Between segments: skip stray bytes and fill bytes up to the next marker.
        while i < bytes.len() && bytes[i] != 0xFF {
            i += 1;
        }
        while i < bytes.len() && bytes[i] == 0xFF {
            i += 1;
        }
        let Some(&marker) = bytes.get(i) else {
            return Some(TRUNCATED);
        };
        i += 1;

        match marker {
            0xD9 => return None,            // end of image
            0x01 | 0xD0..=0xD8 => continue, // markers without a length
            // Start of frame, progressive (Huffman or arithmetic coded).
            0xC2 | 0xC6 | 0xCA | 0xCE => progressive = true,
            _ => {}
        }

        let Some(length) = bytes.get(i..i + 2) else {
            return Some(TRUNCATED);
        };
        let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
        if length < 2 {
            return Some(BAD_LENGTH);
        }
        let segment = i + 2..i + length;
        i += length;
        if i > bytes.len() {
            return Some(TRUNCATED);
        }

        // Start of scan: entropy-coded data follows, up to the next real marker.
        if marker == 0xDA {
            let check_zeros = zero_runs_mean_damage(progressive, &bytes[segment]);
            let mut zeros = 0;
            loop {
                let Some(&byte) = bytes.get(i) else {
                    return Some(TRUNCATED);
                };
                if byte == 0x00 {
                    zeros += 1;
                    if check_zeros && zeros >= ZEROED_RUN {
                        return Some(ZEROED);
                    }
                    i += 1;
                    continue;
                }
                zeros = 0;
                if byte != 0xFF {
                    i += 1;
                    continue;
                }
                match bytes.get(i + 1) {
                    None => return Some(TRUNCATED),
                    // A stuffed 0xFF data byte, or a restart marker: still in the scan.
                    Some(0x00) | Some(0xD0..=0xD7) => i += 2,
                    // Fill byte before a marker.
                    Some(0xFF) => i += 1,
                    // Any other marker ends the scan; the outer loop reads it.
                    Some(_) => break,
                }
            }
        }
    }
}

/// Whether a long run of zero bytes in this scan's data can only be a zeroed block.
///
/// In a sequential scan every block carries its own end-of-block code, and in a progressive
/// AC scan a flat area is coded as one end-of-band run for thousands of blocks, so Huffman
/// data there is never that regular. A progressive DC scan is different: it codes each
/// block with a single short code (first scan) or a single raw bit (refinement), and in a
/// flat area (a white wall, a blown-out sky) that code is all zero bits, block after block.
/// libjpeg's progressive encoding of `mde_cafe_group_7mp.jpg` has a run of 67 zero bytes in
/// its first DC scan. So DC scans of progressive files are not checked; a zeroed block
/// there, about a tenth of such a file, goes unnoticed (a known limit in the README).
///
/// `header` is the start-of-scan segment after its length: the component count, two bytes
/// per component, then the spectral start, spectral end and approximation bytes.
fn zero_runs_mean_damage(progressive: bool, header: &[u8]) -> bool {
    if !progressive {
        return true;
    }
    let components = header.first().map_or(0, |&n| usize::from(n));
    let spectral_start = header.get(1 + 2 * components).copied();
    // A header too short to say is itself malformed; checking errs on the side of damage.
    spectral_start != Some(0)
}

/// Walks the PNG chunks and reports whether the file was cut short before its end chunk.
fn png_damage(bytes: &[u8]) -> Option<&'static str> {
    const TRUNCATED: &str = "no end chunk, the file was cut short";

    let mut i = 8; // past the signature, which the format check already saw
    loop {
        let Some(header) = bytes.get(i..i + 8) else {
            return Some(TRUNCATED);
        };
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let kind = &header[4..8];

        // Length, type, data and CRC must all be present.
        let end = usize::try_from(length)
            .ok()
            .and_then(|l| i.checked_add(12)?.checked_add(l));
        match end {
            Some(end) if end <= bytes.len() => i = end,
            _ => return Some(TRUNCATED),
        }
        if kind == b"IEND" {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(scan: &[u8]) -> Vec<u8> {
        let mut bytes = vec![
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0xAA, 0xBB, 0xFF, 0xDA, 0x00, 0x02,
        ];
        bytes.extend_from_slice(scan);
        bytes
    }

    #[test]
    fn a_complete_jpeg_structure_is_not_damaged() {
        let mut ok = jpeg(&[1, 2, 0xFF, 0x00, 3, 0xFF, 0xD3, 4]);
        ok.extend([0xFF, 0xD9]);
        assert_eq!(jpeg_damage(&ok), None);

        // Padding and trailing data after the end marker are allowed.
        ok.extend([0u8; 500]);
        assert_eq!(jpeg_damage(&ok), None);
    }

    #[test]
    fn a_jpeg_without_end_marker_is_damaged() {
        assert!(jpeg_damage(&jpeg(&[1, 2, 3])).is_some());
        assert!(jpeg_damage(&jpeg(&[1, 2, 0xFF])).is_some());
        assert!(jpeg_damage(&[0xFF, 0xD8, 0xFF, 0xE0, 0x10]).is_some());
    }

    #[test]
    fn a_jpeg_with_a_zeroed_run_in_the_scan_is_damaged() {
        let mut scan = vec![7u8; 10];
        scan.extend([0u8; ZEROED_RUN]);
        scan.extend([0xFF, 0xD9]);
        assert!(jpeg_damage(&jpeg(&scan)).is_some());

        let mut short_run = vec![7u8; 10];
        short_run.extend([0u8; ZEROED_RUN - 1]);
        short_run.extend([0xFF, 0xD9]);
        assert_eq!(jpeg_damage(&jpeg(&short_run)), None);
    }

    /// A progressive frame header, then one single-component scan with the given
    /// spectral start, then `scan` as its data.
    fn progressive_jpeg(spectral_start: u8, scan: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xC2, 0x00, 0x04, 0xAA, 0xBB];
        let spectral_end = if spectral_start == 0 { 0 } else { 63 };
        bytes.extend([
            0xFF,
            0xDA,
            0x00,
            0x08,
            1,
            1,
            0x00,
            spectral_start,
            spectral_end,
            0,
        ]);
        bytes.extend_from_slice(scan);
        bytes
    }

    fn zeroed_scan() -> Vec<u8> {
        let mut scan = vec![7u8; 10];
        scan.extend([0u8; 4 * ZEROED_RUN]);
        scan.extend([0xFF, 0xD9]);
        scan
    }

    #[test]
    fn a_zero_run_in_a_progressive_dc_scan_is_a_flat_area_not_damage() {
        assert_eq!(jpeg_damage(&progressive_jpeg(0, &zeroed_scan())), None);
    }

    #[test]
    fn a_zeroed_run_in_a_progressive_ac_scan_is_damaged() {
        assert!(jpeg_damage(&progressive_jpeg(1, &zeroed_scan())).is_some());
    }

    #[test]
    fn a_progressive_jpeg_without_end_marker_is_damaged() {
        assert!(jpeg_damage(&progressive_jpeg(0, &[1, 2, 3])).is_some());
        assert!(jpeg_damage(&progressive_jpeg(1, &[1, 2, 3])).is_some());
    }

    #[test]
    fn a_png_without_end_chunk_is_damaged() {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend([0, 0, 0, 1]);
        png.extend(b"abcd");
        png.extend([9, 0, 0, 0, 0]);
        assert!(png_damage(&png).is_some());

        png.extend([0, 0, 0, 0]);
        png.extend(b"IEND");
        png.extend([0, 0, 0, 0]);
        assert_eq!(png_damage(&png), None);
    }

    #[test]
    fn transparency_is_flattened_onto_white() {
        let mut rgba = image::RgbaImage::new(2, 1);
        rgba.put_pixel(0, 0, image::Rgba([0, 0, 0, 0]));
        rgba.put_pixel(1, 0, image::Rgba([10, 20, 30, 255]));
        let rgb = into_rgb_on_white(DynamicImage::ImageRgba8(rgba));
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(rgb.get_pixel(1, 0).0, [10, 20, 30]);
    }

    #[test]
    fn empty_and_foreign_files_are_refused() {
        let limits = DecodeLimits::default();
        assert!(matches!(
            decode_upright(b"", &limits),
            Err(DecodeError::Empty)
        ));
        assert!(matches!(
            decode_upright(b"GIF89a......", &limits),
            Err(DecodeError::Unsupported)
        ));
        assert!(matches!(
            decode_upright(b"hello world", &limits),
            Err(DecodeError::Unsupported)
        ));
        assert!(decode_upright(&[0xFF, 0xD8, 0xFF], &limits).is_err());
    }
}
