//! `decode_upright` on the shared photos and on broken or oversized files made from them.

mod common;

use common::{annotations, decode, mean_abs_diff, read};
use guardian_e2e::exif::jpeg_with_orientation;
use guardian_models::photo::{decode_upright, DecodeError, DecodeLimits, PhotoFormat};
use guardian_models::{CenterFace, FaceDetector};

/// JPEG re-encoding and chroma subsampling move pixels a little; a wrong orientation moves
/// them by tens of levels.
const SAME_IMAGE: f64 = 8.0;

#[test]
fn every_shared_photo_decodes_cleanly_upright_with_its_recorded_size() {
    let annotations = annotations();
    let files = annotations.as_object().expect("faces.json is an object");
    assert_eq!(files.len(), 19);

    for (name, info) in files {
        let photo = decode(name);
        let size = &info["size"];
        let (w, h) = (
            size[0].as_u64().unwrap() as u32,
            size[1].as_u64().unwrap() as u32,
        );
        let orientation = info["exif_orientation"].as_u64().unwrap_or(1) as u8;
        let upright = if orientation >= 5 { (h, w) } else { (w, h) };

        assert!(!photo.damaged, "{name} flagged as damaged");
        assert_eq!(photo.image.dimensions(), upright, "{name}");
        assert_eq!(photo.orientation, orientation, "{name}");
        let format = if name.ends_with(".png") {
            PhotoFormat::Png
        } else {
            PhotoFormat::Jpeg
        };
        assert_eq!(photo.format, format, "{name}");
    }
}

#[test]
fn exif_rotated_photos_decode_upright() {
    let train = decode("mde_train_window_phone_exif6.jpg");
    assert_eq!(
        (train.orientation, train.image.dimensions()),
        (6, (480, 640))
    );

    let couple = decode("mde_couple_balcony_exif6_8mp.jpg");
    assert_eq!(
        (couple.orientation, couple.image.dimensions()),
        (6, (2448, 3264))
    );

    // Square, so the size proves nothing: compare the pixels with the upright original.
    let hopper = decode("hopper.jpg").image;
    let rotated = decode("hopper_orientation_6.jpg");
    assert_eq!(rotated.orientation, 6);
    let diff = mean_abs_diff(&rotated.image, &hopper);
    assert!(
        diff < SAME_IMAGE,
        "hopper_orientation_6 differs from hopper by {diff}"
    );
}

#[test]
fn all_eight_exif_orientations_decode_upright_and_centerface_finds_the_face() {
    let upright = decode("hopper.jpg").image;
    let mut detector = CenterFace::new().unwrap();
    let reference = detector.detect(&upright).unwrap();
    assert_eq!(reference.len(), 1, "{reference:?}");

    for orientation in 1..=8u8 {
        let file = jpeg_with_orientation(&upright, orientation);
        let photo = decode_upright(&file, &DecodeLimits::default()).unwrap();
        assert_eq!(photo.orientation, orientation);
        assert!(!photo.damaged);

        let diff = mean_abs_diff(&photo.image, &upright);
        assert!(
            diff < SAME_IMAGE,
            "orientation {orientation}: differs by {diff}"
        );

        let faces = detector.detect(&photo.image).unwrap();
        let best = faces
            .iter()
            .map(|f| f.iou(&reference[0]))
            .fold(0.0, f32::max);
        assert!(
            best > 0.5,
            "orientation {orientation}: face not found where expected: {faces:?}"
        );
    }
}

#[test]
fn a_jpeg_cut_to_60_percent_is_flagged_damaged_or_refused() {
    let bytes = read("voc_2008_001322.jpg");
    let cut = &bytes[..bytes.len() * 6 / 10];
    assert_not_clean(decode_upright(cut, &DecodeLimits::default()), "cut to 60%");

    // Zero padding after a cut must not hide it.
    let mut padded = cut.to_vec();
    padded.extend([0u8; 4096]);
    assert_not_clean(
        decode_upright(&padded, &DecodeLimits::default()),
        "cut and padded",
    );
}

#[test]
fn a_jpeg_with_100_zeroed_bytes_is_flagged_damaged_or_refused() {
    let mut bytes = read("voc_2008_001322.jpg");
    let middle = bytes.len() / 2;
    bytes[middle..middle + 100].fill(0);
    assert_not_clean(
        decode_upright(&bytes, &DecodeLimits::default()),
        "100 zeroed bytes",
    );
}

#[test]
fn bytes_after_the_end_of_a_jpeg_do_not_make_it_damaged() {
    let mut bytes = read("voc_2008_001322.jpg");
    bytes.extend([0u8; 1000]);
    bytes.extend(b"trailer some cameras write");
    let photo = decode_upright(&bytes, &DecodeLimits::default()).unwrap();
    assert!(!photo.damaged);
}

/// A progressive re-encoding of a JPEG by libjpeg-turbo's `jpegtran` (Debian's
/// libjpeg-turbo-progs, which `.ci/run` installs): lossless, with libjpeg's default
/// progressive scan script, as cameras and photo tools write them. The `image` crate
/// cannot write progressive files.
fn progressive(jpeg: &[u8]) -> Vec<u8> {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let mut child = Command::new("jpegtran")
        .args(["-progressive", "-copy", "none"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("jpegtran is missing: apt-get install libjpeg-turbo-progs");
    let mut stdin = child.stdin.take().unwrap();
    let input = jpeg.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success(), "jpegtran failed");
    output.stdout
}

/// The 8 MP office photo shrunk to 500x375 (a baseline JPEG), made progressive.
fn small_progressive() -> Vec<u8> {
    let source = decode("mde_two_men_office_8mp.jpg").image;
    let small = image::imageops::resize(&source, 500, 375, image::imageops::FilterType::Lanczos3);
    let mut baseline = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut baseline, 85)
        .encode_image(&small)
        .unwrap();
    progressive(&baseline)
}

const CAFE_PROGRESSIVE: &str = "mde_cafe_group_7mp.jpg made progressive";
const TWO_MEN_PROGRESSIVE: &str = "mde_two_men_office_8mp.jpg at 500x375 made progressive";

#[test]
fn progressive_jpegs_from_libjpeg_are_not_damaged_and_their_faces_are_found() {
    // The cafe photo's first DC scan holds a 40-byte run of zeros (a flat area), which the
    // first damage check took for a zeroed block: the whole preview was covered.
    let mut detector = CenterFace::new().unwrap();
    let baseline = decode("mde_cafe_group_7mp.jpg");
    let expected = detector.detect(&baseline.image).unwrap();
    assert!(expected.len() >= 4, "baseline cafe photo: {expected:?}");

    let cafe_bytes = progressive(&read("mde_cafe_group_7mp.jpg"));
    let cafe = decode_upright(&cafe_bytes, &DecodeLimits::default()).unwrap();
    assert!(!cafe.damaged, "{CAFE_PROGRESSIVE} flagged as damaged");
    assert_eq!(cafe.image.dimensions(), baseline.image.dimensions());
    let faces = detector.detect(&cafe.image).unwrap();
    for face in &expected {
        let best = faces.iter().map(|f| f.iou(face)).fold(0.0, f32::max);
        assert!(
            best > 0.5,
            "{CAFE_PROGRESSIVE}: face {face:?} of the baseline file not found: {faces:?}"
        );
    }

    let two_men = decode_upright(&small_progressive(), &DecodeLimits::default()).unwrap();
    assert!(!two_men.damaged, "{TWO_MEN_PROGRESSIVE} flagged as damaged");
    assert_eq!(two_men.image.dimensions(), (500, 375));
    let faces = detector.detect(&two_men.image).unwrap();
    assert_eq!(faces.len(), 2, "{TWO_MEN_PROGRESSIVE}: {faces:?}");
}

#[test]
fn a_progressive_jpeg_cut_short_or_with_100_zeroed_bytes_is_flagged_damaged_or_refused() {
    let bytes = progressive(&read("mde_cafe_group_7mp.jpg"));
    let cut = &bytes[..bytes.len() * 6 / 10];
    assert_not_clean(
        decode_upright(cut, &DecodeLimits::default()),
        "progressive cut to 60%",
    );

    // Four fifths into the file lies in its last scan, an AC refinement scan: AC scans
    // hold most of a progressive file. DC scans are not checked for zeroed runs.
    let mut zeroed = bytes.clone();
    let at = zeroed.len() * 4 / 5;
    zeroed[at..at + 100].fill(0);
    assert_not_clean(
        decode_upright(&zeroed, &DecodeLimits::default()),
        "progressive with 100 zeroed bytes",
    );
}

#[test]
fn a_png_cut_short_is_flagged_damaged_or_refused() {
    let bytes = read("astronaut_collins.png");
    let cut = &bytes[..bytes.len() * 6 / 10];
    assert_not_clean(
        decode_upright(cut, &DecodeLimits::default()),
        "png cut to 60%",
    );
}

#[test]
fn a_file_over_the_byte_limit_is_refused() {
    let bytes = read("voc_2008_001322.jpg");
    let limits = DecodeLimits {
        max_bytes: bytes.len() - 1,
        ..DecodeLimits::default()
    };
    let err = decode_upright(&bytes, &limits).unwrap_err();
    assert!(
        matches!(err, DecodeError::TooLarge { size, limit } if size == bytes.len() && limit == bytes.len() - 1)
    );
    assert!(err.to_string().contains("over the limit"), "{err}");
}

#[test]
fn a_photo_over_the_pixel_limit_is_refused() {
    let bytes = read("voc_2008_001322.jpg");
    let limits = DecodeLimits {
        max_pixels: 500 * 375 - 1,
        ..DecodeLimits::default()
    };
    let err = decode_upright(&bytes, &limits).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::TooManyPixels {
                width: 500,
                height: 375,
                ..
            }
        ),
        "{err}"
    );

    let ok = DecodeLimits {
        max_pixels: 500 * 375,
        ..DecodeLimits::default()
    };
    assert!(decode_upright(&bytes, &ok).is_ok());
}

#[test]
fn a_small_file_claiming_a_huge_size_is_refused_from_its_header() {
    // A 6 KB file whose header claims 60000x60000 pixels, the shape of a decompression
    // bomb: refused before any allocation for the pixels.
    let mut bytes = read("hopper.jpg");
    let sof = bytes
        .windows(2)
        .position(|w| w[0] == 0xFF && matches!(w[1], 0xC0 | 0xC2))
        .expect("hopper.jpg has a frame header");
    bytes[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);

    let err = decode_upright(&bytes, &DecodeLimits::default()).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::TooManyPixels {
                width: 60000,
                height: 60000,
                ..
            }
        ),
        "{err}"
    );
}

fn assert_not_clean(result: Result<guardian_models::photo::DecodedPhoto, DecodeError>, what: &str) {
    match result {
        Ok(photo) => assert!(photo.damaged, "{what}: decoded as a clean photo"),
        Err(e) => eprintln!("{what}: refused: {e}"),
    }
}
