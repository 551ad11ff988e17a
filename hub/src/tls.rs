//! The school's own certificate authority (the Guardian CA), and the
//! certificates the hub serves MQTT and HTTPS with.
//!
//! The Guardian CA lives in the hub's data directory (`tls/ca.pem`, and its
//! key `tls/ca-key.pem`, mode 0600). Devices pin it through their
//! provisioning file, so it only has to be trusted by Guardian itself: a
//! parent's phone will not trust it, which is why the parents' page is served
//! with the school's own certificate unless the school installs the Guardian
//! CA on its machines.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;

use crate::keys::ReservedFile;

/// The Guardian CA's certificate, under the data directory.
pub const CA_CERT: &str = "tls/ca.pem";
/// The Guardian CA's private key, under the data directory.
pub const CA_KEY: &str = "tls/ca-key.pem";

/// How long the Guardian CA is valid: longer than any Pi will stay in service.
pub const CA_DAYS: i64 = 20 * 365;

/// How long a certificate the hub issues is valid by default. Browsers refuse
/// server certificates longer than 398 days, so one default serves both uses.
pub const SERVER_DAYS: i64 = 397;

/// The longest a certificate the hub issues may be valid: the old public
/// limit, and far inside the CA's own twenty years.
pub const MAX_SERVER_DAYS: i64 = 825;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot {action} {}: {error}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },

    #[error(
        "the Guardian CA already exists in {}; it is kept, since every device pins it",
        path.display()
    )]
    CaExists { path: PathBuf },

    #[error(
        "there is no Guardian CA in {}; create it first with `guardian-hub tls init-ca`",
        path.display()
    )]
    NoCa { path: PathBuf },

    #[error("{name:?} cannot name this server in a certificate: {reason}")]
    BadName { name: String, reason: &'static str },

    #[error("the school's name must not be empty")]
    NoSchool,

    #[error("--cert and --key are the same file ({}); the key would be lost", path.display())]
    SamePath { path: PathBuf },

    #[error(
        "{} is inside the hub's data directory, whose keys and database it could replace; \
         write the certificate and key elsewhere (e.g. /etc/guardian/tls/)",
        path.display()
    )]
    InsideDataDir { path: PathBuf },

    #[error(
        "the key {} does not belong to the Guardian CA {}; restore both from the same backup",
        key.display(),
        cert.display()
    )]
    CaKeyMismatch { cert: PathBuf, key: PathBuf },

    #[error("a certificate needs at least one --name (a host name or an IP address)")]
    NoNames,

    #[error("--days must be between 1 and {max}, not {days}")]
    BadDays { days: i64, max: i64 },

    #[error("cannot make the certificate: {0}")]
    Make(#[from] rcgen::Error),

    #[error("{} holds no PEM certificate", path.display())]
    NoCertificate { path: PathBuf },

    #[error("{} holds no PEM private key", path.display())]
    NoKey { path: PathBuf },

    #[error("{} is not a certificate Guardian can read: {detail}", path.display())]
    BadCertificate { path: PathBuf, detail: String },

    #[error(
        "{} is a server's certificate, not a CA's; give the CA that issued it \
         (for the Guardian CA, `guardian-hub tls show-ca` prints it)",
        path.display()
    )]
    NotCa { path: PathBuf },

    #[error(
        "the certificate {} expired on {not_after}; issue a new one (`guardian-hub tls issue`)",
        path.display()
    )]
    Expired {
        path: PathBuf,
        not_after: DateTime<Utc>,
    },

    #[error(
        "the certificate {} is not valid before {not_before}; check this server's clock",
        path.display()
    )]
    NotYetValid {
        path: PathBuf,
        not_before: DateTime<Utc>,
    },

    #[error("the key {} does not belong to the certificate {}: {detail}", key.display(), cert.display())]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        detail: String,
    },
}

/// Certificates are public: readable by the broker's own user too.
const CERTIFICATE_MODE: u32 = 0o644;

/// From how many days before its end a served certificate is reported as
/// due for renewal.
pub const RENEW_WITHIN_DAYS: i64 = 30;

/// What a certificate says about itself, for the log and the operator.
#[derive(Debug, Clone)]
pub struct CertificateSummary {
    /// Host names and IP addresses the certificate is valid for.
    pub names: Vec<String>,
    pub not_after: DateTime<Utc>,
}

/// A certificate chain and its key, checked and ready to serve.
#[derive(Debug)]
pub struct ServerIdentity {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub summary: CertificateSummary,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// Creates the Guardian CA in `data_dir`. Refuses to replace one: devices
/// provisioned with the old one would stop trusting the hub.
pub fn init_ca(data_dir: &Path, school: &str, now: DateTime<Utc>) -> Result<PathBuf, TlsError> {
    if school.trim().is_empty() {
        return Err(TlsError::NoSchool);
    }
    let cert_path = data_dir.join(CA_CERT);
    if cert_path.exists() {
        return Err(TlsError::CaExists { path: cert_path });
    }
    // The data directory may not exist yet at install time; whatever is
    // created here is the hub's alone.
    let folder = data_dir.join("tls");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&folder)
        .map_err(|error| TlsError::Io {
            action: "create",
            path: folder.clone(),
            error,
        })?;

    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("Guardian CA for {school}"));
    params
        .distinguished_name
        .push(DnType::OrganizationName, school);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut params, now, CA_DAYS);

    let key = KeyPair::generate()?;
    let certificate = params.self_signed(&key)?;
    write_private(&data_dir.join(CA_KEY), key.serialize_pem().as_bytes())?;
    write_public(&cert_path, certificate.pem().as_bytes())?;
    Ok(cert_path)
}

/// The Guardian CA's certificate (PEM), if the hub has one.
pub fn ca_certificate(data_dir: &Path) -> Result<Option<String>, TlsError> {
    let path = data_dir.join(CA_CERT);
    match fs::read_to_string(&path) {
        Ok(pem) => Ok(Some(pem)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(TlsError::Io {
            action: "read",
            path,
            error,
        }),
    }
}

/// Issues a server certificate for `names` (host names and IP addresses)
/// signed by the Guardian CA, and writes it and its new key.
pub fn issue(
    data_dir: &Path,
    names: &[String],
    days: i64,
    now: DateTime<Utc>,
    cert_out: &Path,
    key_out: &Path,
) -> Result<CertificateSummary, TlsError> {
    let names: Vec<String> = names.iter().map(|name| name.trim().to_owned()).collect();
    if names.is_empty() {
        return Err(TlsError::NoNames);
    }
    if !(1..=MAX_SERVER_DAYS).contains(&days) {
        return Err(TlsError::BadDays {
            days,
            max: MAX_SERVER_DAYS,
        });
    }
    if same_file(cert_out, key_out) {
        return Err(TlsError::SamePath {
            path: cert_out.to_path_buf(),
        });
    }
    for out in [cert_out, key_out] {
        if inside(data_dir, out) {
            return Err(TlsError::InsideDataDir {
                path: out.to_path_buf(),
            });
        }
    }
    let subject_names = names
        .iter()
        .map(|name| subject_name(name))
        .collect::<Result<Vec<_>, _>>()?;
    let issuer = load_issuer(data_dir)?;

    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.subject_alt_names = subject_names;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, names[0].as_str());
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, now, days);

    let key = KeyPair::generate()?;
    let certificate = params.signed_by(&key, &issuer)?;

    place_pair(
        key_out,
        key.serialize_pem().as_bytes(),
        cert_out,
        certificate.pem().as_bytes(),
    )?;
    Ok(CertificateSummary {
        names,
        not_after: now + chrono::Duration::days(days),
    })
}

/// Replaces a key and its certificate together. A new key beside the old
/// certificate would stop the hub at its next start, so both files are
/// written in full before either is put in place, and the old key goes back
/// if the certificate cannot follow it.
fn place_pair(
    key_out: &Path,
    key_pem: &[u8],
    cert_out: &Path,
    cert_pem: &[u8],
) -> Result<(), TlsError> {
    let key_file = reserve(key_out)?;
    let cert_file = reserve(cert_out)?;
    let key_file = key_file.fill(key_pem).map_err(write_error(key_out))?;
    let cert_file = cert_file
        .with_mode(CERTIFICATE_MODE)
        .and_then(|file| file.fill(cert_pem))
        .map_err(write_error(cert_out))?;
    let old_key = match fs::read(key_out) {
        Ok(old) => Some(zeroize::Zeroizing::new(old)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => {
            return Err(TlsError::Io {
                action: "read",
                path: key_out.to_path_buf(),
                error,
            })
        }
    };

    key_file.place().map_err(write_error(key_out))?;
    if let Err(error) = cert_file.place() {
        let restored = match &old_key {
            Some(old) => write_private(key_out, old),
            None => fs::remove_file(key_out).map_err(write_error(key_out)),
        };
        if let Err(restore_error) = restored {
            tracing::error!(
                key = %key_out.display(),
                error = %restore_error,
                "cannot put the old key back; issue the certificate again"
            );
        }
        return Err(write_error(cert_out)(error));
    }
    Ok(())
}

/// Whether `path` would be written inside `dir`. A path whose folder does
/// not exist cannot be written at all.
fn inside(dir: &Path, path: &Path) -> bool {
    match (dir.canonicalize(), resolved(path)) {
        (Ok(dir), Some(path)) => path.starts_with(dir),
        _ => false,
    }
}

/// Whether two paths name the same file, also through `..` or a link.
fn same_file(a: &Path, b: &Path) -> bool {
    a == b || matches!((resolved(a), resolved(b)), (Some(a), Some(b)) if a == b)
}

/// Where writing `path` lands: its folder with `..` and links resolved, and
/// its own name. `None` when the folder does not exist.
fn resolved(path: &Path) -> Option<PathBuf> {
    let folder = path
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name()?;
    Some(folder.canonicalize().ok()?.join(name))
}

/// Checks that `pem` (from `path`) starts with a CA certificate: a server's
/// own certificate pinned as a CA would only fail later, on the device.
pub fn check_ca(path: &Path, pem: &str) -> Result<(), TlsError> {
    let bad = |detail: String| TlsError::BadCertificate {
        path: path.to_path_buf(),
        detail,
    };
    let first = CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .ok_or_else(|| TlsError::NoCertificate {
            path: path.to_path_buf(),
        })?
        .map_err(|error| bad(error.to_string()))?;
    let (_, parsed) =
        x509_parser::parse_x509_certificate(&first).map_err(|error| bad(error.to_string()))?;
    if !parsed.is_ca() {
        return Err(TlsError::NotCa {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Reads and checks a certificate alone: it parses and is valid `now`.
pub fn check_certificate(
    cert_path: &Path,
    now: DateTime<Utc>,
) -> Result<CertificateSummary, TlsError> {
    let cert_pem = read(cert_path)?;
    let leaf = CertificateDer::pem_slice_iter(&cert_pem)
        .next()
        .ok_or_else(|| TlsError::NoCertificate {
            path: cert_path.to_path_buf(),
        })?
        .map_err(|error| TlsError::BadCertificate {
            path: cert_path.to_path_buf(),
            detail: error.to_string(),
        })?;
    summarise(cert_path, &leaf, now)
}

/// Checks a certificate that another program (Mosquitto) will serve, and
/// its key: the key must exist, and where this user may read it, it must
/// belong to the certificate. A key kept from the hub's user is taken on trust.
pub fn check_pair_for_another_server(
    cert_path: &Path,
    key_path: &Path,
    now: DateTime<Utc>,
) -> Result<CertificateSummary, TlsError> {
    let summary = check_certificate(cert_path, now)?;
    match fs::File::open(key_path) {
        Ok(_) => Ok(load_server_identity(cert_path, key_path, now)?.summary),
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => Ok(summary),
        Err(error) => Err(TlsError::Io {
            action: "read",
            path: key_path.to_path_buf(),
            error,
        }),
    }
}

/// Reads and checks a certificate chain and its key: both parse, the key
/// belongs to the certificate, and the certificate is valid `now`.
pub fn load_server_identity(
    cert_path: &Path,
    key_path: &Path,
    now: DateTime<Utc>,
) -> Result<ServerIdentity, TlsError> {
    let cert_pem = read(cert_path)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::BadCertificate {
            path: cert_path.to_path_buf(),
            detail: error.to_string(),
        })?;
    let leaf = chain.first().ok_or_else(|| TlsError::NoCertificate {
        path: cert_path.to_path_buf(),
    })?;
    let summary = summarise(cert_path, leaf, now)?;

    let key_pem = zeroize::Zeroizing::new(read(key_path)?);
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey {
        path: key_path.to_path_buf(),
    })?;

    let identity = ServerIdentity {
        cert_path: cert_path.to_path_buf(),
        key_path: key_path.to_path_buf(),
        summary,
        chain,
        key,
    };
    // Building the configuration checks that the key matches the certificate.
    identity.server_config(&[])?;
    Ok(identity)
}

impl CertificateSummary {
    /// The whole days left before the certificate ends, once that is within
    /// [`RENEW_WITHIN_DAYS`]; `None` while renewal can wait.
    pub fn days_left_to_renew(&self, now: DateTime<Utc>) -> Option<i64> {
        // Rounded up: a certificate issued for 10 days has 10 left, not 9.
        const DAY: u64 = 24 * 60 * 60;
        let seconds = (self.not_after - now).num_seconds().max(0).unsigned_abs();
        let left = i64::try_from(seconds.div_ceil(DAY)).unwrap_or(i64::MAX);
        (left <= RENEW_WITHIN_DAYS).then_some(left)
    }
}

/// Warns in the log once a day (and at once) about every served certificate
/// that is due for renewal: the hub loads certificates at start, so an
/// expired one would keep being served until a restart refuses it.
pub async fn remind_renewals(
    clock: Arc<dyn crate::clock::Clock>,
    certificates: Vec<(PathBuf, CertificateSummary)>,
) {
    let mut days = tokio::time::interval(std::time::Duration::from_secs(24 * 60 * 60));
    loop {
        days.tick().await;
        let now = clock.now();
        for (path, summary) in &certificates {
            if let Some(days_left) = summary.days_left_to_renew(now) {
                tracing::warn!(
                    certificate = %path.display(),
                    days_left,
                    not_after = %summary.not_after,
                    "certificate due for renewal: issue a new one and restart the hub"
                );
            }
        }
    }
}

impl ServerIdentity {
    /// A rustls server configuration for this identity, offering `alpn`.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mismatch = |detail: String| TlsError::Mismatch {
            cert: self.cert_path.clone(),
            key: self.key_path.clone(),
            detail,
        };
        let mut config = rustls::ServerConfig::builder_with_provider(
            guardian_protocol::broker_tls::crypto_provider(),
        )
        .with_safe_default_protocol_versions()
        .map_err(|error| mismatch(error.to_string()))?
        .with_no_client_auth()
        .with_single_cert(self.chain.clone(), self.key.clone_key())
        .map_err(|error| mismatch(error.to_string()))?;
        config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

fn load_issuer(data_dir: &Path) -> Result<Issuer<'static, KeyPair>, TlsError> {
    let cert_path = data_dir.join(CA_CERT);
    let cert_pem = ca_certificate(data_dir)?.ok_or_else(|| TlsError::NoCa {
        path: cert_path.clone(),
    })?;
    let key_path = data_dir.join(CA_KEY);
    let key_pem = zeroize::Zeroizing::new(String::from_utf8_lossy(&read(&key_path)?).into_owned());
    let key = KeyPair::from_pem(&key_pem).map_err(|_| TlsError::NoKey {
        path: key_path.clone(),
    })?;

    // rcgen would sign with any key; a certificate signed by a key that is
    // not the CA's would be refused by every device, so check the pair here.
    let bad_cert = |detail: String| TlsError::BadCertificate {
        path: cert_path.clone(),
        detail,
    };
    let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|error| bad_cert(error.to_string()))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert_der)
        .map_err(|error| bad_cert(error.to_string()))?;
    if parsed.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
        return Err(TlsError::CaKeyMismatch {
            cert: cert_path,
            key: key_path,
        });
    }

    Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|error| bad_cert(error.to_string()))
}

fn subject_name(name: &str) -> Result<SanType, TlsError> {
    let bad = |reason| TlsError::BadName {
        name: name.to_owned(),
        reason,
    };
    if let Ok(ip) = name.parse::<std::net::IpAddr>() {
        // ::ffff:192.0.2.10 is how an IPv4 address appears to IPv6 software;
        // an IPv4 connection checks the certificate for 192.0.2.10.
        let ip = ip.to_canonical();
        if ip.is_unspecified() {
            return Err(bad(
                "0.0.0.0 and :: are where a server listens, not an address a device connects to",
            ));
        }
        return Ok(SanType::IpAddress(ip));
    }
    if name.parse::<std::net::SocketAddr>().is_ok()
        || name
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.contains(':') && port.parse::<u16>().is_ok())
    {
        return Err(bad("give the name or address without its port"));
    }
    if name.starts_with('[') && name.ends_with(']') {
        return Err(bad("write an IPv6 address without its brackets"));
    }
    if !name.is_ascii() {
        return Err(bad(
            "write an international name in its xn-- (punycode) form",
        ));
    }
    // A name whose last label is all digits would be an IP address, and is
    // no host name: 999.1.1.1 or 1.2.3 are typing slips.
    if name
        .rsplit('.')
        .next()
        .is_some_and(|label| !label.is_empty() && label.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(bad("an IP address has four numbers from 0 to 255"));
    }
    let neither = "it is neither a host name nor an IP address";
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !valid {
        return Err(bad(neither));
    }
    Ok(SanType::DnsName(
        name.to_ascii_lowercase()
            .try_into()
            .map_err(|_| bad(neither))?,
    ))
}

fn set_validity(params: &mut CertificateParams, now: DateTime<Utc>, days: i64) {
    // An hour back, so a device whose clock is a little behind still accepts it.
    let start = now - chrono::Duration::hours(1);
    let end = now + chrono::Duration::days(days);
    params.not_before = to_offset(start);
    params.not_after = to_offset(end);
}

fn to_offset(at: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(at.timestamp())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn summarise(
    path: &Path,
    der: &CertificateDer<'_>,
    now: DateTime<Utc>,
) -> Result<CertificateSummary, TlsError> {
    let bad = |detail: String| TlsError::BadCertificate {
        path: path.to_path_buf(),
        detail,
    };
    let (_, parsed) =
        x509_parser::parse_x509_certificate(der).map_err(|error| bad(error.to_string()))?;

    let validity = parsed.validity();
    let not_before = DateTime::from_timestamp(validity.not_before.timestamp(), 0)
        .ok_or_else(|| bad("its start date is out of range".to_owned()))?;
    let not_after = DateTime::from_timestamp(validity.not_after.timestamp(), 0)
        .ok_or_else(|| bad("its end date is out of range".to_owned()))?;
    if now > not_after {
        return Err(TlsError::Expired {
            path: path.to_path_buf(),
            not_after,
        });
    }
    if now < not_before {
        return Err(TlsError::NotYetValid {
            path: path.to_path_buf(),
            not_before,
        });
    }

    let mut names = Vec::new();
    if let Ok(Some(alternatives)) = parsed.subject_alternative_name() {
        for name in &alternatives.value.general_names {
            match name {
                GeneralName::DNSName(dns) => names.push((*dns).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        names.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Ok(CertificateSummary { names, not_after })
}

fn ip_from_bytes(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|error| TlsError::Io {
        action: "read",
        path: path.to_path_buf(),
        error,
    })
}

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |error| TlsError::Io {
        action: "write",
        path: path.to_path_buf(),
        error,
    }
}

/// A private file (0600) set aside beside `path`, replacing it only once written.
fn reserve(path: &Path) -> Result<ReservedFile, TlsError> {
    ReservedFile::create(path).map_err(write_error(path))
}

fn write_private(path: &Path, contents: &[u8]) -> Result<(), TlsError> {
    reserve(path)?.write(contents).map_err(write_error(path))
}

fn write_public(path: &Path, contents: &[u8]) -> Result<(), TlsError> {
    reserve(path)?
        .with_mode(CERTIFICATE_MODE)
        .and_then(|file| file.write(contents))
        .map_err(write_error(path))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// The hub's data directory; certificates are written beside it.
    fn hub_dir(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("hub")
    }

    fn now() -> DateTime<Utc> {
        "2026-09-01T08:00:00Z".parse().unwrap()
    }

    #[test]
    fn an_issued_certificate_names_its_hosts_and_loads_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        init_ca(&hub_dir(&dir), "CEIP Test", now()).unwrap();
        let names = vec!["hub.local".to_owned(), "192.0.2.10".to_owned()];
        let cert = dir.path().join("mqtt.pem");
        let key = dir.path().join("mqtt-key.pem");
        issue(&hub_dir(&dir), &names, 30, now(), &cert, &key).unwrap();

        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&key), 0o600);
        assert_eq!(mode(&hub_dir(&dir).join(CA_KEY)), 0o600);
        assert_eq!(mode(&cert), 0o644);

        let identity = load_server_identity(&cert, &key, now()).unwrap();
        assert_eq!(identity.summary.names, names);
        assert_eq!(check_certificate(&cert, now()).unwrap().names, names);

        // Only the CA's own certificate can be pinned as a CA.
        let ca_pem = fs::read_to_string(hub_dir(&dir).join(CA_CERT)).unwrap();
        check_ca(&hub_dir(&dir).join(CA_CERT), &ca_pem).unwrap();
        let leaf = check_ca(&cert, &fs::read_to_string(&cert).unwrap()).unwrap_err();
        assert!(matches!(leaf, TlsError::NotCa { .. }), "{leaf}");

        assert_eq!(identity.summary.days_left_to_renew(now()), Some(30));
        let soon = now() + chrono::Duration::days(20);
        assert_eq!(identity.summary.days_left_to_renew(soon), Some(10));
        let (long_cert, long_key) = (dir.path().join("long.pem"), dir.path().join("long-key.pem"));
        let long = issue(&hub_dir(&dir), &names, 397, now(), &long_cert, &long_key).unwrap();
        assert_eq!(long.days_left_to_renew(now()), None);

        let later = now() + chrono::Duration::days(31);
        let expired = load_server_identity(&cert, &key, later).unwrap_err();
        assert!(matches!(expired, TlsError::Expired { .. }), "{expired}");
        assert!(expired.to_string().contains("expired on"), "{expired}");
    }

    #[test]
    fn a_key_from_another_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        init_ca(&hub_dir(&dir), "CEIP Test", now()).unwrap();
        let names = vec!["hub.local".to_owned()];
        let (cert_a, key_a) = (dir.path().join("a.pem"), dir.path().join("a-key.pem"));
        let (cert_b, key_b) = (dir.path().join("b.pem"), dir.path().join("b-key.pem"));
        issue(&hub_dir(&dir), &names, 30, now(), &cert_a, &key_a).unwrap();
        issue(&hub_dir(&dir), &names, 30, now(), &cert_b, &key_b).unwrap();

        let error = load_server_identity(&cert_a, &key_b, now()).unwrap_err();
        assert!(matches!(error, TlsError::Mismatch { .. }), "{error}");
    }

    #[test]
    fn the_ca_is_never_replaced_and_names_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.pem");
        let key = dir.path().join("x-key.pem");
        let error =
            issue(&hub_dir(&dir), &["hub.local".into()], 30, now(), &out, &key).unwrap_err();
        assert!(matches!(error, TlsError::NoCa { .. }), "{error}");

        init_ca(&hub_dir(&dir), "CEIP Test", now()).unwrap();
        let again = init_ca(&hub_dir(&dir), "CEIP Test", now()).unwrap_err();
        assert!(matches!(again, TlsError::CaExists { .. }), "{again}");

        for bad in [
            "",
            "hub local",
            "-hub.local",
            "https://hub.local",
            "hub..local",
            "0.0.0.0",
            "::",
            "192.168.1.10:8883",
            "hub.local:8883",
            "999.1.1.1",
            "[2001:db8::1]",
            "::ffff:0.0.0.0",
        ] {
            let error = issue(&hub_dir(&dir), &[bad.into()], 30, now(), &out, &key).unwrap_err();
            assert!(
                matches!(error, TlsError::BadName { .. }),
                "{bad:?}: {error}"
            );
        }
        let with_port = issue(
            &hub_dir(&dir),
            &["192.168.1.10:8883".into()],
            30,
            now(),
            &out,
            &key,
        );
        let with_port = with_port.unwrap_err().to_string();
        assert!(with_port.contains("without its port"), "{with_port}");

        // The IPv4-mapped form names the IPv4 address that connections check.
        issue(
            &hub_dir(&dir),
            &["::ffff:192.0.2.10".into()],
            30,
            now(),
            &out,
            &key,
        )
        .unwrap();
        assert_eq!(
            check_certificate(&out, now()).unwrap().names,
            ["192.0.2.10"]
        );
        assert!(matches!(
            issue(&hub_dir(&dir), &[], 30, now(), &out, &key),
            Err(TlsError::NoNames)
        ));
        assert!(matches!(
            issue(&hub_dir(&dir), &["hub.local".into()], 0, now(), &out, &key),
            Err(TlsError::BadDays { .. })
        ));
        assert!(matches!(
            init_ca(&hub_dir(&dir), " ", now()),
            Err(TlsError::NoSchool)
        ));
    }

    #[test]
    fn a_mistyped_output_never_costs_the_working_key() {
        let dir = tempfile::tempdir().unwrap();
        init_ca(&hub_dir(&dir), "CEIP Test", now()).unwrap();
        let names = vec![" hub.local ".to_owned()];
        let cert = dir.path().join("mqtt.pem");
        let key = dir.path().join("mqtt-key.pem");
        let issued = issue(&hub_dir(&dir), &names, 30, now(), &cert, &key).unwrap();
        assert_eq!(issued.names, ["hub.local"]);
        let working_key = fs::read(&key).unwrap();

        let same = issue(&hub_dir(&dir), &names, 30, now(), &key, &key).unwrap_err();
        assert!(matches!(same, TlsError::SamePath { .. }), "{same}");
        let typo = dir.path().join("no-such-folder/mqtt.pem");
        let error = issue(&hub_dir(&dir), &names, 30, now(), &typo, &key).unwrap_err();
        assert!(matches!(error, TlsError::Io { .. }), "{error}");
        let folder = dir.path().join("tls-folder");
        fs::create_dir(&folder).unwrap();
        let error = issue(&hub_dir(&dir), &names, 30, now(), &folder, &key).unwrap_err();
        assert!(matches!(error, TlsError::Io { .. }), "{error}");
        let error = issue(&hub_dir(&dir), &names, 30, now(), &cert, &folder).unwrap_err();
        assert!(matches!(error, TlsError::Io { .. }), "{error}");
        // The certificate fails only when it is put in place, after the key.
        let slashed = dir.path().join("mqtt.pem/");
        let error = issue(&hub_dir(&dir), &names, 30, now(), &slashed, &key).unwrap_err();
        assert!(matches!(error, TlsError::Io { .. }), "{error}");

        assert_eq!(fs::read(&key).unwrap(), working_key);
        load_server_identity(&cert, &key, now()).unwrap();
    }

    #[test]
    fn nothing_is_written_into_the_data_directory_and_a_foreign_ca_key_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        init_ca(&hub_dir(&dir), "CEIP Test", now()).unwrap();
        let ca_key = fs::read(hub_dir(&dir).join(CA_KEY)).unwrap();
        let names = vec!["hub.local".to_owned()];
        let cert = dir.path().join("mqtt.pem");
        let key = dir.path().join("mqtt-key.pem");

        let through_dots = hub_dir(&dir).join("tls/../tls/ca-key.pem");
        fs::create_dir(hub_dir(&dir).join("keys")).unwrap();
        let sealing_key = hub_dir(&dir).join("keys/sealing.key");
        let database = hub_dir(&dir).join("hub.sqlite");
        for (cert_out, key_out) in [
            (&cert, &hub_dir(&dir).join(CA_KEY)),
            (&hub_dir(&dir).join(CA_CERT), &key),
            (&cert, &through_dots),
            (&cert, &sealing_key),
            (&database, &key),
        ] {
            let error = issue(&hub_dir(&dir), &names, 30, now(), cert_out, key_out).unwrap_err();
            assert!(matches!(error, TlsError::InsideDataDir { .. }), "{error}");
        }
        assert_eq!(fs::read(hub_dir(&dir).join(CA_KEY)).unwrap(), ca_key);
        assert!(!database.exists());

        // A key restored from another hub's backup is named, not used.
        let other = tempfile::tempdir().unwrap();
        init_ca(&hub_dir(&other), "CEIP Other", now()).unwrap();
        fs::copy(hub_dir(&other).join(CA_KEY), hub_dir(&dir).join(CA_KEY)).unwrap();
        let error = issue(&hub_dir(&dir), &names, 30, now(), &cert, &key).unwrap_err();
        assert!(matches!(error, TlsError::CaKeyMismatch { .. }), "{error}");
        assert!(!cert.exists() && !key.exists());
    }
}
