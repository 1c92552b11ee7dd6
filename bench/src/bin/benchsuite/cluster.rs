//! The cluster phase (after the CQL phase): `--cluster-nodes` nodes on one fresh keyspace and
//! every request sent to node 1, the entry node, which owns ≈ 1/N of the sessions, so
//! ≈ (N − 1)/N of them are forwarded to their owner. Compared with the single CQL node of the
//! same invocation at the same offered load. The nodes and the load generator share this
//! machine's cores: the phase measures what forwarding costs, not how a cluster scales.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::calls::{admin_get, http};
use crate::loadgen::{introspect_args, with};
use crate::metrics::Metrics;
use crate::seed::seed;
use crate::server::{creds, Creds, Env, Server, StoreKind};
use crate::{ratio, say, to_value};

/// How long the nodes may take to agree on a ring of every member.
const RING_TIMEOUT: Duration = Duration::from_secs(60);
const SINGLE_ROUTE: &str = "/{slug}/v1/sessions/introspect";
const BATCH_ROUTE: &str = "/{slug}/v1/sessions/introspect/batch";
const HTTP_REQUESTS: &str = "commonrock_http_requests_total";
const FORWARDS: &str = "commonrock_forwards_total";
const FORWARD_OUTCOMES: [&str; 4] = ["ok", "not_owner", "unavailable", "error"];

/// Runs the phase against `single`, the CQL phase's results; a failure is recorded in the
/// result (`error`) rather than ending the suite (the earlier phases' figures are kept).
pub fn phase(env: &Env, cql_nodes: &str, single: &Value) -> Value {
    match measure(env, cql_nodes, single) {
        Ok(v) => v,
        Err(e) => {
            say(format!("warning: cluster: {e}"));
            json!({ "error": e })
        }
    }
}

/// The single CQL node's figures the cluster is compared with.
struct SingleNode {
    closed_rps: f64,
    /// The rate of its open-loop run (half its max), offered to the cluster too.
    half_rate: f64,
    open: Value,
    batch_tokens_per_s: f64,
}

impl SingleNode {
    fn of(cql: &Value) -> Result<SingleNode, String> {
        let num = |v: &Value, what: &str| {
            v.as_f64()
                .ok_or_else(|| format!("no single-node CQL figure to compare with ({what})"))
        };
        Ok(SingleNode {
            closed_rps: num(&cql["single_closed"]["throughput_rps"], "closed loop")?,
            half_rate: num(&cql["single_open_half"]["target_rate"], "open loop")?,
            open: cql["single_open_half"].clone(),
            batch_tokens_per_s: num(&cql["batch_1000"]["items_per_s"], "batch of 1000")?,
        })
    }
}

fn measure(env: &Env, cql_nodes: &str, single: &Value) -> Result<Value, String> {
    let args = env.args;
    let started = Instant::now();
    let single = SingleNode::of(single)?;
    let n = args.cluster_nodes;
    let keyspace = format!("cr_bench_cluster_{}", chrono::Utc::now().timestamp());
    let store = StoreKind::Cql {
        nodes: cql_nodes.to_string(),
        keyspace: keyspace.clone(),
    };
    let tokens = args.out_dir.join("scratch").join("tokens-cluster.txt");
    say(format!(
        "cluster: seeding {} sessions (CQL keyspace {keyspace})",
        args.sessions
    ));
    let seeding = seed(env, &store, &tokens, "cluster")?;
    let mut nodes: Vec<Server> = Vec::with_capacity(n);
    for i in 1..=n {
        let id = format!("n{i}");
        let log = format!("node-cluster-{id}.log");
        let extra = ["--node-id", id.as_str(), "--cluster-listen", "127.0.0.1:0"];
        say(format!("cluster: starting node {id} of {n}"));
        // Only the first node runs `--dev`: a later `--dev` start would revoke the credentials
        // its banner printed, which every node accepts (they live in the keyspace).
        let node = if i == 1 {
            env.start_node_with(&store, &log, &extra)?
        } else {
            env.start_peer_node(&store, &log, &extra)?
        };
        nodes.push(node);
    }
    let c = creds(&nodes[0])?;
    let measured = measure_on(env, &nodes, &c, &tokens, &single);
    // Last in, first out: each leave waits until the remaining members route without it.
    for node in nodes.into_iter().rev() {
        if let Err(e) = node.stop() {
            say(format!("warning: cluster: {e}"));
        }
    }
    let mut out = measured?;
    out["keyspace"] = json!(keyspace);
    out["seeding"] = seeding;
    out["seconds"] = json!(started.elapsed().as_secs_f64());
    Ok(out)
}

fn measure_on(
    env: &Env,
    nodes: &[Server],
    c: &Creds,
    tokens: &Path,
    single: &SingleNode,
) -> Result<Value, String> {
    let args = env.args;
    let n = nodes.len();
    let entry = &nodes[0];
    let pids: Vec<u32> = nodes.iter().map(Server::pid).collect();
    let ring = wait_for_ring(nodes, c)?;
    let conns = args.connections.to_string();

    say(format!(
        "cluster: first pass over every token through n1, single-token, {conns} connections"
    ));
    let before_pass = Metrics::read(&entry.addr, c)?;
    let first_pass = env.loadgen_on(
        &pids,
        &with(
            introspect_args(entry, Some(c), tokens, "single"),
            &["--once", "--connections", &conns],
        ),
    )?;
    first_pass.check("cluster first pass");
    let after_pass = Metrics::read(&entry.addr, c)?;
    // Read before any batch: a forwarded batch runs on the owner's shard of its first token,
    // and that shard then caches the others too, so the counts would no longer be shares.
    let cached = owned_sessions(nodes, c, first_pass.summary.requests as f64)?;
    let cached_total: f64 = cached.iter().sum();

    let mut a = introspect_args(entry, Some(c), tokens, "single");
    a.extend(env.timing());
    let before_single = Metrics::read(&entry.addr, c)?;
    say("cluster: single-token through n1, closed loop");
    let closed = env.loadgen_on(&pids, &with(a.clone(), &["--connections", &conns]))?;
    closed.check("cluster single closed");
    let rate = single.half_rate;
    say(format!(
        "cluster: open loop through n1 at {rate:.0} req/s (half the single CQL node's max)"
    ));
    let open = env.loadgen_on(
        &pids,
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
    open.check("cluster single open");
    let after_single = Metrics::read(&entry.addr, c)?;

    let mut b = introspect_args(entry, Some(c), tokens, "batch:1000");
    b.extend(env.timing());
    say("cluster: batch of 1000 through n1");
    let batch = env.loadgen_on(
        &pids,
        &with(b, &["--connections", &args.batch_connections.to_string()]),
    )?;
    batch.check("cluster batch 1000");
    let after_batch = Metrics::read(&entry.addr, c)?;

    let pass_fwd = forwarding(&before_pass, &after_pass, SINGLE_ROUTE);
    let single_fwd = forwarding(&before_single, &after_single, SINGLE_ROUTE);
    let batch_fwd = forwarding(&after_single, &after_batch, BATCH_ROUTE);
    let fraction = single_fwd["forwards_per_request"]
        .as_f64()
        .unwrap_or(f64::NAN);
    say(format!(
        "cluster: n1 owns {:.1} % of the sessions; it forwarded {:.1} % of single-token \
         introspections",
        ratio(cached[0], cached_total) * 100.0,
        fraction * 100.0,
    ));

    let lat = |r: &Value, q: &str| r["latency_us"][q].as_f64().unwrap_or(f64::NAN);
    let open_v = to_value(&open);
    // Requests offered over the whole open run (warm-up included), as the CPU reading covers.
    let offered = rate * (args.warmup + args.duration);
    let single_cpu = single.open["server_cpu_s"].as_f64().unwrap_or(f64::NAN);
    Ok(json!({
        "nodes": n,
        "entry_node": "n1",
        "ring": ring,
        "sessions_cached": cached.iter().enumerate()
            .map(|(i, c)| (format!("n{}", i + 1), json!(c)))
            .collect::<serde_json::Map<String, Value>>(),
        "entry_share": ratio(cached[0], cached_total),
        "first_pass": to_value(&first_pass),
        "single_closed": to_value(&closed),
        // At the single node's open-loop rate (half its max), not half the cluster's.
        "single_open_same_load": open_v,
        "batch_1000": to_value(&batch),
        "forwarding": {
            "first_pass": pass_fwd, "single": single_fwd, "batch_1000": batch_fwd,
        },
        "vs_single_node": {
            "throughput_ratio": ratio(closed.summary.throughput_rps, single.closed_rps),
            "open_rate": rate,
            "added_p50_us": lat(&open_v, "p50") - lat(&single.open, "p50"),
            "added_p99_us": lat(&open_v, "p99") - lat(&single.open, "p99"),
            "batch_1000_ratio": ratio(batch.summary.items_per_s, single.batch_tokens_per_s),
            // Every node's CPU against the single node's, at the same offered load.
            "server_cpu_us_per_request": open.server_cpu_s * 1e6 / offered,
            "single_server_cpu_us_per_request": single_cpu * 1e6 / offered,
            "server_cpu_ratio": ratio(open.server_cpu_s, single_cpu),
        },
    }))
}

/// Sessions cached on each node: only an owner caches a session, so after one single-token
/// pass over every token this is each node's share. A shard publishes its count every 5 s, so
/// this waits (up to 7 s) until the counts add up to the `expected` sessions passed over.
fn owned_sessions(nodes: &[Server], c: &Creds, expected: f64) -> Result<Vec<f64>, String> {
    let deadline = Instant::now() + Duration::from_secs(7);
    loop {
        let cached = nodes
            .iter()
            .map(|node| {
                Metrics::read(&node.addr, c).map(|m| m.count("commonrock_sessions_cached", &[]))
            })
            .collect::<Result<Vec<f64>, String>>()?;
        if cached.iter().sum::<f64>() >= expected || Instant::now() >= deadline {
            return Ok(cached);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// What the entry node forwarded between two readings of its metrics, per request of `route`.
fn forwarding(before: &Metrics, after: &Metrics, route: &str) -> Value {
    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.count(name, labels) - before.count(name, labels)
    };
    let requests = delta(HTTP_REQUESTS, &[("route", route)]);
    let outcomes: serde_json::Map<String, Value> = FORWARD_OUTCOMES
        .iter()
        .map(|o| (o.to_string(), json!(delta(FORWARDS, &[("outcome", o)]))))
        .collect();
    let forwards = delta(FORWARDS, &[]);
    let seconds = delta("commonrock_forward_seconds_sum", &[]);
    let timed = delta("commonrock_forward_seconds_count", &[]);
    json!({
        "requests": requests,
        "forwards": forwards,
        "by_outcome": outcomes,
        "forwards_per_request": ratio(forwards, requests),
        "mean_forward_us": ratio(seconds * 1e6, timed),
    })
}

/// Waits until every node is ready and sees the same ring of every node, all `up`; returns the
/// entry node's view (`GET /admin/v1/cluster`).
fn wait_for_ring(nodes: &[Server], c: &Creds) -> Result<Value, String> {
    say(format!(
        "cluster: waiting for a ring of {} members on every node",
        nodes.len()
    ));
    let deadline = Instant::now() + RING_TIMEOUT;
    loop {
        let last = ring_state(nodes, c);
        match last {
            Ok(view) => return Ok(view),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("no common ring within {RING_TIMEOUT:?}: {e}"))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// The entry node's view when every node is ready and agrees on it, else what is missing.
fn ring_state(nodes: &[Server], c: &Creds) -> Result<Value, String> {
    let mut entry_view = None;
    let mut epochs = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let (status, _) = http(&node.addr, "GET", "/readyz", &[], "")?;
        if status != 200 {
            return Err(format!("n{} /readyz answers {status}", i + 1));
        }
        let text = admin_get(&node.addr, c, "/admin/v1/cluster")?;
        let view: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        let members = view["members"].as_array().map_or(&[][..], Vec::as_slice);
        let up = members.iter().filter(|m| m["status"] == "up").count();
        if members.len() != nodes.len() || up != nodes.len() {
            return Err(format!("n{} sees {text}", i + 1));
        }
        epochs.push(view["epoch"].as_u64());
        entry_view.get_or_insert(view);
    }
    if epochs.windows(2).any(|w| w[0] != w[1]) {
        return Err(format!("epochs differ: {epochs:?}"));
    }
    entry_view.ok_or_else(|| "no nodes".to_string())
}
