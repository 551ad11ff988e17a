//! The teacher's lock: the device captures only while a teacher of its
//! classroom has unlocked it with their PIN.
//!
//! PINs are checked against the argon2id hashes the hub sent (see
//! [`crate::notices`]); the device never learns a PIN. After
//! [`FREE_TRIES`] wrong PINs each further try waits longer, doubling from
//! [`FIRST_WAIT`] up to [`LONGEST_WAIT`]; the count of wrong PINs is kept in
//! the outbox database, so switching the device off and on does not reset
//! it. The device locks itself when nobody touched it for the idle time.

use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use guardian_protocol::{TeacherPin, TeacherPins};
use rusqlite::{params, OptionalExtension};
use tracing::warn;
use zeroize::Zeroizing;

use crate::outbox::{sqlite, Outbox, OutboxError};
use crate::screen::layout::KeypadKey;
use crate::screen::state::LockView;

/// Wrong PINs allowed before the first wait.
pub const FREE_TRIES: u32 = 3;
/// The wait after the last free try; it doubles with each further wrong PIN.
pub const FIRST_WAIT: Duration = Duration::from_secs(30);
pub const LONGEST_WAIT: Duration = Duration::from_secs(60 * 60);

/// The longest PIN the keypad takes; the hub allows 4 to 8 digits.
const MAX_DIGITS: usize = 8;
const MIN_DIGITS: usize = 4;

/// A PIN hash costing more than this is not tried: the hub never makes one,
/// and checking it could stall the device for minutes.
const MAX_HASH_MEMORY_KIB: u32 = 64 * 1024;
const MAX_HASH_PASSES: u32 = 10;

/// What one key press did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOutcome {
    /// A digit typed or erased; nothing decided yet.
    Typing,
    /// The PIN matched this teacher's.
    Unlocked { teacher: String },
    /// The PIN matched nobody's; `wait` is how long until the next try.
    Wrong {
        wrong_pins: u32,
        wait: Option<Duration>,
    },
    /// Still waiting after earlier wrong PINs; the key was ignored.
    Waiting { left: Duration },
    /// The hub has sent no PINs yet, so nobody can unlock.
    NoPins,
    /// Keys do nothing while unlocked.
    Ignored,
}

enum State {
    Locked,
    Unlocked {
        teacher: String,
        last_activity: Instant,
    },
}

/// The lock of one device.
pub struct Lock {
    idle_after: Duration,
    state: State,
    typed: Zeroizing<String>,
    wrong_pins: u32,
    retry_at: Option<Instant>,
}

impl Lock {
    /// A locked device that remembers `wrong_pins` from before a restart; if
    /// those called for a wait, the wait starts again now.
    pub fn new(idle_after: Duration, wrong_pins: u32, now: Instant) -> Self {
        Self {
            idle_after,
            state: State::Locked,
            typed: Zeroizing::new(String::new()),
            wrong_pins,
            retry_at: wait_after(wrong_pins).map(|wait| now + wait),
        }
    }

    pub fn is_unlocked(&self) -> bool {
        matches!(self.state, State::Unlocked { .. })
    }

    pub fn wrong_pins(&self) -> u32 {
        self.wrong_pins
    }

    /// A key of the PIN keypad. `pins` is the set the hub sent, if any.
    pub fn key(&mut self, key: KeypadKey, pins: Option<&TeacherPins>, now: Instant) -> KeyOutcome {
        if self.is_unlocked() {
            self.touch(now);
            return KeyOutcome::Ignored;
        }
        let Some(pins) = pins.filter(|pins| !pins.teachers.is_empty()) else {
            self.typed.clear();
            return KeyOutcome::NoPins;
        };
        if let Some(left) = self.wait_left(now) {
            self.typed.clear();
            return KeyOutcome::Waiting { left };
        }

        match key {
            KeypadKey::Digit(digit) => {
                if self.typed.len() < MAX_DIGITS && digit <= 9 {
                    self.typed.push(char::from(b'0' + digit));
                }
                KeyOutcome::Typing
            }
            KeypadKey::Erase => {
                self.typed.pop();
                KeyOutcome::Typing
            }
            // Too short to be anyone's PIN: a slip, not a guess.
            KeypadKey::Ok if self.typed.len() < MIN_DIGITS => {
                self.typed.clear();
                KeyOutcome::Typing
            }
            KeypadKey::Ok => {
                let typed = std::mem::take(&mut *self.typed);
                let typed = Zeroizing::new(typed);
                self.check(&typed, &pins.teachers, now)
            }
        }
    }

    fn check(&mut self, typed: &str, teachers: &[TeacherPin], now: Instant) -> KeyOutcome {
        match matching_teacher(typed, teachers) {
            Some(teacher) => {
                self.wrong_pins = 0;
                self.retry_at = None;
                self.state = State::Unlocked {
                    teacher: teacher.name.clone(),
                    last_activity: now,
                };
                KeyOutcome::Unlocked {
                    teacher: teacher.name.clone(),
                }
            }
            None => {
                self.wrong_pins = self.wrong_pins.saturating_add(1);
                let wait = wait_after(self.wrong_pins);
                self.retry_at = wait.map(|wait| now + wait);
                KeyOutcome::Wrong {
                    wrong_pins: self.wrong_pins,
                    wait,
                }
            }
        }
    }

    /// The teacher did something: the idle time starts again.
    pub fn touch(&mut self, now: Instant) {
        if let State::Unlocked { last_activity, .. } = &mut self.state {
            *last_activity = now;
        }
    }

    /// Locks at once (the teacher asked, or the device was revoked).
    pub fn lock(&mut self) {
        self.state = State::Locked;
        self.typed.clear();
    }

    /// Locks if the idle time has passed; returns whether it just locked.
    pub fn tick(&mut self, now: Instant) -> bool {
        let idle = match &self.state {
            State::Unlocked { last_activity, .. } => {
                now.saturating_duration_since(*last_activity) >= self.idle_after
            }
            State::Locked => false,
        };
        if idle {
            self.lock();
        }
        idle
    }

    fn wait_left(&self, now: Instant) -> Option<Duration> {
        self.retry_at
            .map(|at| at.saturating_duration_since(now))
            .filter(|left| !left.is_zero())
    }

    /// What the screen shows of the lock.
    pub fn view(&self, now: Instant) -> LockView {
        match &self.state {
            State::Unlocked {
                teacher,
                last_activity,
            } => LockView::Unlocked {
                teacher: teacher.clone(),
                locks_in_secs: self
                    .idle_after
                    .saturating_sub(now.saturating_duration_since(*last_activity))
                    .as_secs(),
            },
            State::Locked => LockView::Locked {
                digits_entered: self.typed.len(),
                wrong_attempts: self.wrong_pins,
                retry_in_secs: self.wait_left(now).map(|left| left.as_secs().max(1)),
            },
        }
    }
}

/// The wait before the next try after `wrong_pins` wrong PINs in a row.
pub fn wait_after(wrong_pins: u32) -> Option<Duration> {
    let beyond = wrong_pins.checked_sub(FREE_TRIES)?;
    let factor = 2u32.saturating_pow(beyond.min(16));
    Some(FIRST_WAIT.saturating_mul(factor).min(LONGEST_WAIT))
}

/// The teacher whose hash the PIN matches. Every hash is checked, so the time
/// taken does not tell which teachers were tried before a match.
fn matching_teacher<'a>(typed: &str, teachers: &'a [TeacherPin]) -> Option<&'a TeacherPin> {
    let mut found = None;
    for teacher in teachers {
        let Ok(hash) = PasswordHash::new(&teacher.pin_hash) else {
            warn!(teacher_id = %teacher.teacher_id, "a PIN hash from the hub is unreadable; skipped");
            continue;
        };
        if !affordable(&hash) {
            warn!(teacher_id = %teacher.teacher_id, "a PIN hash from the hub is too costly; skipped");
            continue;
        }
        if Argon2::default()
            .verify_password(typed.as_bytes(), &hash)
            .is_ok()
            && found.is_none()
        {
            found = Some(teacher);
        }
    }
    found
}

fn affordable(hash: &PasswordHash<'_>) -> bool {
    let param = |name: &str| hash.params.get_decimal(name).unwrap_or(u32::MAX);
    param("m") <= MAX_HASH_MEMORY_KIB && param("t") <= MAX_HASH_PASSES
}

impl Outbox {
    /// Wrong PINs typed since the last unlock, as last stored.
    pub fn wrong_pins(&mut self) -> Result<u32, OutboxError> {
        let count: Option<u32> = self
            .conn()
            .query_row(
                "SELECT wrong_pins FROM unlock_failures WHERE only_row = 1",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(sqlite("reading the wrong PIN count"))?;
        Ok(count.unwrap_or(0))
    }

    pub fn set_wrong_pins(&mut self, count: u32) -> Result<(), OutboxError> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO unlock_failures (only_row, wrong_pins) VALUES (1, ?1)",
                params![count],
            )
            .map_err(sqlite("storing the wrong PIN count"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use argon2::{Algorithm, Params, Version};
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::testutil::TempDir;

    fn hash(pin: &str) -> String {
        let params = Params::new(8 * 1024, 3, 1, None).unwrap();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(
                pin.as_bytes(),
                &SaltString::from_b64("c2FsdHNhbHRzYWx0").unwrap(),
            )
            .unwrap()
            .to_string()
    }

    fn pins() -> TeacherPins {
        TeacherPins {
            device_id: Uuid::nil(),
            issued_at: Utc::now(),
            teachers: vec![
                TeacherPin {
                    teacher_id: Uuid::new_v4(),
                    name: "Ana Ruiz".into(),
                    pin_hash: hash("2580"),
                },
                TeacherPin {
                    teacher_id: Uuid::new_v4(),
                    name: "Luis Gil".into(),
                    pin_hash: hash("739104"),
                },
            ],
        }
    }

    fn type_pin(lock: &mut Lock, pin: &str, pins: &TeacherPins, now: Instant) -> KeyOutcome {
        for digit in pin.bytes() {
            lock.key(KeypadKey::Digit(digit - b'0'), Some(pins), now);
        }
        lock.key(KeypadKey::Ok, Some(pins), now)
    }

    #[test]
    fn each_teachers_pin_unlocks_and_a_wrong_one_does_not() {
        let pins = pins();
        let now = Instant::now();
        let mut lock = Lock::new(Duration::from_secs(300), 0, now);

        assert!(matches!(
            type_pin(&mut lock, "1111", &pins, now),
            KeyOutcome::Wrong {
                wrong_pins: 1,
                wait: None
            }
        ));
        assert!(!lock.is_unlocked());
        assert_eq!(
            type_pin(&mut lock, "739104", &pins, now),
            KeyOutcome::Unlocked {
                teacher: "Luis Gil".into()
            }
        );
        assert_eq!(lock.wrong_pins(), 0);
        lock.lock();
        assert_eq!(
            type_pin(&mut lock, "2580", &pins, now),
            KeyOutcome::Unlocked {
                teacher: "Ana Ruiz".into()
            }
        );
    }

    #[test]
    fn wrong_pins_wait_longer_and_longer() {
        assert_eq!(wait_after(2), None);
        assert_eq!(wait_after(3), Some(Duration::from_secs(30)));
        assert_eq!(wait_after(4), Some(Duration::from_secs(60)));
        assert_eq!(wait_after(6), Some(Duration::from_secs(240)));
        assert_eq!(wait_after(40), Some(LONGEST_WAIT));

        let pins = pins();
        let start = Instant::now();
        let mut lock = Lock::new(Duration::from_secs(300), 0, start);
        for _ in 0..2 {
            type_pin(&mut lock, "0000", &pins, start);
        }
        assert_eq!(
            type_pin(&mut lock, "0001", &pins, start),
            KeyOutcome::Wrong {
                wrong_pins: 3,
                wait: Some(Duration::from_secs(30))
            }
        );

        // Even the right PIN is refused during the wait.
        let during = start + Duration::from_secs(10);
        assert!(matches!(
            lock.key(KeypadKey::Digit(2), Some(&pins), during),
            KeyOutcome::Waiting { .. }
        ));
        assert!(matches!(
            lock.view(during),
            LockView::Locked {
                retry_in_secs: Some(20),
                wrong_attempts: 3,
                ..
            }
        ));

        let after = start + Duration::from_secs(31);
        assert!(matches!(
            type_pin(&mut lock, "2580", &pins, after),
            KeyOutcome::Unlocked { .. }
        ));
    }

    #[test]
    fn a_restart_does_not_shorten_the_wait() {
        let pins = pins();
        let now = Instant::now();
        let mut lock = Lock::new(Duration::from_secs(300), 4, now);
        assert!(matches!(
            type_pin(&mut lock, "2580", &pins, now + Duration::from_secs(59)),
            KeyOutcome::Waiting { .. }
        ));
        assert!(matches!(
            type_pin(&mut lock, "2580", &pins, now + Duration::from_secs(61)),
            KeyOutcome::Unlocked { .. }
        ));
    }

    #[test]
    fn the_device_locks_itself_when_idle() {
        let pins = pins();
        let now = Instant::now();
        let mut lock = Lock::new(Duration::from_secs(120), 0, now);
        type_pin(&mut lock, "2580", &pins, now);

        lock.touch(now + Duration::from_secs(100));
        assert!(!lock.tick(now + Duration::from_secs(200)));
        assert!(matches!(
            lock.view(now + Duration::from_secs(200)),
            LockView::Unlocked {
                locks_in_secs: 20,
                ..
            }
        ));
        assert!(lock.tick(now + Duration::from_secs(220)));
        assert!(!lock.is_unlocked());
    }

    #[test]
    fn without_pins_nobody_unlocks_and_short_entries_are_not_counted() {
        let now = Instant::now();
        let mut lock = Lock::new(Duration::from_secs(120), 0, now);
        assert_eq!(lock.key(KeypadKey::Digit(1), None, now), KeyOutcome::NoPins);

        let pins = pins();
        assert_eq!(type_pin(&mut lock, "25", &pins, now), KeyOutcome::Typing);
        assert_eq!(lock.wrong_pins(), 0);
    }

    #[test]
    fn a_costly_hash_is_not_tried() {
        let params = Params::new(256 * 1024, 1, 1, None).unwrap();
        let costly = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"2580", &SaltString::from_b64("c2FsdHNhbHRzYWx0").unwrap())
            .unwrap()
            .to_string();
        let pins = TeacherPins {
            teachers: vec![TeacherPin {
                teacher_id: Uuid::new_v4(),
                name: "Costly".into(),
                pin_hash: costly,
            }],
            ..pins()
        };
        let now = Instant::now();
        let mut lock = Lock::new(Duration::from_secs(120), 0, now);
        assert!(matches!(
            type_pin(&mut lock, "2580", &pins, now),
            KeyOutcome::Wrong { .. }
        ));
    }

    #[test]
    fn the_wrong_pin_count_survives_a_restart() {
        let dir = TempDir::new();
        let mut outbox = Outbox::open_in(dir.path()).unwrap();
        assert_eq!(outbox.wrong_pins().unwrap(), 0);
        outbox.set_wrong_pins(5).unwrap();
        assert_eq!(
            Outbox::open_in(dir.path()).unwrap().wrong_pins().unwrap(),
            5
        );
    }
}
