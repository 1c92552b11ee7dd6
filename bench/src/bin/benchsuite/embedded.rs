//! The embedded store's phase: memory per cached session, single-token and batch introspection
//! against the baseline, the login storm, logins against the raw Argon2id rate, and the simple
//! DB. Writes `embedded` and `argon2_raw` into the results.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use commonrock_bench::proc_stats;
use serde_json::{json, Value};

use crate::calls::{lift_login_limits, signup};
use crate::loadgen::{finish_loadgen, introspect_args, login_args, with, Run};
use crate::seed::seed;
use crate::server::{creds, Creds, Env, Server, StoreKind};
use crate::sql::sql_phase;
use crate::{ratio, say, to_value, LOGIN_PASSWORD, LOGIN_USER};

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

/// Runs the phase in `scratch`; returns the baseline server, still running (stopped by the
/// caller after the CQL phase).
pub fn phase(env: &Env, scratch: &Path, results: &mut Value) -> Result<Server, String> {
    let args = env.args;
    say(format!(
        "seeding {} sessions (embedded store)",
        args.sessions
    ));
    let tokens = scratch.join("tokens-embedded.txt");
    let embedded = StoreKind::Embedded {
        data_dir: scratch.join("data"),
    };
    results["embedded"] = json!({ "seeding": seed(env, &embedded, &tokens, "embedded")? });
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
    results["embedded"]["sql"] = sql_phase(env, &node, &c, "embedded");
    node.stop()?;
    Ok(baseline)
}
