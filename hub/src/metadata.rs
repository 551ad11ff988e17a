//! The delivered original's file: a fresh JPEG of the watermarked pixels with the facts of
//! the release written into EXIF and XMP, so tools that read metadata name the viewer too.
//!
//! The JPEG is encoded from pixels alone, so nothing of the camera's file (GPS position,
//! serial numbers, maker notes, thumbnails) can reach the parent.

use image::codecs::jpeg::JpegEncoder;
use image::RgbImage;
use img_parts::jpeg::{markers, Jpeg, JpegSegment};
use img_parts::{Bytes, ImageEXIF};
use little_exif::exif_tag::ExifTag;
use little_exif::metadata::Metadata;
use thiserror::Error;

use crate::watermark::ViewerMark;

/// JPEG quality of a delivered original: high, because this is the copy parents keep.
const JPEG_QUALITY: u8 = 90;

/// The namespace of Guardian's own XMP properties.
pub const XMP_NAMESPACE: &str = "https://guardian.example/ns/1.0/";

/// What opens an XMP APP1 segment (XMP specification, part 3, on JPEG).
const XMP_SIGNATURE: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";

/// The most one APP segment can hold: its 16-bit length counts itself too.
const MAX_SEGMENT_CONTENTS: usize = u16::MAX as usize - 2;

/// Why a delivered original could not be encoded.
#[derive(Debug, Error)]
pub enum MetadataError {
    /// The JPEG encoder failed; with an in-memory buffer this points at a bug in the
    /// encoder or at an image larger than JPEG allows (65,535 px a side).
    #[error("could not encode the original as JPEG: {0}")]
    Encode(#[from] image::ImageError),

    /// little_exif could not lay out the EXIF block built from the mark.
    #[error("could not build the EXIF block: {0}")]
    Exif(#[source] std::io::Error),

    /// The freshly encoded JPEG could not be split into segments; a bug in one of the two
    /// JPEG libraries.
    #[error("could not read back the encoded JPEG to add metadata: {0}")]
    Reparse(#[from] img_parts::Error),

    /// The metadata does not fit in one JPEG segment; only an absurdly long viewer name can
    /// cause this, so the account's name should be shortened.
    #[error(
        "the {segment} block is {len} bytes, over a JPEG segment's limit; shorten the viewer name"
    )]
    TooLarge { segment: &'static str, len: usize },

    /// Writing the finished JPEG into memory failed.
    #[error("could not write the finished JPEG: {0}")]
    Write(#[source] std::io::Error),
}

/// JPEG-encodes the watermarked image and embeds the same facts in EXIF and XMP.
///
/// EXIF (IFD0): Orientation 1, because the pixels are already upright; ImageDescription
/// "Guardian: delivered to <name> at <ip>, <time>, access <id>"; Artist = the viewer's
/// name; DateTime = the access time (with OffsetTime "+00:00", it is UTC); UserComment =
/// the description again, in the EXIF "UNICODE" (UTF-16) form that keeps any script.
/// ImageDescription and Artist are EXIF ASCII fields holding UTF-8 bytes, as ExifTool and
/// most current readers expect; the UserComment and XMP are the exact copies.
///
/// XMP: `guardian:viewer`, `guardian:clientIp`, `guardian:accessedAt`, `guardian:accessId`
/// in [`XMP_NAMESPACE`], plus `dc:description`.
pub fn encode_original(image: &RgbImage, mark: &ViewerMark) -> Result<Vec<u8>, MetadataError> {
    let mut pixels = Vec::new();
    JpegEncoder::new_with_quality(&mut pixels, JPEG_QUALITY).encode_image(image)?;

    let exif = exif_block(mark)?;
    if exif.len() > MAX_SEGMENT_CONTENTS - 6 {
        return Err(MetadataError::TooLarge {
            segment: "exif",
            len: exif.len(),
        });
    }
    let mut xmp = XMP_SIGNATURE.to_vec();
    xmp.extend_from_slice(xmp_packet(mark).as_bytes());
    if xmp.len() > MAX_SEGMENT_CONTENTS {
        return Err(MetadataError::TooLarge {
            segment: "xmp",
            len: xmp.len(),
        });
    }

    // img-parts places EXIF after the JFIF APP0 header; XMP goes right behind it, where
    // readers look for it.
    let mut jpeg = Jpeg::from_bytes(Bytes::from(pixels))?;
    jpeg.set_exif(Some(Bytes::from(exif)));
    let after_exif = jpeg
        .segments()
        .iter()
        .position(|s| s.marker() == markers::APP1)
        .map_or(1, |i| i + 1);
    let xmp_segment = JpegSegment::new_with_contents(markers::APP1, Bytes::from(xmp));
    jpeg.segments_mut().insert(after_exif, xmp_segment);

    let mut out = Vec::new();
    jpeg.encoder()
        .write_to(&mut out)
        .map_err(MetadataError::Write)?;
    Ok(out)
}

/// The TIFF-structured EXIF block (without the "Exif\0\0" prefix, which img-parts adds).
fn exif_block(mark: &ViewerMark) -> Result<Vec<u8>, MetadataError> {
    let description = clean(&mark.description());
    let name = clean(&mark.viewer_name);

    let mut exif = Metadata::new();
    exif.set_tag(ExifTag::Orientation(vec![1]));
    exif.set_tag(ExifTag::ImageDescription(description.clone()));
    exif.set_tag(ExifTag::Artist(name));
    exif.set_tag(ExifTag::Software("Guardian hub".to_owned()));
    // The tag little_exif calls ModifyDate is TIFF's DateTime (0x0132).
    exif.set_tag(ExifTag::ModifyDate(
        mark.at.format("%Y:%m:%d %H:%M:%S").to_string(),
    ));
    exif.set_tag(ExifTag::ExifVersion(b"0231".to_vec()));
    exif.set_tag(ExifTag::OffsetTime("+00:00".to_owned()));
    exif.set_tag(ExifTag::UserComment(user_comment(&description)));
    exif.encode().map_err(MetadataError::Exif)
}

/// EXIF UserComment in its Unicode form: the 8-byte "UNICODE\0" code, then UTF-16 in the
/// block's byte order, which little_exif's `Metadata::new` makes little-endian.
fn user_comment(text: &str) -> Vec<u8> {
    let mut bytes = b"UNICODE\0".to_vec();
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    bytes
}

/// The XMP packet; every value is XML-escaped.
fn xmp_packet(mark: &ViewerMark) -> String {
    let viewer = xml_escape(&mark.viewer_name);
    let ip = xml_escape(&mark.client_ip.to_string());
    let at = xml_escape(&mark.timestamp());
    let id = xml_escape(&mark.access_id.to_string());
    let description = xml_escape(&mark.description());
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n\
         <x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n\
         <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n\
         <rdf:Description rdf:about=\"\"\n \
         xmlns:dc=\"http://purl.org/dc/elements/1.1/\"\n \
         xmlns:guardian=\"{XMP_NAMESPACE}\">\n\
         <guardian:viewer>{viewer}</guardian:viewer>\n\
         <guardian:clientIp>{ip}</guardian:clientIp>\n\
         <guardian:accessedAt>{at}</guardian:accessedAt>\n\
         <guardian:accessId>{id}</guardian:accessId>\n\
         <dc:description><rdf:Alt>\n\
         <rdf:li xml:lang=\"x-default\">{description}</rdf:li>\n\
         </rdf:Alt></dc:description>\n\
         </rdf:Description>\n\
         </rdf:RDF>\n\
         </x:xmpmeta>\n\
         <?xpacket end=\"r\"?>"
    )
}

/// Escapes the five XML specials. Control characters, which XML 1.0 forbids and which
/// would end an EXIF string early (NUL), become U+FFFD first.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in clean(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

/// Replaces control characters with U+FFFD: XML 1.0 forbids most of them and a NUL would
/// cut an EXIF string short.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watermark::draw;
    use crate::watermark::tests::{load, mark, save_artifact, testdata};
    use exif::{In, Tag, Value};
    use image::Rgb;

    fn read_exif(jpeg: &[u8]) -> exif::Exif {
        exif::Reader::new()
            .read_from_container(&mut std::io::Cursor::new(jpeg))
            .expect("EXIF reads back")
    }

    fn ascii(exif: &exif::Exif, tag: Tag) -> String {
        let field = exif
            .get_field(tag, In::PRIMARY)
            .unwrap_or_else(|| panic!("no {tag}"));
        match &field.value {
            Value::Ascii(parts) => String::from_utf8(parts.concat()).expect("UTF-8"),
            other => panic!("{tag} is {other:?}"),
        }
    }

    fn user_comment_text(exif: &exif::Exif) -> String {
        let field = exif
            .get_field(Tag::UserComment, In::PRIMARY)
            .expect("no UserComment");
        let Value::Undefined(bytes, _) = &field.value else {
            panic!("UserComment is {:?}", field.value);
        };
        let (code, text) = bytes.split_at(8);
        assert_eq!(code, b"UNICODE\0");
        let units: Vec<u16> = text
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16(&units).expect("UTF-16")
    }

    /// The XMP packet's text, found by its signature among the APP1 segments.
    fn xmp_text(jpeg: &[u8]) -> String {
        let jpeg = Jpeg::from_bytes(Bytes::copy_from_slice(jpeg)).expect("JPEG");
        let segment = jpeg
            .segments_by_marker(markers::APP1)
            .find(|s| s.contents().starts_with(XMP_SIGNATURE))
            .expect("an XMP segment");
        String::from_utf8(segment.contents()[XMP_SIGNATURE.len()..].to_vec()).expect("UTF-8")
    }

    fn xmp_value(doc: &roxmltree::Document<'_>, name: &str) -> String {
        doc.descendants()
            .find(|n| {
                n.tag_name().namespace() == Some(XMP_NAMESPACE) && n.tag_name().name() == name
            })
            .unwrap_or_else(|| panic!("no guardian:{name}"))
            .text()
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn exif_and_xmp_name_the_viewer_in_any_script() {
        let image = RgbImage::from_pixel(64, 48, Rgb([90, 120, 150]));
        for name in ["Renée Ødegård-Çelik", "王测试", "O'Brien & <Sons> \"Ltd\""] {
            let m = mark(name);
            let jpeg = encode_original(&image, &m).expect("encode");
            let decoded = image::load_from_memory(&jpeg).expect("still a JPEG");
            assert_eq!((decoded.width(), decoded.height()), (64, 48));

            let exif = read_exif(&jpeg);
            let description = ascii(&exif, Tag::ImageDescription);
            assert_eq!(
                description,
                format!(
                    "Guardian: delivered to {name} at 203.0.113.42, 2025-03-01T10:22:33Z, \
                     access 6f1c2a9e-4b7d-4e21-9c3a-0d5e8f7a1b24"
                )
            );
            assert_eq!(ascii(&exif, Tag::Artist), name);
            assert_eq!(ascii(&exif, Tag::DateTime), "2025:03:01 10:22:33");
            assert_eq!(ascii(&exif, Tag::OffsetTime), "+00:00");
            assert_eq!(user_comment_text(&exif), description);
            let orientation = exif
                .get_field(Tag::Orientation, In::PRIMARY)
                .expect("orientation");
            assert_eq!(orientation.value.get_uint(0), Some(1));

            let xmp = xmp_text(&jpeg);
            let doc = roxmltree::Document::parse(&xmp).expect("XMP is well-formed XML");
            assert_eq!(xmp_value(&doc, "viewer"), name);
            assert_eq!(xmp_value(&doc, "clientIp"), "203.0.113.42");
            assert_eq!(xmp_value(&doc, "accessedAt"), "2025-03-01T10:22:33Z");
            assert_eq!(
                xmp_value(&doc, "accessId"),
                "6f1c2a9e-4b7d-4e21-9c3a-0d5e8f7a1b24"
            );
        }
    }

    #[test]
    fn an_ipv6_client_and_control_characters_survive_as_valid_metadata() {
        let image = RgbImage::from_pixel(32, 32, Rgb([0, 0, 0]));
        let mut m = mark("line\nbreak\0nul");
        m.client_ip = "2001:db8::1".parse().expect("ip");
        let jpeg = encode_original(&image, &m).expect("encode");

        let exif = read_exif(&jpeg);
        assert_eq!(ascii(&exif, Tag::Artist), "line\u{fffd}break\u{fffd}nul");
        let xmp = xmp_text(&jpeg);
        let doc = roxmltree::Document::parse(&xmp).expect("well-formed");
        assert_eq!(xmp_value(&doc, "clientIp"), "2001:db8::1");
        assert_eq!(xmp_value(&doc, "viewer"), "line\u{fffd}break\u{fffd}nul");
    }

    #[test]
    fn a_camera_photo_loses_its_gps_and_serial_numbers() {
        let path = testdata("mde_train_window_phone_exif6.jpg");
        let source = std::fs::read(&path).expect("read source");
        // The fixture must really carry what we strip, or this test proves nothing.
        let source_exif = read_exif(&source);
        let has_gps = source_exif
            .fields()
            .any(|f| f.tag.context() == exif::Context::Gps);
        assert!(has_gps, "the fixture has no GPS tags");
        assert!(source_exif.get_field(Tag::Make, In::PRIMARY).is_some());

        let mut upright = image::load_from_memory(&source).expect("decode");
        upright.apply_orientation(image::metadata::Orientation::Rotate90);
        let mut upright = upright.to_rgb8();
        draw(&mut upright, &mark("Renée Ødegård-Çelik"));
        let jpeg = encode_original(&upright, &mark("Renée Ødegård-Çelik")).expect("encode");

        let exif = read_exif(&jpeg);
        for field in exif.fields() {
            let gps =
                field.tag == Tag::GPSInfoIFDPointer || field.tag.context() == exif::Context::Gps;
            assert!(!gps, "GPS field {} survived", field.tag);
        }
        for tag in [
            Tag::Make,
            Tag::Model,
            Tag::BodySerialNumber,
            Tag::LensSerialNumber,
            Tag::ImageUniqueID,
            Tag::MakerNote,
            Tag::CameraOwnerName,
        ] {
            assert!(exif.get_field(tag, In::PRIMARY).is_none(), "{tag} survived");
        }
        assert!(
            exif.get_field(Tag::JPEGInterchangeFormat, In::THUMBNAIL)
                .is_none(),
            "a thumbnail survived"
        );
        let orientation = exif
            .get_field(Tag::Orientation, In::PRIMARY)
            .expect("orientation");
        assert_eq!(orientation.value.get_uint(0), Some(1));
    }

    #[test]
    fn a_watermarked_photo_is_saved_for_a_person_to_look_at() {
        let cases = [
            ("voc_2008_001322.jpg", "Renée Ødegård-Çelik", None),
            ("mde_two_men_office_8mp.jpg", "王测试", None),
            (
                "astronaut_collins.png",
                "Renée Ødegård-Çelik",
                Some((320, 320)),
            ),
            ("hopper.jpg", "Demo Parent", None),
        ];
        for (file, name, resize) in cases {
            let mut image = load(file);
            if let Some((w, h)) = resize {
                image =
                    image::imageops::resize(&image, w, h, image::imageops::FilterType::Triangle);
            }
            draw(&mut image, &mark(name));
            let jpeg = encode_original(&image, &mark(name)).expect("encode");
            let stem = format!(
                "watermark_{}_{}",
                file.split('.').next().unwrap_or(file),
                image.width()
            );
            let path = save_artifact(&stem, &jpeg);
            assert!(path.is_file());
        }
    }

    #[test]
    fn an_absurdly_long_name_is_refused_not_truncated_silently() {
        let image = RgbImage::from_pixel(8, 8, Rgb([0, 0, 0]));
        let result = encode_original(&image, &mark(&"x".repeat(70_000)));
        assert!(
            matches!(result, Err(MetadataError::TooLarge { .. })),
            "{result:?}"
        );
    }
}
