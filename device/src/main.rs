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

// The capture loop wires the camera in next; until then nothing in main uses it.
#[allow(dead_code)]
mod camera;
mod capture;
mod config;
mod cover;
mod detect;
mod events;
mod mqtt;
mod outbox;
mod reply;
// The capture loop wires the screen in next; until then only its tests use it.
#[allow(dead_code)]
mod screen;
mod seal;
mod source;
mod sync;
#[cfg(test)]
mod testutil;

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
use crate::config::{RunConfig, RunSettings};
use crate::mqtt::BrokerAddress;
use crate::outbox::Outbox;
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

    // Two connections: the capture thread and the sync worker each write
    // without waiting for the other's work, SQLite serialising the commits.
    let capture_outbox = Outbox::open_in(&config.data_dir)?;
    let sync_outbox = Outbox::open_in(&config.data_dir)?;
    let detector = guardian_models::detector(config.detector)?;
    let signing_key = provisioning
        .signing_key()
        .context("the provisioning file's device signing key is unusable")?;

    let waiting = capture_outbox.pending_count()?;
    let quarantined = capture_outbox.quarantined()?.len();
    info!(
        %device_id,
        waiting,
        quarantined,
        source = %config.source,
        broker = %config.broker,
        detector = detector.name(),
        data_dir = %config.data_dir.display(),
        "starting"
    );

    let (news_tx, news_rx) = mpsc::unbounded_channel();
    let capturer = Capturer::new(
        detector,
        device_id,
        provisioning.hub_sealing_public,
        capture_outbox,
    );
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
    };
    let ending = runtime.block_on(async {
        let link = mqtt::connect(mqtt::options(provisioning, &config.broker), &config.broker);
        let deadline = async {
            match config.timeout {
                Some(timeout) => tokio::time::sleep(timeout).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = sync::run(sync_outbox, link, news_rx, sync_settings) => Ending::Synced(result),
            () = deadline => Ending::TimedOut,
            () = shutdown_signal() => Ending::Signalled,
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
