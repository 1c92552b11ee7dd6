//! The caller's IP behind a trusted proxy (SPEC §2): several `X-Forwarded-For` lines are one
//! list, and the right-most entry that is not a trusted proxy is the caller, whatever line it
//! is on. A client that sends its own first line cannot pick the address a key's CIDR check sees.

use commonrock_tests::reqwest::Method;
use commonrock_tests::{Answer, Node, NodeOptions, Project};
use serde_json::json;

async fn introspect_from(p: &Project, key: &str, lines: &[&str]) -> Answer {
    let mut req = p
        .http
        .post(format!("{}/v1/sessions/introspect", p.base))
        .header("X-API-Key", key)
        .json(&json!({"token": "cr_at_nothing"}));
    for line in lines {
        // reqwest appends: each call is one more header line on the wire.
        req = req.header("X-Forwarded-For", *line);
    }
    Answer::of(req.send().await.expect("request")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_forwarded_for_line_counts_and_the_rightmost_untrusted_entry_is_the_caller() {
    let node = Node::start_with(
        NodeOptions::default()
            .arg("--trusted-proxies")
            .arg("127.0.0.1/32"),
    )
    .await;
    let p = node.project(json!({})).await;
    let (st, k) = node
        .admin(
            Method::POST,
            &format!("/projects/{}/api-keys", p.slug),
            Some(json!({"name": "vpc", "allowed_cidrs": ["10.0.0.0/8"]})),
        )
        .await;
    assert_eq!(st, 201, "{k}");
    let key = k["key"].as_str().expect("key").to_string();
    let denied = json!({"detail": {"code": "ip_denied", "message": "IP address not allowed"}});

    let cases: &[(&[&str], u16)] = &[
        (&["10.1.2.3"], 200),
        (&["8.8.8.8, 10.1.2.3"], 200),
        (&["10.1.2.3:5123"], 200),
        // A client's own first line, then the line its proxy appended: the proxy's counts.
        (&["10.1.2.3", "8.8.8.8"], 403),
        (&["10.1.2.3, 8.8.8.8"], 403),
        (&["8.8.8.8", "10.1.2.3"], 200),
        // An unreadable entry right of the caller: unknown, which no CIDR admits.
        (&["10.1.2.3", "unknown"], 403),
        (&["10.1.2.3,"], 403),
    ];
    for (lines, status) in cases {
        let a = introspect_from(&p, &key, lines).await;
        assert_eq!(a.status, *status, "{lines:?}: {:?}", a.body);
        if *status == 403 {
            assert_eq!(a.body, denied, "{lines:?}");
        } else {
            assert_eq!(a.body, json!({"active": false}), "{lines:?}");
        }
    }
}
