//! A development CA for trying TLS and mutual TLS on one machine (`poortwachter tls dev-ca`):
//! a CA, a server certificate and client certificates, written into one directory with the
//! keys at mode 0600. Every file starts with lines saying it is a development certificate,
//! not for production (PEM allows text before `-----BEGIN`, RFC 7468 §5.2; OpenSSL, curl and
//! rustls-pki-types skip it).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use super::der;

/// How long the development CA is valid.
const CA_DAYS: i64 = 5 * 365;
/// How long the server and client certificates are valid.
const LEAF_DAYS: i64 = 365;

/// Why the development CA could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DevCaError {
    /// A name cannot be used.
    #[error("{0}")]
    BadName(String),
    /// A file exists and overwriting was not asked for.
    #[error("{0} exists; pass --force to replace the development CA and its certificates")]
    Exists(String),
    /// A file or the directory could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("generating certificates: {0}")]
    Generate(String),
}

/// The files written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCaFiles {
    /// The directory.
    pub dir: PathBuf,
    /// `ca.pem`: the CA certificate (trust it as a client, or as `client_ca`).
    pub ca_cert: PathBuf,
    /// `ca-key.pem`: the CA key.
    pub ca_key: PathBuf,
    /// The server name the server certificate is for.
    pub server_name: String,
    /// `server.pem`: the server's chain (`[tls] cert`).
    pub server_cert: PathBuf,
    /// `server-key.pem`: the server key (`[tls] key`).
    pub server_key: PathBuf,
    /// One entry per client.
    pub clients: Vec<DevClientFiles>,
}

/// A client's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevClientFiles {
    /// Its name (subject CN).
    pub name: String,
    /// `<name>.pem`.
    pub cert: PathBuf,
    /// `<name>-key.pem`.
    pub key: PathBuf,
}

impl DevCaFiles {
    /// A curl command line that calls the public listener on `port` over mutual TLS with the
    /// first client's certificate (plain TLS when there is no client).
    #[must_use]
    pub fn curl_command(&self, port: u16) -> String {
        let host = match self.server_name.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => self.server_name.clone(),
        };
        let mut cmd = format!("curl --cacert {}", shell_word(&self.ca_cert));
        if let Some(client) = self.clients.first() {
            cmd.push_str(&format!(
                " --cert {} --key {}",
                shell_word(&client.cert),
                shell_word(&client.key)
            ));
        }
        cmd.push_str(&format!(
            " https://{host}:{port}/.well-known/oauth-authorization-server"
        ));
        cmd
    }

    /// The `[tls]` section that uses these files, with `client_auth = "optional"`.
    #[must_use]
    pub fn config_snippet(&self) -> String {
        format!(
            "[tls]\ncert = {}\nkey = {}\nclient_ca = [{}]\nclient_auth = \"optional\"\n",
            toml_string(&self.server_cert),
            toml_string(&self.server_key),
            toml_string(&self.ca_cert)
        )
    }
}

fn shell_word(path: &Path) -> String {
    let s = path.display().to_string();
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@".contains(&b))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn toml_string(path: &Path) -> String {
    toml::Value::String(path.display().to_string()).to_string()
}

/// A client name becomes a file name and a CN: letters, digits, `.`, `_`, `-`, up to 64, not
/// starting with `.` or `-`, and not `ca` or `server`.
fn check_client_name(name: &str) -> Result<(), DevCaError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !matches!(name, "ca" | "server");
    if ok {
        Ok(())
    } else {
        Err(DevCaError::BadName(format!(
            "client name {name:?}: use 1-64 letters, digits, '.', '_' or '-' (not first), \
             and not \"ca\" or \"server\""
        )))
    }
}

fn check_server_name(name: &str) -> Result<(), DevCaError> {
    let ok = name.parse::<IpAddr>().is_ok()
        || (!name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }));
    if ok {
        Ok(())
    } else {
        Err(DevCaError::BadName(format!(
            "server name {name:?}: not a DNS name or IP address"
        )))
    }
}

fn generate(e: rcgen::Error) -> DevCaError {
    DevCaError::Generate(e.to_string())
}

fn preamble(what: &str, created: OffsetDateTime) -> String {
    let date = created.date();
    format!(
        "DEVELOPMENT {what}, NOT FOR PRODUCTION.\n\
         Made by `poortwachter tls dev-ca` on {date} for trying TLS on one machine.\n\
         Its CA key lies in plain text beside it: anyone who can read that directory can\n\
         make certificates this CA vouches for. Never trust this CA outside a test setup.\n"
    )
}

fn leaf_params(cn: &str, now: OffsetDateTime, eku: ExtendedKeyUsagePurpose) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "poortwachter development");
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(LEAF_DAYS);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![eku];
    params.use_authority_key_identifier_extension = true;
    params
}

/// Writes the development CA into `out` (created, mode 0700, when it does not exist): `ca.pem`,
/// `ca-key.pem`, `server.pem`, `server-key.pem` for `server_name` (SAN: that name, 127.0.0.1
/// and ::1) and `<name>.pem` / `<name>-key.pem` per client. Existing files are replaced only
/// with `overwrite`. Keys are ECDSA P-256, created 0600.
pub fn write(
    out: &Path,
    server_name: &str,
    clients: &[String],
    overwrite: bool,
) -> Result<DevCaFiles, DevCaError> {
    check_server_name(server_name)?;
    for (i, name) in clients.iter().enumerate() {
        check_client_name(name)?;
        if clients[..i].contains(name) {
            return Err(DevCaError::BadName(format!(
                "client name {name:?} given twice"
            )));
        }
    }
    let files = DevCaFiles {
        dir: out.to_path_buf(),
        ca_cert: out.join("ca.pem"),
        ca_key: out.join("ca-key.pem"),
        server_name: server_name.to_owned(),
        server_cert: out.join("server.pem"),
        server_key: out.join("server-key.pem"),
        clients: clients
            .iter()
            .map(|name| DevClientFiles {
                name: name.clone(),
                cert: out.join(format!("{name}.pem")),
                key: out.join(format!("{name}-key.pem")),
            })
            .collect(),
    };
    let mut paths = vec![
        &files.ca_cert,
        &files.ca_key,
        &files.server_cert,
        &files.server_key,
    ];
    for c in &files.clients {
        paths.push(&c.cert);
        paths.push(&c.key);
    }
    if !overwrite {
        if let Some(existing) = paths.iter().find(|p| p.exists()) {
            return Err(DevCaError::Exists(existing.display().to_string()));
        }
    }
    create_dir(out)?;

    let now = OffsetDateTime::now_utc();
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "poortwachter DEVELOPMENT CA");
    ca_params
        .distinguished_name
        .push(DnType::OrganizationName, "poortwachter development");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_before = now - Duration::hours(1);
    ca_params.not_after = now + Duration::days(CA_DAYS);
    let ca_key = KeyPair::generate().map_err(generate)?;
    let ca_key_pem = ca_key.serialize_pem();
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(generate)?;
    write_file(
        &files.ca_cert,
        &der::pem("CERTIFICATE", ca.der(), &preamble("CA certificate", now)),
        false,
    )?;
    write_file(
        &files.ca_key,
        &format!("{}{ca_key_pem}", preamble("CA private key", now)),
        true,
    )?;

    let mut server = leaf_params(server_name, now, ExtendedKeyUsagePurpose::ServerAuth);
    let mut sans = vec![match server_name.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(server_name.try_into().map_err(generate)?),
    }];
    for ip in [
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
    ] {
        if !sans.contains(&SanType::IpAddress(ip)) {
            sans.push(SanType::IpAddress(ip));
        }
    }
    server.subject_alt_names = sans;
    issue_leaf(
        &ca,
        server,
        &files.server_cert,
        &files.server_key,
        "server certificate",
        now,
    )?;
    for client in &files.clients {
        issue_leaf(
            &ca,
            leaf_params(&client.name, now, ExtendedKeyUsagePurpose::ClientAuth),
            &client.cert,
            &client.key,
            "client certificate",
            now,
        )?;
    }
    Ok(files)
}

fn issue_leaf(
    ca: &CertifiedIssuer<'_, KeyPair>,
    params: CertificateParams,
    cert_path: &Path,
    key_path: &Path,
    what: &str,
    now: OffsetDateTime,
) -> Result<(), DevCaError> {
    let key = KeyPair::generate().map_err(generate)?;
    let cert = params.signed_by(&key, ca).map_err(generate)?;
    write_file(
        cert_path,
        &der::pem("CERTIFICATE", cert.der(), &preamble(what, now)),
        false,
    )?;
    write_file(
        key_path,
        &format!(
            "{}{}",
            preamble(&format!("{what} key"), now),
            key.serialize_pem()
        ),
        true,
    )
}

fn create_dir(dir: &Path) -> Result<(), DevCaError> {
    let io = |source| DevCaError::Io {
        path: dir.display().to_string(),
        source,
    };
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io)
}

/// Writes a file; a key is created with mode 0600 (and set to it when it existed).
fn write_file(path: &Path, contents: &str, private: bool) -> Result<(), DevCaError> {
    use std::io::Write as _;
    let io = |source| DevCaError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    let mut file = options.open(path).map_err(io)?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
    }
    file.write_all(contents.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}
