//! The append-only audit log, chained so that edits are caught.
//!
//! Each entry carries an HMAC-SHA256, under the hub's audit key, of the previous
//! entry's MAC and of its own fields. Someone who can rewrite the database but
//! cannot read the key file can neither alter nor forge an entry. Cutting
//! entries off the end leaves a valid chain, so the newest (seq, MAC) is also
//! kept apart in `<data-dir>/audit.head`; `audit verify` prints it so that an
//! operator can keep a copy elsewhere too.
//!
//! Entries name people by id, never by name, and never hold codes or tokens.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::accounts::Role;
use crate::db::{from_millis, to_millis};
use crate::keys::{write_private_file, HubKeys, KeyError};

/// What happened. The names are stable: they are what an auditor filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    ClassroomAdded,
    ParentAdded,
    AdminAdded,
    TeacherAdded,
    TeacherAssigned,
    ChildAdded,
    GuardianLinked,
    GuardianUnlinked,
    ConsentChanged,
    ChildrenListed,
    ChildErased,
    ParentUnlocked,
    ParentLocked,
    DeviceRegistered,
    LoginSucceeded,
    LoginFailed,
    Logout,
    PhotosListed,
    PreviewViewed,
    OriginalRequested,
    OriginalRequestRefused,
    CodeSent,
    CodeFailed,
    CodeVerified,
    DownloadRefused,
    OriginalDelivered,
    PhotoReceived,
    PhotoRejected,
    /// A photo removed by the retention rule.
    PhotoPurged,
    /// A photo removed because the only child named in it was erased.
    PhotoErased,
    ReviewListed,
    ReviewViewed,
    FaceAdded,
    FaceNamed,
    PhotoReleased,
    /// Original requests and links ended because a consent was withdrawn.
    RequestsWithdrawn,
    ExportStarted,
    ExportFinished,
    MessageDropped,
    RequestRefused,
    /// A teacher's device PIN was set or changed (never the PIN itself).
    TeacherPinSet,
    DeviceRevoked,
    /// A revoked device was told so after it sent something.
    DeviceToldRevoked,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClassroomAdded => "classroom_added",
            Self::ParentAdded => "parent_added",
            Self::AdminAdded => "admin_added",
            Self::TeacherAdded => "teacher_added",
            Self::TeacherAssigned => "teacher_assigned",
            Self::ChildAdded => "child_added",
            Self::GuardianLinked => "guardian_linked",
            Self::GuardianUnlinked => "guardian_unlinked",
            Self::ConsentChanged => "consent_changed",
            Self::ChildrenListed => "children_listed",
            Self::ChildErased => "child_erased",
            Self::ParentUnlocked => "parent_unlocked",
            Self::ParentLocked => "parent_locked",
            Self::DeviceRegistered => "device_registered",
            Self::LoginSucceeded => "login_succeeded",
            Self::LoginFailed => "login_failed",
            Self::Logout => "logout",
            Self::PhotosListed => "photos_listed",
            Self::PreviewViewed => "preview_viewed",
            Self::OriginalRequested => "original_requested",
            Self::OriginalRequestRefused => "original_request_refused",
            Self::CodeSent => "code_sent",
            Self::CodeFailed => "code_failed",
            Self::CodeVerified => "code_verified",
            Self::DownloadRefused => "download_refused",
            Self::OriginalDelivered => "original_delivered",
            Self::PhotoReceived => "photo_received",
            Self::PhotoRejected => "photo_rejected",
            Self::PhotoPurged => "photo_purged",
            Self::PhotoErased => "photo_erased",
            Self::ReviewListed => "review_listed",
            Self::ReviewViewed => "review_viewed",
            Self::FaceAdded => "face_added",
            Self::FaceNamed => "face_named",
            Self::PhotoReleased => "photo_released",
            Self::RequestsWithdrawn => "requests_withdrawn",
            Self::ExportStarted => "export_started",
            Self::ExportFinished => "export_finished",
            Self::MessageDropped => "message_dropped",
            Self::TeacherPinSet => "teacher_pin_set",
            Self::DeviceRevoked => "device_revoked",
            Self::DeviceToldRevoked => "device_told_revoked",
            Self::RequestRefused => "request_refused",
        }
    }
}

/// Who did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A guardian; written `parent:` as in the first version's entries.
    Parent(Uuid),
    Teacher(Uuid),
    Admin(Uuid),
    Device(Uuid),
    /// Someone at the hub's command line.
    Operator,
    /// A request or message with no authenticated sender.
    Anonymous,
    /// The hub itself.
    Hub,
}

impl Actor {
    /// The actor for a logged-in account of this role.
    pub fn account(role: Role, id: Uuid) -> Self {
        match role {
            Role::Admin => Self::Admin(id),
            Role::Teacher => Self::Teacher(id),
            Role::Guardian => Self::Parent(id),
        }
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Parent(id) => write!(f, "parent:{id}"),
            Actor::Teacher(id) => write!(f, "teacher:{id}"),
            Actor::Admin(id) => write!(f, "admin:{id}"),
            Actor::Device(id) => write!(f, "device:{id}"),
            Actor::Operator => f.write_str("operator"),
            Actor::Anonymous => f.write_str("anonymous"),
            Actor::Hub => f.write_str("hub"),
        }
    }
}

/// Who acted, and from which address when the action came over the web.
///
/// Functions shared by the command line and the web take this, so that an
/// entry written for a web request carries the client's address; an
/// [`Actor`] alone (the command line, tests) converts into one without.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acting {
    pub actor: Actor,
    pub ip: Option<RequestAddress>,
}

impl Acting {
    /// An account acting through a web request from `ip`.
    pub fn web(actor: Actor, ip: impl Into<RequestAddress>) -> Self {
        Self {
            actor,
            ip: Some(ip.into()),
        }
    }
}

/// Where a web request came from: the address taken to be the client's, and
/// the trusted proxy that forwarded it when it did not reach the hub directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestAddress {
    pub client: IpAddr,
    pub forwarded_by: Option<IpAddr>,
}

impl From<IpAddr> for RequestAddress {
    fn from(client: IpAddr) -> Self {
        Self {
            client,
            forwarded_by: None,
        }
    }
}

impl From<Actor> for Acting {
    fn from(actor: Actor) -> Self {
        Self { actor, ip: None }
    }
}

/// One thing to record.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub kind: AuditKind,
    pub actor: Actor,
    /// The id of what it happened to (a photo, a request, a device…).
    pub subject: Option<String>,
    /// The client's address; with a proxy's, it is also written into the
    /// detail as `peer_ip`, so the entry keeps both.
    pub ip: Option<RequestAddress>,
    /// Further facts, as JSON. Ids and reasons only; never names or secrets.
    pub detail: serde_json::Value,
}

impl AuditEvent {
    pub fn new(kind: AuditKind, actor: Actor) -> Self {
        Self {
            kind,
            actor,
            subject: None,
            ip: None,
            detail: serde_json::Value::Object(Default::default()),
        }
    }

    /// An event by `by`, with its address if it came over the web.
    pub fn by(kind: AuditKind, by: Acting) -> Self {
        Self {
            ip: by.ip,
            ..Self::new(kind, by.actor)
        }
    }

    pub fn subject(mut self, subject: impl ToString) -> Self {
        self.subject = Some(subject.to_string());
        self
    }

    pub fn ip(mut self, ip: impl Into<RequestAddress>) -> Self {
        self.ip = Some(ip.into());
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot write the audit log: {0}")]
    Database(#[from] rusqlite::Error),

    #[error("cannot keep the audit head: {0}")]
    Head(#[from] KeyError),

    #[error("cannot read the audit head {path}: {detail}")]
    HeadUnreadable { path: PathBuf, detail: String },
}

/// The newest entry's position and MAC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    pub seq: i64,
    pub mac: String,
}

/// What `verify` found.
#[derive(Debug)]
pub enum Verdict {
    Intact {
        entries: i64,
        head: Option<AuditHead>,
    },
    Broken {
        reason: String,
    },
}

/// The audit log of one hub.
#[derive(Clone)]
pub struct AuditLog {
    keys: Arc<HubKeys>,
    head_path: PathBuf,
}

type HmacSha256 = Hmac<Sha256>;

impl AuditLog {
    pub fn new(keys: Arc<HubKeys>, data_dir: &Path) -> Self {
        Self {
            keys,
            head_path: data_dir.join("audit.head"),
        }
    }

    /// Appends one entry in its own transaction and moves the head forward.
    pub fn record(
        &self,
        conn: &mut Connection,
        at: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<(), AuditError> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.commit_with(tx, at, event)
    }

    /// Appends one entry inside the caller's transaction. The caller commits,
    /// then hands the returned head to [`AuditLog::publish_head`].
    pub fn append(
        &self,
        tx: &rusqlite::Transaction<'_>,
        at: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<AuditHead, AuditError> {
        let previous: Option<(i64, Vec<u8>)> = tx
            .query_row(
                "SELECT seq, mac FROM audit_log ORDER BY seq DESC LIMIT 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let (previous_seq, previous_mac) = previous.unwrap_or((0, vec![0u8; 32]));

        let entry = Entry {
            seq: previous_seq + 1,
            at: to_millis(at),
            kind: event.kind.as_str().to_owned(),
            actor: event.actor.to_string(),
            subject: event.subject.clone(),
            ip: event.ip.map(|ip| ip.client.to_string()),
            detail: detail_with_peer(event).to_string(),
        };
        let mac = self.mac(&previous_mac, &entry);

        tx.execute(
            "INSERT INTO audit_log (seq, at, kind, actor, subject, ip, detail, mac)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                entry.seq,
                entry.at,
                entry.kind,
                entry.actor,
                entry.subject,
                entry.ip,
                entry.detail,
                mac.as_slice()
            ],
        )?;

        Ok(AuditHead {
            seq: entry.seq,
            mac: hex::encode(mac),
        })
    }

    /// Appends one entry inside the caller's transaction, commits it, and
    /// moves the head forward: the usual end of an audited change.
    pub fn commit_with(
        &self,
        tx: rusqlite::Transaction<'_>,
        at: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<(), AuditError> {
        let head = self.append(&tx, at, event)?;
        tx.commit()?;
        self.publish_head(&head)
    }

    /// Records a committed entry as the newest. Heads only move forward: two
    /// processes publishing out of order cannot move it back.
    pub fn publish_head(&self, head: &AuditHead) -> Result<(), AuditError> {
        let lock_path = self.head_path.with_extension("lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|error| KeyError::Io {
                path: lock_path.clone(),
                error,
            })?;
        lock.lock().map_err(|error| KeyError::Io {
            path: lock_path.clone(),
            error,
        })?;

        if let Some(current) = self.read_head()? {
            if current.seq >= head.seq {
                return Ok(());
            }
        }

        // The head names a MAC, which is no secret; the file is private anyway.
        let text = serde_json::to_vec(head).unwrap_or_default();
        write_private_file(&self.head_path, &text)?;
        Ok(())
    }

    /// Checks every entry's MAC and the chain's end against the head file.
    pub fn verify(&self, conn: &Connection) -> Result<Verdict, AuditError> {
        let mut statement = conn.prepare(
            "SELECT seq, at, kind, actor, subject, ip, detail, mac FROM audit_log ORDER BY seq",
        )?;
        let mut rows = statement.query([])?;

        let mut previous_mac = vec![0u8; 32];
        let mut expected_seq = 1;
        let mut macs_by_seq = Vec::new();
        while let Some(row) = rows.next()? {
            let entry = Entry {
                seq: row.get(0)?,
                at: row.get(1)?,
                kind: row.get(2)?,
                actor: row.get(3)?,
                subject: row.get(4)?,
                ip: row.get(5)?,
                detail: row.get(6)?,
            };
            let stored_mac: Vec<u8> = row.get(7)?;

            if entry.seq != expected_seq {
                return Ok(Verdict::Broken {
                    reason: format!(
                        "entry {expected_seq} is missing (the next entry is {})",
                        entry.seq
                    ),
                });
            }

            let expected_mac = self.mac(&previous_mac, &entry);
            if !bool::from(expected_mac.as_slice().ct_eq(&stored_mac)) {
                return Ok(Verdict::Broken {
                    reason: format!(
                        "entry {} ({} at {}) does not match its MAC: it was altered, or an earlier entry was",
                        entry.seq,
                        entry.kind,
                        from_millis(entry.at).to_rfc3339()
                    ),
                });
            }

            macs_by_seq.push(stored_mac.clone());
            previous_mac = stored_mac;
            expected_seq += 1;
        }

        let entries = expected_seq - 1;
        let head = self.read_head()?;
        match &head {
            None if entries > 0 => {
                return Ok(Verdict::Broken {
                    reason: format!(
                        "the head file {} is missing but the log has {entries} entries",
                        self.head_path.display()
                    ),
                })
            }
            None => {}
            Some(head) => {
                let recorded = usize::try_from(head.seq - 1)
                    .ok()
                    .and_then(|index| macs_by_seq.get(index));
                let Some(recorded) = recorded else {
                    return Ok(Verdict::Broken {
                        reason: format!(
                            "the log ends at entry {entries} but the head names entry {}: entries were cut off the end",
                            head.seq
                        ),
                    });
                };
                if hex::encode(recorded) != head.mac {
                    return Ok(Verdict::Broken {
                        reason: format!(
                            "entry {} does not match the MAC recorded in the head file",
                            head.seq
                        ),
                    });
                }
            }
        }

        let head = macs_by_seq.last().map(|mac| AuditHead {
            seq: entries,
            mac: hex::encode(mac),
        });
        Ok(Verdict::Intact { entries, head })
    }

    fn read_head(&self) -> Result<Option<AuditHead>, AuditError> {
        match fs::read(&self.head_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|error| {
                AuditError::HeadUnreadable {
                    path: self.head_path.clone(),
                    detail: error.to_string(),
                }
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(AuditError::HeadUnreadable {
                path: self.head_path.clone(),
                detail: error.to_string(),
            }),
        }
    }

    fn mac(&self, previous_mac: &[u8], entry: &Entry) -> Vec<u8> {
        // An HMAC accepts keys of any length, so this cannot fail.
        let mut mac = HmacSha256::new_from_slice(self.keys.audit.expose_secret())
            .expect("HMAC takes keys of any length");
        mac.update(previous_mac);
        mac.update(&entry.seq.to_be_bytes());
        mac.update(&entry.at.to_be_bytes());
        for field in [
            Some(entry.kind.as_str()),
            Some(entry.actor.as_str()),
            entry.subject.as_deref(),
            entry.ip.as_deref(),
            Some(entry.detail.as_str()),
        ] {
            // Length-prefixed, with absent fields distinct from empty ones, so
            // no two different entries feed the MAC the same bytes.
            match field {
                Some(text) => {
                    mac.update(&[1]);
                    mac.update(&(text.len() as u64).to_be_bytes());
                    mac.update(text.as_bytes());
                }
                None => mac.update(&[0]),
            }
        }
        mac.finalize().into_bytes().to_vec()
    }
}

/// The event's detail, with the forwarding proxy's address added as
/// `peer_ip` when the request came through one (and the caller did not name
/// the peer itself).
fn detail_with_peer(event: &AuditEvent) -> std::borrow::Cow<'_, serde_json::Value> {
    let proxy = event.ip.and_then(|ip| ip.forwarded_by);
    match (proxy, &event.detail) {
        (Some(proxy), serde_json::Value::Object(fields)) if !fields.contains_key("peer_ip") => {
            let mut fields = fields.clone();
            fields.insert("peer_ip".to_owned(), proxy.to_string().into());
            std::borrow::Cow::Owned(serde_json::Value::Object(fields))
        }
        _ => std::borrow::Cow::Borrowed(&event.detail),
    }
}

/// One row as stored.
struct Entry {
    seq: i64,
    at: i64,
    kind: String,
    actor: String,
    subject: Option<String>,
    ip: Option<String>,
    detail: String,
}
