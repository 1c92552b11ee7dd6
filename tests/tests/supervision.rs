//! Supervision (SPEC §6 "a crashed shard answers 503 quickly"): a shard actor that panics
//! mid-request gives its caller a clean 503 at once, is restarted by its supervisor, and
//! serves its sessions again from the store. The fault-injection route exists only when the
//! node is started with `COMMONROCK_FAULT_INJECTION=1`.

use std::time::{Duration, Instant};

use commonrock_tests::reqwest::Method;
use commonrock_tests::{eventually, metric, Node, NodeOptions};
use futures_util::future::join_all;
use serde_json::json;

const SHARDS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_shard_answers_503_and_comes_back_with_its_sessions() {
    let node = Node::start_with(
        NodeOptions::default()
            .env("COMMONROCK_FAULT_INJECTION", "1")
            .arg("--shards")
            .arg(SHARDS.to_string()),
    )
    .await;
    let p = node.project(json!({})).await;
    // 40 sessions over 4 shards: every shard owns some (all missing one: (3/4)^40 ≈ 1e-5).
    let signups = join_all((0..40).map(|i| {
        let p = p.clone();
        async move { p.signup(&format!("before-{i}"), "password123").await }
    }))
    .await;
    let mut sessions = Vec::new();
    for s in &signups {
        assert_eq!(s.status, 201, "{:?}", s.body);
        sessions.push((
            s.body["end_user"]["external_id"].clone(),
            s.body["token"].as_str().expect("token").to_string(),
            s.body["refresh_token"]
                .as_str()
                .expect("refresh")
                .to_string(),
        ));
    }
    let restarts_before = metric(&node, "commonrock_shard_restarts_total").await;

    for shard in 0..SHARDS {
        let started = Instant::now();
        let res = node
            .http
            .post(node.url(&format!("/admin/v1/debug/shards/{shard}/crash")))
            .bearer_auth(&node.admin_token)
            .send()
            .await
            .expect("the crash request is answered, not dropped");
        let elapsed = started.elapsed();
        let a = commonrock_tests::Answer::of(res).await;
        assert_eq!(a.status, 503, "shard {shard}: {:?}", a.body);
        assert_eq!(
            a.body,
            json!({"detail": {"code": "service_unavailable",
                              "message": "Service temporarily unavailable"}})
        );
        let retry: u64 = a
            .header("retry-after")
            .expect("503 carries Retry-After")
            .parse()
            .expect("whole seconds");
        assert!(retry >= 1);
        assert!(
            elapsed < Duration::from_secs(5),
            "the caller of a crashed shard waited {elapsed:?}"
        );
    }

    // Every shard is back: all sessions created before the crashes (reloaded from the store)
    // introspect active, one by one and in a batch, and their owners log in again.
    let ok = eventually(Duration::from_secs(30), || {
        let p = p.clone();
        let sessions = sessions.clone();
        async move {
            let answers = join_all(sessions.iter().map(|(_, t, _)| {
                let p = p.clone();
                async move { p.introspect(t).await }
            }))
            .await;
            answers
                .iter()
                .all(|a| a.status == 200 && a.body["active"] == true)
                .then_some(())
        }
    })
    .await;
    assert!(
        ok.is_some(),
        "sessions did not come back after the shard crashes"
    );
    let tokens: Vec<String> = sessions.iter().map(|(_, t, _)| t.clone()).collect();
    let batch = p.introspect_batch(&tokens).await;
    assert_eq!(batch.status, 200, "{:?}", batch.body);
    let results = batch.body["results"].as_array().expect("results");
    assert_eq!(results.len(), 40);
    assert!(results.iter().all(|r| r["active"] == true), "{results:?}");

    let logins = join_all(sessions.iter().map(|(ext, _, _)| {
        let p = p.clone();
        let ext = ext.as_str().expect("external_id").to_string();
        async move { p.login(&ext, "password123").await }
    }))
    .await;
    for l in &logins {
        assert_eq!(l.status, 200, "{:?}", l.body);
    }
    // Refresh goes through the owner shard's state machine, also after it restarted.
    let refreshes = join_all(sessions.iter().map(|(_, _, r)| {
        let p = p.clone();
        async move { p.refresh(r).await }
    }))
    .await;
    for r in &refreshes {
        assert_eq!(r.status, 200, "{:?}", r.body);
    }

    let restarts = metric(&node, "commonrock_shard_restarts_total").await;
    println!("commonrock_shard_restarts_total: {restarts_before} -> {restarts}");
    assert!(
        restarts - restarts_before >= SHARDS as f64,
        "{SHARDS} crashes, restarts {restarts_before} -> {restarts}"
    );
    // The node as a whole stayed up.
    let h = node
        .http
        .get(node.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(h.status().as_u16(), 200);
    let out_of_range = node
        .admin(Method::POST, &format!("/debug/shards/{SHARDS}/crash"), None)
        .await;
    assert_eq!(out_of_range.0, 404, "{}", out_of_range.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crash_route_does_not_exist_without_fault_injection() {
    let node = Node::start().await;
    let (s, b) = node
        .admin(Method::POST, "/debug/shards/0/crash", None)
        .await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(b["detail"]["code"], "not_found", "{b}");
    assert_eq!(metric(&node, "commonrock_shard_restarts_total").await, 0.0);
    // And the node works normally.
    let p = node.project(json!({})).await;
    assert_eq!(p.signup("fine", "password123").await.status, 201);
    drop(node);
    // Switched off explicitly: still absent.
    let node =
        Node::start_with(NodeOptions::default().env("COMMONROCK_FAULT_INJECTION", "0")).await;
    let (s, b) = node
        .admin(Method::POST, "/debug/shards/0/crash", None)
        .await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(b["detail"]["code"], "not_found", "{b}");
}

/// A shard whose restarts keep failing (here: its next 5 starts) is not given up: its callers
/// get a quick 503 while the supervisor retries with a growing delay, and it serves its
/// sessions again by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_whose_restarts_fail_is_retried_until_it_serves_again() {
    let node = Node::start_with(
        NodeOptions::default()
            .env("COMMONROCK_FAULT_INJECTION", "1")
            .arg("--shards")
            .arg("1"),
    )
    .await;
    let p = node.project(json!({})).await;
    let s = p.signup("survivor", "password123").await;
    assert_eq!(s.status, 201, "{:?}", s.body);
    let token = s.body["token"].as_str().expect("token").to_string();
    let (status, body) = node
        .admin(Method::POST, "/debug/shards/0/crash?fail_restarts=5", None)
        .await;
    assert_eq!(status, 503, "{body}");
    // While the one shard is down, its sessions answer 503, quickly.
    let started = Instant::now();
    let down = p.introspect(&token).await;
    assert!(
        down.status == 503 || down.body["active"] == true,
        "503 while down, or already back: {:?}",
        down.body
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // Back by itself: 5 failed starts cost at most 50 ms + 100 + 200 (+ margin).
    let back = eventually(Duration::from_secs(30), || async {
        let a = p.introspect(&token).await;
        (a.status == 200 && a.body["active"] == true).then_some(())
    })
    .await;
    assert!(back.is_some(), "the shard never came back");
    assert!(metric(&node, "commonrock_actor_restart_failures_total").await >= 5.0);
    assert!(metric(&node, "commonrock_shard_restarts_total").await >= 1.0);
}

/// The tenant directory is supervised too: after it crashes (and its next 2 starts fail),
/// requests keep being served from the last snapshot, and configuration changes work again
/// once the supervisor has restarted it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_tenant_directory_is_restarted_and_serves_changes_again() {
    let node =
        Node::start_with(NodeOptions::default().env("COMMONROCK_FAULT_INJECTION", "1")).await;
    let p = node.project(json!({})).await;
    let s = p.signup("reader", "password123").await;
    assert_eq!(s.status, 201, "{:?}", s.body);
    let token = s.body["token"].as_str().expect("token").to_string();
    let (status, body) = node
        .admin(Method::POST, "/debug/tenants/crash?fail_restarts=2", None)
        .await;
    assert_eq!(status, 503, "{body}");
    // Request paths read the published snapshot: unaffected.
    let a = p.introspect(&token).await;
    assert_eq!(
        (a.status, &a.body["active"]),
        (200, &json!(true)),
        "{:?}",
        a.body
    );
    // A configuration change succeeds again once the directory is back.
    let created = eventually(Duration::from_secs(30), || async {
        let (s, b) = node
            .admin(
                Method::POST,
                "/orgs",
                Some(json!({"slug": format!("o{}", &uuid::Uuid::new_v4().simple().to_string()[..10]), "name": "After"})),
            )
            .await;
        (s == 201).then_some(b)
    })
    .await;
    assert!(created.is_some(), "the tenant directory never came back");
    assert!(metric(&node, "commonrock_tenant_directory_restarts_total").await >= 1.0);
    assert!(metric(&node, "commonrock_actor_restart_failures_total").await >= 2.0);
    let (s, b) = node.admin(Method::GET, "/orgs", None).await;
    assert_eq!(s, 200, "{b}");
}
