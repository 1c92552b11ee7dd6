//! Durability (SPEC §3 grace window, §8 "acknowledged only after it is durably stored"): what
//! was acknowledged survives `kill -9` and a clean stop, and the reuse-grace successor is
//! derived again byte for byte after a restart.

use std::collections::HashSet;
use std::time::Duration;

use commonrock_tests::{Node, Project};
use futures_util::future::join_all;
use serde_json::json;

/// The project's helpers pointed at the node's current (post-restart) address.
fn rebased(node: &Node, p: &Project) -> Project {
    Project {
        base: node.url(&format!("/{}", p.slug)),
        ..p.clone()
    }
}

fn token_pair(body: &serde_json::Value) -> (String, String) {
    (
        body["token"].as_str().expect("token").to_string(),
        body["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_sessions_survive_a_restart() {
    let mut node = Node::start().await;
    let p = node.project(json!({})).await;
    let s = p.signup("durable", "password123").await;
    assert_eq!(s.status, 201, "{:?}", s.body);
    let (signup_access, _) = token_pair(&s.body);
    let l = p.login("durable", "password123").await;
    assert_eq!(l.status, 200, "{:?}", l.body);
    let (login_access, login_refresh) = token_pair(&l.body);

    node.restart().await;
    let p = rebased(&node, &p);
    for t in [&signup_access, &login_access] {
        let i = p.introspect(t).await;
        assert_eq!(i.body["active"], true, "{:?}", i.body);
        assert_eq!(i.body["end_user_id"], s.body["end_user"]["id"]);
    }
    assert_eq!(p.me(&login_access).await.status, 200);
    let l2 = p.login("durable", "password123").await;
    assert_eq!(l2.status, 200, "{:?}", l2.body);
    let wrong = p.login("durable", "not-the-password").await;
    assert_eq!(wrong.status, 401, "{:?}", wrong.body);
    let r = p.refresh(&login_refresh).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["session_id"], l.body["session_id"]);
    let (new_access, _) = token_pair(&r.body);
    assert_eq!(p.introspect(&new_access).await.body["active"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grace_replay_after_kill9_returns_the_identical_pair() {
    let mut node = Node::start().await;
    let p = node.project(json!({"refresh_reuse_grace_s": 60})).await;
    let s = p.signup("replayer", "password123").await;
    assert_eq!(s.status, 201, "{:?}", s.body);
    let (_, a) = token_pair(&s.body);
    let b = p.refresh(&a).await;
    assert_eq!(b.status, 200, "{:?}", b.body);
    let pair_b = token_pair(&b.body);

    node.kill9().await;
    node.restart().await;
    let p = rebased(&node, &p);

    for _ in 0..2 {
        let again = p.refresh(&a).await;
        assert_eq!(
            again.status, 200,
            "grace replay after restart: {:?}",
            again.body
        );
        assert_eq!(
            token_pair(&again.body),
            pair_b,
            "the successor is derived again"
        );
        assert_eq!(again.body["session_id"], b.body["session_id"]);
        assert_eq!(again.body["expires_at"], b.body["expires_at"]);
        assert_eq!(
            again.body["refresh_expires_at"],
            b.body["refresh_expires_at"]
        );
    }
    assert_eq!(p.introspect(&pair_b.0).await.body["active"], true);

    // Rotating onwards makes A two generations old: presenting it now is theft, which
    // revokes the whole session.
    let c = p.refresh(&pair_b.1).await;
    assert_eq!(c.status, 200, "{:?}", c.body);
    let (c_access, c_refresh) = token_pair(&c.body);
    let theft = p.refresh(&a).await;
    assert_eq!(theft.status, 401, "{:?}", theft.body);
    assert_eq!(theft.body, json!({"detail": "Invalid refresh token"}));
    assert_eq!(p.introspect(&c_access).await.body, json!({"active": false}));
    assert_eq!(p.refresh(&c_refresh).await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_signup_survives_kill9_mid_burst() {
    const TOTAL: usize = 150;
    const KILL_AFTER: usize = 30;
    let mut node = Node::start().await;
    let p = node.project(json!({})).await;
    // Own client: the node dies under these requests, so errors are expected, not panics.
    let http = commonrock_tests::reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..TOTAL {
        let tx = tx.clone();
        let p = Project {
            http: http.clone(),
            ..p.clone()
        };
        tokio::spawn(async move {
            let id = format!("burst-{i}");
            let res = p
                .public(commonrock_tests::reqwest::Method::POST, "/end-users/signup")
                .json(&json!({"external_id": id, "password": "password123", "device_id": "d"}))
                .send()
                .await;
            let status = match res {
                // Only a complete answer counts as an acknowledgement.
                Ok(r) => {
                    let st = r.status().as_u16();
                    match r.bytes().await {
                        Ok(_) => Ok(st),
                        Err(e) => Err(e.to_string()),
                    }
                }
                Err(e) => Err(e.to_string()),
            };
            let _ = tx.send((id, status));
        });
    }
    drop(tx);

    let mut acked = Vec::new();
    let mut failed = 0usize;
    let mut other = Vec::new();
    let mut killed = false;
    while let Some((id, status)) = rx.recv().await {
        match status {
            Ok(s) if (200..300).contains(&s) => acked.push(id),
            Ok(s) => other.push((id, s)),
            Err(_) => failed += 1,
        }
        if !killed && acked.len() >= KILL_AFTER {
            node.kill9().await;
            killed = true;
        }
    }
    println!(
        "kill -9 mid-burst: {} acknowledged, {failed} cut off, other answers {other:?}",
        acked.len()
    );
    assert!(
        killed,
        "fewer than {KILL_AFTER} signups succeeded: {other:?}"
    );
    assert!(
        other.is_empty(),
        "unexpected answers before the kill: {other:?}"
    );
    assert!(
        failed > 0,
        "every signup finished before the kill: nothing was in flight"
    );

    node.restart().await;
    let p = rebased(&node, &p);
    let logins = join_all(acked.iter().map(|id| {
        let p = p.clone();
        let id = id.clone();
        async move { (p.login(&id, "password123").await.status, id) }
    }))
    .await;
    let lost: Vec<&(u16, String)> = logins.iter().filter(|(s, _)| *s != 200).collect();
    assert!(
        lost.is_empty(),
        "acknowledged signups lost or broken: {lost:?}"
    );
    // Signups cut off mid-flight either completed or not: never half a user (re-signing up
    // the ids is either 201 or 409).
    let acked: HashSet<&String> = acked.iter().collect();
    let cut_off: Vec<String> = (0..TOTAL)
        .map(|i| format!("burst-{i}"))
        .filter(|id| !acked.contains(id))
        .collect();
    let again = join_all(cut_off.iter().map(|id| {
        let p = p.clone();
        async move {
            let a = p.signup(id, "password123").await;
            let login = match a.status {
                409 => Some(p.login(id, "password123").await.status),
                _ => None,
            };
            (id, a.status, login)
        }
    }))
    .await;
    for (id, status, login) in &again {
        assert!(matches!(status, 201 | 409), "{id}: {status}");
        if *status == 409 {
            assert_eq!(*login, Some(200), "{id} exists but cannot log in");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_and_keeps_everything() {
    let mut node = Node::start().await;
    let p = node.project(json!({})).await;
    let s = p.signup("graceful", "password123").await;
    assert_eq!(s.status, 201, "{:?}", s.body);
    let (access, refresh) = token_pair(&s.body);

    let status = node.stop().await;
    assert!(status.success(), "SIGTERM exit status: {status:?}");
    assert_eq!(status.code(), Some(0));

    node.restart().await;
    let p = rebased(&node, &p);
    assert_eq!(p.introspect(&access).await.body["active"], true);
    assert_eq!(p.login("graceful", "password123").await.status, 200);
    let r = p.refresh(&refresh).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let (s, u) = node
        .admin(
            commonrock_tests::reqwest::Method::GET,
            &format!("/projects/{}/end-users/graceful", p.slug),
            None,
        )
        .await;
    assert_eq!(s, 200, "{u}");
}
