//! Runs of the `loadgen` binary: its arguments for introspection and logins, and each run's
//! summary together with the CPU the measured servers used meanwhile.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use commonrock_bench::{proc_stats, Summary};
use serde::Serialize;
use serde_json::json;

use crate::server::{Creds, Env, Server};
use crate::{say, LOGIN_PASSWORD, LOGIN_USER, ORIGIN, PROJECT};

impl Env<'_> {
    /// Runs `loadgen`, reading the CPU the server used meanwhile.
    pub fn loadgen(&self, server_pid: u32, extra: &[String]) -> Result<Run, String> {
        self.loadgen_on(&[server_pid], extra)
    }

    /// Runs `loadgen`, reading the CPU the servers (e.g. every node of a cluster) used
    /// meanwhile, summed.
    pub fn loadgen_on(&self, server_pids: &[u32], extra: &[String]) -> Result<Run, String> {
        let cpu = || -> f64 {
            server_pids
                .iter()
                .map(|pid| proc_stats::cpu_seconds(&pid.to_string()).unwrap_or(0.0))
                .sum()
        };
        let spawned = self.spawn_loadgen(extra)?;
        let cpu_before = cpu();
        let summary = finish_loadgen(spawned)?;
        let cpu_after = cpu();
        Ok(Run::new(summary, cpu_after - cpu_before))
    }

    pub fn spawn_loadgen(&self, extra: &[String]) -> Result<Child, String> {
        let mut cmd = Command::new(self.bin("loadgen"));
        cmd.args(["--threads", &self.args.loadgen_threads.to_string()])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        cmd.spawn()
            .map_err(|e| format!("cannot start loadgen: {e}"))
    }

    pub fn timing(&self) -> Vec<String> {
        vec![
            "--duration".into(),
            self.args.duration.to_string(),
            "--warmup".into(),
            self.args.warmup.to_string(),
        ]
    }
}

pub fn finish_loadgen(mut child: Child) -> Result<Summary, String> {
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
pub struct Run {
    #[serde(flatten)]
    pub summary: Summary,
    /// CPU seconds the server process(es) used during the whole run (warm-up included).
    pub server_cpu_s: f64,
}

impl Run {
    fn new(summary: Summary, server_cpu_s: f64) -> Run {
        Run {
            summary,
            server_cpu_s,
        }
    }

    /// Warns when answers were not ok or too many requests were left unsent.
    pub fn check(&self, what: &str) {
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

/// Single (`body` = `single`) or batch (`batch:N`) introspection of the seeded tokens on
/// `server`; `c` adds the secret key (the baseline needs none).
pub fn introspect_args(
    server: &Server,
    c: Option<&Creds>,
    tokens: &Path,
    body: &str,
) -> Vec<String> {
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

/// Logins of the bench user with its correct password.
pub fn login_args(node: &Server, c: &Creds, connections: usize) -> Vec<String> {
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

pub fn with(mut a: Vec<String>, more: &[&str]) -> Vec<String> {
    a.extend(more.iter().map(|s| s.to_string()));
    a
}
