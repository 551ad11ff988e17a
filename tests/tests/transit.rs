//! Encryption in transit and a real broker, with the real binaries: MQTT over
//! TLS from the embedded broker and from Debian's Mosquitto (case C32), HTTPS
//! for the parents' page, the logins and ACLs the hub writes for Mosquitto,
//! and trusted proxies (case C12). Other hosts are emulated on 127.0.0.2 to
//! 127.0.0.4; nothing leaves the machine.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use guardian_e2e::hub::*;
use guardian_e2e::testdata;
use guardian_protocol::{broker_tls, topics, Provisioning};
use rumqttc::{Client, ConnectionError, Event, MqttOptions, Packet, QoS};

const CLASSROOM: &str = "Sunflowers";
const PHONE: &str = "+34600111222";

/// Where the school's other hosts are emulated.
const HUB_IP: &str = "127.0.0.2";

/// A free port on `ip`.
fn port_on(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("free port")
}

/// A certificate and its key, as files.
struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
}

impl CertFiles {
    fn cert(&self) -> &str {
        self.cert.to_str().expect("utf-8 path")
    }

    fn key(&self) -> &str {
        self.key.to_str().expect("utf-8 path")
    }
}

/// A school with the Guardian CA and a photo ready in a camera folder.
struct TlsSchool {
    school: School,
    camera: String,
}

impl TlsSchool {
    fn new() -> TlsSchool {
        let school = School::new(CLASSROOM, PHONE);
        hub_ok(
            &school.hub_dir,
            &["tls", "init-ca", "--school", "CEIP Test"],
            None,
        );
        let camera = school.dir.path().join("camera");
        std::fs::create_dir_all(&camera).unwrap();
        std::fs::copy(testdata("hopper.jpg"), camera.join("hopper.jpg")).unwrap();
        TlsSchool {
            camera: format!("dir:{}", camera.display()),
            school,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.school.dir.path().join(name)
    }

    /// `tls issue` for these names.
    fn issue(&self, label: &str, names: &[&str]) -> CertFiles {
        let files = CertFiles {
            cert: self.path(&format!("{label}.pem")),
            key: self.path(&format!("{label}-key.pem")),
        };
        let mut args = vec!["tls", "issue", "--cert", files.cert(), "--key", files.key()];
        for name in names {
            args.extend_from_slice(&["--name", name]);
        }
        hub_ok(&self.school.hub_dir, &args, None);
        files
    }

    /// A certificate for `name`, signed by the Guardian CA, that expired in
    /// 2021: `tls issue` cannot make one, so it is made here with rcgen.
    fn expired(&self, label: &str, name: &str) -> CertFiles {
        let tls = self.school.hub_dir.join("tls");
        let ca_pem = std::fs::read_to_string(tls.join("ca.pem")).unwrap();
        let ca_key =
            rcgen::KeyPair::from_pem(&std::fs::read_to_string(tls.join("ca-key.pem")).unwrap())
                .unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_pem, ca_key).unwrap();
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();

        let files = CertFiles {
            cert: self.path(&format!("{label}.pem")),
            key: self.path(&format!("{label}-key.pem")),
        };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        files
    }

    /// Registers a device for `broker` and returns its provisioning file.
    fn add_device(&self, label: &str, broker: &str, extra: &[&str]) -> PathBuf {
        let out = self.path(&format!("{label}.json"));
        let mut args = vec![
            "device",
            "add",
            "--classroom",
            CLASSROOM,
            "--broker",
            broker,
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--out", out.to_str().unwrap()]);
        hub_ok(&self.school.hub_dir, &args, None);
        out
    }

    /// `mosquitto setup` into `dir`: the plain listener on the school's MQTT
    /// port for the hub, the TLS one on 127.0.0.2 with `cert`.
    fn mosquitto_setup(&self, dir: &Path, tls_port: u16, cert: &CertFiles) {
        hub_ok(
            &self.school.hub_dir,
            &[
                "--mosquitto-dir",
                dir.to_str().unwrap(),
                "mosquitto",
                "setup",
                "--listen",
                &format!("127.0.0.1:{}", self.school.mqtt_port),
                "--tls-listen",
                &format!("{HUB_IP}:{tls_port}"),
                "--cert",
                cert.cert(),
                "--key",
                cert.key(),
            ],
            None,
        );
    }

    fn run_device(&self, provision: &Path, label: &str, timeout_secs: u64) -> DeviceRun {
        run_device(provision, &self.path(label), &self.camera, timeout_secs)
    }
}

/// Runs `serve` on loopback with these extra options, expects it to stop
/// with an error, and returns what it printed.
fn serve_refused(hub_dir: &Path, extra: &[&str]) -> String {
    let mut args = vec!["serve", "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let output = hub_cli(hub_dir, &args, None);
    assert!(!output.status.success(), "serve {extra:?} started");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn provisioning(path: &Path) -> Provisioning {
    Provisioning::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_embedded_broker_serves_devices_over_tls_and_refuses_wrong_names_c32() {
    let s = TlsSchool::new();
    let plain = format!("127.0.0.1:{}", s.school.mqtt_port);
    let tls_port = port_on(HUB_IP);
    let mqtts = format!("{HUB_IP}:{tls_port}");
    let device = s.add_device("tls-device", &mqtts, &[]);
    assert!(
        provisioning(&device).broker_ca.is_some(),
        "the device pins the Guardian CA"
    );

    // A certificate that names only hub.local: the device refuses it.
    let only_name = s.issue("hub-local", &["hub.local"]);
    let serve = |cert: &CertFiles| {
        RunningHub::start_with(
            &s.school.hub_dir,
            &[],
            &[
                "--mqtt",
                &plain,
                "--mqtts",
                &mqtts,
                "--mqtt-cert",
                cert.cert(),
                "--mqtt-key",
                cert.key(),
            ],
        )
    };
    let hub = serve(&only_name);
    let refused = s.run_device(&device, "device-refused", 8);
    assert!(
        refused.stderr.contains("does not name 127.0.0.2"),
        "{}",
        refused.stderr
    );
    assert!(stored_photo_ids(&s.school.hub_dir).is_empty());
    hub.stop();

    // One that names the address the device uses: delivered.
    let right = s.issue("hub-ip", &["hub.local", HUB_IP]);
    let hub_log = s.school.hub_dir.with_extension("serve.log");
    let earlier_log = std::fs::read_to_string(&hub_log).map_or(0, |log| log.len());
    let hub = serve(&right);
    let start_log = hub.log().split_off(earlier_log);
    // (The development SMS outbox warns at every start, on purpose.)
    assert!(
        !start_log.contains("ERROR") && !start_log.contains("mqtt connection problem"),
        "a clean start logs no problem:\n{start_log}"
    );
    let run = s.run_device(&device, "device-ok", 120);
    assert_eq!(run.code, Some(0), "{}\nhub: {}", run.stderr, hub.log());
    let captured: Vec<String> = run.captured().into_iter().map(|(id, _)| id).collect();
    assert_eq!(captured.len(), 1);
    assert_eq!(
        stored_photo_ids(&s.school.hub_dir)
            .into_iter()
            .collect::<Vec<_>>(),
        captured
    );

    // A device that pins the CA never falls back to plain MQTT, even when
    // sent to the broker's plain port.
    let ca = s.school.hub_dir.join("tls/ca.pem");
    let misdirected = s.add_device(
        "misdirected",
        &plain,
        &["--broker-ca", ca.to_str().unwrap()],
    );
    let refused = s.run_device(&misdirected, "device-misdirected", 6);
    assert!(
        refused.stderr.contains("TLS handshake failed")
            || refused.stderr.contains("did not answer in TLS"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("connected to the broker"));
    assert_eq!(stored_photo_ids(&s.school.hub_dir).len(), 1);
}

#[test]
fn the_hub_refuses_to_serve_an_expired_certificate_c32() {
    let s = TlsSchool::new();
    let expired = s.expired("expired", HUB_IP);
    let stderr = serve_refused(
        &s.school.hub_dir,
        &[
            "--mqtts",
            &format!("{HUB_IP}:0"),
            "--mqtt-cert",
            expired.cert(),
            "--mqtt-key",
            expired.key(),
        ],
    );
    assert!(stderr.contains("expired on 2021-01-01"), "{stderr}");

    // Plain MQTT to a network address is refused when registering a device
    // without a CA; with the CA it pins it.
    let no_ca = tempfile::tempdir().unwrap();
    let hub_dir = no_ca.path().join("hub");
    hub_ok(&hub_dir, &["classroom", "add", CLASSROOM], None);
    let out = no_ca.path().join("d.json");
    let refused = hub_cli(
        &hub_dir,
        &[
            "device",
            "add",
            "--classroom",
            CLASSROOM,
            "--broker",
            "192.0.2.10:1883",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains("must not speak plain MQTT"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn two_listeners_sharing_a_port_are_refused_before_the_hub_starts() {
    let s = TlsSchool::new();
    let cert = s.issue("shared-port", &[HUB_IP]);
    let refused = |http: &str, mqtt: &str, mqtts: &str| {
        let output = hub_cli(
            &s.school.hub_dir,
            &[
                "serve",
                "--http",
                http,
                "--mqtt",
                mqtt,
                "--mqtts",
                mqtts,
                "--mqtt-cert",
                cert.cert(),
                "--mqtt-key",
                cert.key(),
            ],
            None,
        );
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(!output.status.success(), "{stderr}");
        stderr
    };

    // The wildcard address overlaps the loopback one on the same port.
    let port = port_on("127.0.0.1");
    let stderr = refused(
        "127.0.0.1:0",
        &format!("127.0.0.1:{port}"),
        &format!("0.0.0.0:{port}"),
    );
    assert!(
        stderr.contains(&format!("cannot listen for MQTT on 0.0.0.0:{port}"))
            && stderr.contains("--mqtts"),
        "{stderr}"
    );

    // The web page's port, given again to the devices' listener.
    let web = format!("{HUB_IP}:{}", port_on(HUB_IP));
    let stderr = refused(&web, "127.0.0.1:0", &web);
    assert!(
        stderr.contains(&format!("cannot listen for MQTT on {web}")),
        "{stderr}"
    );
}

/// `GET path` over HTTPS, trusting only `ca_pem`, checking the certificate
/// against `server_name`.
fn https_get(
    address: &str,
    server_name: &str,
    ca_pem: &str,
    path: &str,
) -> std::io::Result<String> {
    let config = broker_tls::pinned_client_config(ca_pem).unwrap();
    let name = rustls::pki_types::ServerName::try_from(server_name.to_owned()).unwrap();
    let connection = rustls::ClientConnection::new(config, name).unwrap();
    let mut stream = rustls::StreamOwned::new(connection, TcpStream::connect(address)?);
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

#[test]
fn the_parents_page_is_served_over_https_with_the_given_certificate() {
    let s = TlsSchool::new();
    let web = s.issue("web", &["guardian.school.test", "127.0.0.1"]);
    let redirect_port = port_on("127.0.0.1");
    let hub = RunningHub::start_with(
        &s.school.hub_dir,
        &[],
        &[
            "--mqtt",
            &format!("127.0.0.1:{}", s.school.mqtt_port),
            "--web-cert",
            web.cert(),
            "--web-key",
            web.key(),
            "--http-redirect",
            &format!("127.0.0.1:{redirect_port}"),
        ],
    );
    let ca = std::fs::read_to_string(s.school.hub_dir.join("tls/ca.pem")).unwrap();
    let address = hub.http.to_string();

    let answer = https_get(&address, "127.0.0.1", &ca, "/get_client_ip").unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("{\"ip\":\"127.0.0.1\"}"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("strict-transport-security: max-age="),
        "{answer}"
    );

    // A parent who types the address without https:// is sent there.
    let mut typed = TcpStream::connect(("127.0.0.1", redirect_port)).unwrap();
    typed
        .write_all(
            b"GET /?lang=es HTTP/1.1\r\nHost: guardian.school.test\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let mut redirected = String::new();
    typed.read_to_string(&mut redirected).unwrap();
    assert!(redirected.starts_with("HTTP/1.1 308"), "{redirected}");
    let location = format!(
        "location: https://guardian.school.test:{}/?lang=es",
        hub.http.port()
    );
    assert!(
        redirected.to_ascii_lowercase().contains(&location),
        "{redirected}"
    );

    // A name the certificate does not carry is refused by the client.
    let error = https_get(&address, "wrong.school.test", &ca, "/").unwrap_err();
    assert!(
        broker_tls::explain_failure("wrong.school.test", &error)
            .unwrap()
            .contains("does not name wrong.school.test"),
        "{error}"
    );

    // Plain HTTP on the HTTPS port gets no page.
    let mut plain = TcpStream::connect(&address).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    plain
        .write_all(b"GET /get_client_ip HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut bytes = Vec::new();
    let _ = plain.read_to_end(&mut bytes);
    assert!(!String::from_utf8_lossy(&bytes).contains("\"ip\""));
}

/// Debian's Mosquitto, run on the configuration `mosquitto setup` wrote.
struct Mosquitto {
    child: Child,
    log: PathBuf,
}

impl Mosquitto {
    fn start(setup_dir: &Path, listeners: &[(&str, u16)]) -> Mosquitto {
        let binary = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .expect("Mosquitto is not installed: `apt-get install mosquitto` (.ci/run does)");
        // Run as whoever runs the tests: as root Mosquitto would switch to its
        // own user, which cannot read a test's private folder.
        let conf = setup_dir.with_extension("run.conf");
        std::fs::write(
            &conf,
            format!(
                "include_dir {}\nuser root\nlog_dest stderr\nlog_type all\n",
                setup_dir.display()
            ),
        )
        .unwrap();
        let log = setup_dir.with_extension("log");
        let child = Command::new(binary)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start mosquitto");
        let mosquitto = Mosquitto { child, log };
        for (ip, port) in listeners {
            let up = wait_for(Duration::from_secs(10), || {
                TcpStream::connect((*ip, *port)).is_ok()
            });
            assert!(
                up,
                "mosquitto did not listen on {ip}:{port}: {}",
                mosquitto.log()
            );
        }
        mosquitto
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Makes Mosquitto read its password and ACL files again.
    fn reload(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        std::thread::sleep(Duration::from_millis(500));
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An MQTT client logged in with a device's credentials from its
/// provisioning file, on Mosquitto's plain loopback listener.
fn login_as(device: &Provisioning, port: u16) -> (Client, rumqttc::Connection) {
    let mut options = MqttOptions::new(format!("probe-{}", device.device_id), "127.0.0.1", port);
    options.set_credentials(device.mqtt_username.clone(), device.mqtt_password());
    options.set_max_packet_size(1 << 20, 1 << 20);
    Client::new(options, 16)
}

/// Polls until the connection is acknowledged or refused.
fn first_answer(connection: &mut rumqttc::Connection) -> Result<(), Box<ConnectionError>> {
    for event in connection.iter() {
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
            Ok(_) => {}
            Err(error) => return Err(Box::new(error)),
        }
    }
    unreachable!("the connection iterator never ends by itself")
}

fn audit_count(hub_dir: &Path, kind: &str) -> usize {
    strings(
        &hub_db(hub_dir),
        &format!("SELECT CAST(seq AS TEXT) FROM audit_log WHERE kind = '{kind}'"),
    )
    .len()
}

#[test]
fn mosquitto_confines_each_device_to_its_own_topics() {
    let s = TlsSchool::new();
    let tls_port = port_on(HUB_IP);
    let right = s.issue("mqtt", &[HUB_IP]);
    let tls_device = s.add_device("tls-device", &format!("{HUB_IP}:{tls_port}"), &[]);
    let setup_dir = s.path("mosquitto");
    std::fs::create_dir_all(&setup_dir).unwrap();
    let setup = setup_dir.to_str().unwrap();
    let plain = format!("127.0.0.1:{}", s.school.mqtt_port);
    s.mosquitto_setup(&setup_dir, tls_port, &right);
    let first = provisioning(&s.school.provision);
    let second = provisioning(&tls_device);
    let acl = std::fs::read_to_string(setup_dir.join("acl")).unwrap();
    assert!(acl.contains(&format!(
        "user {}\ntopic write guardian/devices/{}/photos",
        second.mqtt_username, second.device_id
    )));

    let mosquitto = Mosquitto::start(
        &setup_dir,
        &[("127.0.0.1", s.school.mqtt_port), (HUB_IP, tls_port)],
    );
    let hub = RunningHub::start_with(
        &s.school.hub_dir,
        &["--mosquitto-dir", setup],
        &["--external-broker", &plain],
    );

    // The first device, logged in, tries to read the second's replies and
    // to publish as the second; it also publishes junk on its own topic.
    let (snoop, mut snooping) = login_as(&first, s.school.mqtt_port);
    first_answer(&mut snooping).expect("the first device logs in");
    snoop
        .subscribe(topics::replies(second.device_id), QoS::AtLeastOnce)
        .unwrap();
    snoop
        .publish(
            topics::photos(second.device_id),
            QoS::AtLeastOnce,
            false,
            b"forged".to_vec(),
        )
        .unwrap();
    snoop
        .publish(
            topics::photos(first.device_id),
            QoS::AtLeastOnce,
            false,
            b"junk".to_vec(),
        )
        .unwrap();
    let snooped = std::thread::spawn(move || {
        let mut replies = 0;
        for event in snooping.iter().take_while(|event| event.is_ok()) {
            if let Ok(Event::Incoming(Packet::Publish(_))) = event {
                replies += 1;
            }
        }
        replies
    });

    // The second device delivers over TLS through Mosquitto.
    let run = s.run_device(&tls_device, "tls-device-run", 120);
    assert_eq!(
        run.code,
        Some(0),
        "{}\nhub: {}\nmosquitto: {}",
        run.stderr,
        hub.log(),
        mosquitto.log()
    );
    assert_eq!(run.captured().len(), 1);
    assert_eq!(stored_photo_ids(&s.school.hub_dir).len(), 1);

    // Only the junk on the first device's own topic reached the hub; the
    // forgery never did, and no reply to the second device reached the first.
    assert!(wait_for(Duration::from_secs(5), || audit_count(
        &s.school.hub_dir,
        "message_dropped"
    ) == 1));
    let _ = snoop.disconnect();
    assert_eq!(
        snooped.join().unwrap(),
        0,
        "the first device read the second's replies"
    );

    // Revoked, the second device's login is gone once Mosquitto reloads.
    hub_ok(
        &s.school.hub_dir,
        &[
            "--mosquitto-dir",
            setup,
            "device",
            "revoke",
            &second.device_id.to_string(),
        ],
        None,
    );
    let passwd = std::fs::read_to_string(setup_dir.join("passwd")).unwrap();
    assert!(!passwd.contains(&second.mqtt_username));
    assert!(passwd.contains(&first.mqtt_username));
    mosquitto.reload();
    let (_revoked, mut refused) = login_as(&second, s.school.mqtt_port);
    let error = first_answer(&mut refused).unwrap_err();
    assert!(
        matches!(*error, ConnectionError::ConnectionRefused(_)),
        "{error:?}"
    );
}

#[test]
fn devices_refuse_mosquittos_certificate_with_a_wrong_name_or_dates_c32() {
    let s = TlsSchool::new();
    let tls_port = port_on(HUB_IP);
    let device = s.add_device("tls-device", &format!("{HUB_IP}:{tls_port}"), &[]);
    let setup_dir = s.path("mosquitto");
    std::fs::create_dir_all(&setup_dir).unwrap();

    let setup = |cert: &CertFiles| s.mosquitto_setup(&setup_dir, tls_port, cert);
    let run_against_mosquitto = |label: &str| {
        let _mosquitto = Mosquitto::start(
            &setup_dir,
            &[("127.0.0.1", s.school.mqtt_port), (HUB_IP, tls_port)],
        );
        s.run_device(&device, label, 6)
    };

    setup(&s.issue("hub-local", &["hub.local"]));
    let wrong_name = run_against_mosquitto("device-name");
    assert!(
        wrong_name.stderr.contains("does not name 127.0.0.2"),
        "{}",
        wrong_name.stderr
    );

    // `mosquitto setup` checks a certificate's dates, so the expired one is
    // swapped in after it.
    let current = s.issue("current", &[HUB_IP]);
    setup(&current);
    let expired = s.expired("expired", HUB_IP);
    std::fs::copy(&expired.cert, &current.cert).unwrap();
    std::fs::copy(&expired.key, &current.key).unwrap();
    let stale = run_against_mosquitto("device-expired");
    assert!(stale.stderr.contains("has expired"), "{}", stale.stderr);
    assert!(stored_photo_ids(&s.school.hub_dir).is_empty());
}

/// `GET /get_client_ip` over plain HTTP from `from` (a loopback address
/// standing in for another host), with these extra header lines.
fn client_ip_seen(hub: &RunningHub, from: &str, headers: &str) -> String {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: std::net::SocketAddr = format!("{from}:0").parse().unwrap();
    socket.bind(&local.into()).unwrap();
    socket.connect(&hub.http.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    write!(
        stream,
        "GET /get_client_ip HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

#[test]
fn the_served_hub_believes_forwarding_only_from_its_trusted_proxies_c12() {
    let s = TlsSchool::new();
    let mqtt = format!("127.0.0.1:{}", s.school.mqtt_port);
    let hub = RunningHub::start_with(
        &s.school.hub_dir,
        &[],
        &["--mqtt", &mqtt, "--trusted-proxy", "127.0.0.3"],
    );
    let forwarded = "X-Forwarded-For: 203.0.113.7, 198.51.100.20\r\n";

    let via_proxy = client_ip_seen(&hub, "127.0.0.3", forwarded);
    assert!(
        via_proxy.ends_with("{\"ip\":\"198.51.100.20\"}"),
        "{via_proxy}"
    );
    let direct = client_ip_seen(&hub, "127.0.0.4", forwarded);
    assert!(direct.ends_with("{\"ip\":\"127.0.0.4\"}"), "{direct}");
    let junk = client_ip_seen(&hub, "127.0.0.3", "X-Forwarded-For: not-an-ip\r\n");
    assert!(junk.ends_with("{\"ip\":\"127.0.0.3\"}"), "{junk}");
    hub.stop();

    // One hub per data directory: a second `serve` stops at once.
    let hub = RunningHub::start_with(&s.school.hub_dir, &[], &["--mqtt", &mqtt]);
    let stderr = serve_refused(&s.school.hub_dir, &[]);
    assert!(stderr.contains("already runs"), "{stderr}");
    hub.stop();

    // A proxy setting that is no address stops the hub before it serves.
    let stderr = serve_refused(&s.school.hub_dir, &["--trusted-proxy", "proxy.school.lan"]);
    assert!(
        stderr.contains("\"proxy.school.lan\" is not an IP address"),
        "{stderr}"
    );
}
