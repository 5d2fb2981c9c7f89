//! TLS for the load generator's client side (`splitlab load` against `https://` targets): the
//! roots it trusts, the `--insecure` verifier, ALPN, and the server name it sends (SNI).
//!
//! - **Roots.** The system's roots by default (`rustls-native-certs`: the platform's store, or
//!   `SSL_CERT_FILE` / `SSL_CERT_DIR` when set); `--cacert FILE` *replaces* them with the PEM
//!   certificates in FILE (as curl's `--cacert` does), so a run against a private CA does not
//!   also trust every public one, and needs no system store at all.
//! - **`--insecure`** skips the certificate's verification (chain, name and dates) but still
//!   checks the handshake's signatures, so the connection is encrypted, not authenticated.
//! - **ALPN.** `http/1.1`, or `h2` then `http/1.1` with `--http2`: the server chooses, and the
//!   connection reports what it chose.
//!
//! Uses the `ring` provider explicitly (never a process-wide default), so nothing depends on
//! which other crate installed one first.
//!
//! Must not: open sockets (the `client` module does) or read anything but the files named.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Which certificates a client trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// The system's roots (`rustls-native-certs`).
    System,
    /// Only the PEM certificates in this file (`--cacert`).
    CaFile(std::path::PathBuf),
    /// Nothing is verified (`--insecure`).
    Insecure,
}

/// Why the client's TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("--cacert {path}: cannot read the file: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("--cacert {path}: no certificate in the file (expected PEM blocks '-----BEGIN CERTIFICATE-----')")]
    NoCertificate { path: String },
    #[error("--cacert {path}: not a valid PEM file: {detail}")]
    Pem { path: String, detail: String },
    #[error("--cacert {path}: certificate {index} cannot be a trust anchor: {detail}")]
    BadCertificate {
        path: String,
        /// 1-based, in file order.
        index: usize,
        detail: String,
    },
    #[error("no system root certificates found{detail}; give --cacert FILE (or --insecure)")]
    NoSystemRoots { detail: String },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("{host:?} is not a valid TLS server name (a DNS name or an IP address)")]
    ServerName { host: String },
}

/// The PEM certificates in `path`, in file order; other PEM sections (keys) are skipped.
pub fn read_pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        path: shown.clone(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: shown.clone(),
            detail: pem_problem(&e),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: shown });
    }
    Ok(certs)
}

/// A PEM parse error in words (the library's own text shows byte arrays).
pub(super) fn pem_problem(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { end_marker } => format!(
            "a '-----BEGIN {0}-----' section has no '-----END {0}-----' line",
            String::from_utf8_lossy(end_marker)
        ),
        Error::IllegalSectionStart { line } => {
            format!("bad section start {:?}", String::from_utf8_lossy(line))
        }
        Error::Base64Decode(detail) => format!("bad base64 in a section: {detail}"),
        other => other.to_string(),
    }
}

/// The ring provider every TLS configuration of the live mode uses (client and gateway), named
/// rather than taken from the process default, so no other crate's choice changes it.
pub(super) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The roots of `trust` (`None` for `Insecure`).
fn roots(trust: &Trust) -> Result<Option<RootCertStore>, TlsError> {
    let mut store = RootCertStore::empty();
    match trust {
        Trust::Insecure => return Ok(None),
        Trust::CaFile(path) => {
            for (i, cert) in read_pem_certificates(path)?.into_iter().enumerate() {
                store.add(cert).map_err(|e| TlsError::BadCertificate {
                    path: path.display().to_string(),
                    index: i + 1,
                    detail: e.to_string(),
                })?;
            }
        }
        Trust::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let detail = if found.errors.is_empty() {
                    String::new()
                } else {
                    let errors: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
                    format!(" ({})", errors.join("; "))
                };
                return Err(TlsError::NoSystemRoots { detail });
            }
        }
    }
    Ok(Some(store))
}

/// The client configuration of a run: `trust`, and ALPN `h2, http/1.1` when `http2` (else
/// `http/1.1` alone).
pub fn client_config(trust: &Trust, http2: bool) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let mut config = match roots(trust)? {
        Some(store) => builder.with_root_certificates(store).with_no_client_auth(),
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth(),
    };
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Arc::new(config))
}

/// The server name (SNI, and the name the certificate must hold) for a `Host` value:
/// `hello.example.com`, `hello.example.com:8443`, `127.0.0.1`, `[::1]:8443`. An IP address is
/// checked against the certificate's IP addresses and sends no SNI (RFC 6066 §3).
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let bare = match host.strip_prefix('[') {
        // `[v6]` or `[v6]:port`
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        },
    };
    ServerName::try_from(bare.to_string()).map_err(|_| TlsError::ServerName {
        host: host.to_string(),
    })
}

/// `--insecure`: accepts any certificate, but still checks that the server holds the key of
/// the certificate it sent (the handshake's signatures).
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of its own in the temporary directory (no shared directory, which one test could
    /// remove while another writes into it); `name` is unique among the tests.
    fn temp_file(name: &str, content: &[u8]) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("splitlab-tls-{}-{name}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        path
    }

    fn remove_temp_files(paths: &[std::path::PathBuf]) {
        for path in paths {
            let _ = std::fs::remove_file(path);
        }
    }

    fn self_signed() -> rcgen::CertifiedKey<rcgen::KeyPair> {
        rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap()
    }

    #[test]
    fn cacert_files_that_hold_no_usable_certificate_are_named_with_the_problem() {
        let key_only = temp_file(
            "key.pem",
            self_signed().signing_key.serialize_pem().as_bytes(),
        );
        let empty = temp_file("empty.pem", b"");
        let torn = temp_file(
            "torn.pem",
            b"-----BEGIN CERTIFICATE-----\nMIIB\n", // no END line
        );
        let missing = std::env::temp_dir().join("splitlab-tls-no-such-file.pem");
        // (file, the whole message)
        let cases = [
            // A file that does not exist.
            (
                missing.clone(),
                format!(
                    "--cacert {}: cannot read the file: No such file or directory (os error 2)",
                    missing.display()
                ),
            ),
            // A private key, no certificate.
            (
                key_only.clone(),
                format!(
                    "--cacert {}: no certificate in the file (expected PEM blocks '-----BEGIN CERTIFICATE-----')",
                    key_only.display()
                ),
            ),
            // An empty file.
            (
                empty.clone(),
                format!(
                    "--cacert {}: no certificate in the file (expected PEM blocks '-----BEGIN CERTIFICATE-----')",
                    empty.display()
                ),
            ),
            // A certificate block that never ends.
            (
                torn.clone(),
                format!(
                    "--cacert {}: not a valid PEM file: a '-----BEGIN CERTIFICATE-----' section has no '-----END CERTIFICATE-----' line",
                    torn.display(),
                ),
            ),
        ];
        for (path, want) in cases {
            let err = client_config(&Trust::CaFile(path.clone()), false).unwrap_err();
            assert_eq!(err.to_string(), want, "{}", path.display());
        }
        remove_temp_files(&[key_only, empty, torn]);
    }

    #[test]
    fn a_cacert_file_with_certificates_makes_a_configuration_with_the_asked_alpn() {
        let a = self_signed().cert.pem();
        let b = self_signed().cert.pem();
        let path = temp_file("two.pem", format!("{a}{b}").as_bytes());
        assert_eq!(read_pem_certificates(&path).unwrap().len(), 2);
        let h1 = client_config(&Trust::CaFile(path.clone()), false).unwrap();
        assert_eq!(h1.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let h2 = client_config(&Trust::CaFile(path.clone()), true).unwrap();
        assert_eq!(
            h2.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let insecure = client_config(&Trust::Insecure, true).unwrap();
        assert_eq!(insecure.alpn_protocols, h2.alpn_protocols);
        remove_temp_files(&[path]);
    }

    #[test]
    fn server_names_come_from_the_host_without_its_port() {
        // (Host value, the server name, or None for an error)
        let cases: [(&str, Option<&str>); 7] = [
            (
                "hello.default.example.com",
                Some("hello.default.example.com"),
            ),
            // A port is not part of the name.
            (
                "hello.default.example.com:8443",
                Some("hello.default.example.com"),
            ),
            ("localhost", Some("localhost")),
            // IP addresses, v4 and v6, with or without a port.
            ("127.0.0.1:8443", Some("127.0.0.1")),
            ("[::1]:8443", Some("::1")),
            ("[::1]", Some("::1")),
            // Not a name.
            ("bad name", None),
        ];
        for (host, want) in cases {
            let got = server_name(host).map(|n| n.to_str().into_owned());
            match want {
                Some(w) => assert_eq!(got.unwrap(), w, "{host}"),
                None => assert_eq!(
                    got.unwrap_err().to_string(),
                    format!(
                        "{host:?} is not a valid TLS server name (a DNS name or an IP address)"
                    )
                ),
            }
        }
    }
}
