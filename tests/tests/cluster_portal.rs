//! Portal sessions and admin users on a cluster (SPEC §9, §10): a session made on one node is
//! good on every node (cookie and CSRF token alike), a logout on one ends it everywhere, a TOTP
//! code is accepted once cluster-wide even when sent to every node at once, and the audit log is
//! one log. Three real nodes on one CQL keyspace; runs in the first `cargo test` pass only.

use std::time::Duration;

use commonrock_tests::cluster::{should_run, Cluster};
use commonrock_tests::{Answer, Node};
use reqwest::Method;
use serde_json::{json, Value};
use totp_rs::{Algorithm, Secret, TOTP};

const PW: &str = "correct horse battery";

async fn call(
    node: &Node,
    method: Method,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut req = node
        .http
        .request(method, node.url(&format!("/admin/v1{path}")))
        .header("cookie", format!("cr_portal={cookie}"));
    if let Some(t) = csrf {
        req = req.header("x-csrf-token", t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    Answer::of(req.send().await.expect("request")).await
}

async fn login(node: &Node, email: &str, code: Option<String>) -> Answer {
    let mut body = json!({"email": email, "password": PW});
    if let Some(c) = code {
        body["totp_code"] = json!(c);
    }
    let req = node.http.post(node.url("/admin/v1/auth/login")).json(&body);
    Answer::of(req.send().await.expect("login")).await
}

fn cookie_of(a: &Answer) -> String {
    a.header("set-cookie")
        .and_then(|c| c.strip_prefix("cr_portal="))
        .and_then(|c| c.split(';').next())
        .expect("cookie")
        .to_string()
}

fn code_at(secret: &str, step: u64) -> String {
    let bytes = Secret::Encoded(secret.to_string())
        .to_bytes()
        .expect("base32");
    TOTP::new_unchecked(Algorithm::SHA1, 6, 0, 30, bytes, None, String::new()).generate(step * 30)
}

fn detail(a: &Answer) -> &str {
    a.body["detail"]["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_sessions_and_totp_codes_hold_across_the_cluster() {
    if !should_run("cluster_portal") {
        return;
    }
    let cluster = Cluster::start(3, |o| o).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    let [n1, n2, n3] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    let email = format!(
        "ops-{}@example.com",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let (s, b) = n1
        .admin(
            Method::POST,
            "/admin-users",
            Some(json!({"email": email, "password": PW})),
        )
        .await;
    assert_eq!(s, 201, "{b}");

    // Signed in on n2, the session and its CSRF token work on n3.
    let a = login(n2, &email, None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let cookie = cookie_of(&a);
    let csrf = a.body["csrf_token"].as_str().expect("csrf").to_string();
    let me = call(n3, Method::GET, "/auth/me", &cookie, None, None).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["csrf_token"], csrf.as_str());
    let org = format!("o{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let a = call(
        n3,
        Method::POST,
        "/orgs",
        &cookie,
        Some(&csrf),
        Some(json!({"slug": org, "name": "Org"})),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);

    // Enrolled on n1, confirmed on n2.
    let e = call(
        n1,
        Method::POST,
        "/auth/totp/enroll",
        &cookie,
        Some(&csrf),
        Some(json!({})),
    )
    .await;
    assert_eq!(e.status, 200, "{}", e.body);
    let secret = e.body["secret"].as_str().expect("secret").to_string();
    let step = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        / 30;
    let c = call(
        n2,
        Method::POST,
        "/auth/totp/confirm",
        &cookie,
        Some(&csrf),
        Some(json!({"code": code_at(&secret, step)})),
    )
    .await;
    assert_eq!(c.status, 200, "{}", c.body);

    // The confirm code is spent on every node; the next step's code, sent to all three nodes
    // at once, signs in exactly once.
    let a = login(n3, &email, Some(code_at(&secret, step))).await;
    assert_eq!((a.status, detail(&a)), (401, "invalid_totp"), "{}", a.body);
    let next = code_at(&secret, step + 1);
    let answers =
        futures_util::future::join_all([n1, n2, n3].map(|n| login(n, &email, Some(next.clone()))))
            .await;
    let ok = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!(
        ok,
        1,
        "one code, one sign-in: {:?}",
        answers
            .iter()
            .map(|a| (a.status, a.body.clone()))
            .collect::<Vec<_>>()
    );
    for a in answers.iter().filter(|a| a.status != 200) {
        assert_eq!((a.status, detail(a)), (401, "invalid_totp"), "{}", a.body);
    }

    // A logout through n3 ends the session on n1 and n2.
    let out = call(
        n3,
        Method::POST,
        "/auth/logout",
        &cookie,
        Some(&csrf),
        Some(json!({})),
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.body);
    for node in [n1, n2] {
        let a = call(node, Method::GET, "/auth/me", &cookie, None, None).await;
        assert_eq!(
            (a.status, detail(&a)),
            (401, "unauthorized"),
            "{}",
            node.base
        );
    }

    // One audit log: what n3 and n2 recorded is listed by n1.
    let (s, log) = n1.admin(Method::GET, "/audit-log?limit=50", None).await;
    assert_eq!(s, 200, "{log}");
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["actor"]["name"] == email.as_str() || e["target"] == email.as_str())
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in [
        "create_admin_user",
        "create_org",
        "totp_enabled",
        "portal_logout",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
}
