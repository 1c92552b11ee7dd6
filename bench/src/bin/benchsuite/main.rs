//! `benchsuite`: the driver behind `scripts/bench`. Measures the raw Argon2id rate, seeds a node
//! (embedded store, and the CQL store and a cluster on it when `COMMONROCK_TEST_CQL_NODES` is
//! set), starts the baseline, runs `loadgen` against both in the same run, and writes
//! `target/bench/latest.json` and `target/bench/latest.md`. Every figure is absolute and, where
//! the baseline (or the single CQL node, for the cluster) has one, a ratio to it.

mod calls;
mod cluster;
mod cql;
mod embedded;
mod loadgen;
mod metrics;
mod report;
mod seed;
mod server;
mod sql;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use clap::Parser;
use commonrock_bench::proc_stats;
use serde::Serialize;
use serde_json::{json, Value};

use crate::server::Env;

const PROJECT: &str = "org_demo_payments";
const ORIGIN: &str = "https://app.example.com";
const LOGIN_USER: &str = "bench-login";
const LOGIN_PASSWORD: &str = "bench-password-123";

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
    /// CQL contact point(s); the CQL and cluster phases run only when set.
    #[arg(long, env = "COMMONROCK_TEST_CQL_NODES")]
    cql_nodes: Option<String>,
    /// Nodes of the cluster phase, on the CQL store after the CQL phase; node 1 is the entry
    /// node every request goes to (0 skips the phase).
    #[arg(long, default_value_t = 3)]
    cluster_nodes: usize,
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
            "sql_rows": args.sql_rows, "cluster_nodes": args.cluster_nodes,
        },
    });

    let baseline = embedded::phase(&env, &scratch, &mut results)?;
    if let Some(nodes) = &args.cql_nodes {
        results["cql"] = cql::phase(&env, nodes)?;
    }
    baseline.stop()?;
    match &args.cql_nodes {
        _ if args.cluster_nodes == 0 => say("cluster phase skipped: --cluster-nodes 0"),
        None => say("cluster phase skipped: COMMONROCK_TEST_CQL_NODES is not set"),
        Some(nodes) => results["cluster"] = cluster::phase(&env, nodes, &results["cql"]),
    }

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
