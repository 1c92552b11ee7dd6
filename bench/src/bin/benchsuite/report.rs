//! The Markdown table printed at the end and kept in `docs/benchmarks.md`.

use serde_json::Value;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn n(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let digits = format!("{:.0}", x.abs());
    let mut out = String::from(if x <= -0.5 { "-" } else { "" });
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
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
    let cluster = &res["cluster"];
    if cluster.is_object() {
        cluster_table(&mut t, res);
    }

    t.push_str(if cluster["first_pass"].is_object() {
        "\nEvery run (server CPU includes the warm-up, and is every node's for the cluster runs; \
         loadgen CPU is the whole run):\n\n"
    } else {
        "\nEvery run (server CPU includes the warm-up; loadgen CPU is the whole run):\n\n"
    });
    t.push_str(
        "| run | req/s | tokens/s | p50 | p99 | p999 | not ok | loadgen CPU s | server CPU s |\n",
    );
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
    if cluster["first_pass"].is_object() {
        rows.push(("cluster first pass".into(), &cluster["first_pass"]));
        rows.push(("cluster single closed".into(), &cluster["single_closed"]));
        rows.push((
            "cluster single open at the cql rate".into(),
            &cluster["single_open_same_load"],
        ));
        rows.push(("cluster batch 1000".into(), &cluster["batch_1000"]));
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

/// A signed difference in µs (`+1,234 µs`).
fn us(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let sign = if x < 0.0 { "−" } else { "+" };
    format!("{sign}{} µs", n(x.abs()))
}

fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1} %", x * 100.0)
    } else {
        "n/a".into()
    }
}

/// The cluster phase's table: the cluster through its entry node against the single CQL node
/// of the same run, at the same offered load.
fn cluster_table(t: &mut String, res: &Value) {
    let cl = &res["cluster"];
    let cql = &res["cql"];
    let nodes = f(&cl["nodes"]);
    let cores = &res["machine"]["cores"];
    if let Some(err) = cl["error"].as_str() {
        t.push_str(&format!(
            "\nCluster phase: not measured ({}).\n",
            err.replace('\n', " ")
        ));
        return;
    }
    let vs = &cl["vs_single_node"];
    t.push_str(&format!(
        "\nCluster phase: {nodes} nodes on one CQL keyspace, every request sent to n1 (the entry \
         node, which owns {} of the sessions); ratios to the single CQL node above. The nodes, the \
         load generator and the CQL server share {cores} cores, so this is the cost of forwarding, \
         not scale (docs/cluster.md, \"Capacity model for 100 nodes\").\n\n",
        pct(f(&cl["entry_share"]))
    ));
    t.push_str(&format!(
        "| measure | 1 node (CQL) | {nodes} nodes via n1 | cluster vs 1 node |\n"
    ));
    t.push_str("|---|---|---|---|\n");
    let (one, many) = (&cql["single_closed"], &cl["single_closed"]);
    t.push_str(&format!(
        "| single-token req/s (closed loop, {} conn.) | {} | {} | {} |\n",
        many["connections"],
        n(f(&one["throughput_rps"])),
        n(f(&many["throughput_rps"])),
        r(f(&vs["throughput_ratio"]))
    ));
    let (one, many) = (&cql["single_open_half"], &cl["single_open_same_load"]);
    for (q, added) in [("p50", "added_p50_us"), ("p99", "added_p99_us")] {
        t.push_str(&format!(
            "| {q} at {} req/s (open loop, 50 % of 1 node's max) | {} | {} | {} |\n",
            n(f(&vs["open_rate"])),
            ms(f(&one["latency_us"][q])),
            ms(f(&many["latency_us"][q])),
            us(f(&vs[added]))
        ));
    }
    t.push_str(&format!(
        "| server CPU per request at that rate (every node) | {} µs | {} µs | {} |\n",
        n(f(&vs["single_server_cpu_us_per_request"])),
        n(f(&vs["server_cpu_us_per_request"])),
        r(f(&vs["server_cpu_ratio"]))
    ));
    let (one, many) = (&cql["batch_1000"], &cl["batch_1000"]);
    t.push_str(&format!(
        "| batch of 1000: tokens/s ({} conn.) | {} | {} | {} |\n",
        many["connections"],
        n(f(&one["items_per_s"])),
        n(f(&many["items_per_s"])),
        r(f(&vs["batch_1000_ratio"]))
    ));
    let (one, many) = (&cql["cold_pass"], &cl["first_pass"]);
    t.push_str(&format!(
        "| first pass over every token (cold owners): req/s, p99 | {}, {} | {}, {} | {} |\n",
        n(f(&one["throughput_rps"])),
        ms(f(&one["latency_us"]["p99"])),
        n(f(&many["throughput_rps"])),
        ms(f(&many["latency_us"]["p99"])),
        r(f(&many["throughput_rps"]) / f(&one["throughput_rps"]))
    ));
    let cached = cl["sessions_cached"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k} {}", n(f(v))))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    t.push_str(&format!(
        "| sessions cached per node after the first pass (only owners cache): shares | — | {cached} | n1 {} |\n",
        pct(f(&cl["entry_share"]))
    ));
    let pass = &cl["forwarding"]["first_pass"];
    t.push_str(&format!(
        "| first pass (each token once): introspections forwarded by n1 (expected: 1 − its share = {}) | — | {} of {} ({}) | — |\n",
        pct(1.0 - f(&cl["entry_share"])),
        n(f(&pass["forwards"])),
        n(f(&pass["requests"])),
        pct(f(&pass["forwards_per_request"])),
    ));
    let single = &cl["forwarding"]["single"];
    let not_ok: f64 = ["not_owner", "unavailable", "error"]
        .iter()
        .map(|o| f(&single["by_outcome"][o]))
        .sum();
    t.push_str(&format!(
        "| measured runs (closed, open): single-token introspections forwarded by n1 | — | {} of {} ({}) | {} forwards not ok |\n",
        n(f(&single["forwards"])),
        n(f(&single["requests"])),
        pct(f(&single["forwards_per_request"])),
        n(not_ok)
    ));
    t.push_str(&format!(
        "| mean forward round trip (`commonrock_forward_seconds`, single-token runs) | — | {} µs | — |\n",
        n(f(&single["mean_forward_us"]))
    ));
    let batch = &cl["forwarding"]["batch_1000"];
    t.push_str(&format!(
        "| forwards per batch of 1000 (at most {}) | — | {:.2} | — |\n",
        nodes - 1.0,
        f(&batch["forwards_per_request"])
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_group_thousands_and_keep_their_sign() {
        assert_eq!(n(0.0), "0");
        assert_eq!(n(999.4), "999");
        assert_eq!(n(1234567.0), "1,234,567");
        assert_eq!(n(-412.0), "-412");
        assert_eq!(n(-1234.0), "-1,234");
        assert_eq!(n(f64::NAN), "n/a");
        assert_eq!(us(-1234.0), "−1,234 µs");
        assert_eq!(us(715.0), "+715 µs");
    }
}
