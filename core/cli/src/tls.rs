//! TLS for the Engine API over TCP, as docker's `--tls`, `--tlsverify`,
//! `--tlscacert`, `--tlscert` and `--tlskey`: the daemon's listener (client
//! certificates verified against a CA with `--tlsverify`) and the client's
//! connector, from PEM files; rustls with ring.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};

/// docker's TLS flags, for the daemon and the client alike.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// Use TLS (implied by --tlsverify).
    #[arg(long)]
    pub tls: bool,
    /// Use TLS and verify the other side: the daemon, clients' certificates
    /// against --tlscacert; a client, the daemon's [env: DOCKER_TLS_VERIFY].
    #[arg(long)]
    pub tlsverify: bool,
    /// Trust certificates signed by this CA only [default: ca.pem in
    /// $DOCKER_CERT_PATH, else in ~/.docker].
    #[arg(long, value_name = "PATH")]
    pub tlscacert: Option<PathBuf>,
    /// The TLS certificate [default: cert.pem there].
    #[arg(long, value_name = "PATH")]
    pub tlscert: Option<PathBuf>,
    /// The TLS key [default: key.pem there].
    #[arg(long, value_name = "PATH")]
    pub tlskey: Option<PathBuf>,
}

impl TlsArgs {
    /// `--tlsverify`, or a non-empty BERTH_TLS_VERIFY / DOCKER_TLS_VERIFY.
    pub fn verify(&self) -> bool {
        self.tlsverify
            || ["BERTH_TLS_VERIFY", "DOCKER_TLS_VERIFY"]
                .iter()
                .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
    }

    /// Whether TLS is asked for at all.
    pub fn enabled(&self) -> bool {
        self.tls || self.verify()
    }

    /// The file a flag names, else `name` in the certificate directory.
    fn file(&self, flag: &Option<PathBuf>, name: &str) -> PathBuf {
        flag.clone().unwrap_or_else(|| cert_dir().join(name))
    }
}

/// Where the default certificates are: BERTH_CERT_PATH, DOCKER_CERT_PATH,
/// DOCKER_CONFIG, else ~/.docker (docker's order).
fn cert_dir() -> PathBuf {
    for v in ["BERTH_CERT_PATH", "DOCKER_CERT_PATH", "DOCKER_CONFIG"] {
        if let Some(p) = std::env::var_os(v).filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    Path::new(&home).join(".docker")
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let data =
        std::fs::read(path).with_context(|| format!("reading the {what} {}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("the {what} {} is not PEM: {e}", path.display()))?;
    if certs.is_empty() {
        bail!("the {what} {} holds no PEM certificate", path.display());
    }
    Ok(certs)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let data = std::fs::read(path)
        .with_context(|| format!("reading the TLS key {} (--tlskey)", path.display()))?;
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| {
        anyhow!(
            "the TLS key {} holds no PEM private key: {e}",
            path.display()
        )
    })
}

fn roots(path: &Path) -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(path, "CA certificate (--tlscacert)")? {
        roots
            .add(c)
            .map_err(|e| anyhow!("the CA certificate {}: {e}", path.display()))?;
    }
    Ok(roots)
}

/// The daemon's TLS: `None` without `--tls`/`--tlsverify`. Its certificate
/// and key are required; with `--tlsverify`, clients must present a
/// certificate the CA signed.
pub fn server_config(t: &TlsArgs) -> Result<Option<Arc<rustls::ServerConfig>>> {
    if !t.enabled() {
        return Ok(None);
    }
    let (cert, keyf) = (t.file(&t.tlscert, "cert.pem"), t.file(&t.tlskey, "key.pem"));
    let chain = certs(&cert, "TLS certificate (--tlscert)")?;
    let key = key(&keyf)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = if t.verify() {
        let ca = t.file(&t.tlscacert, "ca.pem");
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots(&ca)?),
            provider(),
        )
        .build()
        .with_context(|| format!("verifying clients with the CA {}", ca.display()))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let cfg = builder.with_single_cert(chain, key).with_context(|| {
        format!(
            "the TLS key {} does not go with the certificate {}",
            keyf.display(),
            cert.display()
        )
    })?;
    Ok(Some(Arc::new(cfg)))
}

/// The client's TLS: `None` without `--tls`/`--tlsverify`. With
/// `--tlsverify` the daemon's certificate must be signed by the CA and name
/// the host; with `--tls` alone it is not checked (docker's). A client
/// certificate is sent when one is given or found.
pub fn client_config(t: &TlsArgs) -> Result<Option<Arc<rustls::ClientConfig>>> {
    if !t.enabled() {
        return Ok(None);
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = if t.verify() {
        builder.with_root_certificates(roots(&t.file(&t.tlscacert, "ca.pem"))?)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer(provider())))
    };
    let (cert, keyf) = (t.file(&t.tlscert, "cert.pem"), t.file(&t.tlskey, "key.pem"));
    let given = t.tlscert.is_some() || t.tlskey.is_some();
    let cfg = if given || (cert.exists() && keyf.exists()) {
        let chain = certs(&cert, "TLS certificate (--tlscert)")?;
        builder
            .with_client_auth_cert(chain, key(&keyf)?)
            .with_context(|| {
                format!(
                    "the TLS key {} does not go with the certificate {}",
                    keyf.display(),
                    cert.display()
                )
            })?
    } else {
        builder.with_no_client_auth()
    };
    Ok(Some(Arc::new(cfg)))
}

/// The server name to verify for `HOST:PORT`.
pub fn server_name(addr: &str) -> Result<ServerName<'static>> {
    let host = addr
        .rsplit_once(':')
        .map_or(addr, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|e| anyhow!("{host:?} is not a host name TLS can verify: {e}"))
}

/// `--tls` without `--tlsverify`: any certificate the daemon shows is
/// taken (the handshake's signatures are still checked), as docker's.
#[derive(Debug)]
struct AnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
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
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
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

/// How long a client has to finish its handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// A TCP listener whose connections come out through TLS, for
/// `axum::serve`: handshakes run on tasks of their own (a slow or silent
/// client holds up no one), the failed ones are logged and dropped. The
/// port closes when the listener is dropped.
#[derive(Debug)]
pub struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, cfg: Arc<rustls::ServerConfig>) -> std::io::Result<TlsListener> {
        let addr = tcp.local_addr()?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = tcp.accept() => a,
                    _ = tx.closed() => break,
                };
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors and the like: try again shortly.
                        tracing::warn!("accepting on tcp://{addr}: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (tx, acceptor) = (tx.clone(), acceptor.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE, handshake(&acceptor, stream)).await {
                        Ok(Ok(s)) => {
                            let _ = tx.send((s, peer)).await;
                        }
                        Ok(Err(e)) => tracing::warn!("TLS handshake with {peer} failed: {e}"),
                        Err(_) => tracing::warn!("TLS handshake with {peer} timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { rx, addr })
    }
}

/// The TLS handshake; a client speaking plain HTTP is told so in plain
/// HTTP (as Go's servers do, so docker clients show the reason).
async fn handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    mut stream: TcpStream,
) -> std::io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    stream.peek(&mut first).await?;
    // Every TLS connection starts with a handshake record (type 22).
    if first[0] != 0x16 {
        let _ = stream
            .write_all(
                b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\n\r\n\
                  Client sent an HTTP request to an HTTPS server.\n",
            )
            .await;
        let _ = stream.shutdown().await;
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "plain HTTP on the TLS port",
        ));
    }
    acceptor.accept(stream).await
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accepting task ends only when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
