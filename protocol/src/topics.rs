//! MQTT topic names.
//!
//! Each device publishes only under its own id and reads only its own replies,
//! so a broker ACL can confine a device to `guardian/devices/<its id>/#`.

use uuid::Uuid;

/// The topic filter the hub subscribes to for every device's photos.
pub const ALL_PHOTOS: &str = "guardian/devices/+/photos";

/// Where a device publishes its signed messages.
pub fn photos(device_id: Uuid) -> String {
    format!("guardian/devices/{device_id}/photos")
}

/// Where the hub publishes its signed replies to one device.
pub fn replies(device_id: Uuid) -> String {
    format!("guardian/devices/{device_id}/replies")
}

/// The device id named in a photos topic, if the topic has that shape.
pub fn device_of_photos_topic(topic: &str) -> Option<Uuid> {
    let id = topic
        .strip_prefix("guardian/devices/")?
        .strip_suffix("/photos")?;
    Uuid::parse_str(id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photos_topic_names_its_device() {
        let id = Uuid::new_v4();
        assert_eq!(device_of_photos_topic(&photos(id)), Some(id));
        assert_eq!(device_of_photos_topic(&replies(id)), None);
        assert_eq!(device_of_photos_topic("guardian/devices/x/photos"), None);
    }
}
