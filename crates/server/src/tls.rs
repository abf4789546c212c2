//! TLS on the gRPC listener, with certificates that reload without dropping connections.
//!
//! tonic's own TLS configuration is fixed when the server starts; this module keeps a rustls
//! server configuration behind a lock instead and gives every new connection the current one,
//! so a renewed certificate (SIGHUP, or its files changing) is used from the next handshake on
//! while connections already open carry on. One crypto provider, `ring` (as async-nats uses).
//! With `--client-ca`, a client may present a certificate issued by that CA (mutual TLS): its
//! subject names the org (CN) and roles (OU). A client without one may still send a token.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{info, warn};

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the certificate files are checked for changes.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// `serve --tls-cert --tls-key [--client-ca]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: the server's certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM: its private key (PKCS #8, PKCS #1 or SEC1).
    pub key: PathBuf,
    /// PEM: the CA(s) whose client certificates are accepted (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// Reads the files into a server configuration.
    pub fn load(&self) -> Result<Arc<ServerConfig>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs = read_certs(&self.cert)?;
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| {
            format!(
                "--tls-key {}: no usable private key: {e}",
                self.key.display()
            )
        })?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in read_certs(path)? {
                    roots
                        .add(cert)
                        .map_err(|e| format!("--client-ca {}: {e}", path.display()))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    // A client without a certificate may still present a token.
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| format!("--client-ca {}: {e}", path.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(certs, key).map_err(|e| {
            format!(
                "--tls-cert {} and --tls-key {}: {e}",
                self.cert.display(),
                self.key.display()
            )
        })?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// When the files were last changed (to notice a renewal).
    fn stamp(&self) -> Vec<Option<SystemTime>> {
        [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .collect()
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: cannot read certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// The configuration new connections get; replaced on reload.
#[derive(Clone)]
pub struct Reloadable {
    files: TlsFiles,
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl Reloadable {
    pub fn new(files: TlsFiles) -> Result<Self, String> {
        let config = files.load()?;
        Ok(Reloadable {
            files,
            current: Arc::new(RwLock::new(config)),
        })
    }

    fn current(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(config) => config.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the files again; on failure the configuration in use stays.
    pub fn reload(&self, why: &str) {
        match self.files.load() {
            Ok(config) => {
                match self.current.write() {
                    Ok(mut current) => *current = config,
                    Err(poisoned) => *poisoned.into_inner() = config,
                }
                info!(why, cert = %self.files.cert.display(), "TLS certificates reloaded; new connections use them");
            }
            Err(reason) => {
                warn!(why, %reason, "TLS certificates not reloaded; the ones in use stay")
            }
        }
    }

    /// Reloads on SIGHUP and whenever the files change, until the returned task is aborted.
    pub fn watch(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            #[cfg(unix)]
            let mut hangup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut stamp = this.files.stamp();
            let mut tick = tokio::time::interval(WATCH_EVERY);
            loop {
                #[cfg(unix)]
                let signalled = async {
                    match hangup.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                };
                #[cfg(not(unix))]
                let signalled = std::future::pending::<Option<()>>();
                tokio::select! {
                    _ = signalled => this.reload("SIGHUP"),
                    _ = tick.tick() => {
                        let now = this.files.stamp();
                        if now != stamp {
                            stamp = now;
                            this.reload("the certificate files changed");
                        }
                    }
                }
            }
        })
    }

    /// The TLS connections accepted on `listener`: each handshake runs on its own task (a slow
    /// client holds up no one), with the configuration current when it started.
    pub fn incoming(
        &self,
        listener: TcpListener,
    ) -> ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
        self.accept_on(listener, None)
    }

    /// As [`Reloadable::incoming`], for the HTTP door: its handshakes offer HTTP/1.1 as well as
    /// HTTP/2 (gRPC's listener offers HTTP/2 alone), so browsers, curl and webhooks' peers
    /// of either kind connect.
    pub fn incoming_http(
        &self,
        listener: TcpListener,
    ) -> ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
        self.accept_on(listener, Some(vec![b"h2".to_vec(), b"http/1.1".to_vec()]))
    }

    fn accept_on(
        &self,
        listener: TcpListener,
        alpn: Option<Vec<Vec<u8>>>,
    ) -> ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                // The server stopped taking connections: close the listener too.
                let accepted = tokio::select! {
                    () = tx.closed() => return,
                    accepted = listener.accept() => accepted,
                };
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        warn!(cause = %e, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if let Err(e) = stream.set_nodelay(true) {
                    warn!(cause = %e, "cannot set TCP_NODELAY on a connection");
                }
                let config = match &alpn {
                    None => this.current(),
                    Some(protocols) => {
                        let mut config = (*this.current()).clone();
                        config.alpn_protocols = protocols.clone();
                        Arc::new(config)
                    }
                };
                let acceptor = TlsAcceptor::from(config);
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send(Ok(tls)).await;
                        }
                        Ok(Err(e)) => info!(%peer, cause = %e, "TLS handshake failed"),
                        Err(_) => info!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        ReceiverStream::new(rx)
    }
}
