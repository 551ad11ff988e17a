//! Capturing: each new photo file in the source becomes one sealed photo in the
//! outbox, faces covered in its preview.
//!
//! Per file: read it (at most `MAX_ORIGINAL_BYTES`), skip it if its content was
//! captured before, decode it upright, detect faces, make the covered preview,
//! seal everything for the hub, and commit the envelope together with the
//! file's content hash in one transaction. The unsealed original and preview
//! exist only in memory. A file that can never be captured (not a photo, too
//! large) is remembered as failed, so it is not retried on every scan.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use guardian_models::photo::{
    decode_upright, jpeg_damage, DecodeError, DecodeLimits, DecodedPhoto, PhotoFormat,
};
use guardian_models::FaceDetector;
use guardian_protocol::{FaceRect, HubSealingPublic, PhotoDetails, MAX_ORIGINAL_BYTES};
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, info, instrument, warn};
use uuid::Uuid;

use crate::camera::supervisor::Still;
use crate::cover::{self, CoverBox, CoverError};
use crate::events::{self, Event};
use crate::outbox::{NewPhoto, Outbox, OutboxError};
use crate::seal::{seal_envelope, SealError, SealedEnvelope};
use crate::source::{read_photo, ReadError, Source, SourceError};

/// How often a source is scanned again for new files.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// How soon to scan again while files are still being written or were just
/// captured, when the run ends once everything is captured.
const RESCAN_SOON: Duration = Duration::from_millis(300);

/// What the capture thread tells the sync worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureNews {
    /// A photo was committed to the outbox and can be published.
    Captured(Uuid),
    /// Every file in the source is captured (only when the run ends once synced).
    Finished,
    /// Capturing stopped because the outbox could not be written.
    Stopped(String),
}

/// The label stored with a photo taken by the camera, where a file's path
/// would be.
pub const CAMERA_SOURCE: &str = "camera";

/// The preview of a captured photo, faces covered, for the device's screen.
#[derive(Debug, Clone)]
pub struct CoveredPreview {
    pub jpeg: Vec<u8>,
    pub faces: usize,
}

/// What became of one camera still.
#[derive(Debug)]
pub enum StillOutcome {
    /// Sealed and committed to the outbox.
    Captured {
        photo_id: Uuid,
        preview: CoveredPreview,
    },
    /// The still could not be sealed.
    Failed(CaptureError),
}

/// What became of one source file.
#[derive(Debug)]
pub enum Outcome {
    /// Sealed and committed to the outbox.
    Captured { photo_id: Uuid },
    /// A file with this content was captured (or refused) before.
    AlreadyCaptured,
    /// The file could not be captured.
    Failed(CaptureError),
}

/// Why one file could not be captured.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(transparent)]
    Read(#[from] ReadError),

    #[error(transparent)]
    Decode(#[from] DecodeError),

    #[error("cannot make the preview: {0}")]
    Cover(#[from] CoverError),

    #[error(transparent)]
    Seal(#[from] SealError),

    /// Library code panicked on this file; it is remembered and skipped, so
    /// one hostile file cannot crash the device in a loop.
    #[error("the {stage} crashed on this file; report the file to the developers")]
    Crashed { stage: &'static str },
}

impl CaptureError {
    /// Whether the same bytes would fail again, so the file is remembered and
    /// not retried. An unreadable file or a failed encryption may succeed later.
    fn is_about_content(&self) -> bool {
        match self {
            CaptureError::Read(ReadError::TooLarge { .. }) => true,
            CaptureError::Read(ReadError::Io(_)) => false,
            CaptureError::Decode(_) | CaptureError::Cover(_) => true,
            CaptureError::Crashed { .. } => true,
            CaptureError::Seal(SealError::TooLarge { .. }) => true,
            CaptureError::Seal(SealError::Seal(_)) => false,
        }
    }
}

/// Turns source files into sealed photos in the outbox. Holds the face
/// detector, built once, for every photo.
pub struct Capturer {
    detector: Box<dyn FaceDetector>,
    device_id: Uuid,
    hub: HubSealingPublic,
    outbox: Outbox,
    limits: DecodeLimits,
}

impl Capturer {
    pub fn new(
        detector: Box<dyn FaceDetector>,
        device_id: Uuid,
        hub: HubSealingPublic,
        outbox: Outbox,
    ) -> Self {
        Self {
            detector,
            device_id,
            hub,
            outbox,
            limits: DecodeLimits {
                max_bytes: MAX_ORIGINAL_BYTES,
                ..DecodeLimits::default()
            },
        }
    }

    /// Captures one file; `source` is the path as found, stored with the photo.
    /// Only an outbox failure is an error: anything wrong with the file itself
    /// is an [`Outcome::Failed`].
    #[instrument(skip_all, fields(source = %source))]
    pub fn capture_file(&mut self, path: &Path, source: &str) -> Result<Outcome, OutboxError> {
        let file = match read_photo(path) {
            Ok(file) => file,
            Err(ReadError::TooLarge {
                size,
                limit,
                content_sha256,
            }) => {
                if self.outbox.knows_source(&content_sha256)? {
                    return Ok(Outcome::AlreadyCaptured);
                }
                let error = CaptureError::Read(ReadError::TooLarge {
                    size,
                    limit,
                    content_sha256,
                });
                self.outbox
                    .record_failed_source(&content_sha256, source, &error.to_string())?;
                return Ok(Outcome::Failed(error));
            }
            Err(error) => return Ok(Outcome::Failed(error.into())),
        };

        if self.outbox.knows_source(&file.content_sha256)? {
            return Ok(Outcome::AlreadyCaptured);
        }

        let sealed = match self.seal_photo(&file.bytes) {
            Ok((sealed, _)) => sealed,
            Err(error) => {
                if error.is_about_content() {
                    self.outbox.record_failed_source(
                        &file.content_sha256,
                        source,
                        &error.to_string(),
                    )?;
                }
                return Ok(Outcome::Failed(error));
            }
        };

        self.outbox.record_capture(&NewPhoto {
            photo_id: sealed.photo_id,
            envelope: &sealed.bytes,
            envelope_sha256: sealed.sha256,
            source,
            captured_at: sealed.captured_at,
            content_sha256: file.content_sha256,
        })?;
        Ok(Outcome::Captured {
            photo_id: sealed.photo_id,
        })
    }

    /// Captures a still from the camera: seals it and commits it to the outbox.
    /// Unlike a file, a still is never skipped as seen before: two presses
    /// are two photos even if the picture did not change. Only an outbox
    /// failure is an error.
    ///
    /// The camera supervisor already decoded the still, so its pixels are used
    /// as they are (a camera frame carries no EXIF orientation); only the
    /// JPEG's damage check runs again, since a frame can decode with zeroed
    /// blocks in it.
    #[instrument(skip_all)]
    pub fn capture_still(&mut self, still: Still) -> Result<StillOutcome, OutboxError> {
        let jpeg = still.jpeg;
        let photo = DecodedPhoto {
            image: still.image,
            damaged: jpeg_damage(&jpeg).is_some(),
            orientation: 1,
            format: PhotoFormat::Jpeg,
        };
        let (sealed, preview) = match self.seal_decoded(&photo, &jpeg) {
            Ok(sealed) => sealed,
            Err(error) => return Ok(StillOutcome::Failed(error)),
        };

        self.outbox.record_capture(&NewPhoto {
            photo_id: sealed.photo_id,
            envelope: &sealed.bytes,
            envelope_sha256: sealed.sha256,
            source: CAMERA_SOURCE,
            captured_at: sealed.captured_at,
            content_sha256: content_sha256(&jpeg),
        })?;
        Ok(StillOutcome::Captured {
            photo_id: sealed.photo_id,
            preview,
        })
    }

    /// The outbox this capturer writes, for the kiosk's status line.
    pub fn outbox(&mut self) -> &mut Outbox {
        &mut self.outbox
    }

    /// Decodes, finds faces, covers them in a preview and seals it all.
    fn seal_photo(
        &mut self,
        original: &[u8],
    ) -> Result<(SealedEnvelope, CoveredPreview), CaptureError> {
        let limits = self.limits;
        let photo = without_panic(|| decode_upright(original, &limits))
            .ok_or(CaptureError::Crashed { stage: "decoder" })??;
        self.seal_decoded(&photo, original)
    }

    /// Finds faces in a decoded photo, covers them in a preview and seals it
    /// all with the original file.
    fn seal_decoded(
        &mut self,
        photo: &DecodedPhoto,
        original: &[u8],
    ) -> Result<(SealedEnvelope, CoveredPreview), CaptureError> {
        let (width, height) = photo.image.dimensions();

        // A failed detector has not checked the photo, so the preview is
        // covered whole, exactly as for a damaged file; the photo itself is
        // still delivered.
        let detector = &mut self.detector;
        let (faces, unchecked) = match without_panic(|| detector.detect(&photo.image)) {
            Some(Ok(faces)) => (faces, false),
            Some(Err(error)) => {
                warn!(%error, "face detection failed; covering the whole preview");
                (Vec::new(), true)
            }
            None => {
                warn!("the face detector crashed; covering the whole preview");
                (Vec::new(), true)
            }
        };
        let cover_whole = photo.damaged || unchecked;

        let covers: Vec<CoverBox> = faces
            .iter()
            .map(|face| CoverBox {
                x: face.x,
                y: face.y,
                width: face.width,
                height: face.height,
            })
            .collect();
        let preview = cover::make_preview(&photo.image, &covers, cover_whole)?;

        let details = PhotoDetails {
            width,
            height,
            faces: faces
                .iter()
                .map(|face| FaceRect {
                    x: face.x,
                    y: face.y,
                    width: face.width,
                    height: face.height,
                })
                .collect(),
            damaged: cover_whole,
            detector: self.detector.name().to_string(),
            media_type: media_type(photo.format).to_string(),
        };
        let sealed = seal_envelope(self.device_id, &self.hub, &details, &preview.jpeg, original)?;

        info!(
            photo_id = %sealed.photo_id,
            faces = faces.len(),
            damaged = photo.damaged,
            unchecked,
            preview = %format_args!("{}x{}", preview.width, preview.height),
            envelope_bytes = sealed.bytes.len(),
            "photo sealed"
        );
        let preview = CoveredPreview {
            jpeg: preview.jpeg,
            faces: faces.len(),
        };
        Ok((sealed, preview))
    }

    /// Scans the source once and captures every new, settled file in name
    /// order. `seen` remembers the size and modification time of files already
    /// handled, so an unchanged file is not even read again.
    fn scan(
        &mut self,
        source: &Source,
        seen: &mut HashMap<PathBuf, (u64, SystemTime)>,
        news: &UnboundedSender<CaptureNews>,
    ) -> Result<Pass, ScanError> {
        let candidates = source.list()?;
        let listed: HashSet<&PathBuf> = candidates.iter().map(|c| &c.path).collect();
        seen.retain(|path, _| listed.contains(path));

        let now = SystemTime::now();
        let mut pass = Pass::default();
        for candidate in &candidates {
            let stamp = (candidate.len, candidate.modified);
            if seen.get(&candidate.path) == Some(&stamp) {
                continue;
            }
            if !candidate.is_settled(now) {
                pass.unsettled += 1;
                continue;
            }

            let label = candidate.path.display().to_string();
            let outcome = self.capture_file(&candidate.path, &label)?;
            report(&outcome, &label, news);
            seen.insert(candidate.path.clone(), stamp);
            pass.handled += 1;
        }
        Ok(pass)
    }
}

/// Runs the capture loop on the calling thread until the source is fully
/// captured (`exit_when_synced`), the sync worker is gone, or the outbox fails.
pub fn run(
    mut capturer: Capturer,
    source: Source,
    exit_when_synced: bool,
    news: UnboundedSender<CaptureNews>,
) {
    let mut seen = HashMap::new();

    loop {
        let pass = match capturer.scan(&source, &mut seen, &news) {
            Ok(pass) => pass,
            Err(ScanError::Outbox(error)) => {
                let _ = news.send(CaptureNews::Stopped(error.to_string()));
                return;
            }
            Err(ScanError::Source(error)) => {
                // A camera card or network share may come back; keep trying.
                warn!(%error, "cannot scan the source; trying again");
                Pass {
                    handled: 0,
                    unsettled: 1,
                }
            }
        };

        // Finished only after a pass that found nothing new, so files written
        // while the previous pass ran are captured too.
        if exit_when_synced && pass.handled == 0 && pass.unsettled == 0 {
            let _ = news.send(CaptureNews::Finished);
            return;
        }
        if news.is_closed() {
            return;
        }

        let pause = if exit_when_synced {
            RESCAN_SOON
        } else {
            POLL_INTERVAL
        };
        std::thread::sleep(pause);
    }
}

/// What one scan did.
#[derive(Debug, Default, Clone, Copy)]
struct Pass {
    /// Files read this pass, whatever became of them.
    handled: usize,
    /// Files left for a later pass because they are still being written.
    unsettled: usize,
}

#[derive(Debug, thiserror::Error)]
enum ScanError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// Logs an outcome and prints its event line; a capture also wakes the sync worker.
fn report(outcome: &Outcome, source: &str, news: &UnboundedSender<CaptureNews>) {
    let Some(event) = event_for(outcome, source) else {
        debug!(source, "content already captured; skipping");
        return;
    };

    match outcome {
        Outcome::Captured { photo_id } => {
            info!(%photo_id, source, "captured");
            let _ = news.send(CaptureNews::Captured(*photo_id));
        }
        Outcome::Failed(error) => warn!(source, %error, "capture failed"),
        Outcome::AlreadyCaptured => {}
    }
    events::emit(&event);
}

/// The event line an outcome prints, if any.
fn event_for(outcome: &Outcome, source: &str) -> Option<Event> {
    match outcome {
        Outcome::Captured { photo_id } => Some(Event::Captured {
            photo_id: *photo_id,
            source: source.to_string(),
        }),
        Outcome::Failed(error) => Some(Event::CaptureFailed {
            source: source.to_string(),
            error: error.to_string(),
        }),
        Outcome::AlreadyCaptured => None,
    }
}

fn content_sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).into()
}

/// Runs image code on an untrusted file, turning a panic into `None`. The
/// code's state is not shared beyond the call (the detector keeps only its
/// model and cached plans), so carrying on after a panic is safe.
fn without_panic<T>(work: impl FnOnce() -> T) -> Option<T> {
    std::panic::catch_unwind(AssertUnwindSafe(work)).ok()
}

fn media_type(format: PhotoFormat) -> &'static str {
    match format {
        PhotoFormat::Jpeg => "image/jpeg",
        PhotoFormat::Png => "image/png",
    }
}

#[cfg(test)]
mod tests {
    use guardian_e2e::exif::jpeg_with_orientation;
    use guardian_e2e::measure::{laplacian_variance, psnr_where, resize, Region};
    use guardian_models::{detector, DetectorKind};
    use guardian_protocol::{HubSealingKey, PhotoEnvelope};
    use image::{Rgb, RgbImage};

    use super::*;
    use crate::testutil::{noise, testdata, TempDir};

    struct Fixture {
        dir: TempDir,
        hub: HubSealingKey,
        device_id: Uuid,
        capturer: Capturer,
    }

    fn fixture() -> Fixture {
        let dir = TempDir::new();
        let hub = HubSealingKey::generate();
        let device_id = Uuid::new_v4();
        let outbox = Outbox::open_in(&dir.path().join("data")).unwrap();
        let faces = detector(DetectorKind::CenterFace).unwrap();
        let capturer = Capturer::new(faces, device_id, hub.public(), outbox);
        Fixture {
            dir,
            hub,
            device_id,
            capturer,
        }
    }

    fn captured_id(outcome: Outcome) -> Uuid {
        match outcome {
            Outcome::Captured { photo_id } => photo_id,
            other => panic!("expected a capture, got {other:?}"),
        }
    }

    /// Opens the outbox row with the hub key and returns the details and the
    /// decoded preview.
    fn open(f: &Fixture, photo_id: Uuid) -> (PhotoDetails, RgbImage) {
        let outbox = Outbox::open_in(&f.dir.path().join("data")).unwrap();
        let bytes = outbox
            .envelope(photo_id)
            .unwrap()
            .expect("row in the outbox");
        let envelope = PhotoEnvelope::from_bytes(&bytes).unwrap();
        assert_eq!(envelope.photo_id, photo_id);
        assert_eq!(envelope.device_id, f.device_id);

        let opened = envelope.sealed.open(&f.hub, photo_id).unwrap();
        let details = opened.verify_all().unwrap();
        let preview = image::load_from_memory(&opened.preview().unwrap())
            .unwrap()
            .to_rgb8();
        (details, preview)
    }

    fn is_cover_grey(pixel: &Rgb<u8>) -> bool {
        pixel.0.iter().all(|&c| c.abs_diff(128) <= 4)
    }

    /// The preview pixel at the centre of a box given in original pixels.
    fn preview_pixel_at_centre(
        preview: &RgbImage,
        original: (u32, u32),
        b: (u32, u32, u32, u32),
    ) -> Rgb<u8> {
        let sx = f64::from(preview.width()) / f64::from(original.0);
        let sy = f64::from(preview.height()) / f64::from(original.1);
        let cx = (f64::from(b.0) + f64::from(b.2) / 2.0) * sx;
        let cy = (f64::from(b.1) + f64::from(b.3) / 2.0) * sy;
        *preview.get_pixel(cx as u32, cy as u32)
    }

    fn annotated_faces(file: &str) -> Vec<(u32, u32, u32, u32)> {
        let json = std::fs::read_to_string(testdata("faces.json")).unwrap();
        let all: serde_json::Value = serde_json::from_str(&json).unwrap();
        all[file]["faces"]
            .as_array()
            .expect("annotated boxes")
            .iter()
            .map(|b| {
                let n = |i: usize| b[i].as_u64().unwrap() as u32;
                (n(0), n(1), n(2), n(3))
            })
            .collect()
    }

    #[test]
    fn hopper_is_sealed_for_the_hub_with_its_face_covered() {
        let mut f = fixture();
        let path = testdata("hopper.jpg");
        let photo_id = captured_id(f.capturer.capture_file(&path, "hopper.jpg").unwrap());

        let (details, preview) = open(&f, photo_id);
        assert_eq!((details.width, details.height), (128, 128));
        assert_eq!(details.detector, "centerface");
        assert_eq!(details.media_type, "image/jpeg");
        assert!(!details.damaged);
        assert_eq!(details.faces.len(), 1, "one face: {:?}", details.faces);

        let face = details.faces[0];
        let centre = preview_pixel_at_centre(
            &preview,
            (128, 128),
            (face.x, face.y, face.width, face.height),
        );
        assert!(is_cover_grey(&centre), "face centre is {centre:?}");
    }

    #[test]
    fn every_annotated_face_of_a_voc_photo_is_covered_in_the_preview() {
        let mut f = fixture();
        let file = "voc_2008_001322.jpg";
        let photo_id = captured_id(f.capturer.capture_file(&testdata(file), file).unwrap());

        let (details, preview) = open(&f, photo_id);
        assert_eq!((details.width, details.height), (500, 375));
        assert!(details.faces.len() >= 3, "found {:?}", details.faces);
        for face in annotated_faces(file) {
            let pixel = preview_pixel_at_centre(&preview, (500, 375), face);
            assert!(is_cover_grey(&pixel), "face {face:?} shows {pixel:?}");
        }
    }

    #[test]
    fn an_exif_rotated_photo_is_detected_upright() {
        let mut f = fixture();
        let file = "hopper_orientation_6.jpg";
        let photo_id = captured_id(f.capturer.capture_file(&testdata(file), file).unwrap());
        let (details, _) = open(&f, photo_id);
        assert_eq!(details.faces.len(), 1);
    }

    /// C02: one upright photo stored with each EXIF orientation, its pixels transformed
    /// the other way. Every capture finds the faces upright, covers them, and makes a
    /// preview that shows the photo upright.
    #[test]
    fn c02_every_exif_orientation_gives_an_upright_preview_with_the_faces_covered() {
        let file = "voc_2008_001322.jpg";
        let upright = image::open(testdata(file)).unwrap().to_rgb8();
        let (width, height) = upright.dimensions();
        let annotated = annotated_faces(file);
        let mut f = fixture();

        for orientation in 1..=8u8 {
            let name = format!("orientation_{orientation}.jpg");
            let path = f.dir.path().join(&name);
            std::fs::write(&path, jpeg_with_orientation(&upright, orientation)).unwrap();
            let photo_id = captured_id(f.capturer.capture_file(&path, &name).unwrap());
            let (details, preview) = open(&f, photo_id);

            // Upright: the original's size, and a preview of the same shape.
            assert_eq!((details.width, details.height), (width, height), "{name}");
            assert!(!details.damaged, "{name}");
            let scale = f64::from(preview.width()) / f64::from(width);
            let preview_height = f64::from(height) * scale;
            assert!(
                (f64::from(preview.height()) - preview_height).abs() <= 1.0,
                "{name}: preview is {}x{}",
                preview.width(),
                preview.height()
            );
            let reference = resize(&upright, preview.width(), preview.height());

            // Every annotated face keeps less than a tenth of its detail.
            assert!(
                details.faces.len() >= annotated.len(),
                "{name}: {:?}",
                details.faces
            );
            for (x, y, w, h) in &annotated {
                let region = Region {
                    x: f64::from(*x),
                    y: f64::from(*y),
                    w: f64::from(*w),
                    h: f64::from(*h),
                }
                .scaled(scale);
                let before = laplacian_variance(&reference, region);
                let after = laplacian_variance(&preview, region);
                assert!(
                    after < before / 10.0,
                    "{name}: face {region:?} keeps {after:.1} of {before:.1}"
                );
            }

            // Outside the covers (with room for their margins) the preview is the
            // upright photo; a mirrored or turned preview scores far lower.
            let margins: Vec<Region> = details
                .faces
                .iter()
                .map(|face| {
                    Region {
                        x: f64::from(face.x),
                        y: f64::from(face.y),
                        w: f64::from(face.width),
                        h: f64::from(face.height),
                    }
                    .scaled(scale)
                    .grown(0.6)
                })
                .collect();
            let psnr = psnr_where(&preview, &reference, |x, y| {
                !margins
                    .iter()
                    .any(|r| r.contains(f64::from(x), f64::from(y)))
            });
            assert!(
                psnr >= 25.0,
                "{name}: PSNR outside the covers is {psnr:.1} dB"
            );
        }
    }

    #[test]
    fn a_file_already_captured_is_skipped_even_renamed() {
        let mut f = fixture();
        let original = testdata("hopper.jpg");
        captured_id(f.capturer.capture_file(&original, "a.jpg").unwrap());

        let copy = f.dir.path().join("renamed copy.JPG");
        std::fs::copy(&original, &copy).unwrap();
        assert!(matches!(
            f.capturer.capture_file(&original, "a.jpg").unwrap(),
            Outcome::AlreadyCaptured
        ));
        assert!(matches!(
            f.capturer.capture_file(&copy, "renamed copy.JPG").unwrap(),
            Outcome::AlreadyCaptured
        ));

        let outbox = Outbox::open_in(&f.dir.path().join("data")).unwrap();
        assert_eq!(outbox.pending_count().unwrap(), 1);
    }

    #[test]
    fn random_bytes_fail_to_capture_once_and_are_not_retried() {
        let mut f = fixture();
        let junk = f.dir.path().join("junk.jpg");
        std::fs::write(&junk, noise(50_000)).unwrap();

        let outcome = f.capturer.capture_file(&junk, "junk.jpg").unwrap();
        let event = event_for(&outcome, "junk.jpg");
        assert!(
            matches!(&outcome, Outcome::Failed(CaptureError::Decode(_))),
            "{outcome:?}"
        );
        assert!(matches!(
            event,
            Some(Event::CaptureFailed { ref source, .. }) if source == "junk.jpg"
        ));

        assert!(matches!(
            f.capturer.capture_file(&junk, "junk.jpg").unwrap(),
            Outcome::AlreadyCaptured
        ));
        let outbox = Outbox::open_in(&f.dir.path().join("data")).unwrap();
        assert_eq!(outbox.pending_count().unwrap(), 0);
    }

    #[test]
    fn a_truncated_jpeg_is_covered_whole() {
        let mut f = fixture();
        let bytes = std::fs::read(testdata("voc_2008_001322.jpg")).unwrap();
        let cut = f.dir.path().join("cut.jpg");
        std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();

        let photo_id = captured_id(f.capturer.capture_file(&cut, "cut.jpg").unwrap());
        let (details, preview) = open(&f, photo_id);
        assert!(details.damaged);
        assert!(preview.pixels().all(is_cover_grey), "whole preview covered");
    }

    #[test]
    fn a_dir_scan_captures_new_files_in_name_order_and_reports_them() {
        let mut f = fixture();
        let input = f.dir.path().join("in");
        std::fs::create_dir(&input).unwrap();
        std::fs::copy(testdata("hopper.jpg"), input.join("b.jpg")).unwrap();
        std::fs::copy(testdata("hopper_gray.jpg"), input.join("a.JPEG")).unwrap();
        std::fs::write(input.join("c.png"), noise(100)).unwrap();
        std::fs::write(input.join("notes.txt"), b"not a photo").unwrap();
        // Back-date the files so they count as settled.
        let old = SystemTime::now() - Duration::from_secs(10);
        for name in ["a.JPEG", "b.jpg", "c.png"] {
            let file = std::fs::File::options()
                .write(true)
                .open(input.join(name))
                .unwrap();
            file.set_modified(old).unwrap();
        }

        let source = Source::Dir(input.clone());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut seen = HashMap::new();
        let pass = f.capturer.scan(&source, &mut seen, &tx).unwrap();
        assert_eq!(pass.handled, 3);

        let mut captured = Vec::new();
        while let Ok(CaptureNews::Captured(id)) = rx.try_recv() {
            captured.push(id);
        }
        assert_eq!(captured.len(), 2);
        let outbox = Outbox::open_in(&f.dir.path().join("data")).unwrap();
        let pending: Vec<Uuid> = outbox
            .pending()
            .unwrap()
            .iter()
            .map(|p| p.photo_id)
            .collect();
        assert_eq!(pending, captured, "a.JPEG before b.jpg");

        let again = f.capturer.scan(&source, &mut seen, &tx).unwrap();
        assert_eq!(again.handled, 0, "unchanged files are not read again");
    }
}
