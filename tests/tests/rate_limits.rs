//! Brute-force and abuse limits (SPEC §3 "Brute force", §6 order of checks): login attempts
//! are counted before Argon2, per (account, IP), per account and per IP; signups per IP;
//! requests per public client. Over a limit → 429 `rate_limited` with `Retry-After`.

use commonrock_tests::reqwest::Method;
use commonrock_tests::{metric, Answer, Node, NodeOptions, Project};
use futures_util::future::join_all;
use serde_json::json;

/// Asserts the coded 429 body and a `Retry-After` of at least one second.
fn assert_rate_limited(a: &Answer) {
    assert_eq!(a.status, 429, "{:?}", a.body);
    assert_eq!(
        a.body,
        json!({"detail": {"code": "rate_limited", "message": "Rate limit exceeded"}})
    );
    let retry: u64 = a
        .header("retry-after")
        .unwrap_or_else(|| panic!("429 without Retry-After: {:?}", a.headers))
        .parse()
        .expect("Retry-After is whole seconds");
    assert!(retry >= 1, "Retry-After {retry}");
}

fn assert_invalid_credentials(a: &Answer) {
    assert_eq!(a.status, 401, "{:?}", a.body);
    assert_eq!(a.body, json!({"detail": "Invalid credentials"}));
}

/// A login (or signup) whose caller claims `xff` in `X-Forwarded-For`.
async fn post_from(
    p: &Project,
    path: &str,
    external_id: &str,
    password: &str,
    xff: &str,
) -> Answer {
    Answer::of(
        p.public(Method::POST, path)
            .header("X-Forwarded-For", xff)
            .json(&json!({"external_id": external_id, "password": password, "device_id": "d1"}))
            .send()
            .await
            .expect("request"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_burst_of_wrong_passwords_is_cut_before_argon2() {
    let node = Node::start().await;
    let p = node
        .project(json!({"rate_limits": {"login_per_account_ip": {"burst": 5, "per_minute": 1}}}))
        .await;
    assert_eq!(p.signup("victim", "correct-horse-1").await.status, 201);
    assert_eq!(p.signup("bystander", "correct-horse-2").await.status, 201);

    let before = metric(&node, "commonrock_argon2_verifications_total").await;
    let answers = join_all((0..100).map(|i| {
        let p = p.clone();
        async move { p.login("victim", &format!("wrong-password-{i}")).await }
    }))
    .await;
    let after = metric(&node, "commonrock_argon2_verifications_total").await;

    let unauthorized = answers.iter().filter(|a| a.status == 401).count();
    let limited = answers.iter().filter(|a| a.status == 429).count();
    println!("100 parallel wrong logins: {unauthorized} x 401, {limited} x 429, argon2 verifications +{}", after - before);
    assert_eq!(unauthorized + limited, 100, "only 401 or 429 expected");
    assert!(
        (1..=5).contains(&unauthorized),
        "burst 5 lets at most 5 attempts reach the password check, got {unauthorized}"
    );
    for a in &answers {
        if a.status == 401 {
            assert_invalid_credentials(a);
        } else {
            assert_rate_limited(a);
        }
    }
    assert!(
        after - before <= 5.0,
        "Argon2 ran {} times for a burst limited to 5",
        after - before
    );
    assert!(
        after - before >= unauthorized as f64,
        "each 401 verified once"
    );

    // The right password from the locked (account, IP) is refused as well: attempts are
    // counted before the password is looked at.
    assert_rate_limited(&p.login("victim", "correct-horse-1").await);
    // Nobody else is locked out.
    let other = p.login("bystander", "correct-horse-2").await;
    assert_eq!(other.status, 200, "{:?}", other.body);
    let m = metric(&node, "commonrock_rate_limited_total").await;
    assert!(m >= 95.0, "commonrock_rate_limited_total = {m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_login_limit_follows_x_forwarded_for_only_behind_a_trusted_proxy() {
    let limits = json!({"rate_limits": {"login_per_ip": {"burst": 3, "per_minute": 1}}});

    // Behind a trusted proxy every forwarded client has its own bucket.
    let node = Node::start_with(
        NodeOptions::default()
            .arg("--trusted-proxies")
            .arg("127.0.0.1/32"),
    )
    .await;
    let p = node.project(limits.clone()).await;
    let login = "/end-users/login";
    for i in 0..3 {
        let a = post_from(
            &p,
            login,
            &format!("someone-{i}"),
            "wrong-password",
            "203.0.113.7",
        )
        .await;
        assert_invalid_credentials(&a);
    }
    let fourth = post_from(&p, login, "someone-3", "wrong-password", "203.0.113.7").await;
    assert_rate_limited(&fourth);
    let other_ip = post_from(&p, login, "someone-3", "wrong-password", "203.0.113.8").await;
    assert_invalid_credentials(&other_ip);
    // The proxy's own address (the TCP peer) is not the caller: its bucket is untouched too.
    let a = p.login("someone-4", "wrong-password").await;
    assert_invalid_credentials(&a);

    // Rotating IPs does not escape the per-account limit (default: burst 20): one attempt
    // from each of 25 addresses trips it by the 21st.
    let mut first_429 = None;
    for i in 0..25 {
        let a = post_from(
            &p,
            login,
            "victim",
            "wrong-password",
            &format!("198.18.0.{i}"),
        )
        .await;
        if a.status == 429 {
            assert_rate_limited(&a);
            first_429.get_or_insert(i + 1);
        } else {
            assert_invalid_credentials(&a);
        }
    }
    let at = first_429.expect("per-account limit never tripped across 25 IPs");
    assert!(at <= 21, "per-account limit tripped only at attempt {at}");
    drop(node);

    // From an untrusted peer the header is ignored: varying it does not escape the limit.
    let node = Node::start().await;
    let p = node.project(limits).await;
    for i in 0..3 {
        let a = post_from(
            &p,
            login,
            &format!("someone-{i}"),
            "wrong-password",
            &format!("198.51.100.{i}"),
        )
        .await;
        assert_invalid_credentials(&a);
    }
    for i in 3..6 {
        let a = post_from(
            &p,
            login,
            &format!("someone-{i}"),
            "wrong-password",
            &format!("198.51.100.{i}"),
        )
        .await;
        assert_rate_limited(&a);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signups_per_ip_and_requests_per_client_are_limited() {
    let node = Node::start_with(
        NodeOptions::default()
            .arg("--trusted-proxies")
            .arg("127.0.0.1/32"),
    )
    .await;

    // signup_per_ip
    let p = node
        .project(json!({"rate_limits": {"signup_per_ip": {"burst": 3, "per_minute": 1}}}))
        .await;
    let signup = "/end-users/signup";
    for i in 0..3 {
        let a = post_from(
            &p,
            signup,
            &format!("new-{i}"),
            "password123",
            "203.0.113.20",
        )
        .await;
        assert_eq!(a.status, 201, "{:?}", a.body);
    }
    let a = post_from(&p, signup, "new-3", "password123", "203.0.113.20").await;
    assert_rate_limited(&a);
    // Not created: the id is still free for a caller under the limit.
    let a = post_from(&p, signup, "new-3", "password123", "203.0.113.21").await;
    assert_eq!(a.status, 201, "{:?}", a.body);

    // per_client: only the client over its limit is refused.
    let p = node
        .project(json!({"rate_limits": {"per_client": {"burst": 3, "per_minute": 1}}}))
        .await;
    let (s, c) = node
        .admin(
            Method::POST,
            &format!("/projects/{}/clients", p.slug),
            Some(
                json!({"name": "second", "allowed_origins": [commonrock_tests::ORIGIN],
                        "scopes": ["end_users:me", "end_users:login"]}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let second = Project {
        client_id: c["client_id"].as_str().expect("client_id").into(),
        client_key: c["client_key"].as_str().expect("client_key").into(),
        ..p.clone()
    };
    let me = |p: &Project| {
        let req = p.public(Method::GET, "/end-users/me");
        async move { Answer::of(req.send().await.expect("request")).await }
    };
    for _ in 0..3 {
        let a = me(&p).await;
        assert_eq!(a.status, 401, "{:?}", a.body);
        assert_eq!(a.body, json!({"detail": "Invalid session"}));
    }
    assert_rate_limited(&me(&p).await);
    assert_rate_limited(&p.login("anyone", "password123").await);
    let a = me(&second).await;
    assert_eq!(
        a.status, 401,
        "the other client is not limited: {:?}",
        a.body
    );
    assert_invalid_credentials(&second.login("anyone", "password123").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_limits_trip_within_twenty_wrong_passwords() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    assert_eq!(p.signup("target", "right-password").await.status, 201);
    let mut statuses = Vec::new();
    for i in 0..25 {
        let a = p.login("target", &format!("guess-{i}")).await;
        if a.status == 429 {
            assert_rate_limited(&a);
        } else {
            assert_invalid_credentials(&a);
        }
        statuses.push(a.status);
    }
    println!("25 sequential wrong logins with default limits: {statuses:?}");
    let first = statuses
        .iter()
        .position(|s| *s == 429)
        .expect("the defaults never tripped");
    assert!(first < 20, "first 429 at attempt {}", first + 1);
    let passed = statuses.iter().filter(|s| **s == 401).count();
    assert!(passed <= 20, "{passed} wrong passwords reached Argon2");

    // An unknown account trips just the same (no enumeration through the limiter).
    let mut tripped = None;
    for i in 0..25 {
        let a = p.login("nobody-here", &format!("guess-{i}")).await;
        if a.status == 429 {
            tripped = Some(i);
            break;
        }
        assert_invalid_credentials(&a);
    }
    let at = tripped.expect("unknown account never tripped");
    assert!(at < 20, "unknown account tripped at attempt {}", at + 1);
}

/// One address flooding a browser app's public endpoints (the client id and key ship in the
/// page) is cut by its own per-IP bucket before it can drain the app's per-client budget:
/// logins from other addresses go on, and a refused request draws nothing from the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_address_leaves_other_callers_of_the_client_untouched() {
    let node = Node::start_with(
        NodeOptions::default()
            .arg("--trusted-proxies")
            .arg("127.0.0.1/32"),
    )
    .await;
    let p = node
        .project(json!({"rate_limits": {
            "public_per_ip": {"burst": 5, "per_minute": 1},
            "per_client": {"burst": 12, "per_minute": 1}}}))
        .await;
    let me_from = |xff: &'static str| {
        let req = p
            .public(Method::GET, "/end-users/me")
            .header("X-Forwarded-For", xff);
        async move { Answer::of(req.send().await.expect("request")).await }
    };
    // 40 anonymous requests from one address: 5 reach the Bearer check, 35 are refused.
    let flood = join_all((0..40).map(|_| me_from("198.51.100.7"))).await;
    let through = flood.iter().filter(|a| a.status == 401).count();
    for a in flood.iter().filter(|a| a.status != 401) {
        assert_rate_limited(a);
    }
    assert_eq!(through, 5, "the per-IP burst");
    // IPv6 callers are one caller per /64: five from one address, then its neighbour is refused.
    for _ in 0..5 {
        let a = me_from("2001:db8:1:2::1").await;
        assert_eq!(a.status, 401, "{:?}", a.body);
    }
    assert_rate_limited(&me_from("2001:db8:1:2::2").await);
    // The client drew 10 of its 12: a signup and a login from a third address still pass.
    let a = post_from(
        &p,
        "/end-users/signup",
        "bystander",
        "password123",
        "203.0.113.9",
    )
    .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let a = post_from(
        &p,
        "/end-users/login",
        "bystander",
        "password123",
        "203.0.113.9",
    )
    .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    // And then the client's own budget is what refuses.
    let a = post_from(
        &p,
        "/end-users/login",
        "bystander",
        "password123",
        "203.0.113.10",
    )
    .await;
    assert_rate_limited(&a);
    assert!(
        metric(&node, "commonrock_rate_limited_total").await >= 36.0,
        "refusals are counted"
    );
}
