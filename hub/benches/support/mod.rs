//! What the benchmarks share: a hub in a temporary directory with one
//! classroom and device, and how they summarise timings and memory.

use std::sync::Arc;

use chrono::Utc;
use guardian_hub::clock::SystemClock;
use guardian_hub::Hub;
use guardian_protocol::{PhotoDetails, PhotoEnvelope, Provisioning, SealedPhoto, ENVELOPE_VERSION};
use uuid::Uuid;

/// A hub with classroom "Bench" and one device registered in it. Keep the
/// directory for as long as the hub is used.
pub fn bench_hub() -> (tempfile::TempDir, Hub, Provisioning) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let hub = Hub::open(dir.path(), Arc::new(SystemClock)).expect("hub");
    hub.accounts.add_classroom("Bench").expect("classroom");
    let device = hub
        .accounts
        .add_device("Bench", "127.0.0.1:1883", hub.keys.public())
        .expect("device");
    (dir, hub, device)
}

/// The middle value (sorts in place).
/// A photo sealed for the hub as the device would, as envelope bytes.
pub fn sealed_envelope(
    device: &Provisioning,
    photo_id: Uuid,
    details: &PhotoDetails,
    preview: &[u8],
    original: &[u8],
) -> Vec<u8> {
    let sealed = SealedPhoto::seal(
        &device.hub_sealing_public,
        photo_id,
        details,
        preview,
        original,
    )
    .expect("seal");
    PhotoEnvelope {
        version: ENVELOPE_VERSION,
        photo_id,
        device_id: device.device_id,
        captured_at: Utc::now(),
        sealed,
    }
    .to_bytes()
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The process's peak resident memory, as the kernel reports it.
pub fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .map(|line| line.trim_start_matches("VmHWM:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}
