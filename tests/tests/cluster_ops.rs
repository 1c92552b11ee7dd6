//! Cluster operations under load (SPEC §9): a planned leave (SIGTERM) and a rolling restart
//! answer every request, a new node takes only its share of the sessions, a paused owner is
//! fenced and never answers for sessions revoked while it was away, and nodes with another
//! server secret never share a ring.
//!
//! Needs a CQL server (`COMMONROCK_TEST_CQL_NODES`); runs in the first `cargo test` pass of
//! `scripts/check` only: its nodes are on CQL whatever `COMMONROCK_TEST_STORE` says.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use commonrock_tests::cluster::{on, shared_project, should_run, text, Cluster};
use commonrock_tests::{eventually, metric, Answer, Node, Project};
use futures_util::future::join_all;
use serde_json::json;

/// `n` users, each signed up through one node and logged in through the next; the login's
/// access tokens. With `login` false, the signup's (one session per user).
async fn sessions(cluster: &Cluster, p: &Project, n: usize, login: bool) -> Vec<String> {
    let nodes = cluster.nodes.len();
    let mut tokens = Vec::with_capacity(n);
    let ids: Vec<usize> = (0..n).collect();
    for chunk in ids.chunks(8) {
        let batch = join_all(chunk.iter().map(|&i| {
            let signup_on = on(&cluster.nodes[i % nodes], p);
            let login_on = on(&cluster.nodes[(i + 1) % nodes], p);
            async move {
                let user = format!("user-{i}");
                let su = signup_on.signup(&user, "password123").await;
                assert_eq!(su.status, 201, "signup {user}: {:?}", su.body);
                if !login {
                    return text(&su, "token");
                }
                let li = login_on.login(&user, "password123").await;
                assert_eq!(li.status, 200, "login {user}: {:?}", li.body);
                text(&li, "token")
            }
        }))
        .await;
        tokens.extend(batch);
    }
    tokens
}

/// Introspects every token through `p`: each must be 200 with `active` as given.
async fn all_active(p: &Project, tokens: &[String], active: bool, what: &str) {
    for chunk in tokens.chunks(10) {
        let answers = join_all(chunk.iter().map(|t| p.introspect(t))).await;
        for a in answers {
            assert_eq!(a.status, 200, "{what}: introspect: {:?}", a.body);
            assert_eq!(a.body["active"], active, "{what}: {:?}", a.body);
        }
    }
}

/// Where the load goes: a project's base on one node; a leaving node's listener may refuse
/// (or close) connections, but any answer it gives must be right.
#[derive(Clone)]
struct Target {
    base: String,
    may_refuse: bool,
}

#[derive(Default)]
struct Stats {
    /// 200 active:true.
    ok: u64,
    /// Connections refused or closed by a target allowed to refuse.
    refused: u64,
    /// Anything else: a status, a wrong answer or a failed request; the first ones kept.
    failures: u64,
    samples: Vec<String>,
}

/// Introspection of `tokens` round-robin through `targets` by a few concurrent workers until
/// stopped; every answer must be 200 active:true.
struct Load {
    targets: Arc<Mutex<Vec<Target>>>,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<Stats>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    started: Instant,
}

impl Load {
    fn start(p: &Project, tokens: &[String], targets: Vec<Target>, workers: usize) -> Load {
        let targets = Arc::new(Mutex::new(targets));
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(Stats::default()));
        let next = Arc::new(AtomicUsize::new(0));
        let tokens = Arc::new(tokens.to_vec());
        let started = Instant::now();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("http client");
        let handles = (0..workers)
            .map(|_| {
                let (targets, stop, stats, next, tokens, http) = (
                    targets.clone(),
                    stop.clone(),
                    stats.clone(),
                    next.clone(),
                    tokens.clone(),
                    http.clone(),
                );
                let key = p.secret_key.clone();
                let slug = p.slug.clone();
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let target = {
                            let t = targets.lock().unwrap();
                            if t.is_empty() {
                                None
                            } else {
                                Some(t[i % t.len()].clone())
                            }
                        };
                        let Some(target) = target else {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        };
                        let token = &tokens[(i / 2) % tokens.len()];
                        let res = http
                            .post(format!("{}/{slug}/v1/sessions/introspect", target.base))
                            .header("X-API-Key", &key)
                            .json(&json!({ "token": token }))
                            .send()
                            .await;
                        let outcome = match res {
                            Ok(r) => {
                                let a = Answer::of(r).await;
                                if a.status == 200 && a.body["active"] == true {
                                    Ok(())
                                } else {
                                    Err(format!(
                                        "t={:?} {}: {} {:?} retry-after={:?}",
                                        started.elapsed(),
                                        target.base,
                                        a.status,
                                        a.body,
                                        a.header("retry-after")
                                    ))
                                }
                            }
                            Err(e) if target.may_refuse && (e.is_connect() || e.is_request()) => {
                                stats.lock().unwrap().refused += 1;
                                continue;
                            }
                            Err(e) => Err(format!(
                                "t={:?} {}: request failed: {e:?}",
                                started.elapsed(),
                                target.base
                            )),
                        };
                        let mut s = stats.lock().unwrap();
                        match outcome {
                            Ok(()) => s.ok += 1,
                            Err(why) => {
                                s.failures += 1;
                                if s.samples.len() < 20 {
                                    s.samples.push(why);
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            targets,
            stop,
            stats,
            workers: handles,
            started,
        }
    }

    fn set_targets(&self, targets: Vec<Target>) {
        *self.targets.lock().unwrap() = targets;
    }

    /// Time since the load started, to place its failures among the events.
    fn t(&self) -> Duration {
        self.started.elapsed()
    }

    fn ok(&self) -> u64 {
        self.stats.lock().unwrap().ok
    }

    /// Stops the workers (each finishes its request) and returns the figures.
    async fn finish(self) -> Stats {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            w.await.expect("load worker");
        }
        std::mem::take(&mut *self.stats.lock().unwrap())
    }
}

fn target(node: &Node, may_refuse: bool) -> Target {
    Target {
        base: node.base.clone(),
        may_refuse,
    }
}

/// Waits until `n` more requests succeeded, so each phase runs under load.
async fn served_more(load: &Load, n: u64) {
    let from = load.ok();
    let more = eventually(Duration::from_secs(30), || async {
        (load.ok() >= from + n).then_some(())
    })
    .await;
    assert!(
        more.is_some(),
        "the load makes progress ({} served)",
        load.ok()
    );
}

/// Every node's log, for the lead: written to `$COMMONROCK_TEST_DUMP_DIR/n{i}.log` if set.
fn dump_logs(cluster: &Cluster) {
    let Some(dir) = std::env::var_os("COMMONROCK_TEST_DUMP_DIR") else {
        return;
    };
    for (i, node) in cluster.nodes.iter().enumerate() {
        let _ = std::fs::write(
            std::path::Path::new(&dir).join(format!("n{}.log", i + 1)),
            node.logs(),
        );
    }
}

async fn readyz(node: &Node) -> Option<u16> {
    node.http
        .get(node.url("/readyz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

async fn wait_members(cluster: &Cluster, n: f64, timeout: Duration) {
    for node in &cluster.nodes {
        let got = eventually(timeout, || async {
            (metric(node, "commonrock_cluster_members").await == n).then_some(())
        })
        .await;
        assert!(
            got.is_some(),
            "{}: commonrock_cluster_members = {} (want {n})",
            node.base,
            metric(node, "commonrock_cluster_members").await
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_answers_every_request() {
    if !should_run("cluster_ops") {
        return;
    }
    let mut cluster = Cluster::start(3, |o| o).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    let p = shared_project(&cluster, json!({})).await;
    let tokens = sessions(&cluster, &p, 50, true).await;
    for node in &cluster.nodes {
        all_active(&on(node, &p), &tokens, true, "before the leave").await;
    }

    let load = Load::start(
        &p,
        &tokens,
        vec![
            target(&cluster.nodes[0], false),
            target(&cluster.nodes[1], true),
            target(&cluster.nodes[2], false),
        ],
        4,
    );
    served_more(&load, 200).await;
    let before = load.ok();
    let started = Instant::now();
    let status = cluster.nodes[1].stop().await;
    let took = started.elapsed();
    assert!(
        status.success(),
        "n2 exits cleanly on SIGTERM: {status:?}\n{}",
        cluster.nodes[1].logs()
    );
    let during = load.ok() - before;
    // The survivors own everything now; keep the load on them a little longer.
    load.set_targets(vec![
        target(&cluster.nodes[0], false),
        target(&cluster.nodes[2], false),
    ]);
    served_more(&load, 200).await;
    let stats = load.finish().await;
    eprintln!(
        "sigterm: n2 stopped in {took:?}; {} answered right ({during} while n2 left), {} refused \
         by n2's listener, {} failures",
        stats.ok, stats.refused, stats.failures
    );
    assert_eq!(
        stats.failures,
        0,
        "every request answered 200 active:true during a planned leave; first failures:\n{}",
        stats.samples.join("\n")
    );
    for i in [0, 2] {
        all_active(&on(&cluster.nodes[i], &p), &tokens, true, "after the leave").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_under_load_answers_every_request() {
    if !should_run("cluster_ops") {
        return;
    }
    let mut cluster = Cluster::start(3, |o| o).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    let p = shared_project(&cluster, json!({})).await;
    let tokens = sessions(&cluster, &p, 30, true).await;

    let all = |c: &Cluster, except: Option<usize>| -> Vec<Target> {
        (0..c.nodes.len())
            .filter(|&i| Some(i) != except)
            .map(|i| target(&c.nodes[i], false))
            .collect()
    };
    let load = Load::start(&p, &tokens, all(&cluster, None), 4);
    served_more(&load, 100).await;
    for i in 0..cluster.nodes.len() {
        load.set_targets(all(&cluster, Some(i)));
        let started = Instant::now();
        eprintln!("t={:?} SIGTERM n{}", load.t(), i + 1);
        let status = cluster.nodes[i].stop().await;
        eprintln!("t={:?} n{} exited", load.t(), i + 1);
        assert!(status.success(), "n{} exits cleanly: {status:?}", i + 1);
        let stopped = started.elapsed();
        served_more(&load, 50).await;
        eprintln!("t={:?} relaunching n{}", load.t(), i + 1);
        cluster.nodes[i].restart().await;
        eprintln!("t={:?} n{} listening", load.t(), i + 1);
        let ready = eventually(Duration::from_secs(30), || async {
            (readyz(&cluster.nodes[i]).await == Some(200)).then_some(())
        })
        .await;
        assert!(
            ready.is_some(),
            "n{} ready again after its restart:\n{}",
            i + 1,
            cluster.nodes[i].logs()
        );
        eprintln!(
            "rolling restart: n{} stopped in {stopped:?}, ready again {:?} after the SIGTERM",
            i + 1,
            started.elapsed()
        );
        eprintln!("t={:?} n{} ready", load.t(), i + 1);
        load.set_targets(all(&cluster, None));
        served_more(&load, 100).await;
    }
    let stats = load.finish().await;
    if stats.failures > 0 {
        dump_logs(&cluster);
    }
    eprintln!(
        "rolling restart: {} answered right, {} failures",
        stats.ok, stats.failures
    );
    assert_eq!(
        stats.failures,
        0,
        "every request answered 200 active:true during a rolling restart; first failures:\n{}",
        stats.samples.join("\n")
    );
    for node in &cluster.nodes {
        all_active(&on(node, &p), &tokens, true, "after the rolling restart").await;
    }
}

async fn cached(cluster: &Cluster) -> Vec<f64> {
    let mut out = Vec::new();
    for node in &cluster.nodes {
        out.push(metric(node, "commonrock_sessions_cached").await);
    }
    out
}

/// Each node's `commonrock_sessions_cached` once they add up to `total` (every session cached
/// by one node), polled for up to 20 s.
async fn settled_cache(cluster: &Cluster, total: f64) -> Vec<f64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let last = cached(cluster).await;
        if last.iter().sum::<f64>() == total {
            return last;
        }
        assert!(
            Instant::now() < deadline,
            "the nodes' cached sessions never added up to {total} (each session cached by its \
             owner only): {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_node_takes_only_its_share() {
    if !should_run("cluster_ops") {
        return;
    }
    let mut cluster = Cluster::start(3, |o| o).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    let p = shared_project(&cluster, json!({})).await;
    let n = 120;
    let tokens = sessions(&cluster, &p, n, false).await;
    for node in &cluster.nodes {
        all_active(&on(node, &p), &tokens, true, "three nodes").await;
    }
    // The gauge is published on the shards' 1 s tick: wait until it shows every session
    // cached once (by its owner only).
    let before = settled_cache(&cluster, n as f64).await;
    eprintln!("cached sessions on 3 nodes: {before:?} (of {n})");

    let started = Instant::now();
    cluster.add_node().await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    wait_members(&cluster, 4.0, Duration::from_secs(30)).await;
    eprintln!("n4 joined in {:?}", started.elapsed());
    for node in &cluster.nodes {
        all_active(&on(node, &p), &tokens, true, "four nodes").await;
    }
    let after = settled_cache(&cluster, n as f64).await;
    eprintln!("cached sessions on 4 nodes: {after:?} (of {n})");
    let share = after[3] / n as f64;
    assert!(
        (0.10..=0.45).contains(&share),
        "n4 caches its ≈1/4 share: {} of {n}",
        after[3]
    );
    for i in 0..3 {
        assert!(
            after[i] <= before[i],
            "n{} cached no more sessions after n4 joined: {} → {}",
            i + 1,
            before[i],
            after[i]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_owner_is_fenced_and_never_answers_active_after_a_revocation() {
    if !should_run("cluster_ops") {
        return;
    }
    let cluster = Cluster::start(3, |o| o).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    let p = shared_project(&cluster, json!({})).await;
    let tokens = sessions(&cluster, &p, 40, true).await;
    let (a, b) = (&cluster.nodes[2], &cluster.nodes[0]);
    let (pa, pb) = (on(a, &p), on(b, &p));
    // Every node has the sessions it owns cached: A holds its share active.
    for node in &cluster.nodes {
        all_active(&on(node, &p), &tokens, true, "before the pause").await;
    }

    let paused = Instant::now();
    a.pause();
    // Past A's lease: the others drop it from their members.
    for node in [&cluster.nodes[0], &cluster.nodes[1]] {
        let gone = eventually(Duration::from_secs(30), || async {
            (metric(node, "commonrock_cluster_members").await == 2.0).then_some(())
        })
        .await;
        if gone.is_none() {
            a.resume();
            panic!(
                "{}: the paused node is still a member after 30 s",
                node.base
            );
        }
    }
    eprintln!(
        "paused node dropped from the members after {:?}",
        paused.elapsed()
    );

    // Revoke every session through B; A's keys answer 503 until a peer takes them over.
    let mut unavailable = 0;
    for t in &tokens {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let lo = pb.logout(t).await;
            if (200..300).contains(&lo.status) {
                break;
            }
            if lo.status != 503 || Instant::now() > deadline {
                a.resume();
                panic!("logout through B: {} {:?}", lo.status, lo.body);
            }
            unavailable += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    eprintln!(
        "all revoked through B {:?} after the pause ({unavailable} 503s on the way)",
        paused.elapsed()
    );

    a.resume();
    let resumed = Instant::now();
    // At once: A must not answer from its stale cache.
    let answers = join_all(tokens.iter().map(|t| pa.introspect(t))).await;
    let mut inactive = 0;
    let mut refused = 0;
    for ans in &answers {
        match ans.status {
            200 => {
                assert_eq!(
                    ans.body["active"], false,
                    "a paused owner answers active for a revoked session: {:?}",
                    ans.body
                );
                inactive += 1;
            }
            503 => refused += 1,
            s => panic!("after SIGCONT: {s} {:?}", ans.body),
        }
    }
    eprintln!("right after SIGCONT through A: {inactive} inactive, {refused} 503");
    let settled = eventually(Duration::from_secs(30), || async {
        for t in &tokens {
            let ans = pa.introspect(t).await;
            assert!(
                ans.status == 503 || (ans.status == 200 && ans.body["active"] == false),
                "after SIGCONT: {} {:?}",
                ans.status,
                ans.body
            );
            if ans.status != 200 {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert!(
        settled.is_some(),
        "A answers every token again after SIGCONT"
    );
    eprintln!(
        "A answers every token {:?} after SIGCONT",
        resumed.elapsed()
    );
    for node in &cluster.nodes {
        all_active(&on(node, &p), &tokens, false, "after the revocation").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_with_another_secret_refuse_each_other() {
    if !should_run("cluster_ops") {
        return;
    }
    let cluster = Cluster::start(3, |o| o).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    wait_members(&cluster, 3.0, Duration::from_secs(30)).await;
    let foreign = cluster.start_foreign_node(9).await;
    let logged = eventually(Duration::from_secs(20), || async {
        let all = cluster
            .nodes
            .iter()
            .chain([&foreign])
            .map(|n| n.logs())
            .collect::<String>();
        all.contains("another server secret").then_some(())
    })
    .await;
    assert!(
        logged.is_some(),
        "a node with another secret is reported:\n{}",
        foreign.logs()
    );
    for node in &cluster.nodes {
        let n = eventually(Duration::from_secs(10), || async {
            (metric(node, "commonrock_cluster_foreign_nodes").await >= 1.0).then_some(())
        })
        .await;
        assert!(n.is_some(), "{} counts the foreign node", node.base);
        assert_eq!(
            metric(node, "commonrock_cluster_members").await,
            3.0,
            "{} keeps 3 members",
            node.base
        );
    }
    assert_eq!(
        metric(&foreign, "commonrock_cluster_members").await,
        1.0,
        "the foreign node is alone"
    );
}
