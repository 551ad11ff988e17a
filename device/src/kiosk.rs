//! The appliance: the loop a teacher meets. It waits for key presses and the
//! capture button, keeps the teacher's lock, takes a still from the camera
//! when an unlocked teacher presses capture, seals it into the outbox, and
//! draws the screen after every change.
//!
//! A capture is announced (screen, and the `captured` line on stdout) only
//! after the outbox has committed it. Capture never waits for the network:
//! the sync worker delivers from the outbox on its own. When the disk is
//! (almost) full, capture is refused with a message and resumes by itself
//! once space returns; nothing already in the outbox is touched.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use chrono::Local;
use embedded_graphics::prelude::Size;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{error, info, warn};

use crate::camera::replay::ReplayCamera;
use crate::camera::supervisor::{
    CameraProblem, CameraStatus, CameraSupervisor, SupervisorSettings,
};
use crate::camera::v4l::{V4lCamera, V4lSettings};
use crate::camera::Camera;
use crate::capture::{CaptureNews, Capturer, StillOutcome, CAMERA_SOURCE};
use crate::events::{self, Event};
use crate::health::{self, SharedHealth};
use crate::input::Input;
use crate::lock::{KeyOutcome, Lock};
use crate::outbox::OutboxError;
use crate::screen::canvas::Canvas;
use crate::screen::draw::draw;
use crate::screen::framebuffer::Framebuffer;
use crate::screen::layout::KeypadKey;
use crate::screen::state::{ClockStatus, HubLink, Language, LastCapture, Problem, ScreenState};
use crate::service::Watchdog;

/// How often the loop wakes without input, to count down and to notice
/// changes reported by the sync worker.
const TICK: Duration = Duration::from_millis(500);

/// Where the camera is.
#[derive(Debug, Clone)]
pub enum CameraChoice {
    V4l(V4lSettings),
    /// JPEG files in a folder, replayed as camera frames.
    Replay(PathBuf),
}

/// Where the screen is drawn.
pub enum ScreenOutput {
    Framebuffer(Framebuffer),
    /// A PNG file rewritten after every change, for a technician without a
    /// screen and for the tests.
    Png {
        path: PathBuf,
        size: Size,
    },
    None,
}

/// What the kiosk needs besides the capturer.
pub struct KioskSettings {
    pub camera: CameraChoice,
    pub screen: ScreenOutput,
    pub language: Language,
    pub classroom: String,
    pub idle_lock: Duration,
    /// Capture is refused while less than this is free on the data disk.
    pub min_free_bytes: u64,
    pub data_dir: PathBuf,
    pub clock_flag: PathBuf,
}

/// Runs the kiosk on the calling thread until the sync worker is gone. The
/// camera is built here: a V4L2 camera must stay on the thread that opened it.
pub fn run(
    capturer: Capturer,
    settings: KioskSettings,
    inputs: Receiver<Input>,
    news: UnboundedSender<CaptureNews>,
    health: SharedHealth,
) {
    match settings.camera.clone() {
        CameraChoice::V4l(camera) => {
            let supervisor =
                CameraSupervisor::new(V4lCamera::new(camera), SupervisorSettings::default());
            Kiosk::new(capturer, supervisor, settings, news, health).run(&inputs);
        }
        CameraChoice::Replay(dir) => {
            // Files are not a sensor: nothing to warm up, nothing queued.
            let replay = SupervisorSettings {
                warm_up_frames: 0,
                queued_frames: 0,
                ..SupervisorSettings::default()
            };
            let supervisor = CameraSupervisor::new(ReplayCamera::new(dir), replay);
            Kiosk::new(capturer, supervisor, settings, news, health).run(&inputs);
        }
    }
}

struct Kiosk<C: Camera> {
    capturer: Capturer,
    camera: CameraSupervisor<C>,
    settings: KioskSettings,
    news: UnboundedSender<CaptureNews>,
    health: SharedHealth,
    lock: Lock,
    last_capture: Option<LastCapture>,
    /// A problem from the last capture press, shown until the next one works.
    capture_problem: Option<Problem>,
    /// `capture_problem` came from the camera, so the camera working again
    /// clears it.
    problem_from_camera: bool,
    drawn: Option<String>,
}

impl<C: Camera> Kiosk<C> {
    fn new(
        mut capturer: Capturer,
        camera: CameraSupervisor<C>,
        settings: KioskSettings,
        news: UnboundedSender<CaptureNews>,
        health: SharedHealth,
    ) -> Self {
        let wrong_pins = capturer.outbox().wrong_pins().unwrap_or_else(|error| {
            warn!(%error, "cannot read the wrong PIN count; starting from zero");
            0
        });
        let lock = Lock::new(settings.idle_lock, wrong_pins, Instant::now());
        Self {
            capturer,
            camera,
            settings,
            news,
            health,
            lock,
            last_capture: None,
            capture_problem: None,
            problem_from_camera: false,
            drawn: None,
        }
    }

    fn run(mut self, inputs: &Receiver<Input>) {
        info!(classroom = %self.settings.classroom, "kiosk ready; locked");
        self.redraw();
        let mut watchdog = Watchdog::from_env();
        watchdog.ready();

        loop {
            match inputs.recv_timeout(TICK) {
                Ok(input) => self.on_input(input),
                Err(RecvTimeoutError::Timeout) => {}
                // Every input source is gone (stdin closed, no button): the
                // screen and the sync worker carry on.
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(TICK),
            }

            let now = Instant::now();
            if self.lock.tick(now) {
                info!("locked after idle time");
                events::emit(&Event::Locked);
            }
            if self.health.lock().revoked && self.lock.is_unlocked() {
                self.lock.lock();
                events::emit(&Event::Locked);
            }
            if self.capture_problem == Some(Problem::DiskFull) && self.has_room() {
                info!("disk space is back; capture resumes");
                self.set_problem(None, "");
            }
            self.watch_camera();
            if self.news.is_closed() {
                self.camera.close();
                return;
            }
            self.redraw();
            // Only a turn that got this far counts as alive, and only while
            // the sync worker turns too: a hung delivery also needs a restart.
            let now = Instant::now();
            if self.health.lock().sync_alive(now) {
                watchdog.tick(now);
            }
        }
    }

    fn on_input(&mut self, input: Input) {
        let now = Instant::now();
        // Enter on a keypad confirms a PIN; once unlocked it takes a photo.
        let input = match input {
            Input::Key(KeypadKey::Ok) if self.lock.is_unlocked() => Input::Capture,
            // The unlocked screen draws no keypad: a tap there only shows
            // someone is still at the device.
            Input::Tap(_) if self.lock.is_unlocked() => {
                self.lock.touch(now);
                return;
            }
            Input::Tap(key) => Input::Key(key),
            other => other,
        };
        match input {
            Input::Key(key) | Input::Tap(key) => {
                if self.health.lock().revoked {
                    return;
                }
                let pins = match self.capturer.outbox().pins() {
                    Ok(pins) => pins,
                    Err(error) => {
                        error!(%error, "cannot read the PIN set");
                        None
                    }
                };
                let before = self.lock.wrong_pins();
                let outcome = self.lock.key(key, pins.as_ref(), now);
                if self.lock.wrong_pins() != before {
                    if let Err(error) = self
                        .capturer
                        .outbox()
                        .set_wrong_pins(self.lock.wrong_pins())
                    {
                        error!(%error, "cannot store the wrong PIN count");
                    }
                }
                match outcome {
                    KeyOutcome::Unlocked { .. } => {
                        info!("unlocked by a teacher");
                        events::emit(&Event::Unlocked);
                    }
                    KeyOutcome::Wrong { wrong_pins, wait } => {
                        warn!(
                            wrong_pins,
                            wait_secs = wait.map(|w| w.as_secs()),
                            "wrong PIN"
                        );
                    }
                    _ => {}
                }
            }
            Input::Lock => {
                if self.lock.is_unlocked() {
                    self.lock.lock();
                    events::emit(&Event::Locked);
                }
            }
            Input::Capture => self.capture(now),
        }
    }

    fn capture(&mut self, now: Instant) {
        if self.health.lock().revoked {
            return refuse("revoked");
        }
        if !self.lock.is_unlocked() {
            return refuse("locked");
        }
        self.lock.touch(now);
        if !self.has_room() {
            self.set_problem(Some(Problem::DiskFull), "the disk is full");
            return refuse("disk_full");
        }

        let still = match self.camera.take_still() {
            Ok(still) => still,
            Err(problem) => {
                warn!(code = problem.code(), %problem, "no picture from the camera");
                self.set_problem(Some(screen_problem(&problem)), &problem.to_string());
                self.problem_from_camera = true;
                return refuse(problem.code());
            }
        };

        match self.capturer.capture_still(still) {
            Ok(StillOutcome::Captured { photo_id, preview }) => {
                // Committed: only now is the teacher told.
                events::emit(&Event::Captured {
                    photo_id,
                    source: CAMERA_SOURCE.to_owned(),
                });
                let _ = self.news.send(CaptureNews::Captured(photo_id));
                info!(%photo_id, faces = preview.faces, "captured");
                self.last_capture =
                    image::load_from_memory(&preview.jpeg)
                        .ok()
                        .map(|image| LastCapture {
                            preview: image.to_rgb8(),
                            faces: preview.faces,
                            at_local: Local::now().format("%H:%M").to_string(),
                        });
                self.set_problem(None, "");
            }
            Ok(StillOutcome::Failed(failure)) => {
                warn!(error = %failure, "the picture could not be sealed");
                events::emit(&Event::CaptureFailed {
                    source: CAMERA_SOURCE.to_owned(),
                    error: failure.to_string(),
                });
                self.set_problem(Some(Problem::CaptureFailed), &failure.to_string());
            }
            Err(failure) if failure.is_disk_full() => {
                warn!(error = %failure, "the outbox is full; capture waits for space");
                self.set_problem(Some(Problem::DiskFull), "the disk is full");
                refuse("disk_full");
            }
            Err(failure) => {
                error!(error = %failure, "the outbox cannot be written");
                self.set_problem(Some(Problem::CaptureFailed), &failure.to_string());
                refuse("outbox");
            }
        }
    }

    /// Opens the camera when it is due (at start, and after a failure once
    /// its back-off has passed), so a missing or busy camera shows on the
    /// screen before the teacher presses the button, and clears once it works.
    fn watch_camera(&mut self) {
        let camera_problem = match self.camera.poll() {
            CameraStatus::Ready(_) => None,
            CameraStatus::Opening => return,
            CameraStatus::Waiting { problem, .. } => Some(problem.clone()),
        };
        let shown = camera_problem.as_ref().map(screen_problem);
        let camera_shown = self.problem_from_camera && self.capture_problem.is_some();
        match (&camera_problem, shown) {
            (Some(problem), Some(shown)) if self.capture_problem.is_none() || camera_shown => {
                if self.capture_problem != Some(shown) {
                    warn!(code = problem.code(), "camera problem");
                }
                self.set_problem(Some(shown), &problem.to_string());
                self.problem_from_camera = true;
            }
            (None, _) if camera_shown => self.set_problem(None, ""),
            _ => {}
        }
    }

    fn set_problem(&mut self, problem: Option<Problem>, words: &str) {
        self.capture_problem = problem;
        self.problem_from_camera = false;
        self.health.lock().last_error = problem.map(|_| words.to_owned());
    }

    fn has_room(&self) -> bool {
        match free_bytes(&self.settings.data_dir) {
            Ok(free) => free >= self.settings.min_free_bytes,
            Err(error) => {
                warn!(%error, "cannot read the free disk space; trying to capture anyway");
                true
            }
        }
    }

    fn state(&mut self) -> ScreenState {
        let health = self.health.snapshot();
        let outbox_len = self.capturer.outbox().pending_count().unwrap_or(0);
        let pins = self.capturer.outbox().pins().ok().flatten();

        let problem = if health.revoked {
            Some(Problem::Revoked)
        } else if self.capture_problem.is_some() {
            self.capture_problem
        } else if pins.is_none_or(|pins| pins.teachers.is_empty()) {
            Some(Problem::NoPins)
        } else {
            None
        };
        let hub = match (health.connected, health.offline_since) {
            (true, _) => HubLink::Connected,
            (false, Some(since)) => HubLink::Offline {
                since_local: since.format("%H:%M").to_string(),
            },
            (false, None) => HubLink::Connecting,
        };
        let clock = if health::clock_synced(&self.settings.clock_flag, chrono::Utc::now()) {
            ClockStatus::Synced
        } else {
            ClockStatus::Unknown
        };

        ScreenState {
            language: self.settings.language,
            classroom: self.settings.classroom.clone(),
            lock: self.lock.view(Instant::now()),
            last_capture: self.last_capture.clone(),
            outbox_len: usize::try_from(outbox_len).unwrap_or(usize::MAX),
            hub,
            clock,
            problem,
        }
    }

    /// Draws the screen if anything on it changed.
    fn redraw(&mut self) {
        let size = match &self.settings.screen {
            ScreenOutput::None => return,
            ScreenOutput::Framebuffer(framebuffer) => {
                let geometry = framebuffer.geometry();
                Size::new(geometry.width, geometry.height)
            }
            ScreenOutput::Png { size, .. } => *size,
        };
        let state = self.state();
        // The preview is the same picture until the next capture: its size
        // and face count stand for it.
        let fingerprint = format!(
            "{:?}|{:?}|{:?}|{}|{:?}|{:?}|{:?}",
            state.lock,
            state.last_capture.as_ref().map(|c| (
                c.faces,
                c.at_local.clone(),
                c.preview.dimensions()
            )),
            state.hub,
            state.outbox_len,
            state.clock,
            state.problem,
            state.language,
        );
        if self.drawn.as_deref() == Some(fingerprint.as_str()) {
            return;
        }

        let mut canvas = Canvas::new(size);
        // Drawing into memory cannot fail.
        let _ = draw(&state, &mut canvas);
        let shown = match &self.settings.screen {
            ScreenOutput::Framebuffer(framebuffer) => {
                framebuffer.show(&canvas).map_err(|e| e.to_string())
            }
            ScreenOutput::Png { path, .. } => save_atomically(&canvas, path),
            ScreenOutput::None => Ok(()),
        };
        match shown {
            Ok(()) => self.drawn = Some(fingerprint),
            Err(error) => warn!(%error, "cannot draw the screen"),
        }
    }
}

/// How the screen names a camera problem.
fn screen_problem(problem: &CameraProblem) -> Problem {
    match problem {
        CameraProblem::Missing | CameraProblem::Lost => Problem::CameraMissing,
        CameraProblem::Busy => Problem::CameraBusy,
        _ => Problem::CaptureFailed,
    }
}

fn refuse(reason: &str) {
    events::emit(&Event::CaptureRefused {
        reason: reason.to_owned(),
    });
}

/// Writes the PNG beside its place and renames it over, so a reader never
/// sees half a picture.
fn save_atomically(canvas: &Canvas, path: &Path) -> Result<(), String> {
    let partial = path.with_extension("png.partial");
    canvas
        .save_png(&partial)
        .map_err(|error| error.to_string())?;
    std::fs::rename(&partial, path).map_err(|error| error.to_string())
}

/// Bytes free for this user on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> Result<u64, nix::Error> {
    let stats = nix::sys::statvfs::statvfs(dir)?;
    // Both are u32 on 32-bit ARM, where their product can also overflow u32.
    Ok(stats.blocks_available() as u64 * stats.fragment_size() as u64)
}

impl OutboxError {
    /// Whether SQLite could not write because the disk is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            OutboxError::Sqlite {
                source: rusqlite::Error::SqliteFailure(failure, _),
                ..
            } => failure.code == rusqlite::ErrorCode::DiskFull,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use guardian_models::{detector, DetectorKind};
    use guardian_protocol::{HubNotice, HubSealingKey, HubSigningKey, TeacherPin, TeacherPins};
    use uuid::Uuid;

    use super::*;
    use crate::notices;
    use crate::outbox::Outbox;
    use crate::testutil::{testdata, TempDir};

    /// A small tmpfs, so the disk really fills; unmounted on drop.
    struct SmallDisk(PathBuf);

    impl SmallDisk {
        fn mount(at: PathBuf, size: &str) -> Self {
            std::fs::create_dir_all(&at).unwrap();
            let status = Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(&at)
                .status()
                .expect("run mount");
            assert!(
                status.success(),
                "cannot mount a tmpfs at {}: this test needs root (CI runs as root)",
                at.display()
            );
            Self(at)
        }
    }

    impl Drop for SmallDisk {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }

    const PIN: &str = "2580";

    fn unlocked_kiosk(
        data_dir: &Path,
        camera_dir: &Path,
        min_free_bytes: u64,
    ) -> (
        Kiosk<ReplayCamera>,
        tokio::sync::mpsc::UnboundedReceiver<CaptureNews>,
    ) {
        use argon2::password_hash::{PasswordHasher, SaltString};

        let mut outbox = Outbox::open_in(data_dir).unwrap();
        let hub = HubSigningKey::generate();
        let device_id = Uuid::new_v4();
        let pin_hash = argon2::Argon2::default()
            .hash_password(
                PIN.as_bytes(),
                &SaltString::from_b64("c2FsdHNhbHRzYWx0").unwrap(),
            )
            .unwrap()
            .to_string();
        let pins = HubNotice::Pins(TeacherPins {
            device_id,
            issued_at: chrono::Utc::now(),
            teachers: vec![TeacherPin {
                teacher_id: Uuid::new_v4(),
                name: "Ana".into(),
                pin_hash,
            }],
        })
        .sign(&hub);
        notices::apply(&mut outbox, &pins, &hub.verifying_key(), device_id).unwrap();

        let capturer = Capturer::new(
            detector(DetectorKind::CenterFace).unwrap(),
            device_id,
            HubSealingKey::generate().public(),
            outbox,
        );
        let replay = SupervisorSettings {
            warm_up_frames: 0,
            queued_frames: 0,
            ..SupervisorSettings::default()
        };
        let (news, news_rx) = tokio::sync::mpsc::unbounded_channel();
        let settings = KioskSettings {
            camera: CameraChoice::Replay(camera_dir.to_path_buf()),
            screen: ScreenOutput::None,
            language: Language::En,
            classroom: "Aula 3B".into(),
            idle_lock: Duration::from_secs(300),
            min_free_bytes,
            data_dir: data_dir.to_path_buf(),
            clock_flag: data_dir.join("no-such-flag"),
        };
        let mut kiosk = Kiosk::new(
            capturer,
            CameraSupervisor::new(ReplayCamera::new(camera_dir), replay),
            settings,
            news,
            SharedHealth::default(),
        );
        for digit in PIN.bytes() {
            kiosk.on_input(Input::Key(KeypadKey::Digit(digit - b'0')));
        }
        kiosk.on_input(Input::Key(KeypadKey::Ok));
        assert!(kiosk.lock.is_unlocked());
        (kiosk, news_rx)
    }

    fn camera_with(dir: &Path, file: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::copy(testdata(file), dir.join(file)).unwrap();
    }

    /// Issue: a full disk stops capture with a clear message, corrupts
    /// nothing, and capture resumes by itself once space returns.
    #[test]
    fn a_full_disk_stops_capture_keeps_every_photo_and_resumes_when_space_returns() {
        let scratch = TempDir::new();
        let disk = SmallDisk::mount(scratch.path().join("disk"), "3m");
        let data_dir = disk.0.join("data");
        let filler = disk.0.join("other-files");
        std::fs::write(&filler, vec![0u8; 1024 * 1024]).unwrap();
        let camera_dir = scratch.path().join("camera");
        camera_with(&camera_dir, "mde_cafe_group_7mp.jpg");
        let (mut kiosk, mut news) = unlocked_kiosk(&data_dir, &camera_dir, 0);

        // Capture until SQLite itself finds the disk full.
        let mut captured = Vec::new();
        for _ in 0..40 {
            kiosk.capture(Instant::now());
            match news.try_recv() {
                Ok(CaptureNews::Captured(id)) => captured.push(id),
                _ => break,
            }
        }
        assert_eq!(kiosk.capture_problem, Some(Problem::DiskFull));
        assert!(!captured.is_empty(), "the disk filled before any capture");
        assert!(kiosk.health.lock().last_error.is_some());

        // Nothing corrupted, nothing announced lost.
        let mut check = Outbox::open_in(&data_dir).unwrap();
        let integrity: String = check
            .conn()
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
        let pending: Vec<Uuid> = check
            .pending()
            .unwrap()
            .iter()
            .map(|p| p.photo_id)
            .collect();
        assert_eq!(pending, captured);

        // Space returns (here: another file on the disk is removed), and the
        // next press captures again without a restart.
        drop(check);
        std::fs::remove_file(&filler).unwrap();
        kiosk.capture(Instant::now());
        assert!(matches!(news.try_recv(), Ok(CaptureNews::Captured(_))));
        assert_eq!(kiosk.capture_problem, None);
    }

    #[test]
    fn capture_is_refused_while_less_than_the_minimum_is_free() {
        let scratch = TempDir::new();
        let camera_dir = scratch.path().join("camera");
        camera_with(&camera_dir, "hopper.jpg");
        let (mut kiosk, mut news) =
            unlocked_kiosk(&scratch.path().join("data"), &camera_dir, u64::MAX);

        kiosk.capture(Instant::now());
        assert!(news.try_recv().is_err());
        assert_eq!(kiosk.capture_problem, Some(Problem::DiskFull));

        kiosk.settings.min_free_bytes = 0;
        kiosk.capture(Instant::now());
        assert!(matches!(news.try_recv(), Ok(CaptureNews::Captured(_))));
    }

    #[test]
    fn once_unlocked_enter_takes_a_photo_and_a_tap_where_the_keypad_was_does_not() {
        let scratch = TempDir::new();
        let camera_dir = scratch.path().join("camera");
        camera_with(&camera_dir, "hopper.jpg");
        let (mut kiosk, mut news) = unlocked_kiosk(&scratch.path().join("data"), &camera_dir, 0);

        kiosk.on_input(Input::Tap(KeypadKey::Ok));
        assert!(news.try_recv().is_err(), "a tap must not capture");
        kiosk.on_input(Input::Key(KeypadKey::Ok));
        assert!(matches!(news.try_recv(), Ok(CaptureNews::Captured(_))));
    }
}
