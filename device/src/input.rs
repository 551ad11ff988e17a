//! What the teacher presses: the capture button on a GPIO line, and keys (a
//! keypad, or lines on stdin for a technician and the tests). Each source
//! runs on its own thread and sends [`Input`]s to the kiosk loop.

use std::fmt;
use std::io::BufRead;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use embedded_hal::digital::InputPin;
use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
use linux_embedded_hal::CdevPin;
use tracing::{debug, warn};

use crate::screen::layout::KeypadKey;

/// How long the button must read the same before a change counts: contacts
/// bounce for a few milliseconds when pressed and released.
pub const DEBOUNCE: Duration = Duration::from_millis(30);

/// How often the button line is read.
const POLL: Duration = Duration::from_millis(5);

/// One thing the teacher did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Key(KeypadKey),
    /// A tap on the touch screen where the PIN keypad is drawn; it counts
    /// only while the keypad is shown (locked).
    Tap(KeypadKey),
    Capture,
    /// Lock the device now.
    Lock,
}

/// The GPIO line of the capture button, written `CHIP:LINE`, e.g.
/// `/dev/gpiochip0:17`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonLine {
    pub chip: PathBuf,
    pub line: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("button {0:?} is not understood; write the GPIO chip and line as /dev/gpiochip0:17")]
pub struct BadButtonLine(String);

impl FromStr for ButtonLine {
    type Err = BadButtonLine;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadButtonLine(text.to_owned());
        let (chip, line) = text.rsplit_once(':').ok_or_else(bad)?;
        if chip.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            chip: PathBuf::from(chip),
            line: line.parse().map_err(|_| bad())?,
        })
    }
}

impl fmt::Display for ButtonLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.chip.display(), self.line)
    }
}

/// The button could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ButtonError {
    #[error(
        "cannot use GPIO line {line}: {detail}; check the chip path and line number, and that \
         this user may open the chip (group gpio)"
    )]
    Open { line: ButtonLine, detail: String },
}

/// Opens the button's line as an input. `active_low`: the button connects
/// the line to ground (with a pull-up), so pressed reads low.
pub fn open_button(line: &ButtonLine, active_low: bool) -> Result<CdevPin, ButtonError> {
    let open_error = |detail: String| ButtonError::Open {
        line: line.clone(),
        detail,
    };
    let mut flags = LineRequestFlags::INPUT;
    if active_low {
        flags |= LineRequestFlags::ACTIVE_LOW;
    }

    let mut chip = Chip::new(&line.chip).map_err(|error| open_error(error.to_string()))?;
    let handle = chip
        .get_line(line.line)
        .and_then(|gpio| gpio.request(flags, 0, "guardian-device"))
        .map_err(|error| open_error(error.to_string()))?;
    CdevPin::new(handle).map_err(|error| open_error(error.to_string()))
}

/// Turns raw readings of a bouncing contact into presses.
#[derive(Debug)]
pub struct Debouncer {
    settle: Duration,
    stable: bool,
    candidate: Option<(bool, Instant)>,
}

impl Debouncer {
    /// Starts as released.
    pub fn new(settle: Duration) -> Self {
        Self {
            settle,
            stable: false,
            candidate: None,
        }
    }

    /// Feeds one reading (`true`: pressed); returns `true` once per press,
    /// when the pressed reading has held for the settle time.
    pub fn sample(&mut self, pressed: bool, now: Instant) -> bool {
        if pressed == self.stable {
            self.candidate = None;
            return false;
        }

        let since = match self.candidate {
            Some((level, since)) if level == pressed => since,
            _ => {
                self.candidate = Some((pressed, now));
                now
            }
        };
        if now.saturating_duration_since(since) < self.settle {
            return false;
        }

        self.stable = pressed;
        self.candidate = None;
        pressed
    }
}

/// Watches a button until the kiosk loop is gone; a read error is logged once
/// and retried, since a loose wire may come back.
pub fn watch_button<P: InputPin>(mut pin: P, inputs: &Sender<Input>) {
    let mut debouncer = Debouncer::new(DEBOUNCE);
    let mut failing = false;

    loop {
        match pin.is_high() {
            Ok(level) => {
                failing = false;
                if debouncer.sample(level, Instant::now()) {
                    debug!("capture button pressed");
                    if inputs.send(Input::Capture).is_err() {
                        return;
                    }
                }
            }
            Err(error) => {
                if !failing {
                    warn!(?error, "cannot read the capture button; retrying");
                    failing = true;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        std::thread::sleep(POLL);
    }
}

/// Reads commands from stdin, one per line, until it closes: digits are a
/// PIN (typed and confirmed), `capture` (or an empty line) takes a photo,
/// `lock` locks, `erase` erases a digit. Anything else is logged and ignored.
pub fn read_commands(input: impl BufRead, inputs: &Sender<Input>) {
    for line in input.lines() {
        let Ok(line) = line else {
            return;
        };
        for command in parse_command(line.trim()) {
            if inputs.send(command).is_err() {
                return;
            }
        }
    }
}

fn parse_command(line: &str) -> Vec<Input> {
    match line {
        "" | "capture" | "c" => vec![Input::Capture],
        "lock" => vec![Input::Lock],
        "erase" => vec![Input::Key(KeypadKey::Erase)],
        digits if digits.bytes().all(|b| b.is_ascii_digit()) => digits
            .bytes()
            .map(|b| Input::Key(KeypadKey::Digit(b - b'0')))
            .chain([Input::Key(KeypadKey::Ok)])
            .collect(),
        _ => {
            // The line may be a mistyped PIN: never log it.
            warn!(
                chars = line.chars().count(),
                "unknown command on stdin; ignored"
            );
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn a_bouncing_press_counts_once_and_a_glitch_not_at_all() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut button = Debouncer::new(DEBOUNCE);

        // A 3 ms glitch is no press.
        assert!(!button.sample(true, at(0)));
        assert!(!button.sample(false, at(3)));
        assert!(!button.sample(false, at(40)));

        // Contacts bounce for 10 ms, then hold: one press, after settling.
        let mut presses = 0;
        for (ms, level) in [
            (100, true),
            (102, false),
            (104, true),
            (107, false),
            (110, true),
        ] {
            presses += usize::from(button.sample(level, at(ms)));
        }
        for ms in (115..=200).step_by(5) {
            presses += usize::from(button.sample(true, at(ms)));
        }
        assert_eq!(presses, 1);

        // Releasing with bounce is no press; the next press counts again.
        for (ms, level) in [(300, false), (302, true), (305, false), (340, false)] {
            assert!(!button.sample(level, at(ms)));
        }
        assert!(!button.sample(true, at(400)));
        assert!(button.sample(true, at(431)));
    }

    /// A scripted pin: the readings a real line would give.
    struct ScriptedPin(std::vec::IntoIter<bool>);

    impl embedded_hal::digital::ErrorType for ScriptedPin {
        type Error = Infallible;
    }

    impl InputPin for ScriptedPin {
        fn is_high(&mut self) -> Result<bool, Infallible> {
            Ok(self.0.next().unwrap_or(false))
        }
        fn is_low(&mut self) -> Result<bool, Infallible> {
            self.is_high().map(|high| !high)
        }
    }

    #[test]
    fn a_held_button_on_a_pin_sends_one_capture() {
        let (tx, rx) = mpsc::channel();
        // 40 readings of 5 ms held, then released for good.
        let readings: Vec<bool> = std::iter::repeat_n(true, 40)
            .chain(std::iter::repeat_n(false, 20))
            .collect();
        let pin = ScriptedPin(readings.into_iter());
        let watcher = std::thread::spawn(move || watch_button(pin, &tx));

        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(Input::Capture));
        assert!(rx.recv_timeout(Duration::from_millis(400)).is_err());
        drop(rx);
        // The watcher ends at its next press once nobody listens; it may
        // still be polling, so it is not joined.
        drop(watcher);
    }

    #[test]
    fn stdin_commands_become_inputs() {
        let (tx, rx) = mpsc::channel();
        read_commands("2580\ncapture\n\nlock\nerase\nhello\n".as_bytes(), &tx);
        let got: Vec<Input> = rx.try_iter().collect();
        let digit = |d| Input::Key(KeypadKey::Digit(d));
        assert_eq!(
            got,
            [
                digit(2),
                digit(5),
                digit(8),
                digit(0),
                Input::Key(KeypadKey::Ok),
                Input::Capture,
                Input::Capture,
                Input::Lock,
                Input::Key(KeypadKey::Erase),
            ]
        );
    }

    #[test]
    fn button_lines_parse() {
        assert_eq!(
            "/dev/gpiochip0:17".parse(),
            Ok(ButtonLine {
                chip: "/dev/gpiochip0".into(),
                line: 17
            })
        );
        for bad in ["", ":17", "/dev/gpiochip0", "/dev/gpiochip0:x"] {
            assert!(bad.parse::<ButtonLine>().is_err(), "{bad}");
        }
        let missing = open_button(&"/nonexistent/gpiochip9:3".parse().unwrap(), true);
        assert!(matches!(missing, Err(ButtonError::Open { .. })));
    }
}
