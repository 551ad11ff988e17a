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
        }
    }

    pub fn from_json(text: &str) -> Result<Self, ProtocolError> {
        let provisioning: Self =
            serde_json::from_str(text).map_err(|error| ProtocolError::Malformed {
                what: "provisioning file",
                detail: error.to_string(),
            })?;
        provisioning.signing_key()?;
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
            .finish_non_exhaustive()
    }
}
