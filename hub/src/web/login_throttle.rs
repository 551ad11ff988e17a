//! Limits on password checking: how many run at once, and how many may fail.
//!
//! Each check runs argon2 with about 19 MiB of memory, so unbounded parallel
//! logins can exhaust a small server (and the MQTT broker inside it). And a
//! phone number is easy to learn, so guessing its password must be slow: after
//! a few failures for one phone number, or from one address, further attempts
//! are refused until the window has passed. The counts live in memory: a hub
//! restart forgets them, which costs an attacker a restart per window.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Password checks running at the same time.
pub const MAX_CONCURRENT_LOGINS: usize = 2;

/// How long a login waits for a free check before it is told to retry.
const QUEUE_WAIT: Duration = Duration::from_secs(5);

/// Failed logins allowed per phone number, and per client address, within
/// [`FAILURE_WINDOW`]. A school's shared NAT may put many parents behind one
/// address, so its allowance is larger.
pub const FAILURES_PER_PHONE: usize = 5;
pub const FAILURES_PER_ADDRESS: usize = 20;
pub const FAILURE_WINDOW: chrono::Duration = chrono::Duration::minutes(15);

/// Keys tracked at most; the oldest are forgotten first beyond this, so a
/// flood of made-up phone numbers cannot grow memory without bound.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Too many failures for this phone or address; wait for the window.
    TooManyFailures,
    /// Every password check is busy.
    Busy,
}

pub struct LoginThrottle {
    checks: Semaphore,
    failures: Mutex<HashMap<String, Vec<DateTime<Utc>>>>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            checks: Semaphore::new(MAX_CONCURRENT_LOGINS),
            failures: Mutex::new(HashMap::new()),
        }
    }
}

impl LoginThrottle {
    /// Refuses a login that has failed too often, or waits for a free check.
    pub async fn admit(
        &self,
        phone: &str,
        ip: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<SemaphorePermit<'_>, Refusal> {
        {
            let mut failures = self.lock();
            let recent = |key: &str, failures: &mut HashMap<String, Vec<DateTime<Utc>>>| {
                failures.get_mut(key).map_or(0, |times| {
                    times.retain(|at| now - *at < FAILURE_WINDOW);
                    times.len()
                })
            };
            if recent(&phone_key(phone), &mut failures) >= FAILURES_PER_PHONE
                || recent(&ip_key(ip), &mut failures) >= FAILURES_PER_ADDRESS
            {
                return Err(Refusal::TooManyFailures);
            }
        }

        match tokio::time::timeout(QUEUE_WAIT, self.checks.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Refusal::Busy),
        }
    }

    pub fn failed(&self, phone: &str, ip: IpAddr, now: DateTime<Utc>) {
        let mut failures = self.lock();
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, times| times.iter().any(|at| now - *at < FAILURE_WINDOW));
        }
        if failures.len() >= MAX_TRACKED {
            return;
        }
        for key in [phone_key(phone), ip_key(ip)] {
            failures.entry(key).or_default().push(now);
        }
    }

    /// A correct password clears the phone's failures (not the address's).
    pub fn succeeded(&self, phone: &str) {
        self.lock().remove(&phone_key(phone));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<DateTime<Utc>>>> {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn phone_key(phone: &str) -> String {
    let compact: String = phone.chars().filter(|c| !c.is_whitespace()).collect();
    format!("phone:{compact}")
}

fn ip_key(ip: IpAddr) -> String {
    format!("ip:{ip}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_phone_is_refused_after_its_failures_until_the_window_passes() {
        let throttle = LoginThrottle::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let now = Utc::now();
        for _ in 0..FAILURES_PER_PHONE {
            assert!(throttle.admit("+34600111222", ip, now).await.is_ok());
            throttle.failed("+34600111222", ip, now);
        }
        assert_eq!(
            throttle.admit("+34600111222", ip, now).await.err(),
            Some(Refusal::TooManyFailures)
        );
        assert!(
            throttle.admit("+34600999888", ip, now).await.is_ok(),
            "another phone"
        );
        let later = now + FAILURE_WINDOW + chrono::Duration::seconds(1);
        assert!(throttle.admit("+34600111222", ip, later).await.is_ok());
    }

    #[tokio::test]
    async fn an_address_is_refused_after_its_failures_across_phones() {
        let throttle = LoginThrottle::default();
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        let now = Utc::now();
        for n in 0..FAILURES_PER_ADDRESS {
            throttle.failed(&format!("+3460000{n:04}"), ip, now);
        }
        assert_eq!(
            throttle.admit("+34600111222", ip, now).await.err(),
            Some(Refusal::TooManyFailures)
        );
        let other: IpAddr = "127.0.0.10".parse().unwrap();
        assert!(throttle.admit("+34600111222", other, now).await.is_ok());
    }

    #[tokio::test]
    async fn no_more_than_the_allowed_checks_run_at_once() {
        let throttle = LoginThrottle::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let now = Utc::now();
        let held: Vec<_> = futures_admit(&throttle, ip, now, MAX_CONCURRENT_LOGINS).await;
        assert_eq!(held.len(), MAX_CONCURRENT_LOGINS);
        assert!(
            throttle.checks.try_acquire().is_err(),
            "every check is taken"
        );
        drop(held);
        assert!(throttle.checks.try_acquire().is_ok());
    }

    async fn futures_admit(
        throttle: &LoginThrottle,
        ip: IpAddr,
        now: DateTime<Utc>,
        count: usize,
    ) -> Vec<SemaphorePermit<'_>> {
        let mut permits = Vec::new();
        for n in 0..count {
            permits.push(
                throttle
                    .admit(&format!("+3460011{n:04}"), ip, now)
                    .await
                    .unwrap(),
            );
        }
        permits
    }
}
