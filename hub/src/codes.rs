//! One-time codes: the second step before an original photo leaves the hub.
//!
//! A parent asks for a photo's original; the hub makes a random six-digit code,
//! keeps only an HMAC of it, and the web layer sends the code by SMS. The code
//! opens that one request, once, within [`CODE_VALIDITY`], and what it opens is a
//! single-use download link bound to the session that asked — never a stronger
//! session.
//!
//! Guessing is bounded three ways: [`MAX_WRONG_TRIES`] wrong codes end a request,
//! [`MAX_REQUESTS_PER_DAY`] requests per parent per rolling 24 hours, and
//! [`LOCK_AFTER_WRONG_CODES`] consecutive wrong codes (across requests) lock the
//! parent out of originals until an operator runs `guardian-hub parent unlock`.
//!
//! Every check and the change it leads to (a try counted, a code marked used, a
//! download claimed) happen in one `BEGIN IMMEDIATE` transaction under the
//! database mutex, so two requests racing with the same code cannot both win.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Duration;
use hmac::{Hmac, Mac};
use rand::{Rng, RngCore};
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use serde_json::json;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::audit::{Actor, AuditError, AuditEvent, AuditKind, RequestAddress};
use crate::db::to_millis;
use crate::keys::HubKeys;
use crate::store::sqlite_uuid;
use crate::visibility;
use crate::Hub;

/// How long a code sent by SMS stays valid. Long enough for a slow SMS and a
/// parent fetching their phone; short enough that a code read off a screen
/// later is useless.
pub const CODE_VALIDITY: Duration = Duration::minutes(5);

/// Wrong codes that end one request; the next try is refused outright.
pub const MAX_WRONG_TRIES: i64 = 5;

/// Original requests one parent may make in any 24 hours.
pub const MAX_REQUESTS_PER_DAY: i64 = 10;

/// Consecutive wrong codes, across requests, that lock a parent out of originals.
pub const LOCK_AFTER_WRONG_CODES: i64 = 20;

/// How long the download link a verified code yields stays valid.
pub const DOWNLOAD_VALIDITY: Duration = Duration::minutes(10);

/// Digits in a code.
pub const CODE_DIGITS: usize = 6;

/// Where a download link points; the token follows.
pub const DOWNLOAD_PATH_PREFIX: &str = "/api/downloads/";

/// Why a request, a code check or a download was refused.
///
/// The first group is the parent's doing and is answered with a stable code;
/// the last two are the hub's own failures.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    /// No such photo, request or download for this parent and session. The same
    /// answer for "exists but is not yours", so ids cannot be probed.
    #[error("no such photo, request or download for this parent")]
    NotFound,

    /// The code is not the one sent (or not six digits).
    #[error(
        "wrong code; {} left for this request",
        crate::wording::count(*tries_left, "try", "tries")
    )]
    WrongCode { tries_left: i64 },

    /// The request already ended after [`MAX_WRONG_TRIES`] wrong codes.
    #[error("too many wrong codes for this request; ask for the original again")]
    TooManyTries,

    /// The parent made [`MAX_REQUESTS_PER_DAY`] requests in the last 24 hours.
    #[error("too many original requests in 24 hours")]
    TooManyRequests,

    /// [`LOCK_AFTER_WRONG_CODES`] consecutive wrong codes locked the parent.
    #[error(
        "the parent is locked after too many wrong codes; unlock with `guardian-hub parent unlock`"
    )]
    Locked,

    /// The code or download link was already used.
    #[error("the code or download link was already used")]
    Used,

    /// The code or download link is past its validity.
    #[error("the code or download link has expired")]
    Expired,

    /// A child the original would show has no consent for originals, or a
    /// consent the request relied on was withdrawn.
    #[error("the original may not be released: a child it shows has no consent for originals")]
    NotAllowed,

    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),

    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl CodeError {
    /// The refusal's stable name in the audit log.
    fn audit_reason(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::WrongCode { .. } => "wrong_code",
            Self::TooManyTries => "too_many_tries",
            Self::TooManyRequests => "too_many_requests",
            Self::Locked => "locked",
            Self::Used => "used",
            Self::Expired => "expired",
            Self::NotAllowed => "no_consent",
            Self::Database(_) | Self::Audit(_) => "internal",
        }
    }
}

/// A one-time code. Not `Clone`, not `Serialize`, redacted in `Debug`, wiped on
/// drop: the only ways out are [`OneTimeCode::expose_digits`] (for the SMS) and
/// its HMAC.
pub struct OneTimeCode(Zeroizing<String>);

impl OneTimeCode {
    /// The code for a number below one million, written with all six digits:
    /// 81804 becomes "081804" (case C19).
    pub fn from_number(number: u32) -> Option<Self> {
        (number < 1_000_000).then(|| Self(Zeroizing::new(format!("{number:06}"))))
    }

    /// The six digits, for the SMS text and nothing else.
    pub fn expose_digits(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for OneTimeCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OneTimeCode(redacted)")
    }
}

/// Where codes come from. The hub uses [`RandomCodes`]; tests may force a value
/// (a code with leading zeros, say) through `AppState::with_code_generator`,
/// which no HTTP request can reach.
pub trait CodeGenerator: Send + Sync {
    fn generate(&self) -> OneTimeCode;
}

/// Uniform random codes from the operating system's generator.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomCodes;

impl CodeGenerator for RandomCodes {
    fn generate(&self) -> OneTimeCode {
        // gen_range samples without modulo bias, so every code from 000000 to
        // 999999 is equally likely.
        let number = rand::rngs::OsRng.gen_range(0..1_000_000u32);
        // The range keeps the number below one million, so the fallback never
        // runs; were it to, an empty code can never verify.
        OneTimeCode::from_number(number).unwrap_or_else(|| OneTimeCode(Zeroizing::default()))
    }
}

/// A single-use download link. Redacted in `Debug`; the path holds the token.
pub struct DownloadGrant {
    path: Zeroizing<String>,
}

impl DownloadGrant {
    /// The path on the hub that serves the original once, e.g.
    /// `/api/downloads/<43 characters>`. Return it to its parent; never log it.
    pub fn expose_path(&self) -> &str {
        &self.path
    }
}

impl std::fmt::Debug for DownloadGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DownloadGrant(redacted)")
    }
}

/// Who is asking: the parent, the session they ask from, and their address.
#[derive(Debug, Clone, Copy)]
pub struct Requester {
    pub parent_id: Uuid,
    /// The HMAC of the session id (as stored in `sessions.id_hash`).
    pub session_hash: [u8; 32],
    pub ip: RequestAddress,
}

/// A request just made: its id and the code to send.
#[derive(Debug)]
pub struct NewRequest {
    pub request_id: Uuid,
    pub code: OneTimeCode,
}

/// A download just claimed: what to render.
#[derive(Debug, Clone, Copy)]
pub struct ClaimedDownload {
    pub request_id: Uuid,
    pub photo_id: Uuid,
    token_hash: [u8; 32],
}

/// One-time codes and the downloads they grant, for one hub.
pub struct Codes {
    hub: Arc<Hub>,
    generator: Arc<dyn CodeGenerator>,
}

impl Codes {
    pub fn new(hub: Arc<Hub>, generator: Arc<dyn CodeGenerator>) -> Self {
        Self { hub, generator }
    }

    /// Opens a request for a photo's original and makes its code. The photo
    /// must be in the parent's classroom; the parent must not be locked nor over
    /// the daily limit (refusals are audited).
    pub fn request_original(
        &self,
        who: &Requester,
        photo_id: Uuid,
    ) -> Result<NewRequest, CodeError> {
        let now = self.hub.clock.now();
        let mut conn = self.hub.db.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;

        // The photo must be one this parent may see at all.
        let Some(viewing) = visibility::for_guardian(&tx, who.parent_id, photo_id)? else {
            return Err(CodeError::NotFound);
        };
        let locked: bool = tx
            .query_row(
                "SELECT locked FROM guardians WHERE id = ?1",
                [who.parent_id.to_string()],
                |row| row.get(0),
            )
            .optional()?
            .ok_or(CodeError::NotFound)?;

        // Limits, each refusal audited so an operator sees a parent stuck.
        let since = to_millis(now - Duration::hours(24));
        let recent: i64 = tx.query_row(
            "SELECT COUNT(*) FROM original_requests WHERE parent_id = ?1 AND created_at > ?2",
            params![who.parent_id.to_string(), since],
            |row| row.get(0),
        )?;
        let refusal = if !viewing.original_allowed() {
            Some(("no_consent", CodeError::NotAllowed))
        } else if locked {
            Some(("locked", CodeError::Locked))
        } else if recent >= MAX_REQUESTS_PER_DAY {
            Some(("too_many_requests", CodeError::TooManyRequests))
        } else {
            None
        };
        if let Some((reason, error)) = refusal {
            let event = AuditEvent::new(
                AuditKind::OriginalRequestRefused,
                Actor::Parent(who.parent_id),
            )
            .subject(photo_id)
            .ip(who.ip)
            .detail(json!({ "reason": reason, "requests_last_24h": recent }));
            self.hub.audit.commit_with(tx, now, &event)?;
            return Err(error);
        }

        // The request, holding only the code's HMAC.
        let request_id = Uuid::new_v4();
        let code = self.generator.generate();
        let code_hash = code_digest(&self.hub.keys, request_id, code.expose_digits());
        tx.execute(
            "INSERT INTO original_requests (id, parent_id, photo_id, session_id_hash, code_hash,
                created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                request_id.to_string(),
                who.parent_id.to_string(),
                photo_id.to_string(),
                who.session_hash.as_slice(),
                code_hash.as_slice(),
                to_millis(now),
                to_millis(now + CODE_VALIDITY),
            ],
        )?;
        let event = AuditEvent::new(AuditKind::OriginalRequested, Actor::Parent(who.parent_id))
            .subject(request_id)
            .ip(who.ip)
            .detail(json!({ "photo_id": photo_id }));
        self.hub.audit.commit_with(tx, now, &event)?;

        Ok(NewRequest { request_id, code })
    }

    /// Ends a request whose code could not be sent, so it can never be used.
    pub fn cancel(&self, request_id: Uuid) -> Result<(), CodeError> {
        let conn = self.hub.db.lock();
        conn.execute(
            "UPDATE original_requests SET state = 'cancelled' WHERE id = ?1 AND state = 'pending'",
            [request_id.to_string()],
        )?;
        Ok(())
    }

    /// Checks a submitted code and, if right, marks it used and grants one
    /// download for the asking session — all in one transaction.
    pub fn verify(
        &self,
        who: &Requester,
        request_id: Uuid,
        submitted: &str,
    ) -> Result<DownloadGrant, CodeError> {
        let now = self.hub.clock.now();
        let mut conn = self.hub.db.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;

        let row = tx
            .query_row(
                "SELECT r.parent_id, r.photo_id, r.session_id_hash, r.code_hash, r.expires_at,
                        r.wrong_tries, r.state, p.locked, p.failed_codes
                 FROM original_requests r JOIN guardians p ON p.id = r.parent_id
                 WHERE r.id = ?1",
                [request_id.to_string()],
                |row| {
                    Ok(StoredRequest {
                        parent_id: sqlite_uuid(row, 0)?,
                        photo_id: sqlite_uuid(row, 1)?,
                        session_hash: row.get(2)?,
                        code_hash: row.get(3)?,
                        expires_at: row.get(4)?,
                        wrong_tries: row.get(5)?,
                        state: row.get(6)?,
                        locked: row.get(7)?,
                        failed_codes: row.get(8)?,
                    })
                },
            )
            .optional()?;

        // Every refusal is audited, in this same transaction.
        let refuse = |tx: rusqlite::Transaction<'_>, error: CodeError| {
            let event = AuditEvent::new(AuditKind::CodeFailed, Actor::Parent(who.parent_id))
                .subject(request_id)
                .ip(who.ip)
                .detail(json!({ "refused": error.audit_reason() }));
            self.hub.audit.commit_with(tx, now, &event)?;
            Err(error)
        };

        // Another parent's request, or this parent's from another session,
        // looks exactly like one that does not exist.
        let Some(request) = row.filter(|r| {
            r.parent_id == who.parent_id && bool::from(r.session_hash.ct_eq(&who.session_hash))
        }) else {
            return refuse(tx, CodeError::NotFound);
        };

        // The refusals that come before looking at the code at all.
        if request.locked {
            return refuse(tx, CodeError::Locked);
        }
        let early = match request.state.as_str() {
            "verified" => Some(CodeError::Used),
            "exhausted" => Some(CodeError::TooManyTries),
            "cancelled" => Some(CodeError::Expired),
            "withdrawn" => Some(CodeError::NotAllowed),
            "ended" => Some(CodeError::NotFound),
            _ if request.wrong_tries >= MAX_WRONG_TRIES => Some(CodeError::TooManyTries),
            _ if to_millis(now) > request.expires_at => Some(CodeError::Expired),
            _ => None,
        };
        if let Some(error) = early {
            return refuse(tx, error);
        }

        // The comparison. A submission that is not six digits is a wrong try
        // like any other, so it cannot be used to probe for free.
        let expected = code_digest(&self.hub.keys, request_id, submitted);
        let right = is_code_shaped(submitted) && bool::from(expected.ct_eq(&request.code_hash[..]));

        if !right {
            let tries = request.wrong_tries + 1;
            let failed = request.failed_codes + 1;
            let exhausted = tries >= MAX_WRONG_TRIES;
            let lock = failed >= LOCK_AFTER_WRONG_CODES;

            tx.execute(
                "UPDATE original_requests SET wrong_tries = ?2,
                    state = CASE WHEN ?3 THEN 'exhausted' ELSE state END
                 WHERE id = ?1",
                params![request_id.to_string(), tries, exhausted],
            )?;
            tx.execute(
                "UPDATE guardians SET failed_codes = ?2, locked = CASE WHEN ?3 THEN 1 ELSE locked END
                 WHERE id = ?1",
                params![who.parent_id.to_string(), failed, lock],
            )?;

            let actor = Actor::Parent(who.parent_id);
            let failed_event = AuditEvent::new(AuditKind::CodeFailed, actor)
                .subject(request_id)
                .ip(who.ip)
                .detail(json!({
                    "photo_id": request.photo_id,
                    "wrong_tries": tries,
                    "consecutive_wrong_codes": failed,
                }));
            let mut head = self.hub.audit.append(&tx, now, &failed_event)?;
            if lock {
                let locked_event = AuditEvent::new(AuditKind::ParentLocked, Actor::Hub)
                    .subject(who.parent_id)
                    .ip(who.ip)
                    .detail(json!({ "consecutive_wrong_codes": failed }));
                head = self.hub.audit.append(&tx, now, &locked_event)?;
            }
            tx.commit()?;
            self.hub.audit.publish_head(&head)?;

            return Err(CodeError::WrongCode {
                tries_left: MAX_WRONG_TRIES - tries,
            });
        }

        // Right: the code is spent, the streak of wrong codes ends, and one
        // download is granted to this session only.
        tx.execute(
            "UPDATE original_requests SET state = 'verified' WHERE id = ?1",
            [request_id.to_string()],
        )?;
        tx.execute(
            "UPDATE guardians SET failed_codes = 0 WHERE id = ?1",
            [who.parent_id.to_string()],
        )?;
        let token = new_token();
        tx.execute(
            "INSERT INTO downloads (token_hash, request_id, session_id_hash, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                digest(&self.hub.keys, DOWNLOAD_PURPOSE, token.as_bytes()).as_slice(),
                request_id.to_string(),
                who.session_hash.as_slice(),
                to_millis(now),
                to_millis(now + DOWNLOAD_VALIDITY),
            ],
        )?;
        let verified = AuditEvent::new(AuditKind::CodeVerified, Actor::Parent(who.parent_id))
            .subject(request_id)
            .ip(who.ip)
            .detail(json!({ "photo_id": request.photo_id }));
        self.hub.audit.commit_with(tx, now, &verified)?;

        Ok(DownloadGrant {
            path: Zeroizing::new(format!("{DOWNLOAD_PATH_PREFIX}{}", token.as_str())),
        })
    }

    /// Claims a download for rendering: it must belong to this parent and
    /// session, be unused and in date. Once claimed nobody else can take it;
    /// [`Codes::release`] gives it back if rendering fails.
    pub fn claim_download(
        &self,
        who: &Requester,
        token: &str,
    ) -> Result<ClaimedDownload, CodeError> {
        if !is_token_shaped(token) {
            return Err(CodeError::NotFound);
        }
        let token_hash = digest(&self.hub.keys, DOWNLOAD_PURPOSE, token.as_bytes());

        let now = self.hub.clock.now();
        let mut conn = self.hub.db.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row = tx
            .query_row(
                "SELECT d.request_id, r.photo_id, r.parent_id, d.session_id_hash, d.expires_at,
                        d.used_at IS NOT NULL
                 FROM downloads d JOIN original_requests r ON r.id = d.request_id
                 WHERE d.token_hash = ?1",
                [token_hash.as_slice()],
                |row| {
                    Ok((
                        sqlite_uuid(row, 0)?,
                        sqlite_uuid(row, 1)?,
                        sqlite_uuid(row, 2)?,
                        row.get::<_, Vec<u8>>(3)?,
                        row.get::<_, i64>(4)?,
                        row.get::<_, bool>(5)?,
                    ))
                },
            )
            .optional()?;

        // Refusals are audited; the token itself never is.
        let refuse = |tx: rusqlite::Transaction<'_>, request: Option<Uuid>, error: CodeError| {
            let mut event =
                AuditEvent::new(AuditKind::DownloadRefused, Actor::Parent(who.parent_id))
                    .ip(who.ip)
                    .detail(json!({ "refused": error.audit_reason() }));
            if let Some(request) = request {
                event = event.subject(request);
            }
            self.hub.audit.commit_with(tx, now, &event)?;
            Err(error)
        };

        // A link opened from another session (a forwarded link, a stolen one)
        // is not found, and stays usable for the session it belongs to.
        let Some((request_id, photo_id, parent_id, session_hash, expires_at, used)) = row else {
            return refuse(tx, None, CodeError::NotFound);
        };
        if parent_id != who.parent_id || !bool::from(session_hash.ct_eq(&who.session_hash)) {
            return refuse(tx, None, CodeError::NotFound);
        }
        if used {
            return refuse(tx, Some(request_id), CodeError::Used);
        }
        if to_millis(now) > expires_at {
            return refuse(tx, Some(request_id), CodeError::Expired);
        }

        tx.execute(
            "UPDATE downloads SET used_at = ?2 WHERE token_hash = ?1",
            params![token_hash.as_slice(), to_millis(now)],
        )?;
        tx.commit()?;

        Ok(ClaimedDownload {
            request_id,
            photo_id,
            token_hash,
        })
    }

    /// Gives a claimed download back after the hub failed to render it, so the
    /// parent can try the same link again.
    pub fn release(&self, claimed: &ClaimedDownload) -> Result<(), CodeError> {
        let conn = self.hub.db.lock();
        conn.execute(
            "UPDATE downloads SET used_at = NULL WHERE token_hash = ?1",
            [claimed.token_hash.as_slice()],
        )?;
        Ok(())
    }
}

/// Why an original request was ended before its code was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withdrawal {
    /// A consent the original relied on was withdrawn: its code answers
    /// "not allowed", and the parent may ask again for what is now allowed.
    ConsentWithdrawn,
    /// The parent's access to the photo ended (unlinked from the child, or
    /// the child erased): its code answers "not found", like any photo that
    /// is not theirs.
    AccessEnded,
}

impl Withdrawal {
    /// The request's state, which [`Codes::verify`] answers by.
    fn state(self) -> &'static str {
        match self {
            Self::ConsentWithdrawn => "withdrawn",
            Self::AccessEnded => "ended",
        }
    }
}

/// Ends an original request because a consent, a link or the child it
/// shows is gone: its code stops working (with the answer `why` calls for,
/// rather than "expired") and its download link, if not used yet, is
/// deleted. Runs inside the caller's transaction.
pub fn withdraw(
    tx: &rusqlite::Transaction<'_>,
    request_id: &str,
    why: Withdrawal,
) -> Result<(), rusqlite::Error> {
    tx.execute(
        "UPDATE original_requests SET state = ?2 WHERE id = ?1",
        params![request_id, why.state()],
    )?;
    tx.execute(
        "DELETE FROM downloads WHERE request_id = ?1 AND used_at IS NULL",
        [request_id],
    )?;
    Ok(())
}

/// A keyed digest under the hub's `secrets` key, separated by purpose: how
/// codes, session ids and download tokens are stored, so that a copy of the
/// database alone cannot be searched for them.
pub fn digest(keys: &HubKeys, purpose: &str, value: &[u8]) -> [u8; 32] {
    // An HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(keys.secrets.expose_secret())
        .expect("HMAC takes keys of any length");
    mac.update(&(purpose.len() as u64).to_be_bytes());
    mac.update(purpose.as_bytes());
    mac.update(value);
    mac.finalize().into_bytes().into()
}

/// Whether a submission has the form of a code: exactly six ASCII digits.
/// "81804" and "5924" (a code whose leading zeros were dropped) are not.
pub fn is_code_shaped(submitted: &str) -> bool {
    submitted.len() == CODE_DIGITS && submitted.bytes().all(|b| b.is_ascii_digit())
}

const CODE_PURPOSE: &str = "guardian one-time code v1";
const DOWNLOAD_PURPOSE: &str = "guardian download token v1";

/// A random 256-bit token, base64url without padding: 43 characters.
const TOKEN_CHARS: usize = 43;

struct StoredRequest {
    parent_id: Uuid,
    photo_id: Uuid,
    session_hash: Vec<u8>,
    code_hash: Vec<u8>,
    expires_at: i64,
    wrong_tries: i64,
    state: String,
    locked: bool,
    failed_codes: i64,
}

/// The code's digest is bound to its request, so the same six digits sent for
/// two requests are stored differently and one cannot stand in for the other.
fn code_digest(keys: &HubKeys, request_id: Uuid, code: &str) -> [u8; 32] {
    let mut value = Vec::with_capacity(16 + code.len());
    value.extend_from_slice(request_id.as_bytes());
    value.extend_from_slice(code.as_bytes());
    digest(keys, CODE_PURPOSE, &value)
}

fn new_token() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_ref()))
}

fn is_token_shaped(token: &str) -> bool {
    token.len() == TOKEN_CHARS
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_keep_their_leading_zeros() {
        let code = OneTimeCode::from_number(81_804).expect("below a million");
        assert_eq!(code.expose_digits(), "081804");
        let code = OneTimeCode::from_number(5_924).expect("below a million");
        assert_eq!(code.expose_digits(), "005924");
        assert!(OneTimeCode::from_number(1_000_000).is_none());
    }

    #[test]
    fn only_six_digits_have_the_shape_of_a_code() {
        assert!(is_code_shaped("081804"));
        assert!(is_code_shaped("005924"));
        for bad in [
            "81804",
            "5924",
            "0818045",
            "08180a",
            " 81804",
            "０８１８０４",
            "",
        ] {
            assert!(!is_code_shaped(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn random_codes_are_six_digits_and_vary() {
        let codes: Vec<String> = (0..200)
            .map(|_| RandomCodes.generate().expose_digits().to_owned())
            .collect();
        assert!(codes.iter().all(|c| is_code_shaped(c)));
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert!(distinct.len() > 190, "{} distinct of 200", distinct.len());
    }

    #[test]
    fn secrets_print_redacted() {
        let code = OneTimeCode::from_number(123_456).expect("code");
        assert_eq!(format!("{code:?}"), "OneTimeCode(redacted)");
        let grant = DownloadGrant {
            path: Zeroizing::new("/api/downloads/abc".into()),
        };
        assert!(!format!("{grant:?}").contains("abc"));
    }

    #[test]
    fn tokens_are_43_url_safe_characters() {
        let token = new_token();
        assert!(is_token_shaped(&token), "{}", token.as_str());
        assert!(!is_token_shaped("../../etc/passwd"));
    }
}
