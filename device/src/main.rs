//! `guardian-device`: the classroom device. Captures photos from a source,
//! covers every face in a preview, seals the original for the school hub, keeps
//! it in a durable outbox and delivers it over MQTT until the hub confirms.
//!
//! Settings come from flags, then `GUARDIAN_*` environment variables, then a
//! `.env` file (flags win). Logs go to stderr; stdout carries only the JSON
//! event lines of `events.rs` (and the result of `detect`).
//!
//! Exit codes of `run`: 0 every capture acknowledged, 1 error, 2 bad usage,
//! 3 some photos rejected by the hub, 4 timed out.

mod camera;
mod capture;
mod config;
mod cover;
mod detect;
mod events;
mod health;
mod input;
mod kiosk;
mod lock;
mod mqtt;
mod notices;
mod outbox;
mod reply;
mod screen;
mod seal;
mod service;
mod source;
mod sync;
#[cfg(test)]
mod testutil;
mod touch;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use guardian_models::DetectorKind;
use tokio::sync::mpsc;
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

use crate::capture::Capturer;
use crate::config::{KioskConfig, RunConfig, RunSettings};
use crate::health::SharedHealth;
use crate::input::ButtonLine;
use crate::kiosk::{CameraChoice, KioskSettings, ScreenOutput};
use crate::mqtt::BrokerAddress;
use crate::outbox::Outbox;
use crate::screen::state::Language;
use crate::source::Source;
use crate::sync::{SyncSettings, SyncSummary};

/// Some photos were rejected by the hub and are in quarantine.
const EXIT_REJECTED: u8 = 3;
/// `--timeout` passed before everything was captured and delivered.
const EXIT_TIMEOUT: u8 = 4;

#[derive(Debug, Parser)]
#[command(name = "guardian-device", version, about)]
struct Cli {
    /// The provisioning file the hub wrote for this device.
    #[arg(long, env = "GUARDIAN_PROVISION", value_name = "FILE", global = true)]
    provision: Option<PathBuf>,

    /// Where the outbox database lives; created with mode 0700 if missing.
    #[arg(long, env = "GUARDIAN_DATA_DIR", value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Capture photos from a source and deliver them to the hub.
    Run(RunArgs),
    /// The classroom appliance: camera, capture button, PIN keypad and screen.
    Kiosk(KioskArgs),
    /// Print the faces the detector finds in photo files, without capturing them.
    Detect(DetectArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Where photos come from: dir:PATH (every .jpg/.jpeg/.png in it) or file:PATH.
    #[arg(long, env = "GUARDIAN_SOURCE", value_name = "SRC")]
    source: Source,

    /// The MQTT broker, overriding the one in the provisioning file.
    #[arg(long, env = "GUARDIAN_BROKER", value_name = "HOST:PORT")]
    broker: Option<BrokerAddress>,

    /// The face detector: centerface or rustface.
    #[arg(long, env = "GUARDIAN_DETECTOR", default_value = "centerface")]
    detector: DetectorKind,

    /// Exit once every source file is captured and the hub has answered for all.
    #[arg(long)]
    exit_when_synced: bool,

    /// Exit with code 4 if not done after this many seconds.
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
}

#[derive(Debug, Args)]
struct KioskArgs {
    /// The camera: a V4L2 device (/dev/video0, or its number), or replay:DIR
    /// to replay the JPEG files of a folder as camera frames.
    #[arg(long, env = "GUARDIAN_CAMERA", default_value = "/dev/video0")]
    camera: CameraArg,

    /// The capture button's GPIO chip and line, e.g. /dev/gpiochip0:17.
    #[arg(long, env = "GUARDIAN_BUTTON", value_name = "CHIP:LINE")]
    button: Option<ButtonLine>,

    /// The button pulls its line high when pressed (default: it connects the
    /// line to ground, which reads low).
    #[arg(long, env = "GUARDIAN_BUTTON_ACTIVE_HIGH")]
    button_active_high: bool,

    /// Read commands from stdin: a line of digits is a PIN, `capture` (or an
    /// empty line) takes a photo, `lock` locks.
    #[arg(long)]
    stdin_keys: bool,

    /// An input device to read keys and touches from, e.g.
    /// /dev/input/by-id/usb-…-event-kbd or the touch screen's event device;
    /// give it once per device.
    #[arg(
        long = "input",
        env = "GUARDIAN_INPUTS",
        value_delimiter = ',',
        value_name = "DEVICE"
    )]
    inputs: Vec<PathBuf>,

    /// Where the screen is drawn: fb:/dev/fbN, png:FILE, or none.
    #[arg(long, env = "GUARDIAN_SCREEN", default_value = "fb:/dev/fb0")]
    screen: ScreenArg,

    /// The size of a png: screen, WIDTHxHEIGHT.
    #[arg(long, default_value = "800x480", value_parser = parse_size)]
    screen_size: (u32, u32),

    /// The screen's language: es or en.
    #[arg(long, env = "GUARDIAN_LANGUAGE", default_value = "es")]
    language: Language,

    /// Lock again after this many seconds without a key or button press.
    #[arg(
        long,
        env = "GUARDIAN_IDLE_LOCK",
        default_value_t = 300,
        value_name = "SECS"
    )]
    idle_lock: u64,

    /// Refuse to capture while less than this many MB are free on the data disk.
    #[arg(
        long,
        env = "GUARDIAN_MIN_FREE_MB",
        default_value_t = 64,
        value_name = "MB"
    )]
    min_free_mb: u64,

    /// The MQTT broker, overriding the one in the provisioning file.
    #[arg(long, env = "GUARDIAN_BROKER", value_name = "HOST:PORT")]
    broker: Option<BrokerAddress>,

    /// The face detector: centerface or rustface.
    #[arg(long, env = "GUARDIAN_DETECTOR", default_value = "centerface")]
    detector: DetectorKind,

    /// The file whose presence says NTP synchronised the clock.
    #[arg(long, env = "GUARDIAN_CLOCK_FLAG", default_value = health::TIMESYNC_FLAG, hide = true)]
    clock_flag: PathBuf,

    /// Seconds between heartbeats (tests shorten it).
    #[arg(long, default_value_t = 30, hide = true)]
    heartbeat_secs: u64,
}

/// The `--camera` setting.
#[derive(Debug, Clone)]
enum CameraArg {
    V4l(camera::v4l::Device),
    Replay(PathBuf),
}

impl std::str::FromStr for CameraArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.strip_prefix("replay:") {
            Some("") => Err("replay: needs a folder, as replay:/path/to/photos".into()),
            Some(dir) => Ok(Self::Replay(PathBuf::from(dir))),
            None => text
                .parse()
                .map(Self::V4l)
                .map_err(|error: camera::v4l::BadDevice| error.to_string()),
        }
    }
}

/// The `--screen` setting.
#[derive(Debug, Clone)]
enum ScreenArg {
    Framebuffer(PathBuf),
    Png(PathBuf),
    None,
}

impl std::str::FromStr for ScreenArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "none" {
            return Ok(Self::None);
        }
        match text.split_once(':') {
            Some(("fb", path)) if !path.is_empty() => Ok(Self::Framebuffer(path.into())),
            Some(("png", path)) if !path.is_empty() => Ok(Self::Png(path.into())),
            _ => Err(format!(
                "screen {text:?} is not understood; write fb:/dev/fb0, png:FILE or none"
            )),
        }
    }
}

fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{text:?} is not a size; write it as 800x480");
    let (width, height) = text.split_once('x').ok_or_else(bad)?;
    let size = (
        width.parse().map_err(|_| bad())?,
        height.parse().map_err(|_| bad())?,
    );
    if size.0 < 64 || size.1 < 64 || size.0 > 4096 || size.1 > 4096 {
        return Err(format!(
            "{text}: the screen must be 64 to 4096 pixels a side"
        ));
    }
    Ok(size)
}

#[derive(Debug, Args)]
struct DetectArgs {
    /// The face detector: centerface or rustface.
    #[arg(long, env = "GUARDIAN_DETECTOR", default_value = "centerface")]
    detector: DetectorKind,

    /// Print one JSON object mapping each image to its [x, y, width, height] boxes.
    #[arg(long)]
    json: bool,

    /// The photo files to look at.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
}

fn main() -> ExitCode {
    // Load .env before parsing, so its values act as environment variables;
    // it never overrides a variable that is already set, and flags win over both.
    let dotenv = dotenvy::dotenv();
    let cli = Cli::parse();
    init_logging();
    if let Err(error) = dotenv {
        if !error.not_found() {
            warn!(%error, "cannot read the .env file; ignoring it");
        }
    }

    let result = match cli.command {
        Command::Run(args) => run(RunSettings {
            provision: cli.provision,
            data_dir: cli.data_dir,
            broker: args.broker,
            source: args.source,
            detector: args.detector,
            exit_when_synced: args.exit_when_synced,
            timeout_secs: args.timeout,
        }),
        Command::Kiosk(args) => run_kiosk(cli.provision, cli.data_dir, args),
        Command::Detect(args) => detect::run(args.detector, &args.images, args.json)
            .map(|()| ExitCode::SUCCESS)
            .map_err(anyhow::Error::from),
    };

    result.unwrap_or_else(|error| {
        eprintln!("guardian-device: {}", describe(&error));
        ExitCode::FAILURE
    })
}

/// The error and its causes on one line. Most of our messages already quote
/// their cause, so a cause whose text is already there is not repeated.
fn describe(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// How a `run` ended.
enum Ending {
    Synced(Result<SyncSummary, sync::SyncError>),
    TimedOut,
    Signalled,
}

fn run(settings: RunSettings) -> anyhow::Result<ExitCode> {
    let config = RunConfig::load(settings)?;
    let provisioning = &config.provisioning;
    let device_id = provisioning.device_id;

    let Parts {
        mut capturer,
        sync_outbox,
        signing_key,
    } = Parts::open(provisioning, &config.data_dir, config.detector)?;

    let waiting = capturer.outbox().pending_count()?;
    let quarantined = capturer.outbox().quarantined()?.len();
    info!(
        %device_id,
        waiting,
        quarantined,
        source = %config.source,
        broker = %config.broker,
        detector = %config.detector,
        data_dir = %config.data_dir.display(),
        "starting"
    );

    let (news_tx, news_rx) = mpsc::unbounded_channel();
    let source = config.source.clone();
    let exit_when_synced = config.exit_when_synced;
    // Capture runs on its own thread: detection is CPU-bound and must never
    // wait for the network.
    std::thread::Builder::new()
        .name("capture".into())
        .spawn(move || capture::run(capturer, source, exit_when_synced, news_tx))
        .context("cannot start the capture thread")?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let sync_settings = SyncSettings {
        device_id,
        signing_key,
        hub_verifying_key: provisioning.hub_verifying_key,
        exit_when_synced,
        health: SharedHealth::default(),
        clock_flag: PathBuf::from(health::TIMESYNC_FLAG),
        heartbeat_every: sync::HEARTBEAT_EVERY,
    };
    let options = mqtt::options(provisioning, &config.broker)
        .context("the provisioning file's broker CA cannot be used; provision the device again")?;
    let ending = runtime.block_on(async {
        let link = mqtt::connect(options, &config.broker);
        let deadline = async {
            match config.timeout {
                Some(timeout) => tokio::time::sleep(timeout).await,
                None => std::future::pending().await,
            }
        };
        // The pings share this task with the sync worker: a poll of it that
        // never returns stops them.
        let watchdog = service::Watchdog::from_env();
        watchdog.ready();
        tokio::select! {
            result = sync::run(sync_outbox, link, news_rx, sync_settings) => Ending::Synced(result),
            () = deadline => Ending::TimedOut,
            () = shutdown_signal() => Ending::Signalled,
            never = watchdog.keep_alive() => match never {},
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(2));

    match ending {
        Ending::Synced(result) => {
            let summary = result?;
            if summary.rejected.is_empty() {
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!(
                "guardian-device: the hub rejected {} photo(s); they are kept in quarantine:",
                summary.rejected.len()
            );
            for (photo_id, reason) in &summary.rejected {
                eprintln!("rejected {photo_id}: {reason}");
            }
            Ok(ExitCode::from(EXIT_REJECTED))
        }
        Ending::TimedOut => {
            let waiting = Outbox::open_in(&config.data_dir)
                .and_then(|outbox| outbox.pending_count())
                .map_or_else(|_| "an unknown number of".to_string(), |n| n.to_string());
            eprintln!(
                "guardian-device: timed out after {} s; {waiting} photo(s) still wait in the \
                 outbox for the hub",
                config.timeout.map_or(0, |t| t.as_secs())
            );
            Ok(ExitCode::from(EXIT_TIMEOUT))
        }
        Ending::Signalled => {
            info!("stopping on signal; waiting photos stay in the outbox for the next start");
            Ok(if exit_when_synced {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

/// Runs the appliance until SIGTERM: the kiosk loop on its own thread (it
/// owns the camera), the input sources on theirs, and the sync worker.
fn run_kiosk(
    provision: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    args: KioskArgs,
) -> anyhow::Result<ExitCode> {
    let config = KioskConfig::load(provision, data_dir, args.broker.clone())?;
    let provisioning = &config.provisioning;
    let device_id = provisioning.device_id;

    let Parts {
        capturer,
        sync_outbox,
        signing_key,
    } = Parts::open(provisioning, &config.data_dir, args.detector)?;

    let screen = match &args.screen {
        ScreenArg::None => ScreenOutput::None,
        ScreenArg::Png(path) => ScreenOutput::Png {
            path: path.clone(),
            size: embedded_graphics::prelude::Size::new(args.screen_size.0, args.screen_size.1),
        },
        ScreenArg::Framebuffer(device) => {
            let sysfs = framebuffer_sysfs_dir(device);
            ScreenOutput::Framebuffer(
                screen::framebuffer::Framebuffer::open(&sysfs, device)
                    .context("cannot open the screen; pass --screen none to run without one")?,
            )
        }
    };
    let camera = match &args.camera {
        CameraArg::V4l(device) => CameraChoice::V4l(camera::v4l::V4lSettings {
            device: device.clone(),
            ..Default::default()
        }),
        CameraArg::Replay(dir) => CameraChoice::Replay(dir.clone()),
    };
    let health = SharedHealth::default();
    let (inputs_tx, inputs_rx) = std::sync::mpsc::channel();

    // Inputs: each source on its own thread.
    if let Some(line) = &args.button {
        let pin = input::open_button(line, !args.button_active_high)?;
        let tx = inputs_tx.clone();
        std::thread::Builder::new()
            .name("button".into())
            .spawn(move || input::watch_button(pin, &tx))
            .context("cannot start the button thread")?;
    }
    let touch_size = match &screen {
        ScreenOutput::Framebuffer(framebuffer) => {
            let geometry = framebuffer.geometry();
            embedded_graphics::prelude::Size::new(geometry.width, geometry.height)
        }
        ScreenOutput::Png { size, .. } => *size,
        ScreenOutput::None => embedded_graphics::prelude::Size::new(800, 480),
    };
    for device in &args.inputs {
        let (tx, device) = (inputs_tx.clone(), device.clone());
        std::thread::Builder::new()
            .name("input".into())
            .spawn(move || touch::watch_device(device, touch_size, &tx))
            .context("cannot start an input thread")?;
    }
    if args.stdin_keys {
        let tx = inputs_tx.clone();
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || input::read_commands(std::io::stdin().lock(), &tx))
            .context("cannot start the stdin thread")?;
    }
    drop(inputs_tx);

    info!(
        %device_id,
        classroom = %provisioning.classroom,
        camera = ?args.camera,
        broker = %config.broker,
        data_dir = %config.data_dir.display(),
        "starting the kiosk"
    );

    let (news_tx, news_rx) = mpsc::unbounded_channel();
    let kiosk_settings = KioskSettings {
        camera,
        screen,
        language: args.language,
        classroom: provisioning.classroom.clone(),
        idle_lock: Duration::from_secs(args.idle_lock.max(10)),
        min_free_bytes: args.min_free_mb.saturating_mul(1024 * 1024),
        data_dir: config.data_dir.clone(),
        clock_flag: args.clock_flag.clone(),
    };
    let kiosk_health = health.clone();
    std::thread::Builder::new()
        .name("kiosk".into())
        .spawn(move || kiosk::run(capturer, kiosk_settings, inputs_rx, news_tx, kiosk_health))
        .context("cannot start the kiosk thread")?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let sync_settings = SyncSettings {
        device_id,
        signing_key,
        hub_verifying_key: provisioning.hub_verifying_key,
        exit_when_synced: false,
        health,
        clock_flag: args.clock_flag,
        heartbeat_every: Duration::from_secs(args.heartbeat_secs.max(1)),
    };
    let options = mqtt::options(provisioning, &config.broker)
        .context("the provisioning file's broker CA cannot be used; provision the device again")?;
    let result = runtime.block_on(async {
        let link = mqtt::connect(options, &config.broker);
        tokio::select! {
            result = sync::run(sync_outbox, link, news_rx, sync_settings) => Some(result),
            () = shutdown_signal() => None,
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(2));

    match result {
        Some(result) => {
            result?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            info!("stopping on signal; waiting photos stay in the outbox for the next start");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What `run` and `kiosk` both start from.
struct Parts {
    capturer: Capturer,
    sync_outbox: Outbox,
    signing_key: guardian_protocol::DeviceSigningKey,
}

impl Parts {
    /// Two outbox connections, so the capture thread and the sync worker each
    /// write without waiting for the other's work (SQLite serialises the
    /// commits); the detector, built once; the device's signing key.
    fn open(
        provisioning: &guardian_protocol::Provisioning,
        data_dir: &std::path::Path,
        detector: DetectorKind,
    ) -> anyhow::Result<Self> {
        let capture_outbox = Outbox::open_in(data_dir)?;
        let sync_outbox = Outbox::open_in(data_dir)?;
        let detector = guardian_models::detector(detector)?;
        let signing_key = provisioning
            .signing_key()
            .context("the provisioning file's device signing key is unusable")?;

        let capturer = Capturer::new(
            detector,
            provisioning.device_id,
            provisioning.hub_sealing_public,
            capture_outbox,
        );
        Ok(Self {
            capturer,
            sync_outbox,
            signing_key,
        })
    }
}

/// `/dev/fb1` is described in `/sys/class/graphics/fb1`.
fn framebuffer_sysfs_dir(device: &std::path::Path) -> PathBuf {
    let name = device
        .file_name()
        .map_or_else(|| "fb0".into(), |name| name.to_string_lossy().into_owned());
    PathBuf::from("/sys/class/graphics").join(name)
}

/// Resolves on SIGTERM (systemd stopping the service) or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};

    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(terminate) => terminate,
        Err(error) => {
            warn!(%error, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
