//! What the device tells systemd (`Type=notify` in guardian-device.service):
//! READY=1 once its main loop runs, and WATCHDOG=1 from the turns of that
//! loop. A loop stuck on the camera, the screen or the disk stops the pings
//! (and the kiosk also stops them when the sync worker falls silent), and
//! systemd restarts the device when `WatchdogSec=` passes without one.
//!
//! Outside systemd (no `NOTIFY_SOCKET`) nothing is sent.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tracing::warn;

/// Pings systemd's watchdog from a loop, at most once per half interval.
#[derive(Debug)]
pub struct Watchdog {
    /// Half of systemd's `WATCHDOG_USEC`, so one late ping is not yet fatal;
    /// `None` when no watchdog watches this process.
    every: Option<Duration>,
    last_ping: Option<Instant>,
}

impl Watchdog {
    /// The watchdog systemd set for this process, if any.
    pub fn from_env() -> Self {
        Self {
            every: sd_notify::watchdog_enabled().map(|interval| interval / 2),
            last_ping: None,
        }
    }

    /// Tells systemd the service is up. Call it once, when the loop starts.
    pub fn ready(&self) {
        notify(&NotifyState::Ready);
    }

    /// Call on every turn of the loop: pings when half the interval has
    /// passed since the last ping.
    pub fn tick(&mut self, now: Instant) {
        if self.due(now) {
            notify(&NotifyState::Watchdog);
            self.last_ping = Some(now);
        }
    }

    /// Pings every half interval for as long as the task polling it runs;
    /// never ends, also when there is no watchdog. For a loop that is a
    /// future: in a `select!` beside it, a poll stuck in its other branch
    /// stops these pings too.
    pub async fn keep_alive(mut self) -> Infallible {
        let Some(every) = self.every else {
            return std::future::pending().await;
        };

        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.tick(Instant::now());
        }
    }

    fn due(&self, now: Instant) -> bool {
        match (self.every, self.last_ping) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(every), Some(last)) => now.saturating_duration_since(last) >= every,
        }
    }
}

/// Sends one state to systemd. A failure is logged and otherwise ignored:
/// the device goes on working, and a watchdog that hears nothing restarts it.
fn notify(state: &NotifyState) {
    if let Err(error) = sd_notify::notify(std::slice::from_ref(state)) {
        warn!(%error, %state, "cannot notify systemd");
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;

    use super::*;
    use crate::testutil::TempDir;

    fn watchdog_every(every: Duration) -> Watchdog {
        Watchdog {
            every: Some(every),
            last_ping: None,
        }
    }

    #[test]
    fn the_first_turn_pings_and_the_next_ping_waits_for_half_the_interval() {
        let start = Instant::now();
        let mut watchdog = watchdog_every(Duration::from_secs(15));

        assert!(watchdog.due(start));
        watchdog.last_ping = Some(start);
        assert!(!watchdog.due(start + Duration::from_millis(500)));
        assert!(!watchdog.due(start + Duration::from_millis(14_999)));
        assert!(watchdog.due(start + Duration::from_secs(15)));
    }

    #[test]
    fn without_a_watchdog_no_turn_is_due() {
        let watchdog = Watchdog {
            every: None,
            last_ping: None,
        };
        assert!(!watchdog.due(Instant::now()));
    }

    /// The only test that sets `NOTIFY_SOCKET` and `WATCHDOG_USEC`: they are
    /// process-wide, so they are set and removed again within this one test.
    #[test]
    fn systemd_hears_ready_then_watchdog_pings_at_most_once_per_half_interval() {
        let scratch = TempDir::new();
        let path = scratch.path().join("notify");
        let systemd = UnixDatagram::bind(&path).unwrap();
        systemd
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();

        std::env::set_var("NOTIFY_SOCKET", &path);
        std::env::set_var("WATCHDOG_USEC", "30000000");
        std::env::set_var("WATCHDOG_PID", std::process::id().to_string());
        let mut watchdog = Watchdog::from_env();
        let start = Instant::now();
        watchdog.ready();
        watchdog.tick(start);
        watchdog.tick(start + Duration::from_secs(1));
        watchdog.tick(start + Duration::from_secs(15));
        std::env::remove_var("NOTIFY_SOCKET");
        std::env::remove_var("WATCHDOG_USEC");
        std::env::remove_var("WATCHDOG_PID");

        assert_eq!(watchdog.every, Some(Duration::from_secs(15)));
        let mut heard = Vec::new();
        let mut buffer = [0u8; 256];
        for _ in 0..3 {
            let length = systemd.recv(&mut buffer).unwrap();
            heard.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
        }
        assert_eq!(heard, ["READY=1\n", "WATCHDOG=1\n", "WATCHDOG=1\n"]);

        systemd.set_nonblocking(true).unwrap();
        assert!(
            systemd.recv(&mut buffer).is_err(),
            "the turn one second after a ping must not ping again"
        );
    }
}
