//! TLS for the gateway's listener (`splitlab gateway --tls-cert FILE --tls-key FILE`): the
//! certificate chain and private key from PEM files, into a rustls acceptor that offers ALPN
//! `h2` and `http/1.1` (in that order, as Envoy's HTTPS listeners do), so a client picks
//! HTTP/2 or HTTP/1.1 during the handshake.
//!
//! Reads files and nothing else: the sockets are `http::serve_with`'s. Every error names the
//! file it is about and what was wrong with it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// The ALPN protocols the gateway offers, most preferred first.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why the TLS settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("--tls-cert {path}: cannot read it: {source}")]
    ReadCert {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--tls-key {path}: cannot read it: {source}")]
    ReadKey {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--tls-cert {path}: not a PEM certificate chain: {detail}")]
    BadCert { path: PathBuf, detail: String },
    #[error("--tls-cert {path}: no CERTIFICATE block (expected a PEM file with `-----BEGIN CERTIFICATE-----`)")]
    NoCert { path: PathBuf },
    #[error("--tls-key {path}: no private key (expected a PEM `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block): {detail}")]
    NoKey { path: PathBuf, detail: String },
    #[error("--tls-cert {cert} and --tls-key {key} cannot serve TLS: {source}")]
    Config {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
}

/// The certificate chain in `cert` and the private key in `key` (both PEM) as a TLS acceptor
/// offering `ALPN`.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let cert_pem = std::fs::read(cert).map_err(|source| TlsError::ReadCert {
        path: cert.to_path_buf(),
        source,
    })?;
    let key_pem = std::fs::read(key).map_err(|source| TlsError::ReadKey {
        path: key.to_path_buf(),
        source,
    })?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCert {
            path: cert.to_path_buf(),
            detail: super::tls::pem_problem(&e),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCert {
            path: cert.to_path_buf(),
        });
    }
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::NoKey {
        path: key.to_path_buf(),
        detail: super::tls::pem_problem(&e),
    })?;
    let config_error = |source| TlsError::Config {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        source,
    };
    let mut config = rustls::ServerConfig::builder_with_provider(super::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(config_error)?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("temp file");
        p
    }

    #[test]
    fn a_generated_pair_loads_and_bad_files_are_named_in_the_error() {
        let dir = std::env::temp_dir().join(format!("splitlab-tls-server-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let signed = rcgen::generate_simple_self_signed(vec!["localhost".into()])
            .expect("rcgen makes a certificate");
        let other = rcgen::generate_simple_self_signed(vec!["localhost".into()])
            .expect("rcgen makes a certificate");
        let cert = write(&dir, "cert.pem", &signed.cert.pem());
        let key = write(&dir, "key.pem", &signed.signing_key.serialize_pem());
        let other_key = write(&dir, "other-key.pem", &other.signing_key.serialize_pem());
        let empty = write(&dir, "empty.pem", "");
        let garbage = write(&dir, "garbage.pem", "-----BEGIN CERTIFICATE-----\n!!!\n");
        let missing = dir.join("missing.pem");
        assert!(acceptor(&cert, &key).is_ok());
        let shown = |p: &Path| p.display().to_string();
        // (cert, key, what the message must say)
        let cases = [
            // A file that is not there: which flag, which file.
            (
                &missing,
                &key,
                format!("--tls-cert {}: cannot read it", shown(&missing)),
            ),
            (
                &cert,
                &missing,
                format!("--tls-key {}: cannot read it", shown(&missing)),
            ),
            // No certificate in the file.
            (
                &empty,
                &key,
                format!("--tls-cert {}: no CERTIFICATE block", shown(&empty)),
            ),
            // A certificate block that is not base64.
            (
                &garbage,
                &key,
                format!(
                    "--tls-cert {}: not a PEM certificate chain",
                    shown(&garbage)
                ),
            ),
            // A certificate given as the key.
            (
                &cert,
                &cert,
                format!("--tls-key {}: no private key", shown(&cert)),
            ),
            // A key that belongs to another certificate.
            (
                &cert,
                &other_key,
                format!(
                    "--tls-cert {} and --tls-key {} cannot serve TLS",
                    shown(&cert),
                    shown(&other_key)
                ),
            ),
        ];
        for (c, k, want) in cases {
            let err = acceptor(c, k)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                err.starts_with(&want),
                "{c:?} {k:?}: {err:?} should start with {want:?}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
