//! Photos stored sideways on purpose: an upright picture re-encoded with its pixels
//! transformed and an Exif Orientation tag that turns them upright again (C02).

use image::codecs::jpeg::JpegEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, RgbImage};

/// Encodes `upright` as a JPEG whose pixels are stored so that applying EXIF `orientation`
/// (1 to 8) shows them upright again, with a minimal Exif segment carrying that orientation.
pub fn jpeg_with_orientation(upright: &RgbImage, orientation: u8) -> Vec<u8> {
    // 6 and 8 undo each other; every other orientation is its own inverse.
    let inverse = match orientation {
        6 => 8,
        8 => 6,
        other => other,
    };
    let mut stored = DynamicImage::ImageRgb8(upright.clone());
    stored.apply_orientation(Orientation::from_exif(inverse).expect("orientation 1 to 8"));

    // The helper is only as good as its inverse: check it before encoding.
    let mut check = stored.clone();
    check.apply_orientation(Orientation::from_exif(orientation).expect("orientation 1 to 8"));
    assert_eq!(
        check.to_rgb8(),
        *upright,
        "inverse of orientation {orientation}"
    );

    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, 95)
        .encode_image(&stored.to_rgb8())
        .expect("encode a JPEG in memory");

    let mut file = jpeg[..2].to_vec(); // start-of-image marker
    file.extend(exif_app1(orientation));
    file.extend(&jpeg[2..]);
    file
}

/// An APP1 segment holding a big-endian TIFF header and one IFD with one entry:
/// Orientation (tag 0x0112), type SHORT, count 1.
pub fn exif_app1(orientation: u8) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend(b"MM\x00\x2a"); // big-endian TIFF
    tiff.extend(8u32.to_be_bytes()); // first IFD right after the header
    tiff.extend(1u16.to_be_bytes()); // one entry
    tiff.extend(0x0112u16.to_be_bytes()); // Orientation
    tiff.extend(3u16.to_be_bytes()); // SHORT
    tiff.extend(1u32.to_be_bytes()); // one value
    tiff.extend(u16::from(orientation).to_be_bytes());
    tiff.extend([0, 0]); // value field padding
    tiff.extend(0u32.to_be_bytes()); // no next IFD

    let mut payload = b"Exif\x00\x00".to_vec();
    payload.extend(tiff);
    let mut segment = vec![0xFF, 0xE1];
    segment.extend((payload.len() as u16 + 2).to_be_bytes());
    segment.extend(payload);
    segment
}
