//! Keeping a flaky camera usable: warm-up after opening, skipping damaged frames, and
//! opening again with back-off when the camera is missing, busy or unplugged.
//!
//! The supervisor never sleeps and never loops on a failing camera. Each call does at most
//! one open attempt, and only once the back-off since the last failure has passed; before
//! that it answers with the last problem at once. The caller's loop decides when to ask
//! again, and shows [`CameraSupervisor::status`] on the screen and in the heartbeat
//! meanwhile. Time comes from a [`Clock`], so tests move it by hand.

use std::fmt;
use std::time::{Duration, Instant};

use image::codecs::jpeg::JpegEncoder;
use image::RgbImage;
use tracing::{debug, info};

use super::{to_rgb, Camera, CameraError, Frame, OpenedFormat};

/// The JPEG quality of a still the camera did not deliver as JPEG: high enough that the
/// sealed original loses nothing a viewer would see.
pub const STILL_JPEG_QUALITY: u8 = 92;

/// Where the supervisor reads the time.
pub trait Clock {
    fn now(&self) -> Instant;
}

/// The system's monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// How the supervisor treats its camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupervisorSettings {
    /// Frames dropped after every open: a camera's first frames are dark or badly exposed
    /// while its automatic exposure and white balance settle.
    pub warm_up_frames: u32,
    /// Damaged frames skipped in one still before the camera is closed and reopened.
    pub max_bad_frames: u32,
    /// Frames the driver holds filled while nobody reads (nokhwa queues 4 V4L2 buffers).
    /// They were taken just after the last read, so they are dropped before a still when
    /// the camera has not been read for [`SupervisorSettings::stale_after`].
    pub queued_frames: u32,
    /// How long unread before the queued frames count as old.
    pub stale_after: Duration,
    /// The wait after the first failure; it doubles with each failure in a row.
    pub first_retry: Duration,
    /// The longest wait between attempts, so a replugged camera is found within it.
    pub max_retry: Duration,
}

impl Default for SupervisorSettings {
    fn default() -> Self {
        SupervisorSettings {
            warm_up_frames: 10,
            max_bad_frames: 5,
            queued_frames: 4,
            stale_after: Duration::from_secs(1),
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(30),
        }
    }
}

/// A picture taken, ready to detect faces in and to seal.
pub struct Still {
    /// The pixels, for the detector and the covered preview.
    pub image: RgbImage,
    /// The original to seal: the JPEG exactly as an MJPEG camera delivered it, or else
    /// the pixels encoded at [`STILL_JPEG_QUALITY`].
    pub jpeg: Vec<u8>,
}

impl fmt::Debug for Still {
    // A still is a photo of children: its size is all a log or a test message needs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Still")
            .field("width", &self.image.width())
            .field("height", &self.image.height())
            .field("jpeg_bytes", &self.jpeg.len())
            .finish()
    }
}

/// What is wrong with the camera, for the screen and the hub heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CameraProblem {
    #[error("camera missing: plug the camera in; the device keeps looking for it")]
    Missing,

    #[error("camera busy: another program is using it; close that program or restart the device")]
    Busy,

    #[error("camera unplugged while taking pictures: plug it back in; the device reopens it")]
    Lost,

    #[error(
        "camera offers no usable picture format (it offers {}); use a camera that gives \
         mjpeg, yuyv or grey, or raise the maximum camera resolution",
        if offered.is_empty() { "nothing".to_string() } else { offered.join(", ") }
    )]
    NoUsableFormat { offered: Vec<String> },

    #[error(
        "camera sends damaged pictures ({count} in a row): check its cable; the device \
         reopens it"
    )]
    BadFrames { count: u32 },

    #[error("camera not working ({0}); the device tries it again")]
    Failed(String),
}

impl CameraProblem {
    /// A stable code for the hub heartbeat and for tests.
    pub fn code(&self) -> &'static str {
        match self {
            CameraProblem::Missing => "camera_missing",
            CameraProblem::Busy => "camera_busy",
            CameraProblem::Lost => "camera_lost",
            CameraProblem::NoUsableFormat { .. } => "camera_no_usable_format",
            CameraProblem::BadFrames { .. } => "camera_bad_frames",
            CameraProblem::Failed(_) => "camera_failed",
        }
    }
}

impl From<CameraError> for CameraProblem {
    fn from(error: CameraError) -> Self {
        match error {
            CameraError::Missing => CameraProblem::Missing,
            CameraError::Busy => CameraProblem::Busy,
            CameraError::Lost => CameraProblem::Lost,
            CameraError::NoUsableFormat { offered } => CameraProblem::NoUsableFormat { offered },
            CameraError::Other(text) => CameraProblem::Failed(text),
        }
    }
}

/// Where the camera stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraStatus {
    /// Not open; the next call opens it.
    Opening,
    /// Open and warmed up.
    Ready(OpenedFormat),
    /// The last attempt failed; the next is made at `retry_at` or later.
    Waiting {
        problem: CameraProblem,
        retry_at: Instant,
    },
}

impl CameraStatus {
    /// A stable code: `ready`, `opening`, or the problem's code.
    // The kiosk reads the problem itself; the tests read the code.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn code(&self) -> &'static str {
        match self {
            CameraStatus::Opening => "opening",
            CameraStatus::Ready(_) => "ready",
            CameraStatus::Waiting { problem, .. } => problem.code(),
        }
    }
}

/// A camera wrapped so that the capture loop can simply ask for stills.
pub struct CameraSupervisor<C: Camera, K: Clock = SystemClock> {
    camera: C,
    clock: K,
    settings: SupervisorSettings,
    status: CameraStatus,
    /// Failures since the last still, for the back-off. Only a still resets it: a camera
    /// that opens and then fails at once must not be reopened ever faster.
    failures: u32,
    /// When a frame was last read, to tell whether the queued frames are old.
    last_read: Option<Instant>,
}

impl<C: Camera> CameraSupervisor<C> {
    pub fn new(camera: C, settings: SupervisorSettings) -> Self {
        Self::with_clock(camera, SystemClock, settings)
    }
}

impl<C: Camera, K: Clock> CameraSupervisor<C, K> {
    pub fn with_clock(camera: C, clock: K, settings: SupervisorSettings) -> Self {
        CameraSupervisor {
            camera,
            clock,
            settings,
            status: CameraStatus::Opening,
            failures: 0,
            last_read: None,
        }
    }

    #[cfg_attr(not(test), allow(dead_code))]
    pub fn status(&self) -> &CameraStatus {
        &self.status
    }

    /// Opens the camera if it is closed and an attempt is due, so the status recovers
    /// while no still is asked for. Call it from the capture loop's idle ticks.
    pub fn poll(&mut self) -> &CameraStatus {
        // The outcome is in the status returned.
        let _ = self.ensure_open();
        &self.status
    }

    /// Takes the next frame that decodes, after opening the camera if needed.
    ///
    /// While the camera cannot be had, this answers at once with the problem; the camera
    /// is tried again once the back-off has passed.
    pub fn take_still(&mut self) -> Result<Still, CameraProblem> {
        self.ensure_open()?;

        // A still shows the moment it was asked for, not the moment of the last one.
        let unread = self
            .last_read
            .map(|at| self.clock.now().saturating_duration_since(at));
        if unread.is_some_and(|unread| unread > self.settings.stale_after) {
            self.drop_frames(self.settings.queued_frames)?;
        }

        let mut bad = 0;
        loop {
            let frame = self.read_frame()?;

            let image = match to_rgb(&frame) {
                Ok(image) => image,
                Err(error) => {
                    bad += 1;
                    debug!(bad, %error, "skipping a damaged camera frame");
                    if bad > self.settings.max_bad_frames {
                        return Err(self.fail(CameraProblem::BadFrames { count: bad }));
                    }
                    continue;
                }
            };

            let jpeg = match frame.jpeg() {
                Some(jpeg) => jpeg.to_vec(),
                None => encode_jpeg(&image)?,
            };
            if bad > 0 {
                info!(skipped = bad, "skipped damaged camera frames");
            }
            self.failures = 0;
            return Ok(Still { image, jpeg });
        }
    }

    /// Closes the camera; the next call opens it again.
    pub fn close(&mut self) {
        self.camera.close();
        self.status = CameraStatus::Opening;
    }

    #[cfg(test)]
    pub fn camera(&self) -> &C {
        &self.camera
    }

    /// Makes sure the camera is open and warmed up, trying once if an attempt is due.
    fn ensure_open(&mut self) -> Result<(), CameraProblem> {
        match &self.status {
            CameraStatus::Ready(_) => return Ok(()),
            CameraStatus::Waiting { problem, retry_at } if self.clock.now() < *retry_at => {
                return Err(problem.clone());
            }
            CameraStatus::Opening | CameraStatus::Waiting { .. } => {}
        }

        let format = match self.camera.open() {
            Ok(format) => format,
            Err(error) => return Err(self.fail(error.into())),
        };

        self.drop_frames(self.settings.warm_up_frames)?;

        info!(
            format = %format.format,
            width = format.width,
            height = format.height,
            failures = self.failures,
            "camera ready"
        );
        self.status = CameraStatus::Ready(format);
        Ok(())
    }

    /// Reads and drops `count` frames, undecoded: only losing the camera matters here.
    fn drop_frames(&mut self, count: u32) -> Result<(), CameraProblem> {
        for _ in 0..count {
            self.read_frame()?;
        }
        Ok(())
    }

    /// The next frame; a camera error closes the camera and schedules a retry.
    fn read_frame(&mut self) -> Result<Frame, CameraProblem> {
        match self.camera.frame() {
            Ok(frame) => {
                self.last_read = Some(self.clock.now());
                Ok(frame)
            }
            Err(error) => Err(self.fail(error.into())),
        }
    }

    /// Closes the camera and schedules the next attempt. The problem goes back to the
    /// caller, who shows or logs it.
    fn fail(&mut self, problem: CameraProblem) -> CameraProblem {
        self.camera.close();
        self.failures = self.failures.saturating_add(1);
        self.status = CameraStatus::Waiting {
            problem: problem.clone(),
            retry_at: self.clock.now() + self.back_off(),
        };
        problem
    }

    /// `first_retry` doubled for each failure in a row after the first, at most `max_retry`.
    fn back_off(&self) -> Duration {
        // 16 doublings make even a millisecond over a minute, past any sensible maximum;
        // the cap keeps the shift in range.
        let doublings = self.failures.saturating_sub(1).min(16);
        self.settings
            .first_retry
            .saturating_mul(1 << doublings)
            .min(self.settings.max_retry)
    }
}

/// Encodes a still that did not arrive as JPEG.
fn encode_jpeg(image: &RgbImage) -> Result<Vec<u8>, CameraProblem> {
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, STILL_JPEG_QUALITY)
        .encode_image(image)
        .map_err(|error| CameraProblem::Failed(format!("cannot encode the still: {error}")))?;
    Ok(jpeg)
}

#[cfg(test)]
mod tests {
    use guardian_e2e::measure::{decode, iou, Region};
    use guardian_models::{detector, DetectorKind, FaceBox};

    use super::*;
    use crate::camera::fake::{
        grey_frame, mjpeg_frame, mode_of, number_of, numbered, opens_with, photo, yuyv_frame,
        FakeCamera, FakeClock, Step,
    };
    use crate::camera::{CameraError, PixelFormat};

    const WARM_UP: u32 = 10;

    fn supervisor(script: Vec<Step>) -> (CameraSupervisor<FakeCamera, FakeClock>, FakeClock) {
        let clock = FakeClock::new();
        let supervisor = CameraSupervisor::with_clock(
            FakeCamera::new(script),
            clock.clone(),
            SupervisorSettings::default(),
        );
        (supervisor, clock)
    }

    /// A camera that opens in grey 8x8 and plays the warm-up as frames numbered 0..10.
    fn numbered_opening() -> Vec<Step> {
        let mut steps = vec![Step::Opens(mode_of(&numbered(0)))];
        steps.extend((0..WARM_UP as u8).map(|n| Step::Frame(numbered(n))));
        steps
    }

    /// The wait the supervisor set, from now to its next attempt.
    fn retry_in(supervisor: &CameraSupervisor<FakeCamera, FakeClock>, clock: &FakeClock) -> u64 {
        match supervisor.status() {
            CameraStatus::Waiting { retry_at, .. } => {
                retry_at.saturating_duration_since(clock.now()).as_secs()
            }
            other => panic!("expected a wait, the status is {other:?}"),
        }
    }

    /// Moves the clock to the next attempt.
    fn wait_out(supervisor: &CameraSupervisor<FakeCamera, FakeClock>, clock: &FakeClock) {
        if let CameraStatus::Waiting { retry_at, .. } = supervisor.status() {
            clock.set(*retry_at);
        }
    }

    /// The faces of a `width` x `height` rendering of a shared photo, from faces.json.
    fn annotated_faces(name: &str, width: u32) -> Vec<Region> {
        let faces = guardian_e2e::faces_json();
        let entry = &faces[name];
        let scale = f64::from(width) / entry["size"][0].as_f64().expect("size in faces.json");
        let boxes: Vec<Region> = entry["faces"]
            .as_array()
            .expect("boxes in faces.json")
            .iter()
            .map(|face| Region::from_json(face).scaled(scale))
            .collect();
        assert_eq!(boxes.len() as u64, entry["count"].as_u64().unwrap());
        boxes
    }

    /// Asserts that the detector finds each annotated face in the still, and nothing else.
    fn assert_faces_found(still: &Still, expected: &[Region]) {
        let found = detector(DetectorKind::CenterFace)
            .unwrap()
            .detect(&still.image)
            .unwrap();
        let region = |face: &FaceBox| Region {
            x: f64::from(face.x),
            y: f64::from(face.y),
            w: f64::from(face.width),
            h: f64::from(face.height),
        };
        for face in expected {
            assert!(
                found.iter().any(|f| iou(region(f), *face) >= 0.3
                    || region(f).contains(face.x + face.w / 2.0, face.y + face.h / 2.0)),
                "the face at {face:?} was not found; found {found:?}"
            );
        }
        assert_eq!(found.len(), expected.len(), "found {found:?}");
    }

    #[test]
    fn the_warm_up_frames_are_dropped() {
        let mut script = numbered_opening();
        script.push(Step::Frame(numbered(99)));
        let (mut supervisor, _clock) = supervisor(script);

        let still = supervisor.take_still().unwrap();
        assert_eq!(number_of(&still.image), 99);
        assert_eq!(supervisor.camera().remaining(), 0);
        assert_eq!(supervisor.status().code(), "ready");
    }

    #[test]
    fn frames_queued_while_nobody_read_are_dropped_before_a_still() {
        let mut script = numbered_opening();
        script.push(Step::Frame(numbered(1)));
        script.push(Step::Frame(numbered(2)));
        script.extend((10..14).map(|n| Step::Frame(numbered(n))));
        script.push(Step::Frame(numbered(20)));
        let (mut supervisor, clock) = supervisor(script);

        assert_eq!(number_of(&supervisor.take_still().unwrap().image), 1);

        // Read again at once: the next frame is fresh.
        clock.advance(Duration::from_millis(500));
        assert_eq!(number_of(&supervisor.take_still().unwrap().image), 2);

        // A minute later the 4 queued frames are a minute old.
        clock.advance(Duration::from_secs(60));
        assert_eq!(number_of(&supervisor.take_still().unwrap().image), 20);
        assert_eq!(supervisor.camera().remaining(), 0);
    }

    #[test]
    fn damaged_frames_are_skipped() {
        let mut script = numbered_opening();
        script.extend(std::iter::repeat_n(Step::CorruptFrame, 5));
        script.push(Step::Frame(numbered(42)));
        let (mut supervisor, _clock) = supervisor(script);

        let still = supervisor.take_still().unwrap();
        assert_eq!(number_of(&still.image), 42);
        assert_eq!(supervisor.camera().opens, 1);
    }

    #[test]
    fn a_camera_sending_only_damage_is_closed_and_reopened_later() {
        let mut script = numbered_opening();
        script.extend(std::iter::repeat_n(Step::CorruptFrame, 6));
        script.extend(numbered_opening());
        script.push(Step::Frame(numbered(7)));
        let (mut supervisor, clock) = supervisor(script);

        let problem = supervisor.take_still().unwrap_err();
        assert_eq!(problem, CameraProblem::BadFrames { count: 6 });
        assert!(!supervisor.camera().is_open());
        assert_eq!(retry_in(&supervisor, &clock), 1);

        wait_out(&supervisor, &clock);
        assert_eq!(number_of(&supervisor.take_still().unwrap().image), 7);
    }

    #[test]
    fn c34_a_busy_camera_is_retried_with_doubling_waits_up_to_30_seconds() {
        let mut script = vec![Step::OpenFails(CameraError::Busy); 7];
        script.extend(numbered_opening());
        script.push(Step::Frame(numbered(1)));
        script.push(Step::Unplugged);
        let (mut supervisor, clock) = supervisor(script);

        let mut waits = Vec::new();
        for attempt in 1..=7 {
            let problem = supervisor.take_still().unwrap_err();
            assert_eq!(problem, CameraProblem::Busy);
            assert_eq!(supervisor.camera().opens, attempt);
            waits.push(retry_in(&supervisor, &clock));

            // Asking again before the wait is over does not touch the camera.
            clock.advance(Duration::from_millis(999));
            assert_eq!(supervisor.take_still().unwrap_err(), CameraProblem::Busy);
            assert_eq!(supervisor.poll().code(), "camera_busy");
            assert_eq!(supervisor.camera().opens, attempt);
            wait_out(&supervisor, &clock);
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);

        assert_eq!(number_of(&supervisor.take_still().unwrap().image), 1);

        // A still resets the back-off.
        assert_eq!(supervisor.take_still().unwrap_err(), CameraProblem::Lost);
        assert_eq!(retry_in(&supervisor, &clock), 1);
    }

    #[test]
    fn c34_a_missing_camera_is_found_once_plugged_in() {
        let mut script = vec![Step::OpenFails(CameraError::Missing); 3];
        script.extend(numbered_opening());
        script.push(Step::Frame(numbered(5)));
        let (mut supervisor, clock) = supervisor(script);

        for _ in 0..3 {
            assert_eq!(supervisor.poll().code(), "camera_missing");
            let CameraStatus::Waiting { problem, .. } = supervisor.status() else {
                panic!("expected a wait");
            };
            assert!(
                problem.to_string().starts_with("camera missing"),
                "{problem}"
            );
            wait_out(&supervisor, &clock);
        }

        // Plugged in: polling alone opens it, before anyone asks for a picture.
        assert_eq!(supervisor.poll().code(), "ready");
        assert_eq!(number_of(&supervisor.take_still().unwrap().image), 5);
        assert_eq!(supervisor.camera().opens, 4);
    }

    #[test]
    fn c34_a_camera_unplugged_mid_capture_is_reopened_after_replug() {
        let mut script = numbered_opening();
        script.push(Step::Frame(numbered(1)));
        script.push(Step::Unplugged);
        script.push(Step::OpenFails(CameraError::Missing));
        script.extend(numbered_opening());
        script.push(Step::Frame(numbered(2)));
        let (mut supervisor, clock) = supervisor(script);

        assert_eq!(number_of(&supervisor.take_still().unwrap().image), 1);

        // Pulled out: the device is released at once, so the replugged camera gets its node.
        assert_eq!(supervisor.take_still().unwrap_err(), CameraProblem::Lost);
        assert!(!supervisor.camera().is_open());
        assert_eq!(supervisor.camera().closes, 1);
        assert_eq!(retry_in(&supervisor, &clock), 1);

        // Still out at the first retry.
        wait_out(&supervisor, &clock);
        assert_eq!(supervisor.take_still().unwrap_err(), CameraProblem::Missing);
        assert_eq!(retry_in(&supervisor, &clock), 2);

        // Plugged back in.
        wait_out(&supervisor, &clock);
        assert_eq!(number_of(&supervisor.take_still().unwrap().image), 2);
        assert_eq!(supervisor.camera().opens, 3);
    }

    #[test]
    fn losing_the_camera_during_warm_up_is_a_lost_camera() {
        let mut script = vec![Step::Opens(mode_of(&numbered(0))), Step::Frame(numbered(0))];
        script.push(Step::Unplugged);
        let (mut supervisor, clock) = supervisor(script);

        assert_eq!(supervisor.take_still().unwrap_err(), CameraProblem::Lost);
        assert!(!supervisor.camera().is_open());
        assert_eq!(retry_in(&supervisor, &clock), 1);
    }

    #[test]
    fn a_camera_without_a_usable_format_is_reported_and_retried() {
        let error = CameraError::NoUsableFormat {
            offered: vec!["NV12 up to 1920x1080".into()],
        };
        let (mut supervisor, clock) = supervisor(vec![Step::OpenFails(error)]);

        let problem = supervisor.take_still().unwrap_err();
        assert_eq!(problem.code(), "camera_no_usable_format");
        assert!(problem.to_string().contains("NV12"), "{problem}");
        assert_eq!(retry_in(&supervisor, &clock), 1);
    }

    #[test]
    fn an_mjpeg_still_seals_the_camera_jpeg_as_delivered() {
        let frame = mjpeg_frame(&photo("voc_2008_001322.jpg", 640, 480));
        let mut script = opens_with(mode_of(&frame), WARM_UP, &frame);
        script.push(Step::Frame(frame.clone()));
        let (mut supervisor, _clock) = supervisor(script);

        let still = supervisor.take_still().unwrap();
        // The JPEG itself, without the buffer padding behind it.
        assert_eq!(still.jpeg, frame.data[..frame.data.len() - 1024]);
        assert_eq!(still.image.dimensions(), (640, 480));
    }

    #[test]
    fn a_yuyv_still_seals_a_jpeg_of_its_pixels() {
        let frame = yuyv_frame(&photo("voc_2008_001322.jpg", 640, 480));
        let mut script = opens_with(mode_of(&frame), WARM_UP, &frame);
        script.push(Step::Frame(frame));
        let (mut supervisor, _clock) = supervisor(script);

        let still = supervisor.take_still().unwrap();
        let sealed = decode(&still.jpeg);
        assert_eq!(sealed.dimensions(), (640, 480));
        let psnr = guardian_e2e::measure::psnr_where(&sealed, &still.image, |_, _| true);
        assert!(
            psnr >= 35.0,
            "the sealed jpeg is {psnr:.1} dB from the still"
        );
    }

    #[test]
    fn c34_a_yuyv_only_camera_gives_stills_the_detector_finds_the_faces_in() {
        const NAME: &str = "voc_2008_001322.jpg";
        let frame = yuyv_frame(&photo(NAME, 640, 480));
        assert_eq!(mode_of(&frame).format, PixelFormat::Yuyv);
        let mut script = opens_with(mode_of(&frame), WARM_UP, &frame);
        script.push(Step::Frame(frame));
        let (mut supervisor, _clock) = supervisor(script);

        let still = supervisor.take_still().unwrap();
        assert_faces_found(&still, &annotated_faces(NAME, 640));
    }

    #[test]
    fn c34_a_grey_only_camera_gives_stills_the_detector_finds_the_faces_in() {
        const NAME: &str = "voc_2008_001322.jpg";
        let frame = grey_frame(&photo(NAME, 640, 480));
        let mut script = opens_with(mode_of(&frame), WARM_UP, &frame);
        script.push(Step::Frame(frame));
        let (mut supervisor, _clock) = supervisor(script);

        let still = supervisor.take_still().unwrap();
        assert_faces_found(&still, &annotated_faces(NAME, 640));
    }

    #[test]
    fn c34_busy_then_yuyv_then_unplugged_and_replugged_as_grey() {
        const NAME: &str = "voc_2008_001322.jpg";
        let source = photo(NAME, 640, 480);
        let (yuyv, grey) = (yuyv_frame(&source), grey_frame(&source));

        let mut script = vec![Step::OpenFails(CameraError::Busy)];
        script.extend(opens_with(mode_of(&yuyv), WARM_UP, &yuyv));
        script.extend([Step::Frame(yuyv), Step::Unplugged]);
        script.push(Step::OpenFails(CameraError::Missing));
        script.extend(opens_with(mode_of(&grey), WARM_UP, &grey));
        script.push(Step::Frame(grey));
        let (mut supervisor, clock) = supervisor(script);
        let faces = annotated_faces(NAME, 640);

        assert_eq!(supervisor.take_still().unwrap_err().code(), "camera_busy");
        wait_out(&supervisor, &clock);
        assert_faces_found(&supervisor.take_still().unwrap(), &faces);

        assert_eq!(supervisor.take_still().unwrap_err().code(), "camera_lost");
        wait_out(&supervisor, &clock);
        assert_eq!(
            supervisor.take_still().unwrap_err().code(),
            "camera_missing"
        );
        wait_out(&supervisor, &clock);
        assert_faces_found(&supervisor.take_still().unwrap(), &faces);
        assert_eq!(supervisor.camera().remaining(), 0);
    }
}
