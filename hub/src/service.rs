//! What the hub tells systemd (`Type=notify` in guardian-hub.service):
//! READY=1 once it serves, and WATCHDOG=1 while its database still answers.
//! A hub whose database lock is stuck (or whose async runtime no longer runs
//! this task) stops pinging, and systemd restarts it when `WatchdogSec=`
//! passes without a ping.
//!
//! Outside systemd (no `NOTIFY_SOCKET`) nothing is sent.

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tracing::warn;

use crate::Hub;

/// Tells systemd the hub is up: call it once the web page and the broker
/// listen and the ingest is subscribed.
pub fn notify_ready() {
    notify(&NotifyState::Ready);
}

/// Tells systemd the hub is stopping, so a slow shutdown is not taken for a
/// hang.
pub fn notify_stopping() {
    notify(&NotifyState::Stopping);
}

/// Pings systemd's watchdog every half interval, each time only after the
/// database answered within that half interval. Returns at once when no
/// watchdog watches this process; otherwise runs until aborted.
pub async fn watchdog(hub: Arc<Hub>) {
    // Half of WATCHDOG_USEC, so one late ping is not yet fatal.
    let Some(every) = sd_notify::watchdog_enabled().map(|interval| interval / 2) else {
        return;
    };

    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match database_answers(hub.clone(), every).await {
            Ok(()) => notify(&NotifyState::Watchdog),
            Err(problem) => warn!(%problem, "the hub is not answering; no watchdog ping"),
        }
    }
}

/// Why a liveness check failed.
#[derive(Debug, thiserror::Error)]
pub enum Unresponsive {
    /// Someone holds the database lock (or SQLite is stuck) for longer than
    /// the watchdog allows; systemd restarts the hub if it lasts.
    #[error("the database did not answer within {0:?}")]
    TimedOut(Duration),

    /// SQLite answered with an error.
    #[error("the database failed a trivial query: {0}")]
    Query(#[from] rusqlite::Error),

    /// The check's thread panicked or the runtime is shutting down.
    #[error("the database check did not run: {0}")]
    NotRun(#[from] tokio::task::JoinError),
}

/// Takes the database lock and runs `SELECT 1`, on a blocking thread, within
/// `limit`. A check that times out leaves its thread waiting for the lock;
/// the next checks time out too, and the restart ends them all.
pub async fn database_answers(hub: Arc<Hub>, limit: Duration) -> Result<(), Unresponsive> {
    let check = tokio::task::spawn_blocking(move || {
        let conn = hub.db.lock();
        conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))
    });
    match tokio::time::timeout(limit, check).await {
        Err(_elapsed) => Err(Unresponsive::TimedOut(limit)),
        Ok(joined) => joined?.map(drop).map_err(Unresponsive::from),
    }
}

/// Sends one state to systemd. A failure is logged and otherwise ignored:
/// the hub goes on serving, and a watchdog that hears nothing restarts it.
fn notify(state: &NotifyState) {
    if let Err(error) = sd_notify::notify(std::slice::from_ref(state)) {
        warn!(%error, %state, "cannot notify systemd");
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;

    use super::*;
    use crate::clock::SystemClock;

    fn hub(dir: &std::path::Path) -> Arc<Hub> {
        Arc::new(Hub::open(dir, Arc::new(SystemClock)).unwrap())
    }

    #[tokio::test]
    async fn an_open_hub_answers_the_liveness_check() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path());

        database_answers(hub, Duration::from_secs(5)).await.unwrap();
    }

    // Holding the lock across the check is the hang this test stands for.
    #[allow(clippy::await_holding_lock)]
    #[tokio::test]
    async fn a_database_lock_held_too_long_fails_the_liveness_check() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path());

        let held = hub.db.clone();
        let guard = held.lock();
        let result = database_answers(hub.clone(), Duration::from_millis(200)).await;
        drop(guard);

        assert!(
            matches!(result, Err(Unresponsive::TimedOut(_))),
            "{result:?}"
        );
    }

    /// The only test that sets `NOTIFY_SOCKET` and `WATCHDOG_USEC`: they are
    /// process-wide, so they are set and removed again within this one test.
    /// Two workers, as the test thread blocks on the socket while the
    /// watchdog task runs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn systemd_hears_ready_then_a_watchdog_ping_while_the_database_answers() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path());
        let path = dir.path().join("notify");
        let systemd = UnixDatagram::bind(&path).unwrap();
        systemd
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();

        std::env::set_var("NOTIFY_SOCKET", &path);
        // 400 ms: a ping every 200 ms.
        std::env::set_var("WATCHDOG_USEC", "400000");
        std::env::set_var("WATCHDOG_PID", std::process::id().to_string());
        notify_ready();
        let pings = tokio::spawn(watchdog(hub));
        let mut heard = Vec::new();
        let mut buffer = [0u8; 256];
        for _ in 0..2 {
            let length = systemd.recv(&mut buffer).unwrap();
            heard.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
        }
        pings.abort();
        std::env::remove_var("NOTIFY_SOCKET");
        std::env::remove_var("WATCHDOG_USEC");
        std::env::remove_var("WATCHDOG_PID");

        assert_eq!(heard, ["READY=1\n", "WATCHDOG=1\n"]);
    }
}
