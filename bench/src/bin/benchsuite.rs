//! `benchsuite`: the driver behind `scripts/bench`. Measures the raw Argon2id rate, seeds a node
//! (embedded store, and the CQL store when `COMMONROCK_TEST_CQL_NODES` is set), starts the
//! baseline, runs `loadgen` against both in the same run, and writes
//! `target/bench/latest.json` and `target/bench/latest.md`. Every figure is absolute and, where
//! the baseline has one, a ratio to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Parser;
use commonrock_bench::{proc_stats, Summary};
use serde::Serialize;
use serde_json::{json, Value};

const PROJECT: &str = "org_demo_payments";
const ORIGIN: &str = "https://app.example.com";
const LOGIN_USER: &str = "bench-login";
const LOGIN_PASSWORD: &str = "bench-password-123";
/// What `serve --dev` may take to print its banner (first start creates the store or keyspace).
const START_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Parser, Debug, Clone)]
#[command(about = "Runs the CommonRock bench suite (see docs/benchmarks.md)")]
struct Args {
    /// Sessions seeded and introspected.
    #[arg(long, default_value_t = 100_000)]
    sessions: usize,
    /// Seconds measured per run (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of warm-up before each measured run.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Short run: 10,000 sessions, 4 s runs, 1 s warm-ups (unless given explicitly).
    #[arg(long)]
    quick: bool,
    /// Connections for single-token introspection.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Connections for batch introspection.
    #[arg(long, default_value_t = 8)]
    batch_connections: usize,
    /// Connections of the login storm (and of the login-throughput run).
    #[arg(long, default_value_t = 16)]
    storm_connections: usize,
    /// Worker threads of each load generator.
    #[arg(long, default_value_t = 1)]
    loadgen_threads: usize,
    /// Rows of the simple-DB `items` table (filled through the INSERT definition, then paged).
    #[arg(long, default_value_t = 100_000)]
    sql_rows: usize,
    /// CQL contact point(s); the CQL phase runs only when set.
    #[arg(long, env = "COMMONROCK_TEST_CQL_NODES")]
    cql_nodes: Option<String>,
    /// Directory of the release binaries (commonrock, baseline, loadgen).
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Where results, logs and the scratch data directories go.
    #[arg(long, default_value = "target/bench")]
    out_dir: PathBuf,
}

impl Args {
    fn apply_quick(&mut self) {
        if !self.quick {
            return;
        }
        let explicit =
            |flag: &str| std::env::args().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
        if !explicit("--sessions") {
            self.sessions = 10_000;
        }
        if !explicit("--sql-rows") {
            self.sql_rows = 10_000;
        }
        if !explicit("--duration") {
            self.duration = 4.0;
        }
        if !explicit("--warmup") {
            self.warmup = 1.0;
        }
    }
}

fn main() -> std::process::ExitCode {
    let mut args = Args::parse();
    args.apply_quick();
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchsuite: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn say(msg: impl AsRef<str>) {
    eprintln!("bench: {}", msg.as_ref());
}

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

/// A server child (node or baseline), stopped with SIGTERM and reaped on drop.
struct Server {
    child: Child,
    addr: String,
    banner: Vec<String>,
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `cmd` (stdout piped, stderr to `log`) and waits for `<ready_prefix>http://ADDR`.
    fn start(mut cmd: Command, log: &Path, ready_prefix: &str) -> Result<Server, String> {
        let log_file = std::fs::File::create(log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        cmd.stdout(Stdio::piped())
            .stderr(log_file)
            .stdin(Stdio::null());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        // Keep draining stdout after the banner so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let mut banner = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line
                        .strip_prefix(ready_prefix)
                        .and_then(|l| l.trim().strip_prefix("http://"))
                    {
                        let addr = addr.trim().to_string();
                        std::thread::spawn(move || while rx.recv().is_ok() {});
                        return Ok(Server {
                            child,
                            addr,
                            banner,
                        });
                    }
                    banner.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "{cmd:?} did not print {ready_prefix:?} (see {})",
                        log.display()
                    ));
                }
            }
        }
    }

    /// The value after `label` in the `serve --dev` banner.
    fn banner_value(&self, label: &str) -> Option<String> {
        self.banner.iter().find_map(|l| {
            l.trim()
                .strip_prefix(label)
                .and_then(|v| v.split_whitespace().next())
                .map(str::to_string)
        })
    }

    fn stop(mut self) -> Result<(), String> {
        self.terminate()
    }

    fn terminate(&mut self) -> Result<(), String> {
        if self.child.try_wait().ok().flatten().is_some() {
            return Ok(());
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Err(format!("pid {} ignored SIGTERM for 30 s", self.child.id()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.terminate();
    }
}

/// The `serve --dev` credentials.
#[derive(Clone, Debug)]
struct Creds {
    client_id: String,
    client_key: String,
    api_key: String,
    admin_token: String,
}

fn creds(node: &Server) -> Result<Creds, String> {
    let get = |label: &str| {
        node.banner_value(label)
            .ok_or_else(|| format!("no {label:?} in the dev banner: {:?}", node.banner))
    };
    Ok(Creds {
        client_id: get("X-Client-Id:")?,
        client_key: get("X-Client-Key:")?,
        api_key: get("X-API-Key:")?,
        admin_token: get("admin token:")?,
    })
}

/// Where a node keeps its data.
#[derive(Clone)]
enum StoreKind {
    Embedded { data_dir: PathBuf },
    Cql { nodes: String, keyspace: String },
}

impl StoreKind {
    fn args(&self) -> Vec<String> {
        match self {
            StoreKind::Embedded { data_dir } => {
                vec!["--data-dir".into(), data_dir.display().to_string()]
            }
            StoreKind::Cql { nodes, keyspace } => vec![
                "--store".into(),
                "scylla".into(),
                "--scylla-nodes".into(),
                nodes.clone(),
                "--keyspace".into(),
                keyspace.clone(),
            ],
        }
    }
}

struct Env<'a> {
    args: &'a Args,
    secret: PathBuf,
}

impl Env<'_> {
    fn bin(&self, name: &str) -> PathBuf {
        self.args.bin_dir.join(name)
    }

    fn start_node(&self, store: &StoreKind, log: &str) -> Result<Server, String> {
        self.start_node_with(store, log, &[])
    }

    fn start_node_with(
        &self,
        store: &StoreKind,
        log: &str,
        extra: &[&str],
    ) -> Result<Server, String> {
        let mut cmd = Command::new(self.bin("commonrock"));
        cmd.args([
            "serve",
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--shutdown-delay-ms",
            "0",
        ])
        .arg("--secret-file")
        .arg(&self.secret)
        .args(store.args())
        .args(extra);
        // Production's default log level: the node's own per-request log is part of its cost.
        cmd.env_remove("COMMONROCK_ADMIN_TOKEN");
        Server::start(
            cmd,
            &self.args.out_dir.join(log),
            "commonrock listening on ",
        )
    }

    /// Runs `loadgen`, reading the CPU the server used meanwhile.
    fn loadgen(&self, server_pid: u32, extra: &[String]) -> Result<Run, String> {
        let spawned = self.spawn_loadgen(extra)?;
        let cpu_before = proc_stats::cpu_seconds(&server_pid.to_string()).unwrap_or(0.0);
        let summary = finish_loadgen(spawned)?;
        let cpu_after = proc_stats::cpu_seconds(&server_pid.to_string()).unwrap_or(0.0);
        Ok(Run::new(summary, cpu_after - cpu_before))
    }

    fn spawn_loadgen(&self, extra: &[String]) -> Result<Child, String> {
        let mut cmd = Command::new(self.bin("loadgen"));
        cmd.args(["--threads", &self.args.loadgen_threads.to_string()])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        cmd.spawn()
            .map_err(|e| format!("cannot start loadgen: {e}"))
    }

    fn timing(&self) -> Vec<String> {
        vec![
            "--duration".into(),
            self.args.duration.to_string(),
            "--warmup".into(),
            self.args.warmup.to_string(),
        ]
    }
}

fn finish_loadgen(mut child: Child) -> Result<Summary, String> {
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout is piped")
        .read_to_string(&mut out)
        .map_err(|e| e.to_string())?;
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("loadgen failed ({status})"));
    }
    serde_json::from_str(&out).map_err(|e| format!("loadgen printed no summary: {e}: {out}"))
}

/// One load-generator run and the server CPU it cost.
#[derive(Serialize, Clone)]
struct Run {
    #[serde(flatten)]
    summary: Summary,
    /// CPU seconds the server process used during the whole run (warm-up included).
    server_cpu_s: f64,
}

impl Run {
    fn new(summary: Summary, server_cpu_s: f64) -> Run {
        Run {
            summary,
            server_cpu_s,
        }
    }

    fn check(&self, what: &str) {
        let s = &self.summary;
        if s.ok < s.requests || s.late_at_end * 1000 > s.requests {
            say(format!(
                "warning: {what}: {} of {} answers not ok (status {:?}, unexpected body {}, errors {}), {} late at end",
                s.requests - s.ok,
                s.requests,
                s.bad_status,
                s.unexpected_body,
                s.errors,
                s.late_at_end
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A tiny HTTP/1.1 client for the set-up calls (one request per connection)
// ---------------------------------------------------------------------------------------------

fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no HTTP answer from {addr}"))?;
    let body = resp
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    Ok((status, body))
}

fn public_headers(c: &Creds) -> Vec<(&str, &str)> {
    vec![
        ("Origin", ORIGIN),
        ("X-Client-Id", c.client_id.as_str()),
        ("X-Client-Key", c.client_key.as_str()),
    ]
}

/// Lifts the per-account and per-IP login limits (a storm from one IP on one account is the
/// point), through the admin API as an operator would.
fn lift_login_limits(node: &Server, c: &Creds) -> Result<(), String> {
    let off = json!({"burst": 0, "per_minute": 0});
    let body = json!({"settings": {"rate_limits": {
        "login_per_account_ip": off, "login_per_account": off, "login_per_ip": off}}});
    let auth = format!("Bearer {}", c.admin_token);
    let (status, text) = http(
        &node.addr,
        "PATCH",
        &format!("/admin/v1/projects/{PROJECT}"),
        &[("Authorization", auth.as_str())],
        &body.to_string(),
    )?;
    if status != 200 {
        return Err(format!("lifting login limits: {status} {text}"));
    }
    Ok(())
}

fn signup(
    node: &Server,
    c: &Creds,
    external_id: &str,
    password: &str,
) -> Result<Option<String>, String> {
    let body = json!({"external_id": external_id, "password": password, "device_id": "bench"});
    let (status, text) = http(
        &node.addr,
        "POST",
        &format!("/{PROJECT}/v1/public/end-users/signup"),
        &public_headers(c),
        &body.to_string(),
    )?;
    match status {
        201 => {
            let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            Ok(v["token"].as_str().map(str::to_string))
        }
        409 => Ok(None),
        _ => Err(format!("signup {external_id}: {status} {text}")),
    }
}

// ---------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------

/// Hashes/s of Argon2id with the `argon2` crate's defaults (the node's parameters) on every core.
fn argon2_raw_rate(seconds: f64) -> Value {
    let threads = proc_stats::machine().cores;
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                let argon = argon2::Argon2::default();
                let mut out = [0u8; 32];
                let mut n = 0u64;
                while Instant::now() < until {
                    let salt = [t as u8; 16];
                    argon
                        .hash_password_into(b"correct horse battery staple", &salt, &mut out)
                        .expect("default parameters and a 16-byte salt are valid");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let hashes: u64 = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    let elapsed = start.elapsed().as_secs_f64();
    let p = argon2::Params::default();
    json!({
        "threads": threads,
        "m_kib": p.m_cost(), "t": p.t_cost(), "p": p.p_cost(),
        "hashes": hashes,
        "seconds": elapsed,
        "per_s": hashes as f64 / elapsed,
    })
}

fn has_seed_command(env: &Env) -> bool {
    Command::new(env.bin("commonrock"))
        .args(["admin", "--help"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("seed-sessions"))
}

/// Seeds `args.sessions` sessions into `store`: offline with `admin seed-sessions` on a stopped
/// node, or (when that command is missing) through real signups, capped because each costs an
/// Argon2 hash. Returns the seeding figures and leaves the node stopped.
fn seed(env: &Env, store: &StoreKind, tokens: &Path, tag: &str) -> Result<Value, String> {
    let n = env.args.sessions;
    // The first start creates the demo project the sessions belong to.
    let node = env.start_node(store, &format!("node-{tag}-setup.log"))?;
    let started = Instant::now();
    if has_seed_command(env) {
        node.stop()?;
        let users = n.div_ceil(100).max(1);
        let out = Command::new(env.bin("commonrock"))
            .args(["admin", "seed-sessions", "--project", PROJECT])
            .args(["--count", &n.to_string(), "--users", &users.to_string()])
            .arg("--out")
            .arg(tokens)
            .arg("--secret-file")
            .arg(&env.secret)
            .args(store.args())
            .output()
            .map_err(|e| format!("cannot run seed-sessions: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "seed-sessions failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(
            json!({"method": "admin seed-sessions", "sessions": n, "users": users,
                  "seconds": started.elapsed().as_secs_f64()}),
        )
    } else {
        let cap = n.min(500);
        say(format!(
            "`commonrock admin seed-sessions` is missing: seeding {cap} sessions through signups"
        ));
        let c = creds(&node)?;
        let mut file = std::fs::File::create(tokens).map_err(|e| e.to_string())?;
        let mut made = 0;
        for i in 0.. {
            if made == cap {
                break;
            }
            if let Some(t) = signup(&node, &c, &format!("signup-{tag}-{i}"), LOGIN_PASSWORD)? {
                writeln!(file, "{t}").map_err(|e| e.to_string())?;
                made += 1;
            }
        }
        node.stop()?;
        Ok(json!({"method": "signup", "sessions": made, "users": made,
                  "seconds": started.elapsed().as_secs_f64()}))
    }
}

fn introspect_args(server: &Server, c: Option<&Creds>, tokens: &Path, body: &str) -> Vec<String> {
    let path = if body == "single" {
        "introspect"
    } else {
        "introspect/batch"
    };
    let mut a = vec![
        "--url".into(),
        format!("http://{}/{PROJECT}/v1/sessions/{path}", server.addr),
        "--tokens".into(),
        tokens.display().to_string(),
        "--body".into(),
        body.into(),
        "--expect".into(),
        "\"active\":true".into(),
    ];
    if let Some(c) = c {
        a.extend(["--header".into(), format!("X-API-Key: {}", c.api_key)]);
    }
    a
}

fn login_args(node: &Server, c: &Creds, connections: usize) -> Vec<String> {
    let body = json!({"external_id": LOGIN_USER, "password": LOGIN_PASSWORD, "device_id": "bench"});
    vec![
        "--url".into(),
        format!("http://{}/{PROJECT}/v1/public/end-users/login", node.addr),
        "--header".into(),
        format!("Origin: {ORIGIN}"),
        "--header".into(),
        format!("X-Client-Id: {}", c.client_id),
        "--header".into(),
        format!("X-Client-Key: {}", c.client_key),
        "--body".into(),
        "fixed".into(),
        "--body-json".into(),
        body.to_string(),
        "--expect".into(),
        "\"access_token\"".into(),
        "--connections".into(),
        connections.to_string(),
    ]
}

fn with(mut a: Vec<String>, more: &[&str]) -> Vec<String> {
    a.extend(more.iter().map(|s| s.to_string()));
    a
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        f64::NAN
    } else {
        a / b
    }
}

fn to_value<T: Serialize>(t: &T) -> Value {
    serde_json::to_value(t).expect("results serialise")
}

fn run(args: &Args) -> Result<(), String> {
    std::fs::create_dir_all(&args.out_dir).map_err(|e| e.to_string())?;
    let scratch = args.out_dir.join("scratch");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let env = Env {
        args,
        secret: scratch.join("server.secret"),
    };
    for bin in ["commonrock", "baseline", "loadgen"] {
        if !env.bin(bin).exists() {
            return Err(format!(
                "{} is missing: build in release mode first",
                env.bin(bin).display()
            ));
        }
    }
    let status = Command::new(env.bin("commonrock"))
        .args(["secret", "generate", "--out"])
        .arg(&env.secret)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("commonrock secret generate failed".into());
    }
    let mut results = json!({
        "date": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "machine": to_value(&proc_stats::machine()),
        // Anything else running skews every figure; the load average says whether it did.
        "loadavg_before": proc_stats::loadavg(),
        "command": std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        "config": {
            "sessions": args.sessions, "duration_s": args.duration, "warmup_s": args.warmup,
            "connections": args.connections, "batch_connections": args.batch_connections,
            "storm_connections": args.storm_connections, "loadgen_threads": args.loadgen_threads,
            "sql_rows": args.sql_rows,
        },
    });

    say(format!(
        "seeding {} sessions (embedded store)",
        args.sessions
    ));
    let tokens = scratch.join("tokens-embedded.txt");
    let embedded = StoreKind::Embedded {
        data_dir: scratch.join("data"),
    };
    results["embedded"] = json!({ "seeding": seed(&env, &embedded, &tokens, "embedded")? });
    // Memory per cached session: the same two passes over every session on a node whose
    // session cache holds one entry, then on a node that caches them all. Store page cache,
    // thread stacks and allocator slack are the same in both, so the difference is the cache.
    say("memory: two passes over every session with the session cache off (control)");
    let control = env.start_node_with(
        &embedded,
        "node-embedded-control.log",
        &["--session-cache", "1"],
    )?;
    let cc = creds(&control)?;
    let pass = |node: &Server, c: &Creds| -> Result<Run, String> {
        let run = env.loadgen(
            node.pid(),
            &with(
                introspect_args(node, Some(c), &tokens, "batch:1000"),
                &["--once", "--connections", "2"],
            ),
        )?;
        run.check("pass over every session");
        Ok(run)
    };
    pass(&control, &cc)?;
    pass(&control, &cc)?;
    std::thread::sleep(Duration::from_millis(500));
    let rss_control = proc_stats::rss_kib(control.pid()).unwrap_or(0);
    control.stop()?;

    let node = env.start_node(&embedded, "node-embedded.log")?;
    let c = creds(&node)?;

    say("memory: two passes over every session, all cached");
    let rss_before = proc_stats::rss_kib(node.pid()).unwrap_or(0);
    let first_pass = pass(&node, &c)?;
    pass(&node, &c)?;
    std::thread::sleep(Duration::from_millis(500));
    let rss_after = proc_stats::rss_kib(node.pid()).unwrap_or(0);
    let seeded = first_pass.summary.items_per_s * first_pass.summary.measured_s;
    let bytes_per_session = (rss_after as f64 - rss_control as f64) * 1024.0 / seeded.max(1.0);
    results["embedded"]["memory"] = json!({
        "rss_before_kib": rss_before, "rss_after_kib": rss_after,
        "rss_control_kib": rss_control,
        "sessions": seeded.round(), "bytes_per_session": bytes_per_session,
        "first_pass": to_value(&first_pass),
    });
    // Only after the memory figure: a login hashes a password, and Argon2's 19 MiB would
    // blur the comparison with the control node.
    lift_login_limits(&node, &c)?;
    signup(&node, &c, LOGIN_USER, LOGIN_PASSWORD)?;

    let baseline = {
        let mut cmd = Command::new(env.bin("baseline"));
        cmd.args(["--listen", "127.0.0.1:0", "--tokens"])
            .arg(&tokens);
        Server::start(
            cmd,
            &args.out_dir.join("baseline.log"),
            "baseline listening on ",
        )?
    };

    let targets: [(&str, &Server, Option<&Creds>); 2] =
        [("baseline", &baseline, None), ("node", &node, Some(&c))];
    let conns = args.connections.to_string();
    let bconns = args.batch_connections.to_string();
    let timing = env.timing();
    let mut single = json!({});
    let mut open_half = json!({});
    let mut batches = json!({});
    for (name, server, cr) in targets {
        say(format!(
            "{name}: single-token introspection, closed loop, {conns} connections"
        ));
        let mut a = introspect_args(server, cr, &tokens, "single");
        a.extend(timing.clone());
        let closed = env.loadgen(server.pid(), &with(a.clone(), &["--connections", &conns]))?;
        closed.check(&format!("{name} single closed"));
        let half = (closed.summary.throughput_rps / 2.0).max(1.0);
        say(format!(
            "{name}: open loop at {half:.0} req/s (half the max)"
        ));
        let open = env.loadgen(
            server.pid(),
            &with(
                a,
                &[
                    "--mode",
                    "open",
                    "--rate",
                    &half.to_string(),
                    "--connections",
                    &conns,
                ],
            ),
        )?;
        open.check(&format!("{name} single open"));
        single[name] = to_value(&closed);
        open_half[name] = to_value(&open);
        for n in [100, 1000] {
            say(format!(
                "{name}: batch of {n}, closed loop, {bconns} connections"
            ));
            let mut a = introspect_args(server, cr, &tokens, &format!("batch:{n}"));
            a.extend(timing.clone());
            let r = env.loadgen(server.pid(), &with(a, &["--connections", &bconns]))?;
            r.check(&format!("{name} batch {n}"));
            batches[format!("{name}_{n}")] = to_value(&r);
        }
    }
    results["embedded"]["single_closed"] = single;
    results["embedded"]["single_open_half"] = open_half;
    results["embedded"]["batch"] = batches;

    let rate = results["embedded"]["single_open_half"]["node"]["target_rate"]
        .as_f64()
        .unwrap_or(1.0);
    say(format!(
        "node: open loop at {rate:.0} req/s under a login storm ({} connections)",
        args.storm_connections
    ));
    let storm = env.spawn_loadgen(&with(
        login_args(&node, &c, args.storm_connections),
        &timing.iter().map(String::as_str).collect::<Vec<_>>(),
    ))?;
    let mut a = introspect_args(&node, Some(&c), &tokens, "single");
    a.extend(timing.clone());
    let under_storm = env.loadgen(
        node.pid(),
        &with(
            a,
            &[
                "--mode",
                "open",
                "--rate",
                &rate.to_string(),
                "--connections",
                &conns,
            ],
        ),
    )?;
    let storm = finish_loadgen(storm)?;
    under_storm.check("introspection under storm");
    results["embedded"]["storm"] = json!({
        "introspection": to_value(&under_storm),
        "logins": to_value(&storm),
    });

    // Measured here, with the node up but idle, so it sees the machine as the login run does.
    say("raw Argon2id rate on every core");
    let raw = argon2_raw_rate(args.duration.clamp(3.0, 5.0));
    let raw_rate = raw["per_s"].as_f64().unwrap_or(0.0);
    results["argon2_raw"] = raw;
    say(format!(
        "node: login throughput, {} connections",
        args.storm_connections
    ));
    let login = env.loadgen(
        node.pid(),
        &with(
            login_args(&node, &c, args.storm_connections),
            &timing.iter().map(String::as_str).collect::<Vec<_>>(),
        ),
    )?;
    login.check("login");
    // The machine may be shared: measure the raw rate again and divide by the better of the two,
    // so a busy neighbour cannot flatter the login fraction.
    let again = argon2_raw_rate(args.duration.clamp(3.0, 5.0));
    if again["per_s"].as_f64().unwrap_or(0.0) > raw_rate {
        results["argon2_raw"] = again;
    }
    results["argon2_raw"]["first_per_s"] = json!(raw_rate);
    let raw_rate = results["argon2_raw"]["per_s"].as_f64().unwrap_or(0.0);
    results["embedded"]["login"] = json!({
        "run": to_value(&login),
        "fraction_of_raw": ratio(login.summary.throughput_rps, raw_rate),
    });
    results["embedded"]["sql"] = sql_phase(&env, &node, &c, "embedded");
    node.stop()?;

    if let Some(nodes) = &args.cql_nodes {
        results["cql"] = cql_phase(&env, nodes)?;
    }
    baseline.stop()?;

    results["loadavg_after"] = json!(proc_stats::loadavg());
    let json_path = args.out_dir.join("latest.json");
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&results).expect("results serialise"),
    )
    .map_err(|e| e.to_string())?;
    let md = report::markdown(&results);
    let md_path = args.out_dir.join("latest.md");
    std::fs::write(&md_path, &md).map_err(|e| e.to_string())?;
    println!("{md}");
    println!("results: {}", json_path.display());
    println!("table:   {}", md_path.display());
    Ok(())
}

/// CQL store: a fresh keyspace, seeded offline, then a node with an empty cache: the first pass
/// over the tokens is cold (every session read from CQL), the second warm; then the closed-loop
/// single-token and batch runs on the warm cache.
fn cql_phase(env: &Env, nodes: &str) -> Result<Value, String> {
    let args = env.args;
    let keyspace = format!("cr_bench_{}", chrono::Utc::now().timestamp());
    let store = StoreKind::Cql {
        nodes: nodes.to_string(),
        keyspace: keyspace.clone(),
    };
    let tokens = args.out_dir.join("scratch").join("tokens-cql.txt");
    say(format!(
        "seeding {} sessions (CQL keyspace {keyspace})",
        args.sessions
    ));
    let seeding = seed(env, &store, &tokens, "cql")?;
    let node = env.start_node(&store, "node-cql.log")?;
    let c = creds(&node)?;
    let conns = args.connections.to_string();
    let mut out = json!({ "keyspace": keyspace, "seeding": seeding });
    for pass in ["cold_pass", "warm_pass"] {
        say(format!(
            "cql: {pass} over every token, single-token, {conns} connections"
        ));
        let r = env.loadgen(
            node.pid(),
            &with(
                introspect_args(&node, Some(&c), &tokens, "single"),
                &["--once", "--connections", &conns],
            ),
        )?;
        r.check(&format!("cql {pass}"));
        out[pass] = to_value(&r);
    }
    let mut a = introspect_args(&node, Some(&c), &tokens, "single");
    a.extend(env.timing());
    say("cql: warm single-token, closed loop");
    let closed = env.loadgen(node.pid(), &with(a.clone(), &["--connections", &conns]))?;
    closed.check("cql single closed");
    let half = (closed.summary.throughput_rps / 2.0).max(1.0);
    say(format!("cql: warm open loop at {half:.0} req/s"));
    let open = env.loadgen(
        node.pid(),
        &with(
            a,
            &[
                "--mode",
                "open",
                "--rate",
                &half.to_string(),
                "--connections",
                &conns,
            ],
        ),
    )?;
    open.check("cql single open");
    let mut b = introspect_args(&node, Some(&c), &tokens, "batch:1000");
    b.extend(env.timing());
    say("cql: warm batch of 1000");
    let batch = env.loadgen(
        node.pid(),
        &with(b, &["--connections", &args.batch_connections.to_string()]),
    )?;
    batch.check("cql batch 1000");
    out["single_closed"] = to_value(&closed);
    out["single_open_half"] = to_value(&open);
    out["batch_1000"] = to_value(&batch);
    out["sql"] = sql_phase(env, &node, &c, "cql");
    node.stop()?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Simple DB: a table filled through an INSERT definition, keyed SELECTs, keyset paging
// ---------------------------------------------------------------------------------------------

/// Requests in flight while filling the `items` table.
const SQL_FILL_IN_FLIGHT: usize = 32;
/// Page size of the keyset walk (the default `SQL_MAX_ROWS`).
const SQL_PAGE: usize = 1000;

/// A keep-alive HTTP/1.1 connection (hyper) for the SQL set-up and paging calls.
struct KeepAlive {
    addr: String,
    sender: Option<hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>>,
}

impl KeepAlive {
    fn new(addr: &str) -> KeepAlive {
        KeepAlive {
            addr: addr.to_string(),
            sender: None,
        }
    }

    /// POSTs `body` (JSON) to `path`; reconnects when the connection is gone.
    async fn post(
        &mut self,
        path: &str,
        headers: &[(String, String)],
        body: String,
    ) -> Result<(u16, bytes::Bytes), String> {
        use http_body_util::BodyExt;
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = tokio::net::TcpStream::connect(&self.addr)
                .await
                .map_err(|e| format!("connect {}: {e}", self.addr))?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let (sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .map_err(|e| e.to_string())?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().expect("connected above");
        let mut req = http::Request::post(path)
            .header(http::header::HOST, self.addr.as_str())
            .header(http::header::CONTENT_TYPE, "application/json");
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let answer = async {
            sender.ready().await.map_err(|e| e.to_string())?;
            let res = sender.send_request(req).await.map_err(|e| e.to_string())?;
            let status = res.status().as_u16();
            let bytes = res
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((status, bytes))
        }
        .await;
        if answer.is_err() {
            self.sender = None;
        }
        answer
    }
}

/// `commonrock_sql_rows_read_total` from the node's /metrics.
fn sql_rows_read(node: &Server, c: &Creds) -> Option<f64> {
    let auth = format!("Bearer {}", c.admin_token);
    let (status, text) = http(
        &node.addr,
        "GET",
        "/metrics",
        &[("Authorization", auth.as_str())],
        "",
    )
    .ok()?;
    if status != 200 {
        return None;
    }
    text.lines()
        .find_map(|l| l.strip_prefix("commonrock_sql_rows_read_total "))
        .and_then(|v| v.trim().parse().ok())
}

fn admin_post(node: &Server, c: &Creds, path: &str, body: &Value) -> Result<Value, String> {
    let auth = format!("Bearer {}", c.admin_token);
    let (status, text) = http(
        &node.addr,
        "POST",
        &format!("/admin/v1/projects/{PROJECT}/sql/{path}"),
        &[("Authorization", auth.as_str())],
        &body.to_string(),
    )?;
    if !(200..300).contains(&status) {
        return Err(format!("POST sql/{path} {body}: {status} {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("POST sql/{path}: {e}: {text}"))
}

fn define(node: &Server, c: &Creds, name: &str, sql: &str) -> Result<String, String> {
    let v = admin_post(
        node,
        c,
        "query-definitions",
        &json!({"name": name, "sql": sql, "public": false}),
    )?;
    v["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("definition {name}: no id in {v}"))
}

/// The simple-DB scenarios on a running node; a failure is recorded in the result (`error`)
/// rather than ending the suite.
fn sql_phase(env: &Env, node: &Server, c: &Creds, tag: &str) -> Value {
    match sql_scenarios(env, node, c, tag) {
        Ok(v) => v,
        Err(e) => {
            say(format!("warning: {tag} sql: {e}"));
            json!({ "error": e })
        }
    }
}

fn sql_scenarios(env: &Env, node: &Server, c: &Creds, tag: &str) -> Result<Value, String> {
    let args = env.args;
    let n = args.sql_rows;
    say(format!(
        "{tag} sql: table items and three query definitions"
    ));
    admin_post(
        node,
        c,
        "tables",
        &json!({"sql": "CREATE TABLE items (id BIGINT PRIMARY KEY, owner TEXT, title TEXT)"}),
    )?;
    let insert = define(
        node,
        c,
        "bench_items_insert",
        "INSERT INTO items (id, owner, title) VALUES (:id, :owner, :title)",
    )?;
    let select = define(
        node,
        c,
        "bench_items_by_id",
        "SELECT id, owner, title FROM items WHERE id = :id",
    )?;
    let paging = define(
        node,
        c,
        "bench_items_paging",
        "SELECT id, title FROM items ORDER BY id",
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let path = format!("/{PROJECT}/v1/sql/execute");
    let headers = vec![("X-API-Key".to_string(), c.api_key.clone())];

    say(format!(
        "{tag} sql: {n} inserts through sql/execute, {SQL_FILL_IN_FLIGHT} in flight"
    ));
    let cpu_before = proc_stats::cpu_seconds(&node.pid().to_string()).unwrap_or(0.0);
    let (fill, fill_s) = rt.block_on(fill(&node.addr, &path, &headers, &insert, n));
    let cpu_after = proc_stats::cpu_seconds(&node.pid().to_string()).unwrap_or(0.0);
    let (inserted, failed, first_error) = fill;
    if failed > 0 {
        say(format!(
            "warning: {tag} sql: {failed} of {n} inserts failed, first: {}",
            first_error.as_deref().unwrap_or("?")
        ));
    }
    let inserts = json!({
        "rows": n, "inserted": inserted, "failed": failed, "first_error": first_error,
        "in_flight": SQL_FILL_IN_FLIGHT, "seconds": fill_s,
        "per_s": inserted as f64 / fill_s.max(1e-9),
        "server_cpu_s": cpu_after - cpu_before,
    });

    let conns = args.connections.to_string();
    say(format!(
        "{tag} sql: keyed SELECT of one row, closed loop, {conns} connections"
    ));
    let body = json!({"query_definition_id": select, "params": {"id": (n / 2) as i64}});
    let mut a = vec![
        "--url".into(),
        format!("http://{}{path}", node.addr),
        "--header".into(),
        format!("X-API-Key: {}", c.api_key),
        "--body".into(),
        "fixed".into(),
        "--body-json".into(),
        body.to_string(),
        "--expect".into(),
        "\"title\"".into(),
        "--connections".into(),
        conns,
    ];
    a.extend(env.timing());
    let keyed = env.loadgen(node.pid(), &a)?;
    keyed.check(&format!("{tag} sql keyed select"));

    say(format!(
        "{tag} sql: keyset paging of every row, pages of {SQL_PAGE}"
    ));
    let read_before = sql_rows_read(node, c);
    let mut walk = rt.block_on(walk(&node.addr, &path, &headers, &paging, n));
    // What the node read from its store for the whole walk, per page: the fast path's bound.
    if let (Some(before), Some(after)) = (read_before, sql_rows_read(node, c)) {
        let pages = walk["pages"].as_f64().unwrap_or(0.0).max(1.0);
        walk["store_rows_read"] = json!(after - before);
        walk["store_rows_read_per_page"] = json!((after - before) / pages);
    }
    let rows = walk["rows"].as_u64().unwrap_or(0);
    if rows != n as u64 || walk["error"].is_string() || walk["out_of_order"].as_u64() != Some(0) {
        say(format!(
            "warning: {tag} sql: keyset paging returned {rows} of {n} rows: {walk}"
        ));
    }
    Ok(json!({
        "rows": n,
        "inserts": inserts,
        "keyed_select": to_value(&keyed),
        "keyset_paging": walk,
    }))
}

/// Inserts ids 0..n through the INSERT definition, `SQL_FILL_IN_FLIGHT` keep-alive connections
/// each taking the next id. Returns ((inserted, failed, first error), seconds).
async fn fill(
    addr: &str,
    path: &str,
    headers: &[(String, String)],
    definition: &str,
    n: usize,
) -> ((u64, u64, Option<String>), f64) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..SQL_FILL_IN_FLIGHT)
        .map(|_| {
            let next = next.clone();
            let (addr, path, headers, definition) = (
                addr.to_string(),
                path.to_string(),
                headers.to_vec(),
                definition.to_string(),
            );
            tokio::spawn(async move {
                let mut conn = KeepAlive::new(&addr);
                let (mut ok, mut failed, mut first) = (0u64, 0u64, None);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let body = json!({"query_definition_id": definition, "params": {
                        "id": i as i64, "owner": format!("owner-{}", i % 100),
                        "title": format!("title-{i}")}});
                    match conn.post(&path, &headers, body.to_string()).await {
                        Ok((200, _)) => ok += 1,
                        Ok((status, text)) => {
                            failed += 1;
                            first.get_or_insert_with(|| {
                                format!("{status} {}", String::from_utf8_lossy(&text))
                            });
                        }
                        Err(e) => {
                            failed += 1;
                            first.get_or_insert(e);
                        }
                    }
                }
                (ok, failed, first)
            })
        })
        .collect();
    let (mut ok, mut failed, mut first) = (0, 0, None);
    for t in tasks {
        match t.await {
            Ok((o, f, e)) => {
                ok += o;
                failed += f;
                if first.is_none() {
                    first = e;
                }
            }
            Err(e) => {
                first.get_or_insert(e.to_string());
            }
        }
    }
    ((ok, failed, first), started.elapsed().as_secs_f64())
}

/// Walks every page of the keyset definition following `next_cursor` until it is absent, on one
/// keep-alive connection; counts rows and checks that ids come back strictly increasing.
async fn walk(
    addr: &str,
    path: &str,
    headers: &[(String, String)],
    definition: &str,
    expected: usize,
) -> Value {
    let mut conn = KeepAlive::new(addr);
    let started = Instant::now();
    let (mut rows, mut pages, mut out_of_order) = (0u64, 0u64, 0u64);
    let mut last: Option<i64> = None;
    let mut cursor: Option<String> = None;
    let mut error = None;
    // More pages than the table can fill means the walk does not end.
    let max_pages = expected / SQL_PAGE + 10;
    loop {
        if pages as usize >= max_pages {
            error = Some(format!("still a next_cursor after {pages} pages"));
            break;
        }
        let mut body = json!({"query_definition_id": definition, "params": {},
            "limit": SQL_PAGE, "cursor_mode": "keyset"});
        if let Some(c) = &cursor {
            body["cursor"] = json!(c);
        }
        let page: Value = match conn.post(path, headers, body.to_string()).await {
            Ok((200, text)) => match serde_json::from_slice(&text) {
                Ok(v) => v,
                Err(e) => {
                    error = Some(format!("page {pages}: {e}"));
                    break;
                }
            },
            Ok((status, text)) => {
                error = Some(format!(
                    "page {pages}: {status} {}",
                    String::from_utf8_lossy(&text)
                ));
                break;
            }
            Err(e) => {
                error = Some(format!("page {pages}: {e}"));
                break;
            }
        };
        pages += 1;
        for row in page["rows"].as_array().map_or(&[][..], Vec::as_slice) {
            rows += 1;
            let id = row["id"].as_i64();
            if id.is_none() || last.is_some_and(|l| Some(l) >= id) {
                out_of_order += 1;
            }
            last = id.or(last);
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    json!({
        "limit": SQL_PAGE, "pages": pages, "rows": rows, "expected_rows": expected,
        "complete": rows == expected as u64 && out_of_order == 0 && error.is_none(),
        "out_of_order": out_of_order, "error": error,
        "seconds": seconds, "rows_per_s": rows as f64 / seconds.max(1e-9),
    })
}

/// The Markdown table printed at the end and kept in `docs/benchmarks.md`.
mod report {
    use serde_json::Value;

    fn f(v: &Value) -> f64 {
        v.as_f64().unwrap_or(f64::NAN)
    }

    fn n(x: f64) -> String {
        if !x.is_finite() {
            return "n/a".into();
        }
        let s = format!("{:.0}", x);
        let bytes = s.as_bytes();
        let mut out = String::new();
        for (i, b) in bytes.iter().enumerate() {
            if i > 0 && (bytes.len() - i) % 3 == 0 && *b != b'-' {
                out.push(',');
            }
            out.push(*b as char);
        }
        out
    }

    fn ms(us: f64) -> String {
        if us.is_finite() {
            format!("{:.2} ms", us / 1000.0)
        } else {
            "n/a".into()
        }
    }

    fn r(x: f64) -> String {
        if x.is_finite() {
            format!("{x:.2}×")
        } else {
            "n/a".into()
        }
    }

    fn met(ok: bool) -> &'static str {
        if ok {
            "yes"
        } else {
            "**no**"
        }
    }

    /// The simple-DB rows of the main table (`sql` is a node's `sql` result).
    fn sql_rows(t: &mut String, label: &str, sql: &Value) {
        if !sql.is_object() {
            return;
        }
        if let Some(err) = sql["error"].as_str() {
            t.push_str(&format!(
                "| {label}: not measured ({}) | — | — | — | — | **no** |\n",
                err.replace('|', "/").replace('\n', " ")
            ));
            return;
        }
        let ins = &sql["inserts"];
        t.push_str(&format!(
            "| {label}: inserts/s ({} rows, {} in flight; {} failed) | — | {} | — | all rows | {} |\n",
            n(f(&ins["rows"])),
            ins["in_flight"],
            n(f(&ins["failed"])),
            n(f(&ins["per_s"])),
            met(f(&ins["failed"]) == 0.0)
        ));
        let k = &sql["keyed_select"];
        let not_ok = f(&k["requests"]) - f(&k["ok"]);
        t.push_str(&format!(
            "| {label}: keyed SELECT req/s, p99 (closed loop, {} conn.; p50 {}) | — | {}, {} | — | all ok | {} |\n",
            k["connections"],
            ms(f(&k["latency_us"]["p50"])),
            n(f(&k["throughput_rps"])),
            ms(f(&k["latency_us"]["p99"])),
            met(not_ok == 0.0 && f(&k["requests"]) > 0.0)
        ));
        let p = &sql["keyset_paging"];
        t.push_str(&format!(
            "| {label}: keyset paging of {} rows: rows/s (pages of {}, {} rows back in {:.2} s) | — | {} | — | every row once | {} |\n",
            n(f(&p["expected_rows"])),
            p["limit"],
            n(f(&p["rows"])),
            f(&p["seconds"]),
            n(f(&p["rows_per_s"])),
            met(p["complete"].as_bool() == Some(true))
        ));
        let limit = f(&p["limit"]);
        let per_page = f(&p["store_rows_read_per_page"]);
        t.push_str(&format!(
            "| {label}: store rows read per keyset page (limit {limit}) | — | {per_page:.1} | — | ≤ limit + 4 | {} |\n",
            met(per_page <= limit + 4.0)
        ));
    }

    pub fn markdown(res: &Value) -> String {
        let e = &res["embedded"];
        let m = &res["machine"];
        let mut t = String::new();
        t.push_str(&format!(
            "Run {} on {} cores ({}), {} GiB, Linux {}; {} sessions, {} s runs after {} s warm-up; \
             loadgen {} thread(s); load average (1, 5, 15 min) {} before, {} after.\n\n",
            res["date"].as_str().unwrap_or("?"),
            m["cores"],
            m["cpu_model"].as_str().unwrap_or("?"),
            m["memory_gib"],
            m["kernel"].as_str().unwrap_or("?"),
            res["config"]["sessions"],
            res["config"]["duration_s"],
            res["config"]["warmup_s"],
            res["config"]["loadgen_threads"],
            res["loadavg_before"].as_str().unwrap_or("?"),
            res["loadavg_after"].as_str().unwrap_or("?"),
        ));
        t.push_str("| measure | baseline | node (embedded) | ratio | target | met |\n");
        t.push_str("|---|---|---|---|---|---|\n");

        let sb = &e["single_closed"]["baseline"];
        let sn = &e["single_closed"]["node"];
        let tr = f(&sn["throughput_rps"]) / f(&sb["throughput_rps"]);
        t.push_str(&format!(
            "| single-token req/s (closed loop, {} conn.) | {} | {} | {} | ≥ 0.8× | {} |\n",
            sn["connections"],
            n(f(&sb["throughput_rps"])),
            n(f(&sn["throughput_rps"])),
            r(tr),
            met(tr >= 0.8)
        ));
        t.push_str(&format!(
            "| single-token p50 / p99 / p999 at max | {} / {} / {} | {} / {} / {} | p99 {} | — | — |\n",
            ms(f(&sb["latency_us"]["p50"])),
            ms(f(&sb["latency_us"]["p99"])),
            ms(f(&sb["latency_us"]["p999"])),
            ms(f(&sn["latency_us"]["p50"])),
            ms(f(&sn["latency_us"]["p99"])),
            ms(f(&sn["latency_us"]["p999"])),
            r(f(&sn["latency_us"]["p99"]) / f(&sb["latency_us"]["p99"])),
        ));
        let ob = &e["single_open_half"]["baseline"];
        let on = &e["single_open_half"]["node"];
        let p99 = f(&on["latency_us"]["p99"]);
        t.push_str(&format!(
            "| p99 at 50 % of own max (open loop: {} / {} req/s) | {} | {} | {} | < 2 ms | {} |\n",
            n(f(&ob["target_rate"])),
            n(f(&on["target_rate"])),
            ms(f(&ob["latency_us"]["p99"])),
            ms(p99),
            r(p99 / f(&ob["latency_us"]["p99"])),
            met(p99 < 2000.0)
        ));
        for size in [100, 1000] {
            let b = &e["batch"][format!("baseline_{size}")];
            let nd = &e["batch"][format!("node_{size}")];
            let tok = f(&nd["items_per_s"]);
            t.push_str(&format!(
                "| batch of {size}: tokens/s ({} conn.) | {} | {} | {} | ≥ 1,000,000 | {} |\n",
                nd["connections"],
                n(f(&b["items_per_s"])),
                n(tok),
                r(tok / f(&b["items_per_s"])),
                met(tok >= 1_000_000.0)
            ));
        }
        let storm = f(&e["storm"]["introspection"]["latency_us"]["p99"]);
        t.push_str(&format!(
            "| introspection p99 under a login storm (idle → storm, {} req/s; {} logins/s meanwhile) | — | {} → {} | {} | ≤ 2× idle | {} |\n",
            n(f(&on["target_rate"])),
            n(f(&e["storm"]["logins"]["throughput_rps"])),
            ms(p99),
            ms(storm),
            r(storm / p99),
            met(storm <= 2.0 * p99)
        ));
        let raw = f(&res["argon2_raw"]["per_s"]);
        let login = f(&e["login"]["run"]["throughput_rps"]);
        t.push_str(&format!(
            "| logins/s vs raw Argon2id hashes/s ({} threads) | {:.1} (raw) | {:.1} | {} | ≥ 0.9× | {} |\n",
            res["argon2_raw"]["threads"],
            raw,
            login,
            r(login / raw),
            met(login / raw >= 0.9)
        ));
        let bps = f(&e["memory"]["bytes_per_session"]);
        t.push_str(&format!(
            "| resident bytes per cached session ({} sessions) | — | {} | — | ≤ 300 | {} |\n",
            n(f(&e["memory"]["sessions"])),
            n(bps),
            met(bps <= 300.0)
        ));
        t.push_str(&format!(
            "| first (cold) pass, batch of 1000 from the embedded store: tokens/s | — | {} | — | — | — |\n",
            n(f(&e["memory"]["first_pass"]["items_per_s"]))
        ));
        sql_rows(&mut t, "sql", &e["sql"]);
        let cql = &res["cql"];
        if cql.is_object() {
            for (label, key) in [("cold pass", "cold_pass"), ("warm pass", "warm_pass")] {
                let p = &cql[key];
                t.push_str(&format!(
                    "| CQL {label}: single-token req/s, p99 | — | {}, {} | {} | — | — |\n",
                    n(f(&p["throughput_rps"])),
                    ms(f(&p["latency_us"]["p99"])),
                    r(f(&p["throughput_rps"]) / f(&sb["throughput_rps"]))
                ));
            }
            let cs = &cql["single_closed"];
            let csr = f(&cs["throughput_rps"]) / f(&sb["throughput_rps"]);
            t.push_str(&format!(
                "| CQL warm: single-token req/s (closed loop) | {} | {} | {} | ≥ 0.8× | {} |\n",
                n(f(&sb["throughput_rps"])),
                n(f(&cs["throughput_rps"])),
                r(csr),
                met(csr >= 0.8)
            ));
            let co = &cql["single_open_half"];
            let cp = f(&co["latency_us"]["p99"]);
            t.push_str(&format!(
                "| CQL warm: p99 at 50 % of max ({} req/s) | — | {} | — | < 2 ms | {} |\n",
                n(f(&co["target_rate"])),
                ms(cp),
                met(cp < 2000.0)
            ));
            let cb = f(&cql["batch_1000"]["items_per_s"]);
            let bb = f(&e["batch"]["baseline_1000"]["items_per_s"]);
            t.push_str(&format!(
                "| CQL warm: batch of 1000 tokens/s | {} | {} | {} | ≥ 1,000,000 | {} |\n",
                n(bb),
                n(cb),
                r(cb / bb),
                met(cb >= 1_000_000.0)
            ));
            sql_rows(&mut t, "CQL sql", &cql["sql"]);
        }

        t.push_str(
            "\nEvery run (server CPU includes the warm-up; loadgen CPU is the whole run):\n\n",
        );
        t.push_str("| run | req/s | tokens/s | p50 | p99 | p999 | not ok | loadgen CPU s | server CPU s |\n");
        t.push_str("|---|---|---|---|---|---|---|---|---|\n");
        let mut rows: Vec<(String, &Value)> = vec![(
            "node first pass batch 1000".into(),
            &e["memory"]["first_pass"],
        )];
        for name in ["baseline", "node"] {
            rows.push((format!("{name} single closed"), &e["single_closed"][name]));
            rows.push((
                format!("{name} single open 50 %"),
                &e["single_open_half"][name],
            ));
            rows.push((
                format!("{name} batch 100"),
                &e["batch"][format!("{name}_100")],
            ));
            rows.push((
                format!("{name} batch 1000"),
                &e["batch"][format!("{name}_1000")],
            ));
        }
        rows.push((
            "node single open under storm".into(),
            &e["storm"]["introspection"],
        ));
        rows.push(("login storm (beside it)".into(), &e["storm"]["logins"]));
        rows.push(("node login alone".into(), &e["login"]["run"]));
        if e["sql"]["keyed_select"].is_object() {
            rows.push(("node sql keyed SELECT".into(), &e["sql"]["keyed_select"]));
        }
        if cql.is_object() {
            rows.push(("cql cold pass".into(), &cql["cold_pass"]));
            rows.push(("cql warm pass".into(), &cql["warm_pass"]));
            rows.push(("cql single closed".into(), &cql["single_closed"]));
            rows.push(("cql single open 50 %".into(), &cql["single_open_half"]));
            rows.push(("cql batch 1000".into(), &cql["batch_1000"]));
            if cql["sql"]["keyed_select"].is_object() {
                rows.push(("cql sql keyed SELECT".into(), &cql["sql"]["keyed_select"]));
            }
        }
        for (name, v) in rows {
            let not_ok = f(&v["requests"]) - f(&v["ok"]) + f(&v["late_at_end"]);
            t.push_str(&format!(
                "| {name} | {} | {} | {} | {} | {} | {} | {:.1} | {} |\n",
                n(f(&v["throughput_rps"])),
                n(f(&v["items_per_s"])),
                ms(f(&v["latency_us"]["p50"])),
                ms(f(&v["latency_us"]["p99"])),
                ms(f(&v["latency_us"]["p999"])),
                n(not_ok),
                f(&v["loadgen_cpu_s"]),
                v["server_cpu_s"]
                    .as_f64()
                    .map_or("—".into(), |s| format!("{s:.1}")),
            ));
        }
        t
    }
}
