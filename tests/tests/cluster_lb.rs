//! A cluster behind nginx running the documented `docs/operations/nginx.conf`, rendered exactly
//! as its header tells operators to: the session flow works through it, a token minted through
//! the balancer is active on every node, and a killed node costs no client its request.
//!
//! Needs a CQL server (`COMMONROCK_TEST_CQL_NODES`) and nginx (`COMMONROCK_TEST_NGINX`, or on the
//! PATH); `scripts/check` provides both. It runs in the first `cargo test` pass of
//! `scripts/check` only: its nodes are on CQL whatever `COMMONROCK_TEST_STORE` says.

use std::time::Duration;

use commonrock_tests::cluster::{cql_server, nginx_binary, on, text, Cluster, Nginx};
use commonrock_tests::{eventually, Answer, Node, NodeOptions, Project};
use serde_json::json;

/// Whether to run here: skipped in the `COMMONROCK_TEST_STORE=scylla` pass (the same test
/// already ran in the first pass) and, outside CI, without a CQL server; with one, nginx is
/// required.
fn should_run() -> bool {
    if std::env::var("COMMONROCK_TEST_STORE").as_deref() == Ok("scylla") {
        eprintln!(
            "cluster_lb: skipped with COMMONROCK_TEST_STORE=scylla: its nodes are on CQL in \
             every pass, and scripts/check runs it in the first one"
        );
        return false;
    }
    if cql_server().is_none() {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
        assert!(
            !ci,
            "cluster_lb needs COMMONROCK_TEST_CQL_NODES in CI (scripts/check exports it)"
        );
        eprintln!(
            "cluster_lb: skipped: needs a CQL server (`eval \"$(scripts/cql-server start)\"`) \
             and nginx"
        );
        return false;
    }
    assert!(
        nginx_binary().is_some(),
        "cluster_lb needs nginx: scripts/check installs it (Debian package `nginx`); or \
         `apt-get install nginx`, or set COMMONROCK_TEST_NGINX to the binary"
    );
    true
}

/// Tenant requests (end-user and introspection routes) a node has answered.
async fn tenant_requests(node: &Node) -> f64 {
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
        .filter(|l| l.starts_with("commonrock_http_requests_total{"))
        .filter(|l| l.contains("/end-users/") || l.contains("/sessions/introspect"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_behind_the_documented_nginx_serves_the_session_flow() {
    if !should_run() {
        return;
    }
    // Nginx on loopback is the nodes' trusted proxy, as the doc asks of operators.
    let trust_nginx = |o: NodeOptions| o.arg("--trusted-proxies").arg("127.0.0.1/32");
    let mut cluster = Cluster::start(3, trust_nginx).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    let lb = Nginx::start(&cluster.bases());

    let direct = cluster.nodes[0].project(json!({})).await;
    // The other nodes learn about the project through the configuration epoch they poll.
    for node in &cluster.nodes {
        let p = on(node, &direct);
        let seen = eventually(Duration::from_secs(20), || {
            let p = p.clone();
            async move { (p.introspect("cr_at_nothing").await.status == 200).then_some(()) }
        })
        .await;
        assert!(seen.is_some(), "{} sees the project", node.base);
    }
    let p = Project {
        base: lb.url(&format!("/{}", direct.slug)),
        ..direct.clone()
    };
    let mut before = Vec::new();
    for node in &cluster.nodes {
        before.push(tenant_requests(node).await);
    }

    // The seed's flow, through the balancer.
    let su = p.signup("lb-user", "password123").await;
    assert_eq!(su.status, 201, "signup: {:?}", su.body);
    let li = p.login("lb-user", "password123").await;
    assert_eq!(li.status, 200, "login: {:?}", li.body);
    // One node owns each session, so a rotated token is active on every node at once.
    let rf = p.refresh(&text(&li, "refresh_token")).await;
    assert_eq!(rf.status, 200, "refresh: {:?}", rf.body);
    let access = text(&rf, "token");
    let me = p.me(&access).await;
    assert_eq!(me.status, 200, "me: {:?}", me.body);
    assert_eq!(me.body["external_id"], "lb-user", "{:?}", me.body);
    let it = p.introspect(&access).await;
    assert_eq!(it.status, 200, "introspect: {:?}", it.body);
    assert_eq!(it.body["active"], true, "{:?}", it.body);

    // A caller's X-Request-Id reaches the node and comes back.
    let rid = format!("lb-{}", uuid::Uuid::new_v4().simple());
    let traced = Answer::of(
        p.public(reqwest::Method::GET, "/end-users/me")
            .bearer_auth(&access)
            .header("X-Request-Id", &rid)
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(traced.status, 200, "{:?}", traced.body);
    assert_eq!(traced.header("x-request-id"), Some(rid.as_str()));

    // Round robin: more than one node served the flow.
    let mut served = 0;
    for (node, before) in cluster.nodes.iter().zip(&before) {
        if tenant_requests(node).await > *before {
            served += 1;
        }
    }
    assert!(
        served >= 2,
        "nginx spread the flow over the nodes ({served} served it)"
    );

    // The token minted through the balancer is active on every node, asked directly.
    for node in &cluster.nodes {
        let a = on(node, &p).introspect(&access).await;
        assert_eq!(a.status, 200, "{}: {:?}", node.base, a.body);
        assert_eq!(a.body["active"], true, "{}: {:?}", node.base, a.body);
    }

    // A killed node: nginx moves on to the next node (refused connects, and kept-alive
    // connections that die with the node). The dead node's keys answer 503 until its lease
    // lapses and a peer takes them over (SPEC §9), never a wrong answer; then 200 again.
    let killed_at = std::time::Instant::now();
    cluster.nodes[1].kill9().await;
    let mut unavailable = 0;
    let recovered = loop {
        let me = p.me(&access).await;
        let it = p.introspect(&access).await;
        for a in [&me, &it] {
            assert!(
                a.status == 200 || a.status == 503,
                "only 503 inside the detection window: {} {:?}",
                a.status,
                a.body
            );
        }
        if it.status == 200 {
            assert_eq!(
                it.body["active"], true,
                "never a wrong answer: {:?}",
                it.body
            );
        }
        if me.status == 200 && it.status == 200 {
            break killed_at.elapsed();
        }
        unavailable += 1;
        assert!(
            killed_at.elapsed() < std::time::Duration::from_secs(30),
            "the killed node's keys never answered again"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    eprintln!(
        "killed node's keys answered again after {recovered:?} ({unavailable} rounds with a 503)"
    );
    // A login touches the account's owner, a refresh the session's: either may be the dead
    // node, whose keys answer 503 until the takeover.
    let deadline = killed_at + std::time::Duration::from_secs(30);
    let li = loop {
        let li = p.login("lb-user", "password123").await;
        if li.status != 503 || std::time::Instant::now() > deadline {
            break li;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(li.status, 200, "login with a node down: {:?}", li.body);
    let rf = loop {
        let rf = p.refresh(&text(&li, "refresh_token")).await;
        if rf.status != 503 || std::time::Instant::now() > deadline {
            break rf;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(rf.status, 200, "refresh with a node down: {:?}", rf.body);
    eprintln!(
        "login and refresh answered {:?} after the kill",
        killed_at.elapsed()
    );
    // The access log names every node a request was tried on: the dead one was, and then
    // another ("dead, live").
    let dead = cluster.nodes[1]
        .base
        .trim_start_matches("http://")
        .to_string();
    let logs = lb.logs();
    assert!(
        logs.contains(&format!("upstream={dead}, ")),
        "requests reached the killed node {dead} and moved on:\n{logs}"
    );

    // nginx's own refusals keep the node's error shape: a body over the node's largest limit,
    // and no node left to try.
    let big = p
        .http
        .post(format!("{}/v1/sessions/introspect/batch", p.base))
        .header("X-API-Key", &p.secret_key)
        .header("Content-Type", "application/json")
        .body(vec![b' '; 300 * 1024])
        .send()
        .await
        .expect("request");
    let big = Answer::of(big).await;
    assert_eq!(big.status, 413, "{:?}", big.body);
    assert_eq!(
        big.body["detail"]["code"], "payload_too_large",
        "{:?}",
        big.body
    );
    cluster.nodes[0].kill9().await;
    cluster.nodes[2].kill9().await;
    let none = p.me(&access).await;
    assert_eq!(none.status, 503, "{:?}", none.body);
    assert_eq!(
        none.body["detail"]["code"], "service_unavailable",
        "{:?}",
        none.body
    );
    assert_eq!(none.header("retry-after"), Some("1"));
    assert!(none.header("x-request-id").is_some_and(|v| !v.is_empty()));
}
