//! Keys and touches from Linux input devices (`/dev/input/eventN`): a USB
//! numeric keypad or keyboard, and the touch screen, whose taps on the drawn
//! PIN keypad become key presses through the same layout the screen is drawn
//! with.
//!
//! The translation from input events to [`Input`]s is kept apart from the
//! device, so the tests feed it the events a real keypad and touch screen send.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::time::Duration;

use embedded_graphics::prelude::{Point, Size};
use evdev::{AbsoluteAxisCode, Device, EventSummary, KeyCode};
use tracing::{debug, info, warn};

use crate::input::Input;
use crate::screen::layout::{keypad_key_at, KeypadKey};

/// How long to wait before opening an input device again after it failed or
/// was unplugged.
const REOPEN_AFTER: Duration = Duration::from_secs(2);

/// The range a touch screen reports on one axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisRange {
    pub min: i32,
    pub max: i32,
}

/// Turns input events into what the kiosk understands.
#[derive(Debug)]
pub struct Translator {
    screen: Size,
    x_range: Option<AxisRange>,
    y_range: Option<AxisRange>,
    x: Option<i32>,
    y: Option<i32>,
}

impl Translator {
    /// `x_range`/`y_range`: the touch axes, if the device is a touch screen.
    pub fn new(screen: Size, x_range: Option<AxisRange>, y_range: Option<AxisRange>) -> Self {
        Self {
            screen,
            x_range,
            y_range,
            x: None,
            y: None,
        }
    }

    /// One event; returns an input when a key goes down or a finger lifts.
    pub fn feed(&mut self, event: EventSummary) -> Option<Input> {
        match event {
            EventSummary::Key(_, KeyCode::BTN_TOUCH, 0) => self.tap(),
            // Keys act when pressed (1), not on release (0) or auto-repeat (2).
            EventSummary::Key(_, code, 1) => key_input(code),
            EventSummary::AbsoluteAxis(_, AbsoluteAxisCode::ABS_X, value)
            | EventSummary::AbsoluteAxis(_, AbsoluteAxisCode::ABS_MT_POSITION_X, value) => {
                self.x = Some(value);
                None
            }
            EventSummary::AbsoluteAxis(_, AbsoluteAxisCode::ABS_Y, value)
            | EventSummary::AbsoluteAxis(_, AbsoluteAxisCode::ABS_MT_POSITION_Y, value) => {
                self.y = Some(value);
                None
            }
            _ => None,
        }
    }

    /// A finger lifted: the keypad key under where it last was, if any.
    fn tap(&mut self) -> Option<Input> {
        let (x_range, y_range) = (self.x_range?, self.y_range?);
        let x = scale(self.x?, x_range, self.screen.width);
        let y = scale(self.y?, y_range, self.screen.height);
        keypad_key_at(self.screen, Point::new(x, y)).map(Input::Tap)
    }
}

/// The screen coordinate of a touch reading.
fn scale(value: i32, range: AxisRange, pixels: u32) -> i32 {
    let span = i64::from(range.max) - i64::from(range.min);
    if span <= 0 || pixels == 0 {
        return 0;
    }
    let offset = (i64::from(value) - i64::from(range.min)).clamp(0, span);
    let pixel = offset * i64::from(pixels - 1) / span;
    i32::try_from(pixel).unwrap_or(0)
}

/// Digits (top row or keypad), Backspace, Enter, and the keys that capture.
/// Enter confirms a PIN; once unlocked the kiosk takes it as capture too.
fn key_input(code: KeyCode) -> Option<Input> {
    let digit = match code {
        KeyCode::KEY_0 | KeyCode::KEY_KP0 => Some(0),
        KeyCode::KEY_1 | KeyCode::KEY_KP1 => Some(1),
        KeyCode::KEY_2 | KeyCode::KEY_KP2 => Some(2),
        KeyCode::KEY_3 | KeyCode::KEY_KP3 => Some(3),
        KeyCode::KEY_4 | KeyCode::KEY_KP4 => Some(4),
        KeyCode::KEY_5 | KeyCode::KEY_KP5 => Some(5),
        KeyCode::KEY_6 | KeyCode::KEY_KP6 => Some(6),
        KeyCode::KEY_7 | KeyCode::KEY_KP7 => Some(7),
        KeyCode::KEY_8 | KeyCode::KEY_KP8 => Some(8),
        KeyCode::KEY_9 | KeyCode::KEY_KP9 => Some(9),
        _ => None,
    };
    if let Some(digit) = digit {
        return Some(Input::Key(KeypadKey::Digit(digit)));
    }

    match code {
        KeyCode::KEY_BACKSPACE | KeyCode::KEY_DELETE => Some(Input::Key(KeypadKey::Erase)),
        KeyCode::KEY_ENTER | KeyCode::KEY_KPENTER => Some(Input::Key(KeypadKey::Ok)),
        KeyCode::KEY_SPACE | KeyCode::KEY_CAMERA => Some(Input::Capture),
        KeyCode::KEY_ESC => Some(Input::Lock),
        _ => None,
    }
}

/// Reads one input device until the kiosk is gone, opening it again after it
/// is unplugged. Key values are never logged: they may be a PIN.
pub fn watch_device(path: PathBuf, screen: Size, inputs: &Sender<Input>) {
    let mut reported = false;
    loop {
        match read_device(&path, screen, inputs) {
            Ok(Finished::KioskGone) => return,
            Ok(Finished::DeviceGone) => {
                info!(device = %path.display(), "input device gone; waiting for it");
            }
            Err(error) => {
                if !reported {
                    warn!(device = %path.display(), %error, "cannot read the input device; retrying");
                    reported = true;
                }
            }
        }
        std::thread::sleep(REOPEN_AFTER);
    }
}

enum Finished {
    KioskGone,
    DeviceGone,
}

fn read_device(path: &Path, screen: Size, inputs: &Sender<Input>) -> std::io::Result<Finished> {
    let mut device = Device::open(path)?;
    let mut x_range = None;
    let mut y_range = None;
    for (axis, info) in device.get_absinfo()? {
        let range = Some(AxisRange {
            min: info.minimum(),
            max: info.maximum(),
        });
        match axis {
            AbsoluteAxisCode::ABS_X | AbsoluteAxisCode::ABS_MT_POSITION_X => x_range = range,
            AbsoluteAxisCode::ABS_Y | AbsoluteAxisCode::ABS_MT_POSITION_Y => y_range = range,
            _ => {}
        }
    }
    debug!(device = %path.display(), touch = x_range.is_some(), "input device open");

    let mut translator = Translator::new(screen, x_range, y_range);
    loop {
        let events = match device.fetch_events() {
            Ok(events) => events,
            Err(_) => return Ok(Finished::DeviceGone),
        };
        for event in events {
            if let Some(input) = translator.feed(event.destructure()) {
                if inputs.send(input).is_err() {
                    return Ok(Finished::KioskGone);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use evdev::{AbsoluteAxisEvent, KeyEvent};

    use super::*;
    use crate::screen::layout::Layout;

    fn key(code: KeyCode, value: i32) -> EventSummary {
        EventSummary::Key(KeyEvent::new(code, value), code, value)
    }

    fn abs(axis: AbsoluteAxisCode, value: i32) -> EventSummary {
        EventSummary::AbsoluteAxis(AbsoluteAxisEvent::new(axis, value), axis, value)
    }

    #[test]
    fn a_numeric_keypad_types_a_pin_and_captures() {
        let mut keys = Translator::new(Size::new(800, 480), None, None);
        let mut typed = Vec::new();
        for code in [
            KeyCode::KEY_KP2,
            KeyCode::KEY_5,
            KeyCode::KEY_BACKSPACE,
            KeyCode::KEY_KPENTER,
            KeyCode::KEY_SPACE,
        ] {
            // Press, auto-repeat and release: only the press counts.
            for value in [1, 2, 0] {
                typed.extend(keys.feed(key(code, value)));
            }
        }
        assert_eq!(
            typed,
            [
                Input::Key(KeypadKey::Digit(2)),
                Input::Key(KeypadKey::Digit(5)),
                Input::Key(KeypadKey::Erase),
                Input::Key(KeypadKey::Ok),
                Input::Capture,
            ]
        );
        assert_eq!(keys.feed(key(KeyCode::KEY_A, 1)), None);
    }

    /// A touch screen reporting 0..4095 on both axes, over an 800x480
    /// screen: a tap on the centre of each drawn key gives that key.
    #[test]
    fn a_tap_on_a_drawn_key_presses_it() {
        let size = Size::new(800, 480);
        let range = AxisRange { min: 0, max: 4095 };
        let mut touch = Translator::new(size, Some(range), Some(range));
        let layout = Layout::new(size);

        for (key_at, area) in layout.keys {
            let centre = area.center();
            let raw =
                |pixel: i32, pixels: u32| (i64::from(pixel) * 4095 / i64::from(pixels - 1)) as i32;
            assert_eq!(touch.feed(key(KeyCode::BTN_TOUCH, 1)), None);
            assert_eq!(
                touch.feed(abs(AbsoluteAxisCode::ABS_MT_POSITION_X, raw(centre.x, 800))),
                None
            );
            assert_eq!(
                touch.feed(abs(AbsoluteAxisCode::ABS_MT_POSITION_Y, raw(centre.y, 480))),
                None
            );
            assert_eq!(
                touch.feed(key(KeyCode::BTN_TOUCH, 0)),
                Some(Input::Tap(key_at))
            );
        }

        // A tap beside the keypad presses nothing.
        touch.feed(abs(AbsoluteAxisCode::ABS_X, 10));
        touch.feed(abs(AbsoluteAxisCode::ABS_Y, 10));
        assert_eq!(touch.feed(key(KeyCode::BTN_TOUCH, 0)), None);
    }

    #[test]
    fn readings_outside_the_range_stay_on_the_screen() {
        let range = AxisRange { min: 100, max: 300 };
        assert_eq!(scale(100, range, 800), 0);
        assert_eq!(scale(300, range, 800), 799);
        assert_eq!(scale(-50, range, 800), 0);
        assert_eq!(scale(9_999, range, 800), 799);
        assert_eq!(scale(5, AxisRange { min: 0, max: 0 }, 800), 0);
    }

    #[test]
    fn a_missing_device_is_an_error_not_a_crash() {
        assert!(Device::open("/nonexistent/event9").is_err());
    }
}
