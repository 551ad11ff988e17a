//! The settings of `run`, gathered from flags, environment and `.env` (flags
//! win, see `main.rs`) plus the provisioning file, and checked before anything
//! starts.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use guardian_models::DetectorKind;
use guardian_protocol::{ProtocolError, Provisioning};
use tracing::warn;

use crate::mqtt::{BadBrokerAddress, BrokerAddress};
use crate::source::{Source, SourceError};

/// Everything `run` needs, validated.
#[derive(Debug)]
pub struct RunConfig {
    pub provisioning: Provisioning,
    pub data_dir: PathBuf,
    pub broker: BrokerAddress,
    pub source: Source,
    pub detector: DetectorKind,
    pub exit_when_synced: bool,
    pub timeout: Option<Duration>,
}

/// The settings as given, before validation.
#[derive(Debug)]
pub struct RunSettings {
    pub provision: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub broker: Option<BrokerAddress>,
    pub source: Source,
    pub detector: DetectorKind,
    pub exit_when_synced: bool,
    pub timeout_secs: Option<u64>,
}

/// A setting is missing or unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no provisioning file given; pass --provision FILE or set GUARDIAN_PROVISION")]
    NoProvisioning,

    #[error("no data directory given; pass --data-dir DIR or set GUARDIAN_DATA_DIR")]
    NoDataDir,

    #[error(
        "cannot read the provisioning file {path}: {source}; check the path and its permissions"
    )]
    ReadProvisioning {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("the provisioning file {path} is unusable: {source}; download a new one from the hub")]
    BadProvisioning {
        path: PathBuf,
        source: ProtocolError,
    },

    #[error(
        "the provisioning file {path} names an unusable broker: {source}; pass --broker \
         HOST:PORT or download a new provisioning file"
    )]
    BadBroker {
        path: PathBuf,
        source: BadBrokerAddress,
    },

    #[error("--timeout must be at least 1 second")]
    ZeroTimeout,

    #[error(transparent)]
    Source(#[from] SourceError),
}

impl RunConfig {
    /// Validates the settings and reads the provisioning file. Warns, without
    /// failing, about a provisioning file others can read and about plain MQTT
    /// to a broker on the network.
    pub fn load(settings: RunSettings) -> Result<Self, ConfigError> {
        let provision = settings.provision.ok_or(ConfigError::NoProvisioning)?;
        let data_dir = settings.data_dir.ok_or(ConfigError::NoDataDir)?;
        let timeout = match settings.timeout_secs {
            Some(0) => return Err(ConfigError::ZeroTimeout),
            Some(secs) => Some(Duration::from_secs(secs)),
            None => None,
        };

        let provisioning = read_provisioning(&provision)?;
        let broker = choose_broker(settings.broker, &provisioning, &provision)?;

        settings.source.check()?;
        Ok(Self {
            provisioning,
            data_dir,
            broker,
            source: settings.source,
            detector: settings.detector,
            exit_when_synced: settings.exit_when_synced,
            timeout,
        })
    }
}

/// What `kiosk` needs of the shared settings, validated.
#[derive(Debug)]
pub struct KioskConfig {
    pub provisioning: Provisioning,
    pub data_dir: PathBuf,
    pub broker: BrokerAddress,
}

impl KioskConfig {
    pub fn load(
        provision: Option<PathBuf>,
        data_dir: Option<PathBuf>,
        broker: Option<BrokerAddress>,
    ) -> Result<Self, ConfigError> {
        let provision = provision.ok_or(ConfigError::NoProvisioning)?;
        let data_dir = data_dir.ok_or(ConfigError::NoDataDir)?;
        let provisioning = read_provisioning(&provision)?;
        let broker = choose_broker(broker, &provisioning, &provision)?;
        Ok(Self {
            provisioning,
            data_dir,
            broker,
        })
    }
}

/// The `--broker` setting if given, else the provisioning file's; warns
/// about plain MQTT to a broker on the network.
fn choose_broker(
    given: Option<BrokerAddress>,
    provisioning: &Provisioning,
    provision: &Path,
) -> Result<BrokerAddress, ConfigError> {
    let broker = match given {
        Some(broker) => broker,
        None => provisioning
            .broker
            .parse()
            .map_err(|source| ConfigError::BadBroker {
                path: provision.to_path_buf(),
                source,
            })?,
    };
    if provisioning.broker_ca.is_none() && !broker.is_loopback() {
        warn!(
            %broker,
            "MQTT runs over plain TCP to a broker on the network: photos stay sealed, \
             but the MQTT password can be read on the wire; provision this device again \
             from a hub with the Guardian CA (guardian-hub tls init-ca) to use TLS"
        );
    }
    Ok(broker)
}

fn read_provisioning(path: &Path) -> Result<Provisioning, ConfigError> {
    let read_error = |source| ConfigError::ReadProvisioning {
        path: path.to_path_buf(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(read_error)?;
    if metadata.permissions().mode() & 0o077 != 0 {
        warn!(
            path = %path.display(),
            "the provisioning file is readable by other users; it holds this device's \
             signing key, so chmod 600 it"
        );
    }

    let text = std::fs::read_to_string(path).map_err(read_error)?;
    Provisioning::from_json(&text).map_err(|source| ConfigError::BadProvisioning {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use guardian_protocol::{DeviceSigningKey, HubPublicKeys, HubSealingKey, HubSigningKey};
    use uuid::Uuid;

    use super::*;
    use crate::testutil::TempDir;

    fn provisioning_file(dir: &Path, broker: &str) -> PathBuf {
        let provisioning = Provisioning::new(
            Uuid::new_v4(),
            "Class 2B".into(),
            broker.into(),
            "device".into(),
            "secret".into(),
            &DeviceSigningKey::generate(),
            HubPublicKeys {
                sealing: HubSealingKey::generate().public(),
                verifying: HubSigningKey::generate().verifying_key(),
            },
        );
        let path = dir.join("provision.json");
        std::fs::write(&path, provisioning.to_json()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    fn settings(dir: &Path, provision: Option<PathBuf>) -> RunSettings {
        RunSettings {
            provision,
            data_dir: Some(dir.join("data")),
            broker: None,
            source: Source::Dir(dir.to_path_buf()),
            detector: DetectorKind::CenterFace,
            exit_when_synced: true,
            timeout_secs: Some(30),
        }
    }

    #[test]
    fn the_broker_flag_wins_over_the_provisioning_file() {
        let dir = TempDir::new();
        let path = provisioning_file(dir.path(), "127.0.0.1:1883");

        let config = RunConfig::load(settings(dir.path(), Some(path.clone()))).unwrap();
        assert_eq!(config.broker.to_string(), "127.0.0.1:1883");
        assert_eq!(config.timeout, Some(Duration::from_secs(30)));

        let mut with_flag = settings(dir.path(), Some(path));
        with_flag.broker = Some("localhost:2883".parse().unwrap());
        let config = RunConfig::load(with_flag).unwrap();
        assert_eq!(config.broker.to_string(), "localhost:2883");
    }

    #[test]
    fn missing_or_bad_settings_are_named() {
        let dir = TempDir::new();
        assert!(matches!(
            RunConfig::load(settings(dir.path(), None)),
            Err(ConfigError::NoProvisioning)
        ));

        let junk = dir.path().join("junk.json");
        std::fs::write(&junk, "{}").unwrap();
        let error = RunConfig::load(settings(dir.path(), Some(junk))).unwrap_err();
        assert!(error.to_string().contains("junk.json"), "{error}");

        let path = provisioning_file(dir.path(), "not an address");
        assert!(matches!(
            RunConfig::load(settings(dir.path(), Some(path.clone()))),
            Err(ConfigError::BadBroker { .. })
        ));

        let mut missing_source = settings(dir.path(), Some(path));
        missing_source.broker = Some("127.0.0.1:1883".parse().unwrap());
        missing_source.source = Source::Dir(dir.path().join("nowhere"));
        assert!(matches!(
            RunConfig::load(missing_source),
            Err(ConfigError::Source(_))
        ));
    }
}
