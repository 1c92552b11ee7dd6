//! The CQL store's phase (only with `COMMONROCK_TEST_CQL_NODES`): a fresh keyspace seeded
//! offline, one node on it, cold and warm passes, then the same introspection runs as on the
//! embedded store, and the simple DB.

use serde_json::{json, Value};

use crate::loadgen::{introspect_args, with};
use crate::seed::seed;
use crate::server::{creds, Env, StoreKind};
use crate::sql::sql_phase;
use crate::{say, to_value};

/// CQL store: a fresh keyspace, seeded offline, then a node with an empty cache: the first pass
/// over the tokens is cold (every session read from CQL), the second warm; then the closed-loop
/// single-token and batch runs on the warm cache.
pub fn phase(env: &Env, nodes: &str) -> Result<Value, String> {
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
