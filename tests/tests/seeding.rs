//! The benchmark's offline seeding path: `commonrock admin seed-sessions` writes live sessions
//! into a stopped node's store; after a restart they introspect active and their users log in.

use commonrock_tests::{binary, cql_nodes, test_keyspace, Node, Project};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_sessions_are_live_after_a_restart() {
    let mut node = Node::start().await;
    let p = node.project(json!({})).await;
    node.stop().await;

    let out = node.dir.join("tokens.txt");
    let mut cmd = std::process::Command::new(binary());
    cmd.args(["admin", "seed-sessions", "--project", &p.slug])
        .args(["--count", "50", "--users", "5", "--out"])
        .arg(&out)
        .arg("--secret-file")
        .arg(node.dir.join("secret"))
        .arg("--data-dir")
        .arg(node.data_dir());
    if let Some(nodes) = cql_nodes() {
        cmd.args(["--store", "scylla", "--scylla-nodes", &nodes, "--keyspace"])
            .arg(test_keyspace());
    }
    let status = cmd.status().expect("seed-sessions runs");
    assert!(status.success());
    let tokens: Vec<String> = std::fs::read_to_string(&out)
        .expect("token file")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(tokens.len(), 50);

    node.restart().await;
    let p = Project {
        base: node.url(&format!("/{}", p.slug)),
        ..p
    };
    let batch = p.introspect_batch(&tokens).await;
    assert_eq!(batch.status, 200);
    let results = batch.body["results"].as_array().expect("results");
    assert!(results.iter().all(|r| r["active"] == true), "{results:?}");
    let login = p.login("seed-3", commonrock_tests::SEEDED_PASSWORD).await;
    assert_eq!(login.status, 200, "{:?}", login.body);
}
