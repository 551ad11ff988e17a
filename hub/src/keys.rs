//! The hub's key files, created the first time any command uses a data directory.
//!
//! `<data-dir>/keys/` holds, each in its own file with mode 0600:
//! - `sealing.key`: X25519 secret that opens sealed photos;
//! - `signing.key`: Ed25519 secret that signs replies to devices;
//! - `audit.key`: HMAC key chaining the audit log;
//! - `secrets.key`: HMAC key for hashing one-time codes, session ids and
//!   download tokens, so a copy of the database alone cannot brute-force them;
//! - `mqtt-hub.password`: the hub's own login on its MQTT broker.
//!
//! CLI commands may run while `serve` runs, so two processes may race to create
//! a key: each writes a private temporary file and links it into place, which
//! fails for the loser, who then reads the winner's key.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use guardian_protocol::{HubPublicKeys, HubSealingKey, HubSigningKey};
use rand::RngCore;
use zeroize::{Zeroize, Zeroizing};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The OS refused a file of the data directory (missing folder, permissions, full disk).
    /// The OS error is in the message and not chained as a source, so it is printed once.
    #[error("cannot create or read the key file {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },

    #[error("the key file {path} is damaged ({found} bytes, expected 32); restore it from backup, or photos sealed for this hub cannot be opened")]
    Damaged { path: PathBuf, found: usize },
}

/// A 32-byte symmetric secret. No `Clone`, no `Debug` with content, zeroed on drop.
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// The raw bytes, for keying an HMAC and nothing else.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(redacted)")
    }
}

/// Every key the hub holds.
pub struct HubKeys {
    pub sealing: HubSealingKey,
    pub signing: HubSigningKey,
    pub audit: SecretKey,
    pub secrets: SecretKey,
    mqtt_password: Zeroizing<String>,
}

impl HubKeys {
    /// Loads the keys of a data directory, creating any that do not exist yet.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, KeyError> {
        let dir = data_dir.join("keys");
        create_private_dir(&dir)?;

        let sealing = HubSealingKey::from_secret_bytes(*key_file(&dir.join("sealing.key"))?);
        let signing = HubSigningKey::from_secret_bytes(*key_file(&dir.join("signing.key"))?);
        let audit = SecretKey(*key_file(&dir.join("audit.key"))?);
        let secrets = SecretKey(*key_file(&dir.join("secrets.key"))?);
        let mqtt_password = Zeroizing::new(hex::encode(*key_file(&dir.join("mqtt-hub.password"))?));

        Ok(Self {
            sealing,
            signing,
            audit,
            secrets,
            mqtt_password,
        })
    }

    pub fn public(&self) -> HubPublicKeys {
        HubPublicKeys {
            sealing: self.sealing.public(),
            verifying: self.signing.verifying_key(),
        }
    }

    /// The hub's password on its own MQTT broker.
    pub fn mqtt_password(&self) -> &str {
        &self.mqtt_password
    }
}

/// Creates a directory readable only by its owner (and its parents).
pub fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    let io = |error| KeyError::Io {
        path: dir.to_path_buf(),
        error,
    };
    fs::create_dir_all(dir).map_err(io)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io)
}

/// Writes a file that only its owner can read, atomically and durably: a
/// reader never sees a half-written file, and it survives a power cut once
/// this returns.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    let temporary = temporary_sibling(path);
    write_new_private(&temporary, contents)?;
    fs::rename(&temporary, path).map_err(|error| KeyError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    sync_parent(path)
}

/// A private file (mode 0600) set aside before its contents exist: an empty
/// temporary file beside its final path, removed again unless written.
///
/// `device add` reserves its provisioning file this way before it registers
/// the device, so that a folder that is missing or read-only is reported
/// before anything is recorded.
pub struct ReservedFile {
    path: PathBuf,
    temporary: PathBuf,
    file: fs::File,
    placed: bool,
}

impl ReservedFile {
    /// Creates the temporary file; fails if the folder of `path` is missing
    /// or not writable.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        // Renaming a file onto a folder fails only at the end, after any
        // other file reserved beside this one may already have been placed.
        if path.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "it is a folder; give a file name in it",
            ));
        }
        let temporary = temporary_sibling(path);
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        Ok(Self {
            path: path.to_path_buf(),
            temporary,
            file,
            placed: false,
        })
    }

    /// Gives the file these permissions instead of 0600, whatever the umask,
    /// for a file others read: a certificate, a list a broker reads.
    pub fn with_mode(self, mode: u32) -> std::io::Result<Self> {
        self.file
            .set_permissions(fs::Permissions::from_mode(mode))?;
        Ok(self)
    }

    /// Writes the contents durably and moves the file to its final path.
    pub fn write(self, contents: &[u8]) -> std::io::Result<()> {
        self.fill(contents)?.place()
    }

    /// Writes the contents durably, still under the temporary name.
    pub fn fill(mut self, contents: &[u8]) -> std::io::Result<Self> {
        self.file.write_all(contents)?;
        self.file.sync_all()?;
        Ok(self)
    }

    /// Moves the filled file to its final path, replacing what was there.
    pub fn place(mut self) -> std::io::Result<()> {
        fs::rename(&self.temporary, &self.path)?;
        self.placed = true;
        fs::File::open(folder_of(&self.path))?.sync_all()
    }
}

impl Drop for ReservedFile {
    fn drop(&mut self) {
        if !self.placed {
            // Nothing was written to it; a leftover would only be clutter.
            let _ = fs::remove_file(&self.temporary);
        }
    }
}

fn key_file(path: &Path) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let io = |error| KeyError::Io {
        path: path.to_path_buf(),
        error,
    };

    if !path.exists() {
        let mut fresh = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(fresh.as_mut());

        let temporary = temporary_sibling(path);
        write_new_private(&temporary, fresh.as_ref())?;
        let linked = fs::hard_link(&temporary, path);
        let _ = fs::remove_file(&temporary);
        match linked {
            Ok(()) => sync_parent(path)?,
            Err(error) if error.kind() == ErrorKind::AlreadyExists => {}
            Err(error) => return Err(io(error)),
        }
    }

    let bytes = Zeroizing::new(fs::read(path).map_err(io)?);
    let key = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| KeyError::Damaged {
        path: path.to_path_buf(),
        found: bytes.len(),
    })?;
    Ok(Zeroizing::new(key))
}

/// The folder a file is in; "." for a bare file name, whose `parent()` is empty.
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

fn temporary_sibling(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    path.with_file_name(name)
}

fn write_new_private(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    let io = |error| KeyError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}

fn sync_parent(path: &Path) -> Result<(), KeyError> {
    let parent = folder_of(path);
    fs::File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(|error| KeyError::Io {
            path: parent.to_path_buf(),
            error,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_once_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let first = HubKeys::load_or_create(dir.path()).unwrap();
        let again = HubKeys::load_or_create(dir.path()).unwrap();
        assert_eq!(first.public().sealing, again.public().sealing);
        assert_eq!(first.mqtt_password(), again.mqtt_password());

        let mode = fs::metadata(dir.path().join("keys/sealing.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_truncated_key_file_is_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        HubKeys::load_or_create(dir.path()).unwrap();
        fs::write(dir.path().join("keys/audit.key"), b"short").unwrap();
        assert!(matches!(
            HubKeys::load_or_create(dir.path()),
            Err(KeyError::Damaged { found: 5, .. })
        ));
    }
}
