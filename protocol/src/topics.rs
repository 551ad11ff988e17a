//! MQTT topic names.
//!
//! Each device publishes only under its own id and reads only what the hub
//! sends it, so a broker ACL can confine a device to
//! `guardian/devices/<its id>/#`.

use uuid::Uuid;

/// The topic filter the hub subscribes to for every device's photos.
pub const ALL_PHOTOS: &str = "guardian/devices/+/photos";

/// The topic filter the hub subscribes to for every device's heartbeats.
pub const ALL_STATUS: &str = "guardian/devices/+/status";

/// Every device's replies topic, for a broker ACL that lets the hub answer.
pub const ALL_REPLIES: &str = "guardian/devices/+/replies";

/// Every device's notices topic, for a broker ACL that lets the hub notify.
pub const ALL_NOTICES: &str = "guardian/devices/+/notices";

/// Where a device publishes its signed photos.
pub fn photos(device_id: Uuid) -> String {
    format!("guardian/devices/{device_id}/photos")
}

/// Where a device publishes its signed heartbeats.
pub fn status(device_id: Uuid) -> String {
    format!("guardian/devices/{device_id}/status")
}

/// Where the hub publishes its signed replies about photos to one device.
pub fn replies(device_id: Uuid) -> String {
    format!("guardian/devices/{device_id}/replies")
}

/// Where the hub publishes its signed notices (PIN sets, revocation) to one device.
pub fn notices(device_id: Uuid) -> String {
    format!("guardian/devices/{device_id}/notices")
}

/// The device id named in a topic a device publishes on (photos or status),
/// if the topic has that shape.
pub fn device_of_device_topic(topic: &str) -> Option<Uuid> {
    let rest = topic.strip_prefix("guardian/devices/")?;
    let id = rest
        .strip_suffix("/photos")
        .or_else(|| rest.strip_suffix("/status"))?;
    Uuid::parse_str(id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_topic_names_its_device() {
        let id = Uuid::new_v4();
        assert_eq!(device_of_device_topic(&photos(id)), Some(id));
        assert_eq!(device_of_device_topic(&status(id)), Some(id));
        assert_eq!(device_of_device_topic(&replies(id)), None);
        assert_eq!(device_of_device_topic(&notices(id)), None);
        assert_eq!(device_of_device_topic("guardian/devices/x/photos"), None);
    }
}
