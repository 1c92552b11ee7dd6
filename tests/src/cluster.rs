//! Clusters for the black-box tests: n nodes on one CQL keyspace sharing one server secret, and
//! nginx running the documented `docs/operations/nginx.conf` in front of them.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::{random_b64, test_keyspace, Answer, Node, NodeOptions, Project};

/// The CQL server a cluster runs on: `COMMONROCK_TEST_CQL_NODES`, whatever
/// `COMMONROCK_TEST_STORE` says (nodes of one cluster share their store, so it is never embedded).
pub fn cql_server() -> Option<String> {
    std::env::var("COMMONROCK_TEST_CQL_NODES")
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// The nginx binary: `$COMMONROCK_TEST_NGINX` (set by `scripts/check`), else `nginx` on the
/// PATH, else Debian's `/usr/sbin/nginx` (not on an ordinary user's PATH).
pub fn nginx_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("COMMONROCK_TEST_NGINX").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nginx"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let debian = PathBuf::from("/usr/sbin/nginx");
        debian.is_file().then_some(debian)
    })
}

/// The documented configuration, read from the repository at run time.
pub fn nginx_conf_template() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("docs")
        .join("operations")
        .join("nginx.conf")
}

/// Renders the documented configuration as its header tells operators to: `@LISTEN@` replaced
/// by `listen`, and the `server` line marked `@UPSTREAM_SERVERS@` copied once per upstream with
/// `@NODE@` replaced by its `host:port` (an `http://` prefix is dropped).
pub fn render_nginx_conf(template: &str, listen: &str, upstreams: &[String]) -> String {
    assert!(!upstreams.is_empty(), "nginx needs at least one upstream");
    let is_server_line = |l: &str| l.contains("@UPSTREAM_SERVERS@") && !l.trim().starts_with('#');
    let server_lines = template.lines().filter(|l| is_server_line(l)).count();
    assert_eq!(
        server_lines, 1,
        "docs/operations/nginx.conf has exactly one `server` line marked @UPSTREAM_SERVERS@"
    );
    assert!(
        template
            .lines()
            .any(|l| l.contains("@LISTEN@") && !l.trim().starts_with('#')),
        "docs/operations/nginx.conf has a `listen @LISTEN@;` line"
    );
    let mut out = String::with_capacity(template.len() + 64 * upstreams.len());
    for line in template.lines() {
        if is_server_line(line) {
            for upstream in upstreams {
                let addr = upstream.trim_start_matches("http://").trim_end_matches('/');
                out.push_str(&line.replace("@NODE@", addr));
                out.push('\n');
            }
        } else if line.trim().starts_with('#') {
            out.push_str(line);
            out.push('\n');
        } else {
            out.push_str(&line.replace("@LISTEN@", listen));
            out.push('\n');
        }
    }
    out
}

fn free_loopback_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// nginx in the foreground with the documented configuration, in a temporary prefix; stopped
/// (SIGTERM, then SIGKILL) when dropped.
pub struct Nginx {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The prefix: `nginx.conf` as rendered, `access.log`, `error.log`, `stderr.log`.
    pub dir: PathBuf,
    child: Child,
    _tmp: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx balancing over `upstreams` (node base URLs or `host:port`). The rendered
    /// file is checked with `nginx -t` first, so a broken doc fails with nginx's own message.
    pub fn start(upstreams: &[String]) -> Nginx {
        let bin = nginx_binary().expect(
            "nginx not found: scripts/check installs it; or `apt-get install nginx`, or set \
             COMMONROCK_TEST_NGINX",
        );
        let template = std::fs::read_to_string(nginx_conf_template())
            .expect("docs/operations/nginx.conf is readable");
        // Another process may take the free port before nginx binds it: then try another.
        for attempt in 1..=3 {
            let tmp = tempfile::tempdir().expect("nginx prefix dir");
            let dir = tmp.path().to_path_buf();
            // Run as root, nginx's workers run as `nobody` and must reach their temp paths.
            {
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                    .expect("chmod the nginx prefix");
            }
            let listen = format!("127.0.0.1:{}", free_loopback_port());
            let conf_text = render_nginx_conf(&template, &listen, upstreams);
            let conf = dir.join("nginx.conf");
            std::fs::write(&conf, &conf_text).expect("write nginx.conf");
            let nginx = |extra: &[&str]| {
                let mut cmd = Command::new(&bin);
                cmd.arg("-p").arg(&dir).arg("-c").arg(&conf).args(extra);
                cmd
            };

            let test = nginx(&["-t"]).output().expect("nginx -t runs");
            assert!(
                test.status.success(),
                "nginx rejects docs/operations/nginx.conf as rendered:\n{}\n--- rendered ---\n{conf_text}",
                String::from_utf8_lossy(&test.stderr)
            );

            let stderr = std::fs::File::create(dir.join("stderr.log")).expect("stderr.log");
            let mut child = nginx(&["-g", "daemon off;"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(stderr))
                .spawn()
                .expect("nginx starts");
            let deadline = Instant::now() + Duration::from_secs(15);
            let exited = loop {
                if let Some(status) = child.try_wait().expect("nginx status") {
                    break Some(status);
                }
                if TcpStream::connect(&listen).is_ok() {
                    break None;
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "nginx did not listen on {listen} within 15 s:\n{}",
                        read_logs(&dir)
                    );
                }
                std::thread::sleep(Duration::from_millis(25));
            };
            match exited {
                None => {
                    return Nginx {
                        base: format!("http://{listen}"),
                        dir,
                        child,
                        _tmp: tmp,
                    }
                }
                Some(status) => {
                    let logs = read_logs(&dir);
                    if attempt < 3 && logs.contains("Address already in use") {
                        continue;
                    }
                    panic!("nginx exited ({status}) before listening on {listen}:\n{logs}");
                }
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// nginx's stderr, error log and access log (which names the nodes each request was tried
    /// on).
    pub fn logs(&self) -> String {
        read_logs(&self.dir)
    }
}

fn read_logs(dir: &Path) -> String {
    ["stderr.log", "error.log", "access.log"]
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
            format!("--- nginx {name} ---\n{text}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        // SIGTERM: the master stops its workers too (a SIGKILLed master would leave them).
        signal(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the nodes of a cluster talk to each other.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// `--cluster-lease-ms`: how long a node's membership lasts without renewal.
    pub lease_ms: u64,
    /// `--cluster-poll-ms`: how often a node reads the ring.
    pub poll_ms: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            lease_ms: 2000,
            poll_ms: 200,
        }
    }
}

type OptionsFn = Box<dyn Fn(NodeOptions) -> NodeOptions + Send + Sync>;

/// Nodes `n1`..`nN` on one CQL server, in a keyspace of their own, with one server secret.
pub struct Cluster {
    pub nodes: Vec<Node>,
    /// The shared server-secret file (each node copies it into its own directory).
    pub secret: PathBuf,
    pub keyspace: String,
    /// The CQL contact points.
    pub cql_nodes: String,
    pub settings: ClusterSettings,
    options: OptionsFn,
    _dir: tempfile::TempDir,
}

/// A keyspace no other cluster uses, this run or an earlier one on the same server (a ring left
/// over from a killed run must not be joined): `cr_<test binary>_<8 hex>`, at most 48 chars.
fn cluster_keyspace() -> String {
    let base = test_keyspace();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{}_{}", &base[..base.len().min(39)], &suffix[..8])
}

impl Cluster {
    /// `n` nodes with the cluster flags of `ClusterSettings::default()`; `options` adjusts each
    /// node's options (extra flags, environment) and is kept for `add_node`.
    pub async fn start(
        n: usize,
        options: impl Fn(NodeOptions) -> NodeOptions + Send + Sync + 'static,
    ) -> Cluster {
        Self::start_with(n, ClusterSettings::default(), options).await
    }

    pub async fn start_with(
        n: usize,
        settings: ClusterSettings,
        options: impl Fn(NodeOptions) -> NodeOptions + Send + Sync + 'static,
    ) -> Cluster {
        assert!(n >= 1, "a cluster has at least one node");
        let cql_nodes = cql_server().expect(
            "a cluster needs a CQL server: run `scripts/check`, or \
             `eval \"$(scripts/cql-server start)\"`",
        );
        let dir = tempfile::tempdir().expect("cluster dir");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, format!("k1={}\n", random_b64(32))).expect("secret file");
        let mut cluster = Cluster {
            nodes: Vec::with_capacity(n),
            secret,
            keyspace: cluster_keyspace(),
            cql_nodes,
            settings,
            options: Box::new(options),
            _dir: dir,
        };
        // The first node creates the keyspace and its schema alone; the others then start
        // together.
        let first = Node::start_with(cluster.node_options(1)).await;
        cluster.nodes.push(first);
        let rest = join_all((2..=n).map(|i| Node::start_with(cluster.node_options(i)))).await;
        cluster.nodes.extend(rest);
        cluster
    }

    /// The options of node `n{i}`.
    fn node_options(&self, i: usize) -> NodeOptions {
        let opts = NodeOptions::default()
            .cql(self.cql_nodes.clone(), self.keyspace.clone())
            .secret_file(&self.secret)
            .arg("--node-id")
            .arg(format!("n{i}"))
            .arg("--cluster-listen")
            .arg("127.0.0.1:0")
            .arg("--cluster-lease-ms")
            .arg(self.settings.lease_ms.to_string())
            .arg("--cluster-poll-ms")
            .arg(self.settings.poll_ms.to_string());
        (self.options)(opts)
    }

    /// Starts one more node (`n{len + 1}`) with the same settings and options.
    pub async fn add_node(&mut self) -> &mut Node {
        let node = Node::start_with(self.node_options(self.nodes.len() + 1)).await;
        self.nodes.push(node);
        self.nodes.last_mut().expect("just pushed")
    }

    /// Every node's base URL, in node order.
    pub fn bases(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.base.clone()).collect()
    }

    /// Waits until `/readyz` answers 200 on every node (all must be running), or panics at
    /// `timeout` with the last answer of the node that was not ready.
    pub async fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for (i, node) in self.nodes.iter().enumerate() {
            loop {
                let res = node
                    .http
                    .get(node.url("/readyz"))
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
                let last = match res {
                    Ok(r) if r.status().as_u16() == 200 => break,
                    Ok(r) => format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
                    Err(e) => e.to_string(),
                };
                assert!(
                    Instant::now() < deadline,
                    "node n{} ({}) not ready within {timeout:?}: {last}",
                    i + 1,
                    node.base
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

impl Drop for Cluster {
    /// Stops the nodes, then drops the cluster's keyspace: a test server that keeps every run's
    /// keyspaces runs out of its 1 GiB heap after a few dozen local runs.
    fn drop(&mut self) {
        self.nodes.clear();
        let nodes = self.cql_nodes.clone();
        let keyspace = self.keyspace.clone();
        // Drop runs inside the test's runtime, which cannot block on a second one.
        let dropped = std::thread::spawn(move || drop_keyspace(&nodes, &keyspace)).join();
        if let Ok(Err(e)) = dropped {
            eprintln!("cluster keyspace {} left on the server: {e}", self.keyspace);
        }
    }
}

fn drop_keyspace(nodes: &str, keyspace: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let work = async {
            let session = scylla::client::session_builder::SessionBuilder::new()
                .known_nodes(nodes.split(','))
                .build()
                .await
                .map_err(|e| e.to_string())?;
            session
                .query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), ())
                .await
                .map_err(|e| e.to_string())?;
            Ok(())
        };
        tokio::time::timeout(Duration::from_secs(30), work)
            .await
            .map_err(|_| "timed out".to_string())?
    })
}

impl Node {
    /// The node process's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// SIGSTOP: the process is frozen (no heartbeats, no answers) until `resume`, as in a long
    /// GC-like pause or a VM stall.
    pub fn pause(&self) {
        signal(self.pid().expect("node running"), "STOP");
    }

    /// SIGCONT after `pause`.
    pub fn resume(&self) {
        signal(self.pid().expect("node running"), "CONT");
    }
}

impl Cluster {
    /// A node `n{id}` on this cluster's keyspace with the same cluster flags and options but a
    /// server secret of its own (not one of `nodes`).
    pub async fn start_foreign_node(&self, id: usize) -> Node {
        let mut opts = self.node_options(id);
        opts.secret_file = None;
        Node::start_with(opts).await
    }
}

/// Whether a cluster test runs here: skipped in the `COMMONROCK_TEST_STORE=scylla` pass (its
/// nodes are on CQL in every pass, and `scripts/check` runs it in the first one) and, outside
/// CI, without a CQL server.
pub fn should_run(test: &str) -> bool {
    if std::env::var("COMMONROCK_TEST_STORE").as_deref() == Ok("scylla") {
        eprintln!("{test}: skipped with COMMONROCK_TEST_STORE=scylla: it ran in the first pass");
        return false;
    }
    if cql_server().is_none() {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
        assert!(
            !ci,
            "{test} needs COMMONROCK_TEST_CQL_NODES in CI (scripts/check exports it)"
        );
        eprintln!("{test}: skipped: needs a CQL server (`eval \"$(scripts/cql-server start)\"`)");
        return false;
    }
    true
}

/// `p` spoken to on `node` directly.
pub fn on(node: &Node, p: &Project) -> Project {
    Project {
        base: node.url(&format!("/{}", p.slug)),
        ..p.clone()
    }
}

/// A string field of an answer's body.
pub fn text(a: &Answer, field: &str) -> String {
    a.body[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {:?}", a.body))
        .to_string()
}

/// A project created on the first node with `settings`, once every node has seen it.
pub async fn shared_project(cluster: &Cluster, settings: serde_json::Value) -> Project {
    let p = cluster.nodes[0].project(settings).await;
    for node in &cluster.nodes {
        let q = on(node, &p);
        let seen = crate::eventually(std::time::Duration::from_secs(20), || {
            let q = q.clone();
            async move { (q.introspect("cr_at_nothing").await.status == 200).then_some(()) }
        })
        .await;
        assert!(seen.is_some(), "{} sees the project", node.base);
    }
    p
}
