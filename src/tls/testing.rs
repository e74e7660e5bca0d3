//! A certificate factory for tests (unit tests here, integration tests in `tests/`): CAs and
//! intermediates, server and client certificates with chosen validity, key type and SANs
//! (including the UZI `otherName`), CRLs, key files in the three PEM forms, and rustls client
//! configurations.
//!
//! It is a `#[doc(hidden)] pub` module rather than a `cfg(test)` one or a cargo feature:
//! integration tests are another crate and cannot see `cfg(test)` items, and a feature would
//! have to be remembered on every `cargo test` (and in CI). rcgen is a dependency anyway
//! (`tls dev-ca`), so the module costs only its own code. Not for production use: it panics on
//! failure, as test fixtures do.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SecureRandom as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
    CustomExtension, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod,
    KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams, SerialNumber,
    SignatureAlgorithm,
};
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, PrivatePkcs8KeyDer,
};
use time::{Duration, OffsetDateTime};

use super::der;
use super::{ClientAuth, TlsSettings};

/// The key algorithm of a generated certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA P-256 with SHA-256.
    P256,
    /// ECDSA P-384 with SHA-384.
    P384,
    /// Ed25519.
    Ed25519,
    /// RSA 2048 with PKCS#1 v1.5 SHA-256 signatures.
    Rsa2048,
}

impl KeyKind {
    fn algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            KeyKind::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyKind::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyKind::Ed25519 => &rcgen::PKCS_ED25519,
            KeyKind::Rsa2048 => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

/// The PEM form of a private key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// `PRIVATE KEY` (any key type).
    Pkcs8,
    /// `EC PRIVATE KEY` (ECDSA keys).
    Sec1,
    /// `RSA PRIVATE KEY` (RSA keys).
    Pkcs1,
}

/// What a leaf certificate is for and what it says.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    /// Subject CN.
    pub common_name: String,
    /// Subject O, if any.
    pub organization: Option<String>,
    /// SAN DNS names.
    pub dns_names: Vec<String>,
    /// SAN IP addresses.
    pub ips: Vec<IpAddr>,
    /// SAN `otherName` 2.5.5.5 values (IA5String), as the UZI register writes them.
    pub uzi_other_names: Vec<String>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Extended key usage serverAuth.
    pub server_auth: bool,
    /// Extended key usage clientAuth.
    pub client_auth: bool,
    /// Key algorithm.
    pub key: KeyKind,
}

impl LeafSpec {
    /// A server certificate for `name` (a DNS name or an IP address), valid from a day ago for
    /// a year.
    #[must_use]
    pub fn server(name: &str) -> Self {
        let mut spec = Self::base(name);
        match name.parse::<IpAddr>() {
            Ok(ip) => spec.ips.push(ip),
            Err(_) => spec.dns_names.push(name.to_owned()),
        }
        spec.server_auth = true;
        spec
    }

    /// A client certificate with subject CN `name`, valid from a day ago for a year.
    #[must_use]
    pub fn client(name: &str) -> Self {
        let mut spec = Self::base(name);
        spec.client_auth = true;
        spec
    }

    fn base(name: &str) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            common_name: name.to_owned(),
            organization: None,
            dns_names: Vec::new(),
            ips: Vec::new(),
            uzi_other_names: Vec::new(),
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(365),
            server_auth: false,
            client_auth: false,
            key: KeyKind::P256,
        }
    }

    /// Valid from 30 to 1 days ago.
    #[must_use]
    pub fn expired(mut self) -> Self {
        let now = OffsetDateTime::now_utc();
        self.not_before = now - Duration::days(30);
        self.not_after = now - Duration::days(1);
        self
    }

    /// Valid from tomorrow.
    #[must_use]
    pub fn not_yet_valid(mut self) -> Self {
        let now = OffsetDateTime::now_utc();
        self.not_before = now + Duration::days(1);
        self.not_after = now + Duration::days(30);
        self
    }

    /// With another key algorithm.
    #[must_use]
    pub fn key(mut self, key: KeyKind) -> Self {
        self.key = key;
        self
    }

    /// With a UZI `otherName`.
    #[must_use]
    pub fn uzi(mut self, value: &str) -> Self {
        self.uzi_other_names.push(value.to_owned());
        self
    }
}

/// A certificate authority (a root, or an intermediate under another [`TestCa`]).
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    serial: SerialNumber,
    /// The certificates a leaf of this CA sends after itself: this CA's own certificate and its
    /// parents' when it is an intermediate; empty for a root.
    above: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("random serial");
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

fn ca_params(name: &str) -> CertificateParams {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "poortwachter tests");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(3650);
    params.serial_number = Some(random_serial());
    params
}

impl TestCa {
    /// A self-signed root CA with subject `CN=<name>,O=poortwachter tests`.
    #[must_use]
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("CA key");
        let params = ca_params(name);
        let serial = params.serial_number.clone().expect("serial");
        Self {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
            serial,
            above: Vec::new(),
        }
    }

    /// An intermediate CA signed by this one.
    #[must_use]
    pub fn intermediate(&self, name: &str) -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = ca_params(name);
        params.use_authority_key_identifier_extension = true;
        let serial = params.serial_number.clone().expect("serial");
        let issuer = CertifiedIssuer::signed_by(params, key, &self.issuer).expect("intermediate");
        let mut above = vec![issuer.der().clone()];
        above.extend(self.above.iter().cloned());
        Self {
            issuer,
            serial,
            above,
        }
    }

    /// This CA's certificate.
    #[must_use]
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// This CA's certificate, PEM.
    #[must_use]
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA's private key, PKCS#8 PEM.
    #[must_use]
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// Issues a leaf certificate.
    #[must_use]
    pub fn issue(&self, spec: &LeafSpec) -> TestCert {
        let key = KeyPair::generate_for(spec.key.algorithm()).expect("leaf key");
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, spec.common_name.as_str());
        if let Some(o) = &spec.organization {
            params
                .distinguished_name
                .push(DnType::OrganizationName, o.as_str());
        }
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        let serial = random_serial();
        params.serial_number = Some(serial.clone());
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if spec.key == KeyKind::Rsa2048 {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        if spec.server_auth {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if spec.client_auth {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &[2, 5, 29, 17],
                subject_alt_names(spec),
            ));
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        let mut chain = vec![cert.der().clone()];
        chain.extend(self.above.iter().cloned());
        TestCert {
            chain,
            key_pkcs8: key.serialize_der(),
            kind: spec.key,
            serial,
        }
    }

    /// A server certificate for `name`.
    #[must_use]
    pub fn server(&self, name: &str) -> TestCert {
        self.issue(&LeafSpec::server(name))
    }

    /// A client certificate with CN `name`.
    #[must_use]
    pub fn client(&self, name: &str) -> TestCert {
        self.issue(&LeafSpec::client(name))
    }

    /// The serial number of this CA's certificate.
    #[must_use]
    pub fn serial(&self) -> &SerialNumber {
        &self.serial
    }

    /// A CRL of this CA revoking `revoked`, issued an hour ago, next update in a week.
    #[must_use]
    pub fn crl(&self, revoked: &[&TestCert]) -> TestCrl {
        let serials: Vec<SerialNumber> = revoked.iter().map(|c| c.serial.clone()).collect();
        let now = OffsetDateTime::now_utc();
        self.crl_between(&serials, now - Duration::hours(1), now + Duration::days(7))
    }

    /// A CRL of this CA revoking the certificates with these serial numbers (leaves' or
    /// intermediate CAs'), with the given thisUpdate and nextUpdate.
    #[must_use]
    pub fn crl_between(
        &self,
        revoked: &[SerialNumber],
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> TestCrl {
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|serial| RevokedCertParams {
                    serial_number: serial.clone(),
                    revocation_time: this_update,
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer).expect("CRL");
        TestCrl {
            der: crl.der().clone(),
            pem: crl.pem().expect("CRL PEM"),
        }
    }

    /// Writes this CA's certificate as `<dir>/<stem>.pem`.
    pub fn write(&self, dir: &Path, stem: &str) -> PathBuf {
        let path = dir.join(format!("{stem}.pem"));
        std::fs::write(&path, self.cert_pem()).expect("write CA");
        path
    }
}

/// The SAN extension's value: DNS names, IP addresses, then UZI otherNames (IA5String, which
/// rcgen's `SanType::OtherName` cannot write: it only has UTF8String).
fn subject_alt_names(spec: &LeafSpec) -> Vec<u8> {
    let mut names = Vec::new();
    for dns in &spec.dns_names {
        names.extend(der::tlv(0x82, dns.as_bytes()));
    }
    for ip in &spec.ips {
        let octets = match ip {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        names.extend(der::tlv(0x87, &octets));
    }
    for value in &spec.uzi_other_names {
        let mut other = der::tlv(der::TAG_OID, &der::oid_content(&[2, 5, 5, 5]));
        other.extend(der::tlv(
            0xa0,
            &der::tlv(der::TAG_IA5_STRING, value.as_bytes()),
        ));
        names.extend(der::tlv(0xa0, &other));
    }
    der::tlv(der::TAG_SEQUENCE, &names)
}

/// A generated leaf certificate with its chain and key.
#[derive(Clone)]
pub struct TestCert {
    /// Leaf first, then the intermediates (not the root).
    pub chain: Vec<CertificateDer<'static>>,
    key_pkcs8: Vec<u8>,
    kind: KeyKind,
    serial: SerialNumber,
}

impl std::fmt::Debug for TestCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCert").finish_non_exhaustive()
    }
}

impl TestCert {
    /// The leaf's serial number.
    #[must_use]
    pub fn serial(&self) -> &SerialNumber {
        &self.serial
    }

    /// The leaf certificate.
    #[must_use]
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// The chain as PEM, leaf first.
    #[must_use]
    pub fn chain_pem(&self) -> String {
        self.chain
            .iter()
            .map(|c| der::pem("CERTIFICATE", c, ""))
            .collect()
    }

    /// The private key, PKCS#8 DER.
    #[must_use]
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()))
    }

    /// The private key as a PEM file's text. Panics for a format the key type has not (SEC1
    /// for a non-ECDSA key, PKCS#1 for a non-RSA key).
    #[must_use]
    pub fn key_pem(&self, format: KeyFormat) -> String {
        match (format, self.kind) {
            (KeyFormat::Pkcs8, _) => der::pem("PRIVATE KEY", &self.key_pkcs8, ""),
            (KeyFormat::Sec1, KeyKind::P256 | KeyKind::P384) => {
                let alg = if self.kind == KeyKind::P256 {
                    &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING
                } else {
                    &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1_SIGNING
                };
                let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(alg, &self.key_pkcs8)
                    .expect("EC key");
                let sec1 = pair.private_key().as_der().expect("SEC1");
                der::pem("EC PRIVATE KEY", sec1.as_ref(), "")
            }
            (KeyFormat::Pkcs1, KeyKind::Rsa2048) => {
                let inner = der::pkcs8_inner_key(&self.key_pkcs8).expect("RSA key");
                der::pem("RSA PRIVATE KEY", inner, "")
            }
            (format, kind) => panic!("a {kind:?} key has no {format:?} form"),
        }
    }

    /// Writes `<dir>/<stem>.pem` (the chain) and `<dir>/<stem>-key.pem` (PKCS#8, mode 0600).
    pub fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        self.write_with(dir, stem, KeyFormat::Pkcs8)
    }

    /// [`write`](Self::write) with the key in `format`.
    pub fn write_with(&self, dir: &Path, stem: &str, format: KeyFormat) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}-key.pem"));
        std::fs::write(&cert, self.chain_pem()).expect("write certificate");
        write_private(&key, &self.key_pem(format));
        (cert, key)
    }
}

/// A generated CRL.
#[derive(Debug, Clone)]
pub struct TestCrl {
    /// DER.
    pub der: CertificateRevocationListDer<'static>,
    /// PEM.
    pub pem: String,
}

/// Writes `contents` to `path` created with mode 0600.
pub fn write_private(path: &Path, contents: &str) {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).expect("open key file");
    file.write_all(contents.as_bytes()).expect("write key file");
}

/// Settings for a server certificate written into `dir` and the given client trust anchors.
pub fn settings(
    dir: &Path,
    server: &TestCert,
    client_cas: &[&TestCa],
    client_auth: ClientAuth,
) -> TlsSettings {
    let (cert, key) = server.write(dir, "server");
    let client_ca = client_cas
        .iter()
        .enumerate()
        .map(|(i, ca)| ca.write(dir, &format!("client-ca-{i}")))
        .collect();
    TlsSettings {
        cert,
        key,
        client_ca,
        client_auth,
        crl: Vec::new(),
    }
}

/// A rustls client trusting `server_ca`, offering `versions` (everything rustls' aws-lc-rs
/// provider has), ALPN `h2` and `http/1.1`, and presenting `client` when given.
#[must_use]
pub fn client_config(
    server_ca: &CertificateDer<'static>,
    client: Option<&TestCert>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server_ca.clone()).expect("server CA");
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(versions)
    .expect("versions")
    .with_root_certificates(roots);
    let mut config = match client {
        Some(c) => builder
            .with_client_auth_cert(c.chain.clone(), c.key_der())
            .expect("client certificate"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}
