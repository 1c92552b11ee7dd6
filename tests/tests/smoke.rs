//! The harness itself: a node starts on port 0, answers, and survives a restart.

use commonrock_tests::{Node, NodeOptions};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_starts_serves_the_seed_flow_and_restarts() {
    let mut node = Node::start().await;
    let p = node.project(json!({})).await;
    let s = p.signup("user-1", "password123").await;
    assert_eq!(s.status, 201, "{:?}", s.body);
    let token = s.body["token"].as_str().expect("token").to_string();
    let i = p.introspect(&token).await;
    assert_eq!(i.body["active"], true);
    node.restart().await;
    let p = commonrock_tests::Project {
        base: node.url(&format!("/{}", p.slug)),
        ..p
    };
    assert_eq!(p.introspect(&token).await.body["active"], true);
    let dev = Node::start_with(NodeOptions::default().dev()).await;
    let creds = dev.dev.clone().expect("dev credentials");
    assert!(creds.client_id.starts_with("pk_live_"));
    assert!(creds.secret_key.starts_with("sk_live_"));
}
