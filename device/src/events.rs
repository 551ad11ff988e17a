//! The JSON event lines the device prints on stdout, one per line, for whatever
//! supervises it (the end-to-end tests, a status screen, a shell pipeline).
//!
//! Stdout carries nothing else; logs go to stderr. Each line is flushed at once,
//! so a reader sees an event as soon as the state it reports is durable.

use std::io::Write;

use serde::Serialize;
use uuid::Uuid;

/// One thing that happened to a photo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The sealed photo is committed to the outbox.
    Captured { photo_id: Uuid, source: String },
    /// A source file could not be captured; `error` says why and what to do.
    CaptureFailed { source: String, error: String },
    /// The hub confirmed that it stored the photo; the outbox row is gone.
    Delivered { photo_id: Uuid },
    /// The hub refused the photo for good; it was moved to quarantine.
    Rejected { photo_id: Uuid, reason: String },
    /// A new set of teacher PINs arrived from the hub.
    PinsReceived { teachers: usize },
    /// A teacher unlocked the device (no name: stdout may be logged).
    Unlocked,
    /// The device locked (idle, asked, or revoked).
    Locked,
    /// A capture press was refused; `reason` is a stable code.
    CaptureRefused { reason: String },
    /// The hub revoked this device.
    Revoked,
}

/// Prints one event line on stdout and flushes it.
///
/// A closed or broken stdout must not stop the device from capturing and
/// delivering photos, so a failed write is logged and otherwise ignored.
pub fn emit(event: &Event) {
    let mut line = match serde_json::to_string(event) {
        Ok(line) => line,
        Err(error) => {
            tracing::warn!(%error, "could not encode an event line");
            return;
        }
    };
    line.push('\n');

    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout
        .write_all(line.as_bytes())
        .and_then(|()| stdout.flush())
    {
        tracing::warn!(%error, "could not write an event line to stdout");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_as_the_contract_says() {
        let id = Uuid::nil();
        let captured = Event::Captured {
            photo_id: id,
            source: "in/a.jpg".into(),
        };
        assert_eq!(
            serde_json::to_string(&captured).unwrap(),
            r#"{"event":"captured","photo_id":"00000000-0000-0000-0000-000000000000","source":"in/a.jpg"}"#
        );

        let failed = Event::CaptureFailed {
            source: "in/b.png".into(),
            error: "broken".into(),
        };
        assert_eq!(
            serde_json::to_string(&failed).unwrap(),
            r#"{"event":"capture_failed","source":"in/b.png","error":"broken"}"#
        );

        let rejected = Event::Rejected {
            photo_id: id,
            reason: "no".into(),
        };
        let value: serde_json::Value = serde_json::to_value(&rejected).unwrap();
        assert_eq!(value["event"], "rejected");
        assert_eq!(value["reason"], "no");
        let delivered = serde_json::to_value(Event::Delivered { photo_id: id }).unwrap();
        assert_eq!(delivered["event"], "delivered");
    }
}
