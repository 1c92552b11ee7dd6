//! TLS of the cluster channel when `--cluster-tls-cert/-key/-ca` are given: mutual TLS where
//! every node's certificate is signed by one cluster CA, on rustls with the ring provider.
//! The HMAC of calls and answers (auth.rs) stays on top; TLS adds secrecy and peer identity.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The only protocol spoken on the channel, offered by both sides so a stray client that
/// asks for another (h2 only) is refused at the handshake rather than misread.
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The three PEM files, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `--cluster-tls-cert`: this node's certificate, then any intermediates.
    pub cert: PathBuf,
    /// `--cluster-tls-key`: its private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub key: PathBuf,
    /// `--cluster-tls-ca`: the CA certificate(s) that sign every node's certificate.
    pub ca: PathBuf,
}

/// A PEM file that cannot serve, named by its flag and path so an operator knows which to fix.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {flag} ({path}): {reason}")]
pub struct TlsError {
    pub flag: &'static str,
    pub path: String,
    pub reason: String,
}

/// Both sides of the channel, built once at start.
#[derive(Clone)]
pub struct ClusterTls {
    /// The listener's side: requires a client certificate signed by the CA.
    pub server: Arc<ServerConfig>,
    /// The forwarder's side: presents this node's certificate, verifies the peer's against
    /// the CA and the host of the address the peer advertises.
    pub client: Arc<ClientConfig>,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterTls(..)")
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError {
        flag,
        path: path.display().to_string(),
        reason: format!("cannot read it: {e}"),
    })
}

fn certificates(flag: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError {
        flag,
        path: path.display().to_string(),
        reason,
    };
    let pem = read(flag, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(err(
            "no `BEGIN CERTIFICATE` block in it: give a PEM certificate file".into(),
        ));
    }
    Ok(certs)
}

fn private_key(flag: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(flag, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError {
        flag,
        path: path.display().to_string(),
        reason: format!(
            "no PEM private key in it (PKCS#8, RSA or EC): {}",
            match e {
                rustls::pki_types::pem::Error::NoItemsFound => "none found".to_string(),
                other => other.to_string(),
            }
        ),
    })
}

/// The host part of an advertised `host:port` (`[v6]:port` too), as a TLS server name.
pub fn server_name(advertise: &str) -> Option<ServerName<'static>> {
    let host = match advertise.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => advertise,
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(host.to_string()).ok()
}

impl ClusterTls {
    /// Reads the three files and checks, before the node joins, what peers will check: the
    /// certificate chains to the CA, matches the key, and names `advertise`'s host. A node
    /// that would be refused by every peer fails its start instead.
    pub fn load(files: &TlsFiles, advertise: &str) -> Result<ClusterTls, TlsError> {
        let chain = certificates("--cluster-tls-cert", &files.cert)?;
        let key = private_key("--cluster-tls-key", &files.key)?;
        let ca_certs = certificates("--cluster-tls-ca", &files.ca)?;
        let cert_err = |reason: String| TlsError {
            flag: "--cluster-tls-cert",
            path: files.cert.display().to_string(),
            reason,
        };
        let ca_err = |reason: String| TlsError {
            flag: "--cluster-tls-ca",
            path: files.ca.display().to_string(),
            reason,
        };

        let mut roots = RootCertStore::empty();
        for cert in ca_certs {
            roots
                .add(cert)
                .map_err(|e| ca_err(format!("not a usable CA certificate: {e}")))?;
        }
        let roots = Arc::new(roots);
        let provider = provider();
        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| ca_err(e.to_string()))?;
        let server_verifier =
            WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| ca_err(e.to_string()))?;

        let (leaf, intermediates) = chain
            .split_first()
            .ok_or_else(|| cert_err("no certificate in it".into()))?;
        let now = UnixTime::now();
        client_verifier
            .verify_client_cert(leaf, intermediates, now)
            .map_err(|e| {
                cert_err(format!(
                    "not accepted as a client certificate under --cluster-tls-ca {} ({e}): every \
                     node's certificate must be signed by that CA, be valid now, and allow \
                     clientAuth if it lists extended key usages",
                    files.ca.display()
                ))
            })?;
        let name = server_name(advertise).ok_or_else(|| {
            cert_err(format!(
                "the advertised address {advertise:?} has no host usable as a TLS name"
            ))
        })?;
        server_verifier
            .verify_server_cert(leaf, intermediates, &name, &[], now)
            .map_err(|e| {
                cert_err(format!(
                    "peers would refuse it for the advertised address {advertise} ({e}): give the \
                     certificate that host as a subjectAltName (IP or DNS) and serverAuth if it \
                     lists extended key usages, or --advertise a name it has"
                ))
            })?;

        let key_err = |e: rustls::Error| TlsError {
            flag: "--cluster-tls-key",
            path: files.key.display().to_string(),
            reason: format!(
                "unusable with the certificate in --cluster-tls-cert {}: {e}",
                files.cert.display()
            ),
        };
        let versions = |e: rustls::Error| TlsError {
            flag: "--cluster-tls-cert",
            path: files.cert.display().to_string(),
            reason: format!("no TLS version available: {e}"),
        };
        let mut server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(versions)?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(key_err)?;
        server.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
        let mut client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(versions)?
            .with_webpki_verifier(server_verifier)
            .with_client_auth_cert(chain, key)
            .map_err(key_err)?;
        // hyper-rustls sets the ALPN list itself and insists it starts empty.
        client.alpn_protocols = Vec::new();
        Ok(ClusterTls {
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }
}

/// The TLS error somewhere in `err`'s chain, looking inside I/O errors too (hyper and
/// tokio-rustls wrap it in `io::Error`s, whose `source()` skips the wrapped error).
pub fn tls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(t) = e.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(t) = tls_error(inner) {
                return Some(t);
            }
        }
        current = e.source();
    }
    None
}

/// At most one line per interval: a misconfigured peer fails every call, and a log line per
/// call would bury everything else.
pub(crate) struct Throttle {
    every: Duration,
    last: Mutex<Option<Instant>>,
}

impl Throttle {
    pub(crate) fn new(every: Duration) -> Self {
        Throttle {
            every,
            last: Mutex::new(None),
        }
    }

    /// Whether a line may be written now (and if so, starts a new interval).
    pub(crate) fn allow(&self) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_none_or(|t| now.duration_since(t) > self.every) {
            *last = Some(now);
            true
        } else {
            false
        }
    }
}

/// Certificates made on the fly for the tests of this module and client.rs.
#[cfg(test)]
pub(crate) mod test_pki {
    use super::TlsFiles;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };
    use std::path::PathBuf;

    pub(crate) struct Ca {
        pub(crate) pem: String,
        issuer: Issuer<'static, KeyPair>,
    }

    pub(crate) fn ca(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed");
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A node certificate for `sans`, and its key, as PEM.
    pub(crate) fn node(ca: &Ca, sans: &[&str]) -> (String, String) {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.subject_alt_names = sans
            .iter()
            .map(|s| match s.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*s).try_into().expect("dns name")),
            })
            .collect();
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &ca.issuer).expect("signed");
        (cert.pem(), key.serialize_pem())
    }

    pub(crate) struct Dir {
        pub(crate) dir: tempfile::TempDir,
    }

    impl Dir {
        pub(crate) fn new() -> Dir {
            Dir {
                dir: tempfile::tempdir().expect("dir"),
            }
        }
        pub(crate) fn file(&self, name: &str, text: &str) -> PathBuf {
            let p = self.dir.path().join(name);
            std::fs::write(&p, text).expect("write");
            p
        }
        pub(crate) fn files(&self, prefix: &str, ca: &Ca, cert: &str, key: &str) -> TlsFiles {
            TlsFiles {
                cert: self.file(&format!("{prefix}.crt"), cert),
                key: self.file(&format!("{prefix}.key"), key),
                ca: self.file(&format!("{prefix}-ca.crt"), &ca.pem),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_pki::{ca, node, Dir};
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn load_err(files: &TlsFiles, advertise: &str) -> TlsError {
        ClusterTls::load(files, advertise).expect_err("refused")
    }

    #[test]
    fn loads_a_node_certificate_for_its_advertised_host() {
        let dir = Dir::new();
        let ca = ca("cluster ca");
        let (cert, key) = node(&ca, &["127.0.0.1", "node1.internal"]);
        let files = dir.files("n1", &ca, &cert, &key);
        ClusterTls::load(&files, "127.0.0.1:7000").expect("ip SAN");
        ClusterTls::load(&files, "node1.internal:7000").expect("dns SAN");
    }

    #[test]
    fn unreadable_and_invalid_files_name_their_flag_and_path() {
        let dir = Dir::new();
        let ca = ca("cluster ca");
        let (cert, key) = node(&ca, &["127.0.0.1"]);
        let good = dir.files("n1", &ca, &cert, &key);

        let missing = TlsFiles {
            cert: dir.dir.path().join("absent.crt"),
            ..good.clone()
        };
        let e = load_err(&missing, "127.0.0.1:7000");
        assert_eq!(e.flag, "--cluster-tls-cert");
        assert!(e.to_string().contains("absent.crt"), "{e}");
        assert!(e.to_string().contains("cannot read"), "{e}");

        let not_pem = TlsFiles {
            ca: dir.file("garbage.pem", "hello\n"),
            ..good.clone()
        };
        let e = load_err(&not_pem, "127.0.0.1:7000");
        assert_eq!(e.flag, "--cluster-tls-ca");
        assert!(e.to_string().contains("garbage.pem"), "{e}");
        assert!(e.to_string().contains("BEGIN CERTIFICATE"), "{e}");

        let broken = TlsFiles {
            cert: dir.file(
                "broken.crt",
                "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
            ),
            ..good.clone()
        };
        let e = load_err(&broken, "127.0.0.1:7000");
        assert_eq!(e.flag, "--cluster-tls-cert");
        assert!(e.to_string().contains("broken.crt"), "{e}");

        let key_is_cert = TlsFiles {
            key: good.cert.clone(),
            ..good.clone()
        };
        let e = load_err(&key_is_cert, "127.0.0.1:7000");
        assert_eq!(e.flag, "--cluster-tls-key");
        assert!(e.to_string().contains("no PEM private key"), "{e}");

        let (_, other_key) = node(&ca, &["127.0.0.1"]);
        let wrong_key = TlsFiles {
            key: dir.file("other.key", &other_key),
            ..good.clone()
        };
        let e = load_err(&wrong_key, "127.0.0.1:7000");
        assert_eq!(e.flag, "--cluster-tls-key");
        assert!(e.to_string().contains("n1.crt"), "{e}");
    }

    #[test]
    fn a_certificate_peers_would_refuse_fails_the_start() {
        let dir = Dir::new();
        let ca1 = ca("cluster ca");
        let ca2 = ca("another ca");
        let (cert, key) = node(&ca2, &["127.0.0.1"]);
        let foreign = TlsFiles {
            ca: dir.file("ca1.crt", &ca1.pem),
            ..dir.files("n1", &ca2, &cert, &key)
        };
        let e = load_err(&foreign, "127.0.0.1:7000");
        assert_eq!(e.flag, "--cluster-tls-cert");
        assert!(e.to_string().contains("ca1.crt"), "{e}");

        let (cert, key) = node(&ca1, &["127.0.0.2"]);
        let files = dir.files("n2", &ca1, &cert, &key);
        let e = load_err(&files, "127.0.0.1:7000");
        assert_eq!(e.flag, "--cluster-tls-cert");
        assert!(e.to_string().contains("subjectAltName"), "{e}");
    }

    #[test]
    fn server_names_come_from_the_advertised_host() {
        assert_eq!(
            server_name("10.0.1.21:7000").map(|n| n.to_str().into_owned()),
            Some("10.0.1.21".into())
        );
        assert_eq!(
            server_name("[::1]:7000").map(|n| n.to_str().into_owned()),
            Some("::1".into())
        );
        assert_eq!(
            server_name("api-1.internal:7000").map(|n| n.to_str().into_owned()),
            Some("api-1.internal".into())
        );
        assert!(server_name("bad host:7000").is_none());
    }

    /// One exchange over loopback: the client's handshake and a line echoed back; Err with
    /// the rustls error the client saw.
    async fn exchange(
        server: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
        name: &str,
    ) -> Result<(), String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let acceptor = tokio_rustls::TlsAcceptor::from(server);
        let served = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
            let mut buf = [0u8; 5];
            tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            tls.write_all(&buf).await.map_err(|e| e.to_string())?;
            tls.shutdown().await.map_err(|e| e.to_string())
        });
        let connector = tokio_rustls::TlsConnector::from(client);
        let name = ServerName::try_from(name.to_string()).expect("name");
        let result = async {
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| e.to_string())?;
            let mut tls = connector
                .connect(name, tcp)
                .await
                .map_err(|e| describe(&e))?;
            tls.write_all(b"hello").await.map_err(|e| describe(&e))?;
            let mut buf = [0u8; 5];
            tls.read_exact(&mut buf).await.map_err(|e| describe(&e))?;
            assert_eq!(&buf, b"hello");
            Ok(())
        }
        .await;
        served.abort();
        result
    }

    fn describe(e: &std::io::Error) -> String {
        match tls_error(e) {
            Some(t) => format!("tls: {t:?}"),
            None => format!("io: {e}"),
        }
    }

    #[tokio::test]
    async fn nodes_of_one_ca_talk_and_others_are_refused_at_the_handshake() {
        let dir = Dir::new();
        let ca1 = ca("cluster ca");
        let (c1, k1) = node(&ca1, &["127.0.0.1"]);
        let (c2, k2) = node(&ca1, &["127.0.0.1"]);
        let n1 = ClusterTls::load(&dir.files("n1", &ca1, &c1, &k1), "127.0.0.1:1").expect("n1");
        let n2 = ClusterTls::load(&dir.files("n2", &ca1, &c2, &k2), "127.0.0.1:1").expect("n2");
        exchange(n1.server.clone(), n2.client.clone(), "127.0.0.1")
            .await
            .expect("two nodes of one CA");

        // The client checks the host: a certificate for 127.0.0.1 does not serve as 127.0.0.2.
        let e = exchange(n1.server.clone(), n2.client.clone(), "127.0.0.2")
            .await
            .expect_err("wrong host");
        assert!(e.contains("NotValidForName"), "{e}");

        // A node of another CA: refused by the server (its client certificate) and by the
        // client (the server's certificate).
        let ca2 = ca("another ca");
        let (c3, k3) = node(&ca2, &["127.0.0.1"]);
        let n3 = ClusterTls::load(&dir.files("n3", &ca2, &c3, &k3), "127.0.0.1:1").expect("n3");
        let e = exchange(n1.server.clone(), n3.client.clone(), "127.0.0.1")
            .await
            .expect_err("foreign node dialling");
        assert!(e.starts_with("tls:"), "{e}");
        let e = exchange(n3.server.clone(), n1.client.clone(), "127.0.0.1")
            .await
            .expect_err("foreign node answering");
        assert!(e.contains("UnknownIssuer"), "{e}");

        // A client with no certificate at all.
        let mut roots = RootCertStore::empty();
        for c in certificates("ca", &dir.dir.path().join("n1-ca.crt")).expect("ca") {
            roots.add(c).expect("root");
        }
        let anonymous = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let e = exchange(n1.server.clone(), Arc::new(anonymous), "127.0.0.1")
            .await
            .expect_err("no client certificate");
        assert!(e.contains("CertificateRequired"), "{e}");
    }

    #[test]
    fn throttle_allows_one_line_per_interval() {
        let t = Throttle::new(Duration::from_secs(60));
        assert!(t.allow());
        assert!(!t.allow());
    }
}
