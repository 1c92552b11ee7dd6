//! The black-box test harness: locates (or builds) the `commonrock` binary, starts nodes on
//! port 0 with their own data directories, reads the address they report, and can kill
//! (`SIGKILL`), stop (`SIGTERM`) and restart them. Later issues reuse it for clusters.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub use reqwest;
pub use serde_json;

pub mod cluster;

/// The password `commonrock admin seed-sessions` gives its end users.
pub const SEEDED_PASSWORD: &str = "seeded-password-123";

/// Origin every test client allows.
pub const ORIGIN: &str = "https://app.example.com";

/// The `commonrock` binary: `$COMMONROCK_BIN`, else the workspace's debug build, built once.
pub fn binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("COMMONROCK_BIN") {
            return PathBuf::from(p);
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("tests/ lives in the workspace")
            .to_path_buf();
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root.join("target"));
        // Always ask cargo: it is a no-op when the binary is fresh, and a stale binary would
        // test old code.
        let status = std::process::Command::new(env!("CARGO"))
            .args([
                "build",
                "-q",
                "-p",
                "commonrock-node",
                "--bin",
                "commonrock",
            ])
            .current_dir(&root)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building commonrock failed");
        target.join("debug").join("commonrock")
    })
    .clone()
}

/// The store the black-box suite runs against: `COMMONROCK_TEST_STORE=scylla` runs every
/// node on the CQL server at `COMMONROCK_TEST_CQL_NODES` (started by `scripts/cql-server`).
pub fn cql_nodes() -> Option<String> {
    match std::env::var("COMMONROCK_TEST_STORE").as_deref() {
        Ok("scylla") => Some(std::env::var("COMMONROCK_TEST_CQL_NODES").expect(
            "COMMONROCK_TEST_STORE=scylla needs COMMONROCK_TEST_CQL_NODES (run scripts/cql-server start)",
        )),
        _ => None,
    }
}

/// One keyspace per test binary (DDL is slow on small machines); tests inside it are isolated
/// by project slug.
pub fn test_keyspace() -> String {
    let exe = std::env::current_exe().expect("test binary path");
    let stem = exe
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("tests")
        .to_string();
    // Cargo names test binaries `<name>-<hash>`.
    let name = stem.rsplit_once('-').map_or(stem.as_str(), |(n, _)| n);
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!("cr_{clean}")
}

/// Demo credentials printed by `serve --dev`.
#[derive(Clone, Debug, Default)]
pub struct DevCredentials {
    pub client_id: String,
    pub client_key: String,
    pub secret_key: String,
    pub admin_token: Option<String>,
}

/// How to start a node; `start` launches it.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub dev: bool,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub rust_log: String,
    /// Run on this CQL server and keyspace whatever `COMMONROCK_TEST_STORE` says.
    pub cql: Option<(String, String)>,
    /// Use this server-secret file instead of a fresh one (nodes sharing a store must share
    /// their secret, or one cannot verify the other's tokens).
    pub secret_file: Option<PathBuf>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            dev: false,
            args: Vec::new(),
            env: Vec::new(),
            rust_log: "info".into(),
            cql: None,
            secret_file: None,
        }
    }
}

impl NodeOptions {
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    pub fn dev(mut self) -> Self {
        self.dev = true;
        self
    }
    pub fn rust_log(mut self, filter: impl Into<String>) -> Self {
        self.rust_log = filter.into();
        self
    }
    /// Runs the node on the CQL server `nodes` in `keyspace`.
    pub fn cql(mut self, nodes: impl Into<String>, keyspace: impl Into<String>) -> Self {
        self.cql = Some((nodes.into(), keyspace.into()));
        self
    }
    pub fn secret_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.secret_file = Some(path.into());
        self
    }
}

/// A running node process with its own data directory and secret file.
pub struct Node {
    child: Option<Child>,
    pub base: String,
    /// The node-to-node address a cluster node reports (`commonrock cluster listening on
    /// host:port`); None for a node started without `--cluster-listen`.
    pub cluster_addr: Option<String>,
    pub admin_token: String,
    pub dev: Option<DevCredentials>,
    pub dir: PathBuf,
    /// Kept alive for the node's life; the directory is removed when the node is dropped.
    _tmp: Option<tempfile::TempDir>,
    opts: NodeOptions,
    starts: u32,
    pub http: reqwest::Client,
}

pub(crate) fn random_b64(bytes: usize) -> String {
    let mut raw = Vec::with_capacity(bytes);
    while raw.len() < bytes {
        raw.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    raw.truncate(bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

impl Node {
    pub async fn start() -> Node {
        Self::start_with(NodeOptions::default()).await
    }

    pub async fn start_with(opts: NodeOptions) -> Node {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        match &opts.secret_file {
            Some(shared) => {
                std::fs::copy(shared, dir.join("secret")).expect("copy the shared secret");
            }
            None => std::fs::write(dir.join("secret"), format!("k1={}\n", random_b64(32)))
                .expect("secret file"),
        }
        let mut node = Node {
            child: None,
            base: String::new(),
            cluster_addr: None,
            admin_token: format!("admintest_{}", random_b64(32)),
            dev: None,
            dir,
            _tmp: Some(tmp),
            opts,
            starts: 0,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
        };
        node.launch().await;
        node
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Every log line the node wrote to stderr, over all its starts.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for i in 1..=self.starts {
            out.push_str(
                &std::fs::read_to_string(self.dir.join(format!("node-{i}.log")))
                    .unwrap_or_default(),
            );
        }
        out
    }

    async fn launch(&mut self) {
        self.starts += 1;
        let log = std::fs::File::create(self.dir.join(format!("node-{}.log", self.starts)))
            .expect("log file");
        let mut cmd = Command::new(binary());
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--secret-file")
            .arg(self.dir.join("secret"))
            .args(&self.opts.args)
            .env("COMMONROCK_ADMIN_TOKEN", &self.admin_token)
            .env("RUST_LOG", &self.opts.rust_log)
            .envs(self.opts.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        if self.opts.dev {
            cmd.arg("--dev");
        }
        let cql = self
            .opts
            .cql
            .clone()
            .or_else(|| cql_nodes().map(|nodes| (nodes, test_keyspace())));
        if let Some((nodes, keyspace)) = cql {
            cmd.arg("--store")
                .arg("scylla")
                .arg("--scylla-nodes")
                .arg(nodes)
                .arg("--keyspace")
                .arg(keyspace);
        }
        let mut child = cmd.spawn().expect("commonrock starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut dev = DevCredentials::default();
        // A node given a cluster listener reports it too, before or after its HTTP address.
        let cluster = self.opts.args.iter().any(|a| a == "--cluster-listen")
            || self
                .opts
                .env
                .iter()
                .any(|(k, _)| k == "COMMONROCK_CLUSTER_LISTEN");
        let mut base = None;
        let mut cluster_addr = None;
        let deadline = Instant::now() + Duration::from_secs(60);
        while base.is_none() || (cluster && cluster_addr.is_none()) {
            let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "node did not report its address{}; log:\n{}",
                        if cluster {
                            " and its cluster address"
                        } else {
                            ""
                        },
                        self.logs()
                    )
                })
                .expect("stdout readable");
            let Some(line) = line else {
                panic!("node exited before listening; log:\n{}", self.logs());
            };
            let value = |prefix: &str| {
                line.trim()
                    .strip_prefix(prefix)
                    .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
            };
            if let Some(v) = value("X-Client-Id:") {
                dev.client_id = v;
            } else if let Some(v) = value("X-Client-Key:") {
                dev.client_key = v;
            } else if let Some(v) = value("X-API-Key:") {
                dev.secret_key = v;
            } else if let Some(v) = value("admin token:") {
                dev.admin_token = Some(v);
            } else if let Some(addr) = line.strip_prefix("commonrock listening on ") {
                base = Some(addr.trim().to_string());
            } else if let Some(addr) = line.strip_prefix("commonrock cluster listening on ") {
                cluster_addr = Some(addr.trim().to_string());
            }
        }
        // Keep draining stdout so the node never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.base = base.expect("the loop ends with an address");
        self.cluster_addr = cluster_addr;
        self.dev = self.opts.dev.then_some(dev);
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown code runs, as in a crash or power cut of the process.
    pub async fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().await.expect("kill");
        }
    }

    /// SIGTERM and wait for a clean exit (ordered shutdown).
    pub async fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("node running");
        let pid = c.id().expect("pid");
        std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .expect("kill -TERM");
        tokio::time::timeout(Duration::from_secs(30), c.wait())
            .await
            .expect("node stops within 30 s")
            .expect("wait")
    }

    /// Starts the node again on the same data directory and secret (a new port).
    pub async fn restart(&mut self) {
        if self.child.is_some() {
            self.kill9().await;
        }
        self.launch().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// An admin API request with the bootstrap admin token.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, self.url(&format!("/admin/v1{path}")))
            .bearer_auth(&self.admin_token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("admin request");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A fresh project with a public client (all scopes, `ORIGIN`) and a secret key for
    /// 127.0.0.1; `settings` is merged into the defaults.
    pub async fn project(&self, settings: Value) -> Project {
        let slug = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let org = format!("o{slug}");
        let (s, b) = self
            .admin(
                reqwest::Method::POST,
                "/orgs",
                Some(json!({"slug": org, "name": "Org"})),
            )
            .await;
        assert_eq!(s, 201, "create org: {b}");
        let (s, b) = self
            .admin(
                reqwest::Method::POST,
                "/projects",
                Some(json!({"org_slug": org, "slug": slug, "name": "Test", "settings": settings})),
            )
            .await;
        assert_eq!(s, 201, "create project: {b}");
        let project_id = b["id"].as_str().expect("project id").to_string();
        let (s, c) = self
            .admin(
                reqwest::Method::POST,
                &format!("/projects/{slug}/clients"),
                Some(
                    json!({"name": "web", "allowed_origins": [ORIGIN, "app://com.example.ios"],
                    "scopes": ["end_users:signup","end_users:login","end_users:refresh",
                               "end_users:logout","end_users:me","sql:execute"]}),
                ),
            )
            .await;
        assert_eq!(s, 201, "create client: {c}");
        let (s, k) = self
            .admin(
                reqwest::Method::POST,
                &format!("/projects/{slug}/api-keys"),
                Some(json!({"name": "backend", "allowed_cidrs": ["127.0.0.1/32"]})),
            )
            .await;
        assert_eq!(s, 201, "create api key: {k}");
        Project {
            base: self.url(&format!("/{slug}")),
            slug,
            project_id,
            client_id: c["client_id"].as_str().expect("client_id").into(),
            client_key: c["client_key"].as_str().expect("client_key").into(),
            secret_key: k["key"].as_str().expect("key").into(),
            http: self.http.clone(),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // A failing test shows what the node logged: warnings and errors say why a request
        // got a 503 or a 500.
        if std::thread::panicking() {
            let logs = self.logs();
            let notable: Vec<&str> = logs
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .collect();
            let tail = &notable[notable.len().saturating_sub(40)..];
            eprintln!(
                "--- node {} warnings and errors ---\n{}",
                self.base,
                tail.join("\n")
            );
        }
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
    }
}

/// An HTTP answer: status, headers and the body parsed as JSON (or a string if it is not).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub async fn of(res: reqwest::Response) -> Answer {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A tenant project with its credentials, and request helpers speaking as its clients.
#[derive(Clone, Debug)]
pub struct Project {
    pub slug: String,
    pub project_id: String,
    pub base: String,
    pub client_id: String,
    pub client_key: String,
    pub secret_key: String,
    pub http: reqwest::Client,
}

impl Project {
    /// A request from the public client (client id/key + Origin).
    pub fn public(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/v1/public{path}", self.base))
            .header("X-Client-Id", &self.client_id)
            .header("X-Client-Key", &self.client_key)
            .header("Origin", ORIGIN)
    }

    pub async fn public_post(&self, path: &str, body: Value) -> Answer {
        Answer::of(
            self.public(reqwest::Method::POST, path)
                .json(&body)
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    pub async fn signup(&self, external_id: &str, password: &str) -> Answer {
        self.public_post(
            "/end-users/signup",
            json!({"external_id": external_id, "password": password, "device_id": "device-1"}),
        )
        .await
    }

    pub async fn login(&self, external_id: &str, password: &str) -> Answer {
        self.public_post(
            "/end-users/login",
            json!({"external_id": external_id, "password": password, "device_id": "device-1"}),
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Answer {
        self.public_post(
            "/end-users/refresh",
            json!({"refresh_token": refresh_token, "device_id": "device-1"}),
        )
        .await
    }

    pub async fn me(&self, access_token: &str) -> Answer {
        Answer::of(
            self.public(reqwest::Method::GET, "/end-users/me")
                .bearer_auth(access_token)
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    pub async fn logout(&self, access_token: &str) -> Answer {
        Answer::of(
            self.public(reqwest::Method::POST, "/end-users/logout")
                .bearer_auth(access_token)
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    /// Introspection with the project's secret key.
    pub async fn introspect(&self, token: &str) -> Answer {
        Answer::of(
            self.http
                .post(format!("{}/v1/sessions/introspect", self.base))
                .header("X-API-Key", &self.secret_key)
                .json(&json!({ "token": token }))
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    pub async fn introspect_batch(&self, tokens: &[String]) -> Answer {
        Answer::of(
            self.http
                .post(format!("{}/v1/sessions/introspect/batch", self.base))
                .header("X-API-Key", &self.secret_key)
                .json(&json!({ "tokens": tokens }))
                .send()
                .await
                .expect("request"),
        )
        .await
    }
}

/// Polls `check` until it returns Some or `timeout` passes; for deadlines, never fixed sleeps.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A counter's value from a node's /metrics text.
pub async fn metric(node: &Node, name: &str) -> f64 {
    let text = node
        .http
        .get(node.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            (key == name || key.starts_with(&format!("{name}{{")))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

// The simple DB (SPEC §5): admin and execute helpers.

impl Node {
    /// `POST /admin/v1/projects/{slug}/sql/tables {sql}`.
    pub async fn sql_table(&self, slug: &str, sql: &str) -> (u16, Value) {
        self.admin(
            reqwest::Method::POST,
            &format!("/projects/{slug}/sql/tables"),
            Some(json!({ "sql": sql })),
        )
        .await
    }

    /// `POST /admin/v1/projects/{slug}/sql/query-definitions {name,sql,public}`.
    pub async fn sql_definition(
        &self,
        slug: &str,
        name: &str,
        sql: &str,
        public: bool,
    ) -> (u16, Value) {
        self.admin(
            reqwest::Method::POST,
            &format!("/projects/{slug}/sql/query-definitions"),
            Some(json!({ "name": name, "sql": sql, "public": public })),
        )
        .await
    }

    /// Registers a definition that must be accepted; returns its id.
    pub async fn sql_definition_id(
        &self,
        slug: &str,
        name: &str,
        sql: &str,
        public: bool,
    ) -> String {
        let (s, b) = self.sql_definition(slug, name, sql, public).await;
        assert_eq!(s, 201, "register {name}: {b}");
        b["id"].as_str().expect("definition id").to_string()
    }
}

impl Project {
    /// `POST /{slug}/v1/public/sql/execute` as the public client with an end user's token.
    pub async fn sql_public(&self, access_token: &str, body: Value) -> Answer {
        Answer::of(
            self.public(reqwest::Method::POST, "/sql/execute")
                .bearer_auth(access_token)
                .json(&body)
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    /// `POST /{slug}/v1/sql/execute` with the project's secret key.
    pub async fn sql_secret(&self, body: Value) -> Answer {
        Answer::of(
            self.http
                .post(format!("{}/v1/sql/execute", self.base))
                .header("X-API-Key", &self.secret_key)
                .json(&body)
                .send()
                .await
                .expect("request"),
        )
        .await
    }
}
