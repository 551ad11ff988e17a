//! The files an external Mosquitto broker reads: who may log in, and what each
//! login may do.
//!
//! The hub writes them into one folder (`--mosquitto-dir`): `passwd` (the
//! hub's login and every active device's, as PBKDF2-SHA512 hashes in
//! Mosquitto's `$7$` format), `acl` (each device may publish only its own
//! photos and heartbeats and read only its own replies and notices; the hub
//! reads and answers all of them), and, from `guardian-hub mosquitto setup`,
//! `guardian.conf`, the listeners and limits to include from Mosquitto's own
//! configuration. The hub rewrites `passwd` and `acl` when it starts, when a
//! device is added and when one is revoked; Mosquitto reads them again on
//! SIGHUP, which the systemd path unit `guardian-mosquitto-reload.path` sends
//! (the hub runs as another user and cannot signal the broker itself).
//!
//! `use_username_as_clientid` is set so that no login can take over another's
//! MQTT session by reusing its client id: a device that did so to the hub's
//! would cut the hub off the broker.

use std::fmt::Write as _;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use guardian_protocol::{topics, MQTT_PACKET_LIMIT};
use rand::RngCore;
use sha2::Sha512;
use uuid::Uuid;

use crate::accounts::HUB_MQTT_USERNAME;
use crate::keys::ReservedFile;
use crate::Hub;

/// PBKDF2 rounds. Every Guardian password is 256 random bits, which no
/// number of rounds makes stronger; Mosquitto pays them on every login.
const PBKDF2_ROUNDS: u32 = 1_000;

/// Salt and hash sizes Mosquitto's `mosquitto_passwd` writes.
const SALT_BYTES: usize = 12;
const HASH_BYTES: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum MosquittoError {
    #[error("cannot write {}: {error}; check that the folder exists and the hub's user may write it", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },

    #[error("cannot read the devices from the hub database: {0}")]
    Database(#[from] rusqlite::Error),
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Devices that may log in.
    pub devices: usize,
    /// Active devices registered before the hub kept Mosquitto hashes: they
    /// cannot log in to Mosquitto until provisioned again.
    pub without_login: Vec<Uuid>,
}

/// Where Mosquitto listens, as `guardian.conf` sets it up.
#[derive(Debug, Clone)]
pub struct Listeners {
    /// Plain MQTT; keep it on loopback, for the hub itself.
    pub plain: Option<SocketAddr>,
    /// MQTT over TLS, for the devices.
    pub tls: Option<TlsListener>,
}

#[derive(Debug, Clone)]
pub struct TlsListener {
    pub address: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A password in Mosquitto's `$7$` format: PBKDF2-HMAC-SHA512 with a random
/// salt, both base64.
pub fn password_hash(password: &str) -> String {
    let mut salt = [0u8; SALT_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let mut hash = [0u8; HASH_BYTES];
    pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), &salt, PBKDF2_ROUNDS, &mut hash);
    format!(
        "$7${PBKDF2_ROUNDS}${}${}",
        STANDARD.encode(salt),
        STANDARD.encode(hash)
    )
}

/// Rewrites `passwd` and `acl` in `dir` from the hub's devices.
pub fn write_logins(hub: &Hub, dir: &Path) -> Result<Written, MosquittoError> {
    let (devices, without_login) = active_devices(hub)?;

    let mut passwd = format!(
        "{HUB_MQTT_USERNAME}:{}\n",
        password_hash(hub.keys.mqtt_password())
    );
    let mut acl =
        String::from("# Written by guardian-hub from its device list; edits are overwritten.\n\n");
    let _ = write!(
        acl,
        "user {HUB_MQTT_USERNAME}\ntopic read {}\ntopic read {}\ntopic write {}\ntopic write {}\n",
        topics::ALL_PHOTOS,
        topics::ALL_STATUS,
        topics::ALL_REPLIES,
        topics::ALL_NOTICES,
    );
    for (device_id, username, hash) in &devices {
        let _ = writeln!(passwd, "{username}:{hash}");
        let _ = write!(
            acl,
            "\nuser {username}\ntopic write {}\ntopic write {}\ntopic read {}\ntopic read {}\n",
            topics::photos(*device_id),
            topics::status(*device_id),
            topics::replies(*device_id),
            topics::notices(*device_id),
        );
    }

    // The ACL first: a device that can log in before its topics are allowed
    // is only refused, never let through.
    replace_file(&dir.join("acl"), acl.as_bytes())?;
    replace_file(&dir.join("passwd"), passwd.as_bytes())?;
    if !without_login.is_empty() {
        tracing::warn!(
            devices = ?without_login,
            "devices registered before Mosquitto support cannot log in to Mosquitto; register them again"
        );
    }
    tracing::info!(dir = %dir.display(), devices = devices.len(), "mosquitto logins written");
    Ok(Written {
        devices: devices.len(),
        without_login,
    })
}

/// Writes `guardian.conf` in `dir`: the listeners, logins and limits.
pub fn write_config(dir: &Path, listeners: &Listeners) -> Result<PathBuf, MosquittoError> {
    let mut conf = format!(
        "# Written by `guardian-hub mosquitto setup`; include it from mosquitto.conf.\n\
         per_listener_settings false\n\
         allow_anonymous false\n\
         password_file {}\n\
         acl_file {}\n\
         max_packet_size {MQTT_PACKET_LIMIT}\n",
        dir.join("passwd").display(),
        dir.join("acl").display(),
    );
    // use_username_as_clientid is a listener's setting: written before any
    // listener, it would open a default one on port 1883.
    if let Some(plain) = listeners.plain {
        let _ = write!(
            conf,
            "\nlistener {} {}\nuse_username_as_clientid true\n",
            plain.port(),
            plain.ip()
        );
    }
    if let Some(tls) = &listeners.tls {
        let _ = write!(
            conf,
            "\nlistener {} {}\nuse_username_as_clientid true\ncertfile {}\nkeyfile {}\ntls_version tlsv1.2\n",
            tls.address.port(),
            tls.address.ip(),
            tls.cert.display(),
            tls.key.display(),
        );
    }
    let path = dir.join("guardian.conf");
    replace_file(&path, conf.as_bytes())?;
    Ok(path)
}

/// The certificate that `guardian.conf` in `dir` has Mosquitto serve to the
/// devices, if setup gave it one.
pub fn served_certificate(dir: &Path) -> Option<PathBuf> {
    let conf = fs::read_to_string(dir.join("guardian.conf")).ok()?;
    conf.lines()
        .find_map(|line| line.strip_prefix("certfile "))
        .map(|path| PathBuf::from(path.trim()))
}

/// Active devices with their login and Mosquitto hash, and those without one.
#[allow(clippy::type_complexity)]
fn active_devices(hub: &Hub) -> Result<(Vec<(Uuid, String, String)>, Vec<Uuid>), MosquittoError> {
    let conn = hub.db.lock();
    let mut statement = conn.prepare(
        "SELECT d.id, d.mqtt_username, m.password_hash
         FROM devices d LEFT JOIN mosquitto_logins m ON m.device_id = d.id
         WHERE d.revoked_at IS NULL ORDER BY d.created_at, d.id",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, Option<String>>(2)?,
        ))
    })?;

    let mut devices = Vec::new();
    let mut without_login = Vec::new();
    for row in rows {
        let (id, username, hash) = row?;
        let Ok(id) = Uuid::parse_str(&id) else {
            continue;
        };
        match hash {
            Some(hash) => devices.push((id, username, hash)),
            None => without_login.push(id),
        }
    }
    Ok((devices, without_login))
}

/// Replaces a file whole: written beside it, synced, then renamed over it,
/// so Mosquitto never reads half a list. Mode 0640: the broker's group reads
/// it (the folder is set-group-id to that group), nobody else does.
fn replace_file(path: &Path, contents: &[u8]) -> Result<(), MosquittoError> {
    // Mosquitto's group reads the lists; the umask must not take that away.
    ReservedFile::create(path)
        .and_then(|file| file.with_mode(0o640))
        .and_then(|file| file.write(contents))
        .map_err(|error| MosquittoError::Write {
            path: path.to_path_buf(),
            error,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_served_certificate_is_read_back_from_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(served_certificate(dir.path()), None);
        let tls = TlsListener {
            address: "127.0.0.1:8883".parse().unwrap(),
            cert: PathBuf::from("/etc/guardian/tls/mqtt-cert.pem"),
            key: PathBuf::from("/etc/guardian/tls/mqtt-key.pem"),
        };
        let listeners = Listeners {
            plain: Some("127.0.0.1:1883".parse().unwrap()),
            tls: Some(tls.clone()),
        };
        write_config(dir.path(), &listeners).unwrap();
        assert_eq!(served_certificate(dir.path()), Some(tls.cert));
    }

    #[test]
    fn hashes_are_pbkdf2_sha512_in_mosquittos_format() {
        let hash = password_hash("secret");
        let parts: Vec<&str> = hash.split('$').collect();
        assert_eq!(parts[..3], ["", "7", "1000"]);
        let salt = STANDARD.decode(parts[3]).unwrap();
        let digest = STANDARD.decode(parts[4]).unwrap();
        assert_eq!((salt.len(), digest.len()), (SALT_BYTES, HASH_BYTES));

        let mut expected = [0u8; HASH_BYTES];
        pbkdf2::pbkdf2_hmac::<Sha512>(b"secret", &salt, 1_000, &mut expected);
        assert_eq!(digest, expected);
        assert_ne!(password_hash("secret"), hash, "the salt is random");
    }
}
