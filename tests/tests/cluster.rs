//! Three real nodes on one CQL keyspace behave as one service (SPEC §9): every token is
//! active on every node, a logout or a password change on one node is seen on all of them at
//! once, an account's login limit is exact across nodes, one refresh token sent to every node
//! at once yields one identical successor, tenant configuration converges within 2 s, and
//! `GET /admin/v1/cluster` shows the members.
//!
//! One cluster serves every check (starting one costs seconds). It runs in the first
//! `cargo test` pass of `scripts/check` only: its nodes are on CQL whatever
//! `COMMONROCK_TEST_STORE` says.

use std::time::{Duration, Instant};

use commonrock_tests::cluster::{on, shared_project, should_run, text, Cluster};
use commonrock_tests::{eventually, Project};
use reqwest::Method;
use serde_json::json;

/// Introspects `token` on every node; the `active` each answered.
async fn active_everywhere(cluster: &Cluster, p: &Project, token: &str) -> Vec<bool> {
    let mut out = Vec::new();
    for node in &cluster.nodes {
        let a = on(node, p).introspect(token).await;
        assert_eq!(a.status, 200, "{}: {:?}", node.base, a.body);
        out.push(a.body["active"] == true);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_one_keyspace_are_one_service() {
    if !should_run("cluster") {
        return;
    }
    let cluster = Cluster::start(3, |o| o).await;
    cluster.wait_ready(Duration::from_secs(60)).await;

    // The members as every node sees them: three, up, one epoch.
    let mut epochs = Vec::new();
    for node in &cluster.nodes {
        let seen = eventually(Duration::from_secs(20), || async {
            let (status, body) = node.admin(Method::GET, "/cluster", None).await;
            assert_eq!(status, 200, "{body}");
            let members = body["members"].as_array().cloned().unwrap_or_default();
            (members.len() == 3 && members.iter().all(|m| m["status"] == "up")).then_some(body)
        })
        .await
        .unwrap_or_else(|| panic!("{} sees three members up", node.base));
        assert!(seen["members"][0]["last_heartbeat"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')));
        epochs.push(seen["epoch"].as_u64().expect("epoch"));
    }
    assert!(
        epochs.iter().all(|e| *e == epochs[0] && *e > 0),
        "{epochs:?}"
    );

    let settings = json!({"rate_limits": {"login_per_account": {"burst": 5, "per_minute": 1}}});
    let direct = shared_project(&cluster, settings).await;
    let nodes: Vec<Project> = cluster.nodes.iter().map(|n| on(n, &direct)).collect();

    // Sessions made on every node are active on every node.
    let mut sessions = Vec::new();
    for i in 0..12 {
        let p = &nodes[i % 3];
        let s = p.signup(&format!("user-{i}"), "password123").await;
        assert_eq!(s.status, 201, "{:?}", s.body);
        sessions.push((text(&s, "access_token"), text(&s, "refresh_token")));
    }
    for (access, _) in &sessions {
        assert_eq!(
            active_everywhere(&cluster, &direct, access).await,
            [true; 3]
        );
    }

    // A logout through one node is seen on every node as soon as it is answered.
    for (i, (access, _)) in sessions.iter().enumerate().take(6) {
        let out = nodes[(i + 1) % 3].logout(access).await;
        assert_eq!(out.status, 200, "{:?}", out.body);
        assert_eq!(
            active_everywhere(&cluster, &direct, access).await,
            [false; 3],
            "logout of session {i} is visible on every node at once"
        );
    }

    // One refresh token presented to every node at once: one successor, the same everywhere.
    let (_, refresh) = &sessions[6];
    let calls = nodes.iter().map(|p| p.refresh(refresh));
    let answers = futures_util::future::join_all(calls).await;
    for a in &answers {
        assert_eq!(a.status, 200, "{:?}", a.body);
    }
    let pairs: Vec<(String, String)> = answers
        .iter()
        .map(|a| (text(a, "access_token"), text(a, "refresh_token")))
        .collect();
    assert!(
        pairs.iter().all(|p| *p == pairs[0]),
        "one identical successor: {pairs:?}"
    );
    assert_eq!(
        active_everywhere(&cluster, &direct, &pairs[0].0).await,
        [true; 3]
    );

    // A password change on one node ends the user's other sessions on every node at once.
    let a = nodes[0].login("user-7", "password123").await;
    let b = nodes[1].login("user-7", "password123").await;
    let (keep, other) = (text(&a, "access_token"), text(&b, "access_token"));
    let changed = nodes[2]
        .public(Method::POST, "/end-users/password")
        .bearer_auth(&keep)
        .json(&json!({"current_password": "password123", "new_password": "password456"}))
        .send()
        .await
        .expect("password");
    assert_eq!(changed.status(), 200);
    assert_eq!(
        active_everywhere(&cluster, &direct, &other).await,
        [false; 3]
    );
    assert_eq!(active_everywhere(&cluster, &direct, &keep).await, [true; 3]);

    // 30 parallel wrong logins for one account, spread over the three nodes, with a burst of
    // 5: exactly 5 reach the password check, 25 are refused by the limit.
    let p0 = &nodes[0];
    let s = p0.signup("limited", "password123").await;
    assert_eq!(s.status, 201);
    let calls = (0..30).map(|i| {
        let p = nodes[i % 3].clone();
        async move { p.login("limited", "wrong-password").await.status }
    });
    let statuses = futures_util::future::join_all(calls).await;
    let unauthorized = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(
        (unauthorized, limited),
        (5, 25),
        "exact across nodes: {statuses:?}"
    );

    // Batches through one node are split per owner node and, on each owner, per shard: a
    // revocation through another node is seen by the very next batch. (An owner once ran a
    // forwarded batch on one shard, which then cached its siblings' sessions and kept
    // answering active for them after a logout.)
    let mut batch = Vec::new();
    for i in 0..24 {
        let s = nodes[i % 3]
            .signup(&format!("batch-{i}"), "password123")
            .await;
        assert_eq!(s.status, 201, "{:?}", s.body);
        batch.push(text(&s, "access_token"));
    }
    let actives = |a: &commonrock_tests::Answer| -> Vec<bool> {
        a.body["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["active"] == true)
            .collect()
    };
    let first = nodes[0].introspect_batch(&batch).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(actives(&first), vec![true; 24]);
    for t in &batch[..12] {
        assert_eq!(nodes[2].logout(t).await.status, 200);
    }
    for p in &nodes {
        let again = p.introspect_batch(&batch).await;
        assert_eq!(again.status, 200, "{:?}", again.body);
        let mut want = vec![false; 12];
        want.extend([true; 12]);
        assert_eq!(actives(&again), want, "batch through {}", p.base);
    }

    // Nine logins of one user at once, spread over the three nodes, with a cap of 3 sessions:
    // the sessions have different owners, yet no more than 3 stay live.
    let capped = shared_project(&cluster, json!({"max_sessions_per_user": 3})).await;
    let capped_nodes: Vec<Project> = cluster.nodes.iter().map(|n| on(n, &capped)).collect();
    let s = capped_nodes[0].signup("capped", "password123").await;
    assert_eq!(s.status, 201, "{:?}", s.body);
    let mut tokens = vec![text(&s, "access_token")];
    let calls = (0..9).map(|i| {
        let p = capped_nodes[i % 3].clone();
        async move { p.login("capped", "password123").await }
    });
    for a in futures_util::future::join_all(calls).await {
        assert_eq!(a.status, 200, "{:?}", a.body);
        tokens.push(text(&a, "access_token"));
    }
    let mut live = 0;
    for t in &tokens {
        let seen = active_everywhere(&cluster, &capped, t).await;
        assert!(
            seen.iter().all(|a| *a == seen[0]),
            "one answer on every node: {seen:?}"
        );
        live += usize::from(seen[0]);
    }
    assert!(
        (1..=3).contains(&live),
        "10 sessions made at once with a cap of 3 leave 1 to 3 live: {live}"
    );

    // Tenant configuration changed on one node holds on every node within 2 s.
    let (status, keys) = cluster.nodes[0]
        .admin(
            Method::GET,
            &format!("/projects/{}/api-keys", direct.slug),
            None,
        )
        .await;
    assert_eq!(status, 200, "{keys}");
    let key_id = keys
        .as_array()
        .or_else(|| keys["api_keys"].as_array())
        .and_then(|k| k.first())
        .and_then(|k| k["id"].as_str())
        .expect("the project's secret key")
        .to_string();
    let (status, _) = cluster.nodes[1]
        .admin(
            Method::DELETE,
            &format!("/projects/{}/api-keys/{key_id}", direct.slug),
            None,
        )
        .await;
    assert!(status == 200 || status == 204, "revoke: {status}");
    let revoked_at = Instant::now();
    for p in &nodes {
        let refused = eventually(Duration::from_secs(10), || {
            let p = p.clone();
            async move { (p.introspect("cr_at_nothing").await.status == 401).then_some(()) }
        })
        .await;
        assert!(refused.is_some(), "{} refuses the revoked key", p.base);
    }
    let bound = revoked_at.elapsed();
    eprintln!("a revoked secret key was refused on every node after {bound:?}");
    assert!(
        bound < Duration::from_secs(3),
        "tenant configuration within 2 s (+ 1 s margin for a loaded machine): {bound:?}"
    );
}
