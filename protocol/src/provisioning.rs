//! The provisioning file the hub writes for each device.
//!
//! It holds everything a device needs and nothing that opens a photo: the
//! device's identity and signing key, its MQTT credentials, the hub's public
//! keys and the broker address. It is a secret (it lets its holder publish as
//! the device), so the hub writes it with mode 0600.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys::{key_bytes_from_base64, key_bytes_to_base64};
use crate::{DeviceSigningKey, HubSealingPublic, HubVerifyingKey, ProtocolError};

/// The hub's two public keys, as given to each device.
#[derive(Debug, Clone, Copy)]
pub struct HubPublicKeys {
    pub sealing: HubSealingPublic,
    pub verifying: HubVerifyingKey,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct Provisioning {
    pub device_id: Uuid,
    pub classroom: String,
    /// `host:port` of the MQTT broker the device publishes to.
    pub broker: String,
    pub mqtt_username: String,
    mqtt_password: String,
    device_signing_key: String,
    pub hub_sealing_public: HubSealingPublic,
    pub hub_verifying_key: HubVerifyingKey,
    /// The CA (PEM) the device trusts for its broker. With one, the device
    /// speaks only MQTT over TLS; without one, only plain MQTT, which the hub
    /// writes only for a broker on the device's own machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_ca: Option<String>,
}

impl Provisioning {
    pub fn new(
        device_id: Uuid,
        classroom: String,
        broker: String,
        mqtt_username: String,
        mqtt_password: String,
        device_key: &DeviceSigningKey,
        hub: HubPublicKeys,
    ) -> Self {
        Self {
            device_id,
            classroom,
            broker,
            mqtt_username,
            mqtt_password,
            device_signing_key: key_bytes_to_base64(&device_key.secret_bytes_for_provisioning()),
            hub_sealing_public: hub.sealing,
            hub_verifying_key: hub.verifying,
            broker_ca: None,
        }
    }

    /// Pins the CA the device trusts for its broker (see [`Self::broker_ca`]).
    pub fn with_broker_ca(mut self, ca_pem: String) -> Self {
        self.broker_ca = Some(ca_pem);
        self
    }

    pub fn from_json(text: &str) -> Result<Self, ProtocolError> {
        let provisioning: Self =
            serde_json::from_str(text).map_err(|error| ProtocolError::Malformed {
                what: "provisioning file",
                detail: error.to_string(),
            })?;
        provisioning.signing_key()?;
        if let Some(ca) = &provisioning.broker_ca {
            crate::broker_tls::parse_ca(ca).map_err(|error| ProtocolError::Malformed {
                what: "provisioning file",
                detail: error.to_string(),
            })?;
        }
        Ok(provisioning)
    }

    pub fn to_json(&self) -> String {
        // Every field is a plain string or UUID, which always serialise.
        serde_json::to_string_pretty(self).expect("provisioning serialises to JSON")
    }

    pub fn mqtt_password(&self) -> &str {
        &self.mqtt_password
    }

    pub fn signing_key(&self) -> Result<DeviceSigningKey, ProtocolError> {
        let bytes = key_bytes_from_base64(&self.device_signing_key, "device signing key")?;
        Ok(DeviceSigningKey::from_secret_bytes(bytes))
    }
}

impl fmt::Debug for Provisioning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provisioning")
            .field("device_id", &self.device_id)
            .field("classroom", &self.classroom)
            .field("broker", &self.broker)
            .field("mqtt_username", &self.mqtt_username)
            .field("broker_tls", &self.broker_ca.is_some())
            .finish_non_exhaustive()
    }
}
