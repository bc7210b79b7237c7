//! The certificate `STARTTLS` is offered with: the one configured
//! (`[smtp] tls_cert` and `tls_key`), or else a self-signed one made at
//! first start and kept in `[smtp] tls_dir`.
//!
//! Servers that send mail encrypt opportunistically: they use `STARTTLS`
//! when it is offered and, unless their operator set a policy for the
//! domain (MTA-STS, DANE), do not verify the certificate. Without one the
//! listener offered no `STARTTLS`, so every complaint mailed to it crossed
//! the network in clear. A self-signed certificate gives those senders
//! encryption with no setup; one from a CA (configured) is still needed for
//! senders that verify.
//!
//! The key is written once and kept, so a restart shows senders the same
//! certificate: `key.pem`, mode 0600, written whole under a temporary name
//! and linked into place, which fails when the name exists, so gateways
//! starting together on one directory all take the one key that won. The
//! certificate (`cert.pem`) is made from the key whenever it is missing or
//! is not the key's, so any certificate written is one of the key kept.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::settings::SmtpListenerConfig;

/// The self-signed certificate's file in `tls_dir`.
pub const CERT_FILE: &str = "cert.pem";
/// Its private key's file in `tls_dir`, mode 0600.
pub const KEY_FILE: &str = "key.pem";

/// The acceptor of `STARTTLS`, or `None` when `starttls = false`.
pub fn acceptor(cfg: &SmtpListenerConfig) -> anyhow::Result<Option<TlsAcceptor>> {
    if !cfg.starttls {
        return Ok(None);
    }
    match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(cert), Some(key)) => {
            let certs =
                read_certs(cert).with_context(|| format!("smtp.tls_cert {}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| anyhow::anyhow!("smtp.tls_key {}: {e}", key.display()))?;
            let acceptor = server(certs, key).context("smtp.tls_cert and smtp.tls_key")?;
            Ok(Some(acceptor))
        }
        (None, None) => self_signed(&cfg.tls_dir, &cfg.hostname).map(Some),
        _ => anyhow::bail!("smtp.tls_cert and smtp.tls_key must be given together"),
    }
}

/// The acceptor of the self-signed pair kept in `dir`, made first where
/// missing; `hostname` names a new certificate.
pub fn self_signed(dir: &Path, hostname: &str) -> anyhow::Result<TlsAcceptor> {
    let at = || format!("smtp.tls_dir {}", dir.display());
    std::fs::create_dir_all(dir).with_context(at)?;
    let key_path = dir.join(KEY_FILE);
    let key_pem = match std::fs::read_to_string(&key_path) {
        Ok(pem) => {
            warn_if_readable_by_others(&key_path);
            pem
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key(dir).with_context(at)?,
        Err(e) => return Err(e).with_context(|| format!("{}: {KEY_FILE}", at())),
    };
    let key =
        rcgen::KeyPair::from_pem(&key_pem).with_context(|| format!("{}: {KEY_FILE}", at()))?;
    let key_der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("{}: {KEY_FILE}: {e}", at()))?;
    // The certificate kept, when it is one of this key.
    if let Ok(certs) = read_certs(&dir.join(CERT_FILE)) {
        match server(certs, key_der.clone_key()) {
            Ok(acceptor) => return Ok(acceptor),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "smtp: the kept certificate is not of the kept key; making a new one")
            }
        }
    }
    let cert_pem = certificate(&key, hostname)?;
    write_replacing(dir, CERT_FILE, cert_pem.as_bytes(), 0o644).with_context(at)?;
    tracing::info!(dir = %dir.display(), "smtp: STARTTLS with a self-signed certificate");
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("the certificate made: {e}"))?;
    server(certs, key_der).context("the certificate made")
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in the file");
    Ok(certs)
}

/// A TLS server of `certs` and `key`; refused when the key is not the
/// certificate's.
fn server(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<TlsAcceptor, rustls::Error> {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A self-signed certificate of `key` for `hostname` (the name the greeting
/// gives), as PEM. A hostname that cannot be a DNS name is left out of the
/// alternative names: nobody checks them on an opportunistic connection.
fn certificate(key: &rcgen::KeyPair, hostname: &str) -> anyhow::Result<String> {
    let mut params = rcgen::CertificateParams::new(vec![hostname.to_string()]).unwrap_or_default();
    let mut name = rcgen::DistinguishedName::new();
    name.push(rcgen::DnType::CommonName, hostname);
    params.distinguished_name = name;
    let cert = params
        .self_signed(key)
        .map_err(|e| anyhow::anyhow!("cannot make a self-signed certificate: {e}"))?;
    Ok(cert.pem())
}

/// Makes a key and puts it in `dir` unless another gateway just did; the
/// key in place, as PEM.
fn create_key(dir: &Path) -> anyhow::Result<String> {
    let pem = rcgen::KeyPair::generate()
        .map_err(|e| anyhow::anyhow!("cannot make a key: {e}"))?
        .serialize_pem();
    let path = dir.join(KEY_FILE);
    let tmp = temporary(dir, KEY_FILE);
    write_new(&tmp, pem.as_bytes(), 0o600)?;
    let placed = match std::fs::hard_link(&tmp, &path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        // A file system without hard links: a rename, which could replace
        // a key another gateway placed at the same instant; each then serves
        // a pair of its own, and the next start makes the certificate again.
        Err(_) => std::fs::rename(&tmp, &path).map(|()| true),
    };
    let _ = std::fs::remove_file(&tmp);
    if placed? {
        sync_dir(dir);
        Ok(pem)
    } else {
        Ok(std::fs::read_to_string(&path)?)
    }
}

/// Writes `bytes` as `dir/name`, whole or not at all.
fn write_replacing(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = temporary(dir, name);
    write_new(&tmp, bytes, mode)?;
    let renamed = std::fs::rename(&tmp, dir.join(name));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed?;
    sync_dir(dir);
    Ok(())
}

/// A name beside `name` that no other process or thread uses.
fn temporary(dir: &Path, name: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{name}.{}.{n}", std::process::id()))
}

/// Creates `path` with `mode` from the start (a key is never readable by
/// others, not even for a moment) and writes `bytes` to disk.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes a rename or link in `dir` durable; a failure only weakens that.
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A kept key that others may read is said once at start; it is not
/// changed, since whoever widened it may have meant to.
fn warn_if_readable_by_others(path: &Path) {
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "smtp: the STARTTLS key is readable by other users; 0600 is expected");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("file").permissions().mode() & 0o777
    }

    #[test]
    fn a_pair_is_made_once_and_kept() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("data/smtp-tls");
        self_signed(&dir, "mx.lapor.example.go.id").expect("made");
        let cert = std::fs::read(dir.join(CERT_FILE)).expect("cert");
        let key = std::fs::read(dir.join(KEY_FILE)).expect("key");
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        assert!(String::from_utf8_lossy(&key).contains("PRIVATE KEY"));
        self_signed(&dir, "mx.lapor.example.go.id").expect("kept");
        assert_eq!(std::fs::read(dir.join(CERT_FILE)).expect("cert"), cert);
        assert_eq!(std::fs::read(dir.join(KEY_FILE)).expect("key"), key);
        // Nothing temporary is left beside them.
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [CERT_FILE, KEY_FILE]);
    }

    #[test]
    fn a_certificate_that_is_not_the_keys_is_made_again() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path();
        self_signed(dir, "aduan").expect("made");
        let key = std::fs::read(dir.join(KEY_FILE)).expect("key");
        let other = rcgen::generate_simple_self_signed(vec!["lain".to_string()]).expect("other");
        std::fs::write(dir.join(CERT_FILE), other.cert.pem()).expect("write");
        self_signed(dir, "aduan").expect("made again");
        let cert = std::fs::read_to_string(dir.join(CERT_FILE)).expect("cert");
        assert_ne!(cert, other.cert.pem());
        assert_eq!(std::fs::read(dir.join(KEY_FILE)).expect("key"), key);
        // A lost certificate, too.
        std::fs::remove_file(dir.join(CERT_FILE)).expect("remove");
        self_signed(dir, "aduan").expect("made again");
        assert!(dir.join(CERT_FILE).is_file());
        assert_eq!(std::fs::read(dir.join(KEY_FILE)).expect("key"), key);
    }

    #[test]
    fn gateways_starting_together_keep_one_key() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("tls");
        let made: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| self_signed(&dir, "aduan").is_ok()))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        assert_eq!(made, [true; 4]);
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        // What is on disk is one pair.
        let certs = read_certs(&dir.join(CERT_FILE)).expect("cert");
        let key = PrivateKeyDer::from_pem_file(dir.join(KEY_FILE)).expect("key");
        assert!(server(certs, key).is_ok());
        assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 2);
    }

    #[test]
    fn no_starttls_when_turned_off_and_a_configured_pair_is_used() {
        let root = tempfile::tempdir().expect("tempdir");
        let off = SmtpListenerConfig {
            starttls: false,
            tls_dir: root.path().join("never"),
            ..SmtpListenerConfig::default()
        };
        assert!(acceptor(&off).expect("valid").is_none());
        assert!(!root.path().join("never").exists());
        let pair = rcgen::generate_simple_self_signed(vec!["mx".to_string()]).expect("pair");
        std::fs::write(root.path().join("c.pem"), pair.cert.pem()).expect("write");
        std::fs::write(root.path().join("k.pem"), pair.signing_key.serialize_pem()).expect("write");
        let given = SmtpListenerConfig {
            tls_cert: Some(root.path().join("c.pem")),
            tls_key: Some(root.path().join("k.pem")),
            tls_dir: root.path().join("unused"),
            ..SmtpListenerConfig::default()
        };
        assert!(acceptor(&given).expect("valid").is_some());
        assert!(!root.path().join("unused").exists());
    }
}
