//! The cluster channel with `--cluster-tls-cert/-key/-ca` (SPEC §9, docs/cluster.md): three
//! nodes with certificates of one CA form one service over mutual TLS (a token made on one
//! node is active on every node, forwarded calls succeed), while the cluster listener answers
//! nothing to plain HTTP, refuses at the handshake a client with no certificate or one of
//! another CA, and still refuses (401) an unsigned call from a client the CA did sign: the MAC
//! stays on top of TLS. A node whose certificate files are unreadable, or do not name the host
//! it advertises, fails its start with a message naming the flag and the file.
//!
//! Runs in the first `cargo test` pass of `scripts/check` only, like the other cluster tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use commonrock_tests::cluster::{on, shared_project, should_run, text, Cluster};
use commonrock_tests::{binary, eventually, metric, NodeOptions, Project};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use reqwest::Method;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// PEM files made for this run: `ca.crt`, `n{i}.crt`/`n{i}.key` for the nodes (subjectAltName
/// 127.0.0.1 and localhost), `other-ca.crt` and `stranger.crt`/`.key` signed by that other CA,
/// and `wrong-host.crt`/`.key` from the cluster CA for 127.0.0.2 only.
struct Pki {
    dir: tempfile::TempDir,
}

fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().expect("ca key");
    let cert = params.self_signed(&key).expect("ca certificate");
    (cert.pem(), Issuer::new(params, key))
}

/// A node certificate for `sans` (IP addresses or DNS names) and its key, as PEM.
fn leaf(issuer: &Issuer<'static, KeyPair>, name: &str, sans: &[&str]) -> (String, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.subject_alt_names = sans
        .iter()
        .map(|s| match s.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName((*s).try_into().expect("dns name")),
        })
        .collect();
    // One certificate serves both directions: the node's listener and its forwarder.
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, issuer).expect("signed");
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    fn new(nodes: usize) -> Pki {
        let dir = tempfile::tempdir().expect("pki dir");
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).expect("write pem");
        };
        let (ca_pem, issuer) = ca("commonrock test cluster ca");
        write("ca.crt", &ca_pem);
        for i in 1..=nodes {
            let (cert, key) = leaf(&issuer, &format!("n{i}"), &["127.0.0.1", "localhost"]);
            write(&format!("n{i}.crt"), &cert);
            write(&format!("n{i}.key"), &key);
        }
        let (cert, key) = leaf(&issuer, "wrong-host", &["127.0.0.2"]);
        write("wrong-host.crt", &cert);
        write("wrong-host.key", &key);
        let (other_pem, other) = ca("another ca");
        write("other-ca.crt", &other_pem);
        let (cert, key) = leaf(&other, "stranger", &["127.0.0.1"]);
        write("stranger.crt", &cert);
        write("stranger.key", &key);
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A TLS client trusting the cluster CA, presenting `identity` (`n1`, `stranger`) or no
    /// certificate.
    fn client(&self, identity: Option<&str>) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(self.path("ca.crt")).expect("ca.crt") {
            roots.add(c.expect("ca pem")).expect("ca root");
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("tls versions")
        .with_root_certificates(roots);
        match identity {
            None => builder.with_no_client_auth(),
            Some(name) => {
                let chain = CertificateDer::pem_file_iter(self.path(&format!("{name}.crt")))
                    .expect("cert file")
                    .collect::<Result<Vec<_>, _>>()
                    .expect("cert pem");
                let key = PrivateKeyDer::from_pem_file(self.path(&format!("{name}.key")))
                    .expect("key pem");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client identity")
            }
        }
    }
}

/// The value after `flag` in a node's arguments.
fn arg_after(opts: &NodeOptions, flag: &str) -> Option<String> {
    opts.args.iter().skip_while(|a| *a != flag).nth(1).cloned()
}

fn tls_flags(opts: NodeOptions, dir: &Path, cert: &str, key: &str, ca: &str) -> NodeOptions {
    opts.arg("--cluster-tls-cert")
        .arg(dir.join(cert).display().to_string())
        .arg("--cluster-tls-key")
        .arg(dir.join(key).display().to_string())
        .arg("--cluster-tls-ca")
        .arg(dir.join(ca).display().to_string())
}

/// The TLS error inside an I/O error, if that is what it is.
fn tls_cause(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref())
}

/// Connects to a cluster listener as a TLS client and, without sending anything, waits for
/// what the server does: the error (a TLS alert) when it refuses the handshake, or
/// `Err("accepted")` when it waits for a request instead.
async fn handshake_refusal(addr: &str, client: rustls::ClientConfig) -> Result<String, String> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let describe = |e: std::io::Error| match tls_cause(&e) {
        Some(t) => format!("tls: {t}"),
        None => format!("io: {e}"),
    };
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("tcp connect: {e}"))?;
        // TLS 1.3: the client's side of the handshake completes before the server has judged
        // its certificate, so the refusal arrives as an alert on the first read.
        let mut tls = match connector.connect(name, tcp).await {
            Ok(t) => t,
            Err(e) => return Ok(describe(e)),
        };
        let mut buf = [0u8; 256];
        match tls.read(&mut buf).await {
            Err(e) => Ok(describe(e)),
            Ok(0) => Ok("closed without a TLS alert".to_string()),
            Ok(n) => Err(format!(
                "the listener sent data: {:?}",
                String::from_utf8_lossy(&buf[..n])
            )),
        }
    };
    match tokio::time::timeout(Duration::from_secs(10), attempt).await {
        Ok(r) => r,
        Err(_) => Err("accepted: the handshake succeeded and the listener waits".into()),
    }
}

/// An unsigned owner call over TLS with `client`'s certificate: the status line answered.
async fn unsigned_call(addr: &str, client: rustls::ClientConfig) -> String {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("tcp");
        let mut tls = connector.connect(name, tcp).await.expect("handshake");
        tls.write_all(
            b"POST /cluster/v1/owner HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
        )
        .await
        .expect("write");
        let mut answer = Vec::new();
        tls.read_to_end(&mut answer).await.expect("read");
        String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("an answer within 10 s")
}

/// Runs the binary as a cluster node on `cluster`'s keyspace with `tls` (cert, key, CA file
/// names in `pki`) and expects it to fail its start: its stderr.
async fn failed_start(cluster: &Cluster, pki: &Pki, tls: [&str; 3]) -> String {
    let dir = tempfile::tempdir().expect("node dir");
    let [cert, key, ca] = tls.map(|f| pki.path(f).display().to_string());
    let run = tokio::process::Command::new(binary())
        .arg("serve")
        .args(["--store", "scylla", "--scylla-nodes", &cluster.cql_nodes])
        .args(["--keyspace", &cluster.keyspace])
        .arg("--secret-file")
        .arg(&cluster.secret)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0", "--cluster-listen", "127.0.0.1:0"])
        .args(["--node-id", "tls-misconfigured"])
        .args(["--cluster-tls-cert", &cert, "--cluster-tls-key", &key])
        .args(["--cluster-tls-ca", &ca])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("a misconfigured node exits within 60 s")
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "it must not start: {stderr}");
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_channel_is_mutual_tls_when_certificates_are_configured() {
    if !should_run("cluster_tls") {
        return;
    }
    let pki = Pki::new(3);
    let pki_dir = pki.dir.path().to_path_buf();
    let cluster = Cluster::start(3, move |o| {
        let id = arg_after(&o, "--node-id").expect("cluster nodes have an id");
        tls_flags(
            o,
            &pki_dir,
            &format!("{id}.crt"),
            &format!("{id}.key"),
            "ca.crt",
        )
    })
    .await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    for node in &cluster.nodes {
        let seen = eventually(Duration::from_secs(20), || async {
            let (status, body) = node.admin(Method::GET, "/cluster", None).await;
            assert_eq!(status, 200, "{body}");
            let members = body["members"].as_array().cloned().unwrap_or_default();
            (members.len() == 3 && members.iter().all(|m| m["status"] == "up")).then_some(())
        })
        .await;
        assert!(seen.is_some(), "{} sees three members up", node.base);
    }

    // Tokens made through every node are active through every node: each owner answers the
    // other nodes' forwarded calls over TLS.
    let project = shared_project(&cluster, json!({})).await;
    let nodes: Vec<Project> = cluster.nodes.iter().map(|n| on(n, &project)).collect();
    let mut tokens = Vec::new();
    for i in 0..9 {
        let s = nodes[i % 3]
            .signup(&format!("tls-user-{i}"), "password123")
            .await;
        assert_eq!(s.status, 201, "{:?}", s.body);
        tokens.push(text(&s, "access_token"));
    }
    for (i, token) in tokens.iter().enumerate() {
        for p in &nodes {
            let a = p.introspect(token).await;
            assert_eq!(a.status, 200, "{}: {:?}", p.base, a.body);
            assert_eq!(
                a.body["active"],
                true,
                "token {i} (made on n{}) through {}",
                i % 3 + 1,
                p.base
            );
        }
    }
    // A logout through another node ends the session on every node at once (a forwarded
    // write to its owner).
    let out = nodes[1].logout(&tokens[0]).await;
    assert_eq!(out.status, 200, "{:?}", out.body);
    for p in &nodes {
        assert_eq!(p.introspect(&tokens[0]).await.body["active"], false);
    }
    let mut forwarded = 0.0;
    let mut unavailable = 0.0;
    for node in &cluster.nodes {
        forwarded += metric(node, "commonrock_forwards_total{outcome=\"ok\"}").await;
        unavailable += metric(node, "commonrock_forwards_total{outcome=\"unavailable\"}").await;
    }
    assert!(
        forwarded >= 1.0,
        "27 introspections over 3 owners forward some calls"
    );
    assert_eq!(unavailable, 0.0, "no forward failed");

    let n1 = &cluster.nodes[0];
    let addr = n1
        .cluster_addr
        .clone()
        .expect("n1 reports its cluster address");

    // (a) Plain HTTP to the cluster listener gets no HTTP answer at all.
    let plain = reqwest::Client::new()
        .post(format!("http://{addr}/cluster/v1/owner"))
        .header("content-type", "application/json")
        .body("{}")
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    match plain {
        Err(e) => assert!(!e.is_timeout(), "refused at once, not left waiting: {e}"),
        Ok(r) => panic!("plain HTTP got an HTTP answer: {}", r.status()),
    }
    let logged = eventually(Duration::from_secs(10), || async {
        n1.logs()
            .contains("refused a cluster connection at the TLS handshake")
            .then_some(())
    })
    .await;
    assert!(
        logged.is_some(),
        "n1 logs the refused handshake:\n{}",
        n1.logs()
    );

    // (b) TLS clients without a certificate of the cluster CA are refused at the handshake.
    let anonymous = handshake_refusal(&addr, pki.client(None))
        .await
        .expect("no client certificate: refused");
    assert!(anonymous.starts_with("tls:"), "{anonymous}");
    let stranger = handshake_refusal(&addr, pki.client(Some("stranger")))
        .await
        .expect("a certificate of another CA: refused");
    assert!(stranger.starts_with("tls:"), "{stranger}");
    eprintln!("refusals: no certificate → {anonymous}; another CA → {stranger}");

    // A client the CA did sign completes the handshake, and an unsigned call is still refused
    // by the MAC check above TLS.
    let status = unsigned_call(&addr, pki.client(Some("n2"))).await;
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");

    // Misconfigured nodes fail their start, naming the flag and the file.
    let e = failed_start(&cluster, &pki, ["absent.crt", "n1.key", "ca.crt"]).await;
    assert!(
        e.contains("--cluster-tls-cert") && e.contains("absent.crt") && e.contains("cannot read"),
        "{e}"
    );
    let e = failed_start(&cluster, &pki, ["n1.crt", "n1.crt", "ca.crt"]).await;
    assert!(
        e.contains("--cluster-tls-key") && e.contains("n1.crt") && e.contains("no PEM private key"),
        "{e}"
    );
    let e = failed_start(
        &cluster,
        &pki,
        ["wrong-host.crt", "wrong-host.key", "ca.crt"],
    )
    .await;
    assert!(
        e.contains("--cluster-tls-cert") && e.contains("wrong-host.crt") && e.contains("127.0.0.1"),
        "{e}"
    );
    let e = failed_start(&cluster, &pki, ["stranger.crt", "stranger.key", "ca.crt"]).await;
    assert!(
        e.contains("--cluster-tls-cert") && e.contains("stranger.crt") && e.contains("ca.crt"),
        "{e}"
    );

    // The misconfigured nodes never joined: the ring is still the three nodes.
    let (status, body) = n1.admin(Method::GET, "/cluster", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["members"].as_array().map(Vec::len), Some(3), "{body}");
}
