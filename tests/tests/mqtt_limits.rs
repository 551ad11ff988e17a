//! C28: the MQTT packet limits are set on the broker and on both clients, and
//! the hub's message limit decides, to the byte, what it accepts.

use std::time::Duration;

use guardian_e2e::hub::{wait_for, School};
use guardian_protocol::{topics, Provisioning, MAX_DEVICE_MESSAGE_BYTES, MQTT_PACKET_LIMIT};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

fn dropped_sizes(hub_dir: &std::path::Path) -> Vec<(u64, String)> {
    let conn = rusqlite::Connection::open(hub_dir.join("hub.sqlite")).unwrap();
    let mut statement = conn
        .prepare("SELECT detail FROM audit_log WHERE kind = 'message_dropped' ORDER BY seq")
        .unwrap();
    statement
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap()
        .map(|detail| {
            let detail: serde_json::Value = serde_json::from_str(&detail.unwrap()).unwrap();
            (
                detail["bytes"].as_u64().unwrap(),
                detail["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn c28_a_message_at_the_exact_limit_reaches_the_hub_and_one_byte_over_is_refused() {
    let school = School::new("Lilies", "+34600111333");
    let hub = school.start_hub();
    let provisioning =
        Provisioning::from_json(&std::fs::read_to_string(&school.provision).unwrap()).unwrap();

    let mut options = MqttOptions::new(
        provisioning.device_id.to_string(),
        hub.mqtt.ip().to_string(),
        hub.mqtt.port(),
    );
    options.set_credentials(&provisioning.mqtt_username, provisioning.mqtt_password());
    options.set_max_packet_size(MQTT_PACKET_LIMIT, MQTT_PACKET_LIMIT);
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut connection) = Client::new(options, 10);
    let topic = topics::photos(provisioning.device_id);

    client
        .publish(
            &topic,
            QoS::AtLeastOnce,
            false,
            vec![0u8; MAX_DEVICE_MESSAGE_BYTES],
        )
        .unwrap();
    client
        .publish(
            &topic,
            QoS::AtLeastOnce,
            false,
            vec![0u8; MAX_DEVICE_MESSAGE_BYTES + 1],
        )
        .unwrap();
    let mut acked = 0;
    for event in connection.iter() {
        match event {
            Ok(Event::Incoming(Packet::PubAck(_))) => {
                acked += 1;
                if acked == 2 {
                    break;
                }
            }
            Ok(_) => {}
            Err(error) => panic!("the broker refused a packet within its limit: {error}"),
        }
    }

    assert!(
        wait_for(Duration::from_secs(30), || dropped_sizes(&school.hub_dir)
            .len()
            >= 2),
        "both messages reach the hub; log:\n{}",
        hub.log()
    );
    let dropped = dropped_sizes(&school.hub_dir);
    assert_eq!(dropped[0].0, MAX_DEVICE_MESSAGE_BYTES as u64);
    assert!(!dropped[0].1.contains("over the limit"), "{:?}", dropped[0]);
    assert_eq!(dropped[1].0, MAX_DEVICE_MESSAGE_BYTES as u64 + 1);
    assert!(dropped[1].1.contains("over the limit"), "{:?}", dropped[1]);
}

#[test]
fn c28_a_three_megabyte_photo_travels_from_device_to_hub() {
    let school = School::new("Irises", "+34600111444");
    let _hub = school.start_hub();
    let photos = school.dir.path().join("camera");
    std::fs::create_dir_all(&photos).unwrap();
    let name = "mde_couple_balcony_exif6_8mp.jpg";
    let source = guardian_e2e::testdata(name);
    assert!(std::fs::metadata(&source).unwrap().len() > 3_000_000);
    std::fs::copy(&source, photos.join(name)).unwrap();

    let run = school.run_device(
        &school.dir.path().join("device"),
        &format!("dir:{}", photos.display()),
        600,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.captured().len(), 1);

    let conn = rusqlite::Connection::open(school.hub_dir.join("hub.sqlite")).unwrap();
    let (count, bytes): (i64, i64) = conn
        .query_row("SELECT COUNT(*), MAX(envelope_len) FROM photos", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(count, 1);
    assert!(bytes > 3_000_000, "the sealed photo is {bytes} bytes");
}
