//! Concurrency (SPEC §3): 200 parallel signups all succeed (queued on the bounded Argon2
//! pool, not refused by the default limits); one external_id is registered exactly once;
//! parallel refreshes of one token never fork the session; a full Argon2 queue answers 503
//! `service_unavailable` at once instead of growing.

use std::collections::HashSet;

use commonrock_tests::reqwest::Method;
use commonrock_tests::{eventually, metric, Answer, Node, NodeOptions};
use futures_util::future::join_all;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_signups_all_succeed_and_an_external_id_is_registered_once() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;

    let answers = join_all((0..200).map(|i| {
        let p = p.clone();
        async move { p.signup(&format!("parallel-{i}"), "password123").await }
    }))
    .await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert!(
        answers.iter().all(|a| a.status == 201),
        "200 parallel signups from one IP must all succeed: {statuses:?}"
    );
    let ids: HashSet<&str> = answers
        .iter()
        .map(|a| a.body["end_user"]["id"].as_str().expect("end_user.id"))
        .collect();
    assert_eq!(ids.len(), 200, "every signup made its own user");
    assert!(metric(&node, "commonrock_argon2_hashes_total").await >= 200.0);

    let answers = join_all((0..50).map(|_| {
        let p = p.clone();
        async move { p.signup("the-one", "password123").await }
    }))
    .await;
    let created = answers.iter().filter(|a| a.status == 201).count();
    let conflicts: Vec<&Answer> = answers.iter().filter(|a| a.status == 409).collect();
    println!(
        "50 parallel signups of one id: {created} x 201, {} x 409",
        conflicts.len()
    );
    assert_eq!(
        created,
        1,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert_eq!(conflicts.len(), 49);
    for a in conflicts {
        assert_eq!(a.body, json!({"detail": "External ID already registered"}));
    }
    let winner = answers
        .iter()
        .find(|a| a.status == 201)
        .expect("one winner");
    let (s, u) = node
        .admin(
            Method::GET,
            &format!("/projects/{}/end-users/the-one", p.slug),
            None,
        )
        .await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(
        u["id"], winner.body["end_user"]["id"],
        "the stored user is the winner's"
    );
    assert_eq!(p.login("the-one", "password123").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_refreshes_of_one_token_never_fork_the_session() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let s = p.signup("tabs", "password123").await;
    assert_eq!(s.status, 201, "{:?}", s.body);
    let refresh = s.body["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    let session_id = s.body["session_id"].clone();

    let answers = join_all((0..20).map(|_| {
        let p = p.clone();
        let r = refresh.clone();
        async move { p.refresh(&r).await }
    }))
    .await;
    let ok: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
    assert_eq!(
        ok.len(),
        20,
        "within the grace window every parallel refresh succeeds: {:?}",
        answers
            .iter()
            .map(|a| (a.status, &a.body))
            .collect::<Vec<_>>()
    );
    let pairs: HashSet<(String, String)> = ok
        .iter()
        .map(|a| {
            (
                a.body["token"].as_str().expect("token").to_string(),
                a.body["refresh_token"]
                    .as_str()
                    .expect("refresh")
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(pairs.len(), 1, "parallel refreshes forked: {pairs:?}");
    let (access, successor) = pairs.into_iter().next().expect("one pair");
    assert_ne!(successor, refresh, "refresh rotates");
    for a in &ok {
        assert_eq!(a.body["session_id"], session_id, "same session");
    }

    let i = p.introspect(&access).await;
    assert_eq!(i.body["active"], true, "{:?}", i.body);
    assert_eq!(i.body["session_id"], session_id);
    let (s, list) = node
        .admin(
            Method::GET,
            &format!("/projects/{}/end-users/tabs/sessions", p.slug),
            None,
        )
        .await;
    assert_eq!(s, 200, "{list}");
    let sessions = list["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 1, "no fork: {list}");
    assert_eq!(sessions[0]["id"], session_id);

    // The successor is the one live refresh token: it rotates again.
    let next = p.refresh(&successor).await;
    assert_eq!(next.status, 200, "{:?}", next.body);
    assert_eq!(next.body["session_id"], session_id);
    assert_ne!(
        next.body["refresh_token"].as_str(),
        Some(successor.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_argon2_queue_answers_503_at_once() {
    let node = Node::start_with(
        NodeOptions::default()
            .arg("--argon2-threads")
            .arg("1")
            .arg("--argon2-queue")
            .arg("2"),
    )
    .await;
    let p = node.project(json!({})).await;
    let answers = join_all((0..30).map(|i| {
        let p = p.clone();
        async move { p.signup(&format!("queued-{i}"), "password123").await }
    }))
    .await;
    let created = answers.iter().filter(|a| a.status == 201).count();
    let refused: Vec<&Answer> = answers.iter().filter(|a| a.status == 503).collect();
    println!(
        "30 parallel signups on 1 thread / queue 2: {created} x 201, {} x 503",
        refused.len()
    );
    assert_eq!(
        created + refused.len(),
        30,
        "only 201 or 503 expected: {:?}",
        answers
            .iter()
            .map(|a| (a.status, &a.body))
            .collect::<Vec<_>>()
    );
    assert!(created >= 1, "the queue admitted nothing");
    assert!(
        !refused.is_empty(),
        "a queue of 2 admitted 30 parallel hashes"
    );
    for a in &refused {
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
    }
    assert!(metric(&node, "commonrock_argon2_rejected_total").await >= refused.len() as f64);

    // A refused signup created nothing: the id is free once the queue has drained.
    let refused_id = answers
        .iter()
        .position(|a| a.status == 503)
        .map(|i| format!("queued-{i}"))
        .expect("a refused id");
    let retried = eventually(Duration::from_secs(30), || {
        let p = p.clone();
        let id = refused_id.clone();
        async move {
            let a = p.signup(&id, "password123").await;
            (a.status != 503).then_some(a)
        }
    })
    .await
    .expect("the queue never drained");
    assert_eq!(retried.status, 201, "{:?}", retried.body);
}
