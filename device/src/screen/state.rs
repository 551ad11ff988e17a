//! What the kiosk screen shows, as plain data: the capture loop fills it in and
//! `draw` turns it into pixels, so nothing here knows about fonts or positions.

use std::str::FromStr;

use image::RgbImage;
use thiserror::Error;

/// The language of every word on the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Es,
    En,
}

/// A language code the screen has no words for.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("unknown screen language {0:?}; use \"es\" or \"en\"")]
pub struct UnknownLanguage(pub String);

impl FromStr for Language {
    type Err = UnknownLanguage;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        match code.trim().to_ascii_lowercase().as_str() {
            "es" => Ok(Language::Es),
            "en" => Ok(Language::En),
            _ => Err(UnknownLanguage(code.to_string())),
        }
    }
}

/// Everything one frame of the screen depends on. Drawing the same state twice gives
/// the same pixels: there is no clock in here, the caller passes times as text.
#[derive(Debug, Clone)]
pub struct ScreenState {
    pub language: Language,
    /// The classroom's name as the school wrote it, e.g. "Aula 3B".
    pub classroom: String,
    pub lock: LockView,
    pub last_capture: Option<LastCapture>,
    /// Sealed photos still waiting for the hub to confirm them.
    pub outbox_len: usize,
    pub hub: HubLink,
    pub clock: ClockStatus,
    pub problem: Option<Problem>,
}

/// Whether a teacher may take photos now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockView {
    /// Waiting for a PIN. `retry_in_secs` is set while too many wrong PINs keep the
    /// keypad closed.
    Locked {
        digits_entered: usize,
        wrong_attempts: u32,
        retry_in_secs: Option<u64>,
    },
    /// A teacher is signed in; the device locks itself again after `locks_in_secs`.
    Unlocked { teacher: String, locks_in_secs: u64 },
}

/// The last photo taken, shown small so the teacher sees the faces were covered.
#[derive(Debug, Clone)]
pub struct LastCapture {
    /// The preview with every face already covered; never the original.
    pub preview: RgbImage,
    pub faces: usize,
    /// Local time of the capture as the teacher reads it, e.g. "10:42".
    pub at_local: String,
}

/// The state of the link to the school's hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubLink {
    Connected,
    Connecting,
    /// `since_local` is the local time the link was lost, e.g. "09:15".
    Offline {
        since_local: String,
    },
}

/// Whether the device knows the time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockStatus {
    Synced,
    /// No real-time clock and no NTP answer yet. Photos still go to the hub, which
    /// records how far the device's clock was off.
    Unknown,
}

/// Something the teacher has to know about; at most one is shown at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    CameraMissing,
    CameraBusy,
    DiskFull,
    /// The school withdrew the device; it takes no more photos.
    Revoked,
    /// No teacher PIN has come from the hub yet, so nobody can unlock.
    NoPins,
    CaptureFailed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_codes_parse_in_any_case() {
        assert_eq!("es".parse(), Ok(Language::Es));
        assert_eq!(" EN ".parse(), Ok(Language::En));
    }

    #[test]
    fn an_unknown_language_names_the_code_and_the_choices() {
        let error = "fr".parse::<Language>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown screen language \"fr\"; use \"es\" or \"en\""
        );
    }
}
