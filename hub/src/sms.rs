//! Sending one-time codes by SMS.
//!
//! A provider sits behind [`SmsSender`], so a real gateway can take the place of
//! [`FileSmsOutbox`], the development provider, which appends each message to a
//! file in the data directory instead of sending it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::SecondsFormat;
use serde_json::json;

use crate::clock::Clock;

/// The development outbox's file name inside the data directory.
pub const OUTBOX_FILE: &str = "sms-outbox.jsonl";

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// The outbox file could not be opened or written; check the data
    /// directory's free space and permissions.
    #[error("cannot write the SMS outbox {path}: {source}")]
    Outbox {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A provider refused or failed to take the message.
    #[error("the SMS provider did not take the message: {0}")]
    Provider(String),
}

/// Something that delivers a text message to a phone number.
///
/// `send` returns once the provider has taken the message durably; the hub
/// answers the parent only after that. It is called from a blocking thread.
/// Implementations must never log `text`: it holds a one-time code.
pub trait SmsSender: Send + Sync {
    fn send(&self, to: &str, text: &str) -> Result<(), SmsError>;
}

/// The development provider: appends `{"to","text","sent_at"}` JSON lines to
/// `<data-dir>/sms-outbox.jsonl` (mode 0600, synced to disk) and sends nothing.
pub struct FileSmsOutbox {
    path: PathBuf,
    file: Mutex<File>,
    clock: Arc<dyn Clock>,
}

impl FileSmsOutbox {
    /// Opens (creating if needed) the outbox in a data directory, and warns
    /// loudly: anyone who can read that file can read every code.
    pub fn new(data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Self, SmsError> {
        let path = data_dir.join(OUTBOX_FILE);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| SmsError::Outbox {
                path: path.clone(),
                source,
            })?;

        tracing::warn!(
            outbox = %path.display(),
            "the SMS provider is the development file outbox: one-time codes are written to \
             this file and no SMS is sent; use it for development only, never with real parents"
        );
        Ok(Self {
            path,
            file: Mutex::new(file),
            clock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl SmsSender for FileSmsOutbox {
    fn send(&self, to: &str, text: &str) -> Result<(), SmsError> {
        let mut line = json!({
            "to": to,
            "text": text,
            "sent_at": self.clock.now().to_rfc3339_opts(SecondsFormat::Millis, true),
        })
        .to_string();
        line.push('\n');

        // One write per line under the mutex, so lines from parallel requests
        // never interleave; synced before the parent is answered.
        let file = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut writer: &File = &file;
        writer
            .write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|source| SmsError::Outbox {
                path: self.path.clone(),
                source,
            })
    }
}

impl std::fmt::Debug for FileSmsOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSmsOutbox")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn messages_are_appended_as_json_lines_readable_only_by_the_owner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = FileSmsOutbox::new(dir.path(), Arc::new(SystemClock)).expect("outbox");
        outbox.send("+34600111222", "code 012345").expect("send");
        outbox
            .send("+34600111333", "code \"quoted\"")
            .expect("send");

        let text = std::fs::read_to_string(dir.path().join(OUTBOX_FILE)).expect("read");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["to"], "+34600111222");
        assert_eq!(lines[0]["text"], "code 012345");
        assert_eq!(lines[1]["text"], "code \"quoted\"");
        assert!(lines[0]["sent_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')));

        let mode = std::fs::metadata(outbox.path())
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
