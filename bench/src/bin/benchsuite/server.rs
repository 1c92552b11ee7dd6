//! The servers the suite starts: a node (`commonrock serve`) or the baseline as a child process
//! whose ready line gives its address, the `serve --dev` credentials, and where a node keeps
//! its data.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::Args;

/// What `serve --dev` may take to print its banner (first start creates the store or keyspace).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A server child (node or baseline), stopped with SIGTERM and reaped on drop.
pub struct Server {
    child: Child,
    pub addr: String,
    banner: Vec<String>,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `cmd` (stdout piped, stderr to `log`) and waits for `<ready_prefix>http://ADDR`.
    pub fn start(mut cmd: Command, log: &Path, ready_prefix: &str) -> Result<Server, String> {
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
    pub fn banner_value(&self, label: &str) -> Option<String> {
        self.banner.iter().find_map(|l| {
            l.trim()
                .strip_prefix(label)
                .and_then(|v| v.split_whitespace().next())
                .map(str::to_string)
        })
    }

    pub fn stop(mut self) -> Result<(), String> {
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
pub struct Creds {
    pub client_id: String,
    pub client_key: String,
    pub api_key: String,
    pub admin_token: String,
}

pub fn creds(node: &Server) -> Result<Creds, String> {
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
pub enum StoreKind {
    Embedded { data_dir: PathBuf },
    Cql { nodes: String, keyspace: String },
}

impl StoreKind {
    pub fn args(&self) -> Vec<String> {
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

/// The suite's settings and the server secret every node of a run shares.
pub struct Env<'a> {
    pub args: &'a Args,
    pub secret: PathBuf,
}

impl Env<'_> {
    pub fn bin(&self, name: &str) -> PathBuf {
        self.args.bin_dir.join(name)
    }

    pub fn start_node(&self, store: &StoreKind, log: &str) -> Result<Server, String> {
        self.start_node_with(store, log, &[])
    }

    /// A `serve --dev` node: its banner carries fresh demo credentials (and revokes the
    /// previous ones).
    pub fn start_node_with(
        &self,
        store: &StoreKind,
        log: &str,
        extra: &[&str],
    ) -> Result<Server, String> {
        self.serve(store, log, true, extra)
    }

    /// A node without `--dev`: it serves the tenants already in the store and leaves the demo
    /// credentials of an earlier `--dev` start valid (a further cluster node).
    pub fn start_peer_node(
        &self,
        store: &StoreKind,
        log: &str,
        extra: &[&str],
    ) -> Result<Server, String> {
        self.serve(store, log, false, extra)
    }

    fn serve(
        &self,
        store: &StoreKind,
        log: &str,
        dev: bool,
        extra: &[&str],
    ) -> Result<Server, String> {
        let mut cmd = Command::new(self.bin("commonrock"));
        cmd.arg("serve");
        if dev {
            cmd.arg("--dev");
        }
        // The access log is off: at these rates it writes one line per request, which measures
        // the terminal, not the node (docs/benchmarks.md). Everything else is the default.
        cmd.args(["--listen", "127.0.0.1:0", "--shutdown-delay-ms", "0"])
            .args(["--access-log", "off"])
            .arg("--secret-file")
            .arg(&self.secret)
            .args(store.args())
            .args(extra);
        cmd.env_remove("COMMONROCK_ADMIN_TOKEN");
        Server::start(
            cmd,
            &self.args.out_dir.join(log),
            "commonrock listening on ",
        )
    }
}
