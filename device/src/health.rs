//! How the device is doing, shared by the kiosk loop (which shows it and
//! records capture problems) and the sync worker (which records the hub link
//! and sends it all to the hub in each heartbeat).

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Datelike, Local, Utc};

/// systemd-timesyncd creates this file once the clock is synchronised.
pub const TIMESYNC_FLAG: &str = "/run/systemd/timesync/synchronized";

/// What the screen and the heartbeat report.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// Connected to the broker now.
    pub connected: bool,
    /// When the link was lost, if it is down.
    pub offline_since: Option<DateTime<Local>>,
    /// The hub revoked this device.
    pub revoked: bool,
    /// The problem the teacher sees now, in words for an admin.
    pub last_error: Option<String>,
    /// When the sync worker last went round its loop (it does at least once
    /// a second); `None` before it starts.
    pub sync_turn_at: Option<std::time::Instant>,
}

/// How long the sync worker may be silent before the kiosk stops feeding
/// systemd's watchdog, so that a hung delivery restarts the device too.
pub const SYNC_SILENCE: std::time::Duration = std::time::Duration::from_secs(120);

impl Health {
    /// Whether the sync worker still turns (or has not started yet).
    pub fn sync_alive(&self, now: std::time::Instant) -> bool {
        self.sync_turn_at
            .is_none_or(|at| now.saturating_duration_since(at) < SYNC_SILENCE)
    }
}

/// [`Health`] behind a lock, cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct SharedHealth(Arc<Mutex<Health>>);

impl SharedHealth {
    /// A poisoned lock only means a thread panicked while writing plain data;
    /// the data is still whole.
    pub fn lock(&self) -> MutexGuard<'_, Health> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn snapshot(&self) -> Health {
        self.lock().clone()
    }
}

/// Whether the device trusts its clock: NTP has synchronised it (the flag
/// file of systemd-timesyncd), and it is not before this program was built.
/// A Pi has no real-time clock, so after a power cut it starts at the last
/// saved time until NTP answers.
pub fn clock_synced(flag: &Path, now: DateTime<Utc>) -> bool {
    now.year() >= 2026 && flag.exists()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn the_clock_counts_as_synced_only_with_the_flag_and_a_plausible_year() {
        let dir = TempDir::new();
        let flag = dir.path().join("synchronized");
        let now = Utc::now();
        assert!(!clock_synced(&flag, now));

        std::fs::write(&flag, b"").unwrap();
        assert!(clock_synced(&flag, now));
        let epoch = Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap();
        assert!(!clock_synced(&flag, epoch));
    }
}
