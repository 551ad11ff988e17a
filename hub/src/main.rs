//! `guardian-hub`: the school hub's command line.

use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use chrono::NaiveDate;
use chrono_tz::Tz;
use clap::{Parser, Subcommand};
use guardian_hub::accounts::Role;
use guardian_hub::audit::{Actor, Verdict};
use guardian_hub::clock::SystemClock;
use guardian_hub::keys::ReservedFile;
use guardian_hub::wording::count;
use guardian_hub::{broker, children, fleet, ingest, mosquitto, retention, sms, tls, web, Hub};
use guardian_protocol::BrokerAddress;
use uuid::Uuid;
use zeroize::Zeroizing;

#[derive(Parser)]
#[command(name = "guardian-hub", version, about = "Guardian school hub")]
struct Cli {
    /// Where the hub keeps its keys, database and sealed photos.
    #[arg(
        long,
        env = "GUARDIAN_DATA_DIR",
        default_value = "/var/lib/guardian-hub"
    )]
    data_dir: PathBuf,

    /// Keeps an external Mosquitto broker's password and ACL files in this
    /// folder up to date (see `guardian-hub mosquitto setup`).
    #[arg(
        long,
        env = "GUARDIAN_MOSQUITTO_DIR",
        value_name = "DIR",
        global = true
    )]
    mosquitto_dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the embedded MQTT broker, the photo ingest and the parents' web page.
    Serve(ServeArgs),
    /// Creates the Guardian CA and issues certificates for MQTT and HTTPS.
    Tls {
        #[command(subcommand)]
        command: TlsCommand,
    },
    /// Sets up an external Mosquitto broker for the hub and its devices.
    Mosquitto {
        #[command(subcommand)]
        command: MosquittoCommand,
    },
    /// Manages classrooms.
    Classroom {
        #[command(subcommand)]
        command: ClassroomCommand,
    },
    /// Manages parents' accounts (guardians).
    Parent {
        #[command(subcommand)]
        command: ParentCommand,
    },
    /// Manages the school's administrators.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Manages teachers and their classrooms.
    Teacher {
        #[command(subcommand)]
        command: TeacherCommand,
    },
    /// Manages children.
    Child {
        #[command(subcommand)]
        command: ChildCommand,
    },
    /// Links guardians to their children.
    Guardian {
        #[command(subcommand)]
        command: GuardianCommand,
    },
    /// Registers classroom devices.
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
    },
    /// Checks the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Removes photos whose school year is over.
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address of the parents' web page (port 0 picks a free port). It speaks
    /// HTTPS when --web-cert and --web-key are given.
    #[arg(long, env = "GUARDIAN_HTTP", default_value = "127.0.0.1:8080")]
    http: SocketAddr,

    /// The web page's certificate chain (PEM): the school's own, which
    /// parents' phones trust, or one the Guardian CA issued.
    #[arg(
        long,
        env = "GUARDIAN_WEB_CERT",
        value_name = "FILE",
        requires = "web_key"
    )]
    web_cert: Option<PathBuf>,

    /// The private key (PEM) of --web-cert.
    #[arg(
        long,
        env = "GUARDIAN_WEB_KEY",
        value_name = "FILE",
        requires = "web_cert"
    )]
    web_key: Option<PathBuf>,

    /// A plain-HTTP address (e.g. 0.0.0.0:80) that only redirects browsers to
    /// the HTTPS page, for parents who type the address without https://.
    /// `off` turns off a default set by the service's unit.
    #[arg(
        long,
        env = "GUARDIAN_HTTP_REDIRECT",
        value_name = "ADDR|off",
        requires = "web_cert"
    )]
    http_redirect: Option<OrOff<SocketAddr>>,

    /// Reverse proxies whose X-Forwarded-For names the client: addresses or
    /// networks, repeated or comma-separated (e.g. 10.0.0.5,10.1.0.0/16).
    /// Without any, the client is always the connection's peer.
    #[arg(
        long = "trusted-proxy",
        env = "GUARDIAN_TRUSTED_PROXIES",
        value_name = "IP|CIDR",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<String>,

    /// Plain MQTT address of the embedded broker, which the hub itself uses.
    /// Keep it on loopback: logins cross it in clear text.
    #[arg(long, env = "GUARDIAN_MQTT", default_value = "127.0.0.1:1883")]
    mqtt: SocketAddr,

    /// MQTT-over-TLS address of the embedded broker, for the devices (e.g.
    /// 0.0.0.0:8883); needs --mqtt-cert and --mqtt-key.
    #[arg(long, env = "GUARDIAN_MQTTS", value_name = "ADDR", requires_all = ["mqtt_cert", "mqtt_key"])]
    mqtts: Option<SocketAddr>,

    /// The MQTT certificate (PEM), issued by `guardian-hub tls issue` with
    /// every name and address the devices use.
    #[arg(
        long,
        env = "GUARDIAN_MQTT_CERT",
        value_name = "FILE",
        requires = "mqtts"
    )]
    mqtt_cert: Option<PathBuf>,

    /// The private key (PEM) of --mqtt-cert.
    #[arg(
        long,
        env = "GUARDIAN_MQTT_KEY",
        value_name = "FILE",
        requires = "mqtts"
    )]
    mqtt_key: Option<PathBuf>,

    /// Uses this external broker (Mosquitto) instead of the embedded one, as
    /// HOST:PORT. The hub logs in as guardian-hub with the password in its
    /// data directory, which `mosquitto setup` writes into Mosquitto's list.
    #[arg(long, env = "GUARDIAN_EXTERNAL_BROKER", value_name = "HOST:PORT", conflicts_with_all = ["mqtts", "mqtt_cert", "mqtt_key"])]
    external_broker: Option<BrokerAddress>,

    /// Speaks TLS to the external broker, trusting only this CA (PEM).
    #[arg(
        long,
        env = "GUARDIAN_EXTERNAL_BROKER_CA",
        value_name = "FILE",
        requires = "external_broker"
    )]
    external_broker_ca: Option<PathBuf>,

    #[command(flatten)]
    timezone: TimezoneArg,
}

#[derive(Subcommand)]
enum TlsCommand {
    /// Creates the Guardian CA in the data directory (tls/ca.pem, and its key
    /// tls/ca-key.pem). Devices registered afterwards pin it.
    InitCa {
        /// The school's name, written into the CA's certificate.
        #[arg(long)]
        school: String,
    },
    /// Issues a server certificate signed by the Guardian CA, for the
    /// embedded broker, Mosquitto or the web page.
    Issue {
        /// A host name or IP address the certificate is valid for; repeat it
        /// for every name and address devices or browsers use.
        #[arg(long = "name", required = true, value_name = "HOST|IP")]
        names: Vec<String>,
        /// Days it stays valid.
        #[arg(long, default_value_t = guardian_hub::tls::SERVER_DAYS)]
        days: i64,
        /// Where to write the certificate (PEM, mode 0644).
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
        /// Where to write its private key (PEM, mode 0600).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
    /// Prints the Guardian CA's certificate, for a school machine or browser
    /// that should trust it.
    ShowCa,
}

/// A setting that an environment file can switch off (`off`, or nothing
/// after the `=`) where the systemd unit gives it a default.
#[derive(Debug, Clone, Copy)]
enum OrOff<T> {
    Off,
    On(T),
}

impl<T> OrOff<T> {
    fn on(self) -> Option<T> {
        match self {
            Self::Off => None,
            Self::On(value) => Some(value),
        }
    }
}

impl<T: std::str::FromStr> std::str::FromStr for OrOff<T> {
    type Err = T::Err;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "" | "off" => Ok(Self::Off),
            value => value.parse().map(Self::On),
        }
    }
}

#[derive(Subcommand)]
enum MosquittoCommand {
    /// Writes guardian.conf (listeners, logins, limits), passwd and acl into
    /// --mosquitto-dir. Include guardian.conf from mosquitto.conf.
    Setup {
        /// Plain MQTT listener, for the hub on the same machine.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:1883")]
        listen: SocketAddr,
        /// MQTT-over-TLS listener for the devices (e.g. 0.0.0.0:8883).
        #[arg(long, value_name = "ADDR", requires_all = ["cert", "key"])]
        tls_listen: Option<SocketAddr>,
        /// The TLS listener's certificate (from `tls issue`).
        #[arg(long, value_name = "FILE", requires = "tls_listen")]
        cert: Option<PathBuf>,
        /// The TLS listener's private key; Mosquitto's user must read it.
        #[arg(long, value_name = "FILE", requires = "tls_listen")]
        key: Option<PathBuf>,
    },
    /// Rewrites passwd and acl from the hub's devices (the hub does it by
    /// itself at start and when a device is added or revoked).
    Sync,
}

/// The school's time zone, which decides where a school year starts and ends.
#[derive(clap::Args)]
struct TimezoneArg {
    /// An IANA time zone name, such as Europe/Madrid.
    #[arg(
        long = "timezone",
        value_name = "NAME",
        env = "GUARDIAN_TIMEZONE",
        default_value = "Europe/Madrid",
        value_parser = parse_timezone
    )]
    zone: Tz,
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Purges the photos of school years that ended more than 30 days ago:
    /// rows, original requests, downloads and sealed files.
    Run {
        /// The school's date to judge by, as YYYY-MM-DD (default: today in
        /// the school's time zone).
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_day)]
        today: Option<NaiveDate>,

        #[command(flatten)]
        timezone: TimezoneArg,
    },
}

#[derive(Subcommand)]
enum ClassroomCommand {
    /// Adds a classroom.
    Add { name: String },
}

#[derive(Subcommand)]
enum ParentCommand {
    /// Adds a parent; the password is read from stdin.
    Add {
        #[arg(long)]
        name: String,
        /// Phone number in E.164 form, e.g. +34600111222; it is also the login.
        #[arg(long)]
        phone: String,
        /// Records the classroom the family belongs to (kept for older scripts).
        /// It shows the parent nothing: a parent sees only the released photos
        /// in which a child linked to them is named (`guardian link`).
        #[arg(long)]
        classroom: Option<String>,
    },
    /// Lifts the lock that repeated wrong codes put on a parent.
    Unlock {
        #[arg(long)]
        phone: String,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Adds an administrator; the password is read from stdin.
    Add {
        #[arg(long)]
        name: String,
        /// Phone number in E.164 form; it is also the login.
        #[arg(long)]
        phone: String,
    },
}

#[derive(Subcommand)]
enum TeacherCommand {
    /// Adds a teacher of a classroom; the password is read from stdin. For a
    /// teacher who already exists, adds the classroom and keeps the password.
    Add {
        #[arg(long)]
        name: String,
        /// Phone number in E.164 form; it is also the login.
        #[arg(long)]
        phone: String,
        #[arg(long)]
        classroom: String,
    },
    /// Sets the PIN that unlocks the devices of the teacher's classrooms; the
    /// PIN (4 to 8 digits) is read from stdin. Devices learn it at their next heartbeat (within 30 s).
    Pin {
        #[arg(long)]
        phone: String,
    },
}

#[derive(Subcommand)]
enum ChildCommand {
    /// Adds a child to a classroom and prints the child's id.
    Add {
        #[arg(long)]
        classroom: String,
        #[arg(long)]
        name: String,
    },
    /// Erases a child: deletes every photo in which the child is the only
    /// named child (its record, original requests, download links and sealed
    /// file), unnames the child on faces in other photos (those faces become
    /// unknown, so covered for everyone), and removes the child's consent
    /// history, guardian links and record. The audit log keeps the events with
    /// ids only.
    Erase {
        /// The child's id, as `child add` printed it.
        id: String,
    },
}

#[derive(Subcommand)]
enum GuardianCommand {
    /// Links the parent who logs in with this phone to a child.
    Link {
        #[arg(long)]
        phone: String,
        /// The child's id, as `child add` printed it.
        #[arg(long)]
        child: String,
    },
    /// Ends a parent's link to a child (a change of custody, say): they stop
    /// seeing the child's photos and consents at once, and their open original
    /// requests for those photos end.
    Unlink {
        #[arg(long)]
        phone: String,
        #[arg(long)]
        child: String,
    },
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// Registers a device and writes its provisioning file (a secret: copy it to
    /// the device and delete it here).
    Add {
        #[arg(long)]
        classroom: String,
        /// The broker address the device will connect to, as HOST:PORT.
        #[arg(long, value_name = "HOST:PORT")]
        broker: BrokerAddress,
        /// Where to write the provisioning file; its folder must exist.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The CA the device trusts for its broker (PEM), for a broker whose
        /// certificate another CA issued. By default the device pins the
        /// Guardian CA when the hub has one (`tls init-ca`).
        #[arg(long, value_name = "FILE")]
        broker_ca: Option<PathBuf>,
    },
    /// Lists the devices with their last heartbeat.
    List,
    /// Withdraws a device: the broker refuses it and the hub drops what it
    /// sends. Photos it delivered before stay.
    Revoke {
        /// The device's id, as `device add` or `device list` printed it.
        id: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Checks every entry's MAC and the log's end; exits non-zero if altered.
    Verify,
}

fn main() -> ExitCode {
    // A missing .env is normal, and so is a folder the hub's user may not look
    // into (root's home, under runuser); a broken one deserves a word.
    if let Err(error) = dotenvy::dotenv() {
        if !error.not_found() && !in_closed_folder(&error) {
            let from = std::env::current_dir().unwrap_or_default();
            eprintln!(
                "warning: ignoring the .env file (looked for from {} upwards): {error}",
                from.display()
            );
        }
    }
    init_logging();

    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Certificates need only the data directory's tls/ folder. Not opening
    // the hub lets root issue a certificate into /etc without leaving
    // root-owned database files behind for the service's user.
    if let Command::Tls { command } = cli.command {
        return run_tls(&cli.data_dir, chrono::Utc::now(), command);
    }

    let hub = Hub::open(&cli.data_dir, Arc::new(SystemClock))
        .with_context(|| format!("cannot open the data directory {}", cli.data_dir.display()))?
        .with_mosquitto_dir(cli.mosquitto_dir.clone());

    match cli.command {
        Command::Serve(args) => {
            let zone = args.timezone.zone;
            serve(hub.with_timezone(zone), args)
        }
        Command::Tls { .. } => unreachable!("handled before the hub is opened"),
        Command::Mosquitto { command } => run_mosquitto(&hub, command),
        Command::Classroom {
            command: ClassroomCommand::Add { name },
        } => {
            let id = hub.accounts.add_classroom(&name)?;
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Parent {
            command:
                ParentCommand::Add {
                    name,
                    phone,
                    classroom,
                },
        } => {
            let password = read_password(&phone)?;
            let id = hub
                .accounts
                .add_guardian(&name, &phone, &password, classroom.as_deref())?;
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin {
            command: AdminCommand::Add { name, phone },
        } => {
            let password = read_password(&phone)?;
            let id = hub.accounts.add_admin(&name, &phone, &password)?;
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Teacher {
            command:
                TeacherCommand::Add {
                    name,
                    phone,
                    classroom,
                },
        } => {
            add_teacher(&hub, &name, &phone, &classroom)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Teacher {
            command: TeacherCommand::Pin { phone },
        } => {
            let pin = read_secret("PIN", &phone).context("cannot read the PIN")?;
            let teacher_id = fleet::set_pin(&hub, &phone, pin.trim())?;
            eprintln!(
                "PIN set for teacher {teacher_id}; their classroom's devices receive it at \
                 their next heartbeat (within 30 s)"
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Device {
            command: DeviceCommand::List,
        } => {
            print_devices(&fleet::list(&hub)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Device {
            command: DeviceCommand::Revoke { id },
        } => {
            let device_id = Uuid::try_parse(id.trim()).map_err(|_| {
                anyhow::anyhow!("{id:?} is not a device id; `guardian-hub device list` shows them")
            })?;
            if fleet::revoke(&hub, device_id, Actor::Operator)? {
                match &hub.mosquitto_dir {
                    Some(dir) => eprintln!(
                        "device {device_id} revoked; its Mosquitto login is removed from {} \
                         (Mosquitto refuses it once reloaded)",
                        dir.display()
                    ),
                    None => eprintln!(
                        "device {device_id} revoked; the embedded broker refuses it from now on \
                         (with Mosquitto, give --mosquitto-dir or run `mosquitto sync`)"
                    ),
                }
            } else {
                eprintln!("device {device_id} was already revoked; nothing changed");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Child {
            command: ChildCommand::Add { classroom, name },
        } => {
            let id = children::add(&hub, &classroom, &name, Actor::Operator)?;
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Child {
            command: ChildCommand::Erase { id },
        } => {
            let child_id = parse_child_id(&id)?;
            let erased = children::erase(&hub, child_id, Actor::Operator)?;
            eprintln!(
                "child {child_id} erased: {} in which only they were named removed, \
                 {} in other photos now unknown, {} and {} removed",
                count(erased.photos_removed, "photo", "photos"),
                count(erased.faces_unnamed, "face", "faces"),
                count(erased.consents, "consent decision", "consent decisions"),
                count(erased.guardian_links, "guardian link", "guardian links"),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Guardian {
            command: GuardianCommand::Link { phone, child },
        } => {
            let child_id = parse_child_id(&child)?;
            let guardian_id = children::link_guardian(&hub, &phone, child_id, Actor::Operator)?;
            eprintln!("guardian {guardian_id} linked to child {child_id}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Guardian {
            command: GuardianCommand::Unlink { phone, child },
        } => {
            let child_id = parse_child_id(&child)?;
            let unlinked = children::unlink_guardian(&hub, &phone, child_id, Actor::Operator)?;
            match unlinked {
                Some(guardian_id) => {
                    eprintln!("guardian {guardian_id} unlinked from child {child_id}")
                }
                None => eprintln!("{phone} was not linked to child {child_id}; nothing changed"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Parent {
            command: ParentCommand::Unlock { phone },
        } => {
            hub.accounts.unlock_parent(&phone)?;
            eprintln!("parent {phone} unlocked");
            Ok(ExitCode::SUCCESS)
        }
        Command::Device {
            command:
                DeviceCommand::Add {
                    classroom,
                    broker,
                    out,
                    broker_ca,
                },
        } => {
            add_device(&hub, &classroom, &broker, &out, broker_ca.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => verify_audit(&hub),
        Command::Retention {
            command: RetentionCommand::Run { today, timezone },
        } => {
            let hub = hub.with_timezone(timezone.zone);
            let today = today.unwrap_or_else(|| retention::today(&hub));
            let purged = retention::purge(&hub, today, Actor::Operator)?;
            println!(
                "retention: {} purged, {} kept (today is {today} in {})",
                count(purged.photos.len(), "photo", "photos"),
                purged.kept,
                hub.timezone.name()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn parse_timezone(text: &str) -> Result<Tz, String> {
    retention::parse_timezone(text).map_err(|error| error.to_string())
}

fn parse_day(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("{text:?} is not a date; write it as YYYY-MM-DD, e.g. 2025-10-01"))
}

fn serve(hub: Hub, args: ServeArgs) -> anyhow::Result<ExitCode> {
    // Two hubs on one data directory would answer the same devices twice and
    // race on the same files; the lock lasts as long as this process.
    let _one_hub = lock_data_dir(&hub.data_dir)?;
    let now = hub.clock.now();
    let proxies: web::client_ip::TrustedProxies = args.trusted_proxies.join(",").parse()?;
    if !proxies.is_empty() {
        tracing::info!(proxies = ?proxies.networks(), "X-Forwarded-For is believed from these proxies only");
    }
    let web_identity = server_identity("web", &args.web_cert, &args.web_key, now)?;
    let mqtt_identity = server_identity("mqtt", &args.mqtt_cert, &args.mqtt_key, now)?;
    let external_ca = args
        .external_broker_ca
        .as_deref()
        .map(|path| {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the broker CA {}", path.display()))?;
            guardian_protocol::broker_tls::pinned_client_config(&pem)
                .with_context(|| format!("cannot use the broker CA {}", path.display()))
        })
        .transpose()?;
    if hub.mosquitto_dir.is_some() {
        hub.refresh_mosquitto()
            .context("cannot write the Mosquitto logins")?;
    }

    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let hub = Arc::new(hub);

        // The web ports are bound before the embedded broker starts, so that
        // a port given twice is refused by the broker's own check, by name.
        let listener = std::net::TcpListener::bind(args.http)
            .with_context(|| format!("cannot listen for HTTP on {}; pick another address with --http", args.http))?;
        let http = listener.local_addr()?;
        let redirect = match args.http_redirect.and_then(OrOff::on) {
            Some(address) => Some(
                tokio::net::TcpListener::bind(address)
                    .await
                    .with_context(|| format!("cannot listen on {address}; pick another address with --http-redirect"))?,
            ),
            None => None,
        };

        let (broker_link, mqtts) = broker_link(&hub, &args, mqtt_identity.as_ref(), external_ca)?;

        let sms: Arc<dyn sms::SmsSender> =
            Arc::new(sms::FileSmsOutbox::new(&hub.data_dir, hub.clock.clone())?);
        let state = web::AppState::new(hub.clone(), sms)
            .with_https(web_identity.is_some() || !proxies.is_empty())
            .with_trusted_proxies(proxies);

        let (ready, subscribed) = tokio::sync::oneshot::channel();
        let broker_address = broker_link.address.clone();
        let ingest = tokio::spawn(ingest::run(hub.clone(), broker_link, ready));
        tokio::time::timeout(std::time::Duration::from_secs(15), subscribed)
            .await
            .map_err(|_| {
                let hint = if args.external_broker.is_some() {
                    "; check that Mosquitto runs (systemctl status mosquitto) and listens there, \
                     that it lists the hub's login (mosquitto sync), and whether that port \
                     speaks TLS (--external-broker-ca)"
                } else {
                    ""
                };
                anyhow::anyhow!("the hub could not log in to its MQTT broker on {broker_address} within 15 s{hint}")
            })?
            .context("the MQTT ingest stopped before it was ready")?;

        let scheme = if web_identity.is_some() { "https" } else { "http" };
        // One line that scripts and tests read: where everything listens.
        match mqtts {
            Some(mqtts) => println!("{scheme}={http} mqtt={broker_address} mqtts={mqtts}"),
            None => println!("{scheme}={http} mqtt={broker_address}"),
        }
        std::io::stdout().flush()?;
        tracing::info!(%http, %scheme, mqtt = %broker_address, data_dir = %hub.data_dir.display(), "guardian hub serving");

        let web_tls = web_identity
            .as_ref()
            .map(|identity| identity.server_config(&[b"h2", b"http/1.1"]))
            .transpose()?;
        guardian_hub::service::notify_ready();
        let watchdog = tokio::spawn(guardian_hub::service::watchdog(hub.clone()));
        let retention = tokio::spawn(retention::purge_periodically(hub.clone()));
        let mut served_certificates: Vec<_> = [&web_identity, &mqtt_identity]
            .into_iter()
            .flatten()
            .map(|identity| (identity.cert_path.clone(), identity.summary.clone()))
            .collect();
        served_certificates.extend(mosquitto_certificate(&hub));
        let renewals = tokio::spawn(tls::remind_renewals(hub.clock.clone(), served_certificates));
        if let Some(listener) = redirect {
            tracing::info!(address = %listener.local_addr()?, "plain HTTP redirects to HTTPS");
            tokio::spawn(async move {
                if let Err(error) = axum::serve(listener, web::redirect::router(http.port())).await {
                    tracing::error!(%error, "the HTTP redirect stopped");
                }
            });
        }
        let web = async {
            match web_tls {
                Some(config) => web::serve_tls(listener, state, config).await,
                None => {
                    listener.set_nonblocking(true)?;
                    web::serve(tokio::net::TcpListener::from_std(listener)?, state).await
                }
            }
        };
        tokio::select! {
            result = web => result.context("the web server stopped")?,
            () = shutdown_signal() => tracing::info!("shutting down"),
        }
        guardian_hub::service::notify_stopping();
        watchdog.abort();
        ingest.abort();
        retention.abort();
        renewals.abort();
        Ok(ExitCode::SUCCESS)
    })
}

fn lock_data_dir(data_dir: &Path) -> anyhow::Result<std::fs::File> {
    let path = data_dir.join("serve.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another `guardian-hub serve` already runs on {}; stop it first",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(error)) => {
            Err(error).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// Reads and checks a certificate and key given on the command line, and
/// logs what it names and until when.
fn server_identity(
    what: &str,
    cert: &Option<PathBuf>,
    key: &Option<PathBuf>,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Option<tls::ServerIdentity>> {
    let (Some(cert), Some(key)) = (cert, key) else {
        return Ok(None);
    };
    let identity = tls::load_server_identity(cert, key, now)?;
    tracing::info!(
        certificate = %identity.cert_path.display(),
        names = ?identity.summary.names,
        not_after = %identity.summary.not_after,
        "{what} TLS certificate loaded"
    );
    Ok(Some(identity))
}

/// The certificate Mosquitto serves to the devices, when the hub keeps its
/// files: the devices depend on it as much as on the hub's own, so it is
/// logged and reminded the same way.
fn mosquitto_certificate(hub: &Hub) -> Option<(PathBuf, tls::CertificateSummary)> {
    let cert = mosquitto::served_certificate(hub.mosquitto_dir.as_deref()?)?;
    match tls::check_certificate(&cert, hub.clock.now()) {
        Ok(summary) => {
            tracing::info!(
                certificate = %cert.display(),
                names = ?summary.names,
                not_after = %summary.not_after,
                "Mosquitto's TLS certificate"
            );
            Some((cert, summary))
        }
        Err(error) => {
            tracing::error!(%error, "Mosquitto's TLS certificate is not usable; devices cannot connect");
            None
        }
    }
}

/// How the hub reaches its broker: an external one as given, or the embedded
/// one, started here, over its plain loopback listener. Also returns where
/// the embedded broker's TLS listener is, if it has one.
fn broker_link(
    hub: &Arc<Hub>,
    args: &ServeArgs,
    mqtt_identity: Option<&tls::ServerIdentity>,
    external_ca: Option<Arc<rustls::ClientConfig>>,
) -> anyhow::Result<(ingest::BrokerLink, Option<SocketAddr>)> {
    if let Some(address) = &args.external_broker {
        if external_ca.is_none() && !address.is_loopback() {
            tracing::warn!(broker = %address, "the hub speaks plain MQTT to a broker on the network: give --external-broker-ca");
        }
        let link = ingest::BrokerLink {
            address: address.clone(),
            tls: external_ca,
        };
        return Ok((link, None));
    }

    if !args.mqtt.ip().is_loopback() {
        tracing::warn!(mqtt = %args.mqtt, "the embedded broker speaks plain MQTT on a network address: photos are sealed, but logins cross the network in clear text; use --mqtts for devices");
    }
    let tls = args.mqtts.zip(mqtt_identity);
    let listening = broker::start_embedded(
        args.mqtt,
        tls,
        hub.accounts.clone(),
        hub.keys.mqtt_password(),
    )?;
    let host = if listening.plain.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        listening.plain.ip().to_string()
    };
    let link = ingest::BrokerLink {
        address: BrokerAddress {
            host,
            port: listening.plain.port(),
        },
        tls: None,
    };
    Ok((link, listening.tls))
}

fn run_tls(
    data_dir: &Path,
    now: chrono::DateTime<chrono::Utc>,
    command: TlsCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        TlsCommand::InitCa { school } => {
            let path = tls::init_ca(data_dir, school.trim(), now)?;
            eprintln!(
                "Guardian CA created: {} (its key stays beside it, mode 0600); devices \
                 registered from now on pin it",
                path.display()
            );
        }
        TlsCommand::Issue {
            names,
            days,
            cert,
            key,
        } => {
            let issued = tls::issue(data_dir, &names, days, now, &cert, &key)?;
            eprintln!(
                "certificate for {} written to {} (key {}), valid until {}",
                issued.names.join(", "),
                cert.display(),
                key.display(),
                issued.not_after.format("%Y-%m-%d")
            );
        }
        TlsCommand::ShowCa => match tls::ca_certificate(data_dir)? {
            Some(pem) => print!("{pem}"),
            None => bail!("there is no Guardian CA yet; create it with `guardian-hub tls init-ca`"),
        },
    }
    Ok(ExitCode::SUCCESS)
}

fn run_mosquitto(hub: &Hub, command: MosquittoCommand) -> anyhow::Result<ExitCode> {
    let Some(dir) = hub.mosquitto_dir.as_deref() else {
        bail!(
            "say where Mosquitto's files go with --mosquitto-dir DIR (or GUARDIAN_MOSQUITTO_DIR)"
        );
    };
    // Mosquitto runs from / as a service: every path in its configuration
    // must stand on its own.
    let absolute =
        |path: &Path| std::path::absolute(path).context("cannot read the current folder");
    let dir = absolute(dir)?;

    // Everything is checked before any file is replaced, so that a refused
    // setup leaves Mosquitto's running configuration as it was.
    let listeners = match command {
        MosquittoCommand::Setup {
            listen,
            tls_listen,
            cert,
            key,
        } => {
            let tls = match (tls_listen, cert, key) {
                (Some(address), Some(cert), Some(key)) => {
                    // The key is Mosquitto's to read, maybe not the hub's user's.
                    tls::check_pair_for_another_server(&cert, &key, hub.clock.now())?;
                    Some(mosquitto::TlsListener {
                        address,
                        cert: absolute(&cert)?,
                        key: absolute(&key)?,
                    })
                }
                _ => None,
            };
            Some(mosquitto::Listeners {
                plain: Some(listen),
                tls,
            })
        }
        MosquittoCommand::Sync => None,
    };

    let written = mosquitto::write_logins(hub, &dir)?;
    if let Some(listeners) = listeners {
        let conf = mosquitto::write_config(&dir, &listeners)?;
        eprintln!(
            "wrote {}; link it into Mosquitto's configuration (ln -s {} \
             /etc/mosquitto/conf.d/guardian.conf) and restart Mosquitto",
            conf.display(),
            conf.display()
        );
    }
    eprintln!(
        "Mosquitto logins written to {}: the hub and {}",
        dir.display(),
        count(written.devices, "device", "devices")
    );
    if !written.without_login.is_empty() {
        eprintln!(
            "warning: {} registered before this version cannot log in to Mosquitto; \
             register them again with `device add`",
            count(written.without_login.len(), "device", "devices")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether dotenvy failed only because a folder on its way up could not be
/// searched: a .env in the working folder that exists but cannot be read
/// still deserves the warning.
fn in_closed_folder(error: &dotenvy::Error) -> bool {
    matches!(error, dotenvy::Error::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied)
        && std::fs::symlink_metadata(".env").is_err()
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
}

fn add_device(
    hub: &Hub,
    classroom: &str,
    broker: &BrokerAddress,
    out: &Path,
    broker_ca: Option<&Path>,
) -> anyhow::Result<()> {
    // The CA the device will pin; without one the device speaks plain MQTT,
    // which is only safe to a broker on its own machine.
    let broker_ca = match broker_ca {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the broker CA {}", path.display()))?;
            guardian_protocol::broker_tls::parse_ca(&pem)
                .with_context(|| format!("cannot use the broker CA {}", path.display()))?;
            tls::check_ca(path, &pem)?;
            Some(pem)
        }
        None => tls::ca_certificate(&hub.data_dir)?,
    };
    // Whether the broker's certificate names `broker` is not checked here:
    // `device add` does not know which certificate the broker serves. The
    // device's first connection names the mismatch.
    if broker_ca.is_none() && !broker.is_loopback() {
        bail!(
            "{broker} is on the network, and a device must not speak plain MQTT there: create \
             the Guardian CA (`guardian-hub tls init-ca`) and serve MQTT over TLS, or give the \
             broker's CA with --broker-ca"
        );
    }
    if out.exists() {
        bail!(
            "{} already exists; choose another --out or remove it first",
            out.display()
        );
    }
    // The file is set aside before the device is registered: a folder that is
    // missing or read-only must not leave a registered device without a file.
    let file = ReservedFile::create(out).map_err(|error| {
        anyhow::anyhow!(
            "cannot write the provisioning file {}: {error}; check that its folder exists \
             and is writable, or choose another --out",
            out.display()
        )
    })?;

    let mut provisioning =
        hub.accounts
            .add_device(classroom, &broker.to_string(), hub.keys.public())?;
    if let Some(ca) = broker_ca {
        provisioning = provisioning.with_broker_ca(ca);
    }
    file.write(provisioning.to_json().as_bytes())
        .map_err(|error| {
            anyhow::anyhow!(
                "device {} is registered, but its provisioning file {} could not be written: \
                 {error}; free some space and run `device add` again",
                provisioning.device_id,
                out.display()
            )
        })?;
    eprintln!(
        "device {} registered in {classroom}; provisioning file written to {} (keep it secret); \
         it speaks {} to {broker}",
        provisioning.device_id,
        out.display(),
        if provisioning.broker_ca.is_some() {
            "MQTT over TLS"
        } else {
            "plain MQTT"
        }
    );
    // Logged when it fails; `mosquitto sync` repeats it.
    let _ = hub.refresh_mosquitto();
    println!("{}", provisioning.device_id);
    Ok(())
}

/// One line per device: id, classroom, state, last contact, outbox, clock.
fn print_devices(devices: &[fleet::DeviceStatus]) {
    if devices.is_empty() {
        eprintln!("no devices yet: register one with `guardian-hub device add`");
        return;
    }
    for device in devices {
        let state = match device.revoked_at {
            Some(at) => format!("revoked {}", at.format("%Y-%m-%d %H:%M")),
            None => "active".to_owned(),
        };
        let seen = device.last_seen_at.map_or("never seen".to_owned(), |at| {
            format!("seen {}", at.format("%Y-%m-%d %H:%M:%S"))
        });
        let mut line = format!("{}\t{}\t{state}\t{seen}", device.id, device.classroom);
        if let Some(beat) = &device.heartbeat {
            line.push_str(&format!(
                "\tv{}\toutbox {}\tquarantine {}\tclock {}",
                beat.version,
                beat.outbox_len,
                beat.quarantined,
                if beat.clock_synced {
                    "synced"
                } else {
                    "unsynced"
                }
            ));
            if let Some(skew) = device.clock_skew_ms {
                line.push_str(&format!(" (skew {:+.1} s)", skew as f64 / 1000.0));
            }
            if let Some(error) = &beat.last_error {
                line.push_str(&format!("\terror: {error}"));
            }
        }
        println!("{line}");
    }
}

fn parse_child_id(text: &str) -> anyhow::Result<Uuid> {
    Uuid::try_parse(text.trim()).map_err(|_| {
        anyhow::anyhow!("{text:?} is not a child id; `guardian-hub child add` prints them")
    })
}

/// Adds a teacher, or gives an existing teacher one more classroom. The
/// password is read only for a new teacher: an existing one keeps theirs.
fn add_teacher(hub: &Hub, name: &str, phone: &str, classroom: &str) -> anyhow::Result<()> {
    let existing = hub.accounts.account_by_phone(phone)?;
    let id = match existing {
        Some(account) if account.role == Role::Teacher => {
            let id = hub.accounts.assign_teacher(phone, classroom)?;
            eprintln!("teacher {id} now teaches {classroom} too; the password is unchanged");
            id
        }
        _ => {
            let password = read_password(phone)?;
            hub.accounts
                .add_teacher(name, phone, &password, classroom)?
        }
    };
    println!("{id}");
    Ok(())
}

fn verify_audit(hub: &Hub) -> anyhow::Result<ExitCode> {
    let verdict = hub.audit.verify(&hub.db.lock())?;
    match verdict {
        Verdict::Intact { entries, head } => {
            println!("audit log intact: {}", count(entries, "entry", "entries"));
            match head {
                Some(head) => println!("head: seq={} mac={}", head.seq, head.mac),
                None => println!("head: (empty log)"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Verdict::Broken { reason } => {
            println!("audit log BROKEN: {reason}");
            Ok(ExitCode::from(2))
        }
    }
}

/// Reads the password for the account of `phone`: one line of stdin, without its line
/// ending. On a terminal it asks for it on stderr and reads it without echo; from a pipe
/// it reads only the first line, so what follows it is never taken as part of the
/// password.
fn read_password(phone: &str) -> anyhow::Result<Zeroizing<String>> {
    read_secret("Password", phone)
}

/// Reads one secret line (a password or a PIN) as [`read_password`] does;
/// `kind` names it in the prompt.
fn read_secret(kind: &str, phone: &str) -> anyhow::Result<Zeroizing<String>> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        eprint!("{kind} for {phone}: ");
        std::io::stderr().flush().ok();
        Zeroizing::new(
            rpassword::read_password().context("cannot read the password from the terminal")?,
        )
    } else {
        let mut line = Zeroizing::new(String::new());
        let read = stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        if read == 0 {
            bail!(
                "no {} on stdin: give it as one line, for example \
                 printf '%s\\n' 'a long password' | guardian-hub …",
                kind.to_lowercase()
            );
        }
        if line.ends_with('\n') {
            line.pop();
            if line.ends_with('\r') {
                line.pop();
            }
        }
        line
    };

    // Spaces and tabs alone are a slip (an empty line, a stray key), not a choice.
    if password.trim().is_empty() {
        bail!(
            "the {} for {phone} is empty or only spaces",
            kind.to_lowercase()
        );
    }
    Ok(password)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rumqttd=warn,rumqttc=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_default_can_be_switched_off() {
        for off in ["off", "", " "] {
            let parsed: OrOff<SocketAddr> = off.parse().unwrap();
            assert!(parsed.on().is_none(), "{off:?}");
        }
        let on: OrOff<SocketAddr> = "0.0.0.0:80".parse().unwrap();
        assert_eq!(on.on(), Some("0.0.0.0:80".parse().unwrap()));
        assert!("of".parse::<OrOff<SocketAddr>>().is_err());
    }
}
