//! What the ScyllaDB store must show beyond the shared black-box suite (which also runs on
//! it): no secret in any column of any table, and two nodes on one keyspace agreeing on
//! external_id uniqueness and on refresh rotation. Needs `COMMONROCK_TEST_CQL_NODES`
//! (`scripts/check` starts the server).

use std::collections::HashSet;
use std::sync::Arc;

use commonrock_tests::{Node, NodeOptions, Project};
use futures_util::future::join_all;
use scylla::client::session_builder::SessionBuilder;
use serde_json::json;

fn cql_nodes() -> String {
    std::env::var("COMMONROCK_TEST_CQL_NODES").expect(
        "these tests need a CQL server: run `scripts/check`, or `eval \"$(scripts/cql-server start)\"`",
    )
}

fn keyspace(name: &str) -> String {
    format!("cr_cql_{name}")
}

/// Every value of every row of every table in `keyspace`, rendered as text.
async fn dump_keyspace(nodes: &str, keyspace: &str) -> String {
    let session = SessionBuilder::new()
        .known_nodes(nodes.split(','))
        .build()
        .await
        .expect("connect to the CQL server");
    let tables = session
        .query_unpaged(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
            (keyspace,),
        )
        .await
        .expect("list tables")
        .into_rows_result()
        .expect("rows");
    let names: Vec<String> = tables
        .rows::<(String,)>()
        .expect("typed rows")
        .map(|r| r.expect("row").0)
        .collect();
    assert!(names.len() >= 9, "the schema has its tables: {names:?}");
    let mut out = String::new();
    for table in names {
        let rows = session
            .query_unpaged(format!("SELECT * FROM {keyspace}.{table}"), ())
            .await
            .expect("select all")
            .into_rows_result()
            .expect("rows");
        for row in rows.rows::<scylla::value::Row>().expect("untyped rows") {
            out.push_str(&format!("{table}: {:?}\n", row.expect("row").columns));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_is_stored_in_plain_text_in_any_column() {
    let nodes = cql_nodes();
    let ks = keyspace("secrets");
    let node = Node::start_with(NodeOptions::default().cql(nodes.clone(), ks.clone())).await;
    let p = node.project(json!({})).await;
    let password = "correct horse battery staple";
    let s = p.signup("secret-user", password).await;
    assert_eq!(s.status, 201, "{:?}", s.body);
    let l = p.login("secret-user", password).await;
    let r = p
        .refresh(l.body["refresh_token"].as_str().expect("refresh token"))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let (st, token) = node
        .admin(
            reqwest::Method::POST,
            "/admin-tokens",
            Some(json!({"name": "ops"})),
        )
        .await;
    assert_eq!(st, 201);

    let mut secrets: Vec<String> = vec![
        password.into(),
        p.client_key.clone(),
        p.secret_key.clone(),
        node.admin_token.clone(),
        token["token"].as_str().expect("admin token").into(),
    ];
    for answer in [&s, &l, &r] {
        for field in ["token", "refresh_token"] {
            secrets.push(answer.body[field].as_str().expect("token").into());
        }
    }
    let server_secret = std::fs::read_to_string(node.dir.join("secret")).expect("secret file");
    secrets.push(
        server_secret
            .trim()
            .split_once('=')
            .expect("kid=secret")
            .1
            .into(),
    );

    let dump = dump_keyspace(&nodes, &ks).await;
    assert!(
        dump.contains("secret-user"),
        "the dump really holds the data"
    );
    for secret in &secrets {
        // The secret part of a credential (after its public prefix) is what must not leak.
        let tail = &secret[secret.len().saturating_sub(24)..];
        assert!(
            !dump.contains(tail),
            "a secret appears in plain text in the keyspace"
        );
    }
}

/// Two nodes on one keyspace, sharing the server secret as a real cluster does.
async fn two_nodes(name: &str) -> (Node, Node, Project, Project) {
    let nodes = cql_nodes();
    let ks = keyspace(name);
    let a = Node::start_with(NodeOptions::default().cql(nodes.clone(), ks.clone())).await;
    let b = Node::start_with(
        NodeOptions::default()
            .cql(nodes, ks)
            .secret_file(a.dir.join("secret")),
    )
    .await;
    let pa = a.project(json!({})).await;
    // Node b learns about the project through the configuration epoch it polls.
    let pb = Project {
        base: b.url(&format!("/{}", pa.slug)),
        ..pa.clone()
    };
    let seen = commonrock_tests::eventually(std::time::Duration::from_secs(15), || {
        let pb = pb.clone();
        async move {
            let r = pb.introspect("cr_at_nothing").await;
            (r.status == 200).then_some(())
        }
    })
    .await;
    assert!(seen.is_some(), "node b sees the project created on node a");
    (a, b, pa, pb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_agree_on_external_id_uniqueness() {
    let (_a, _b, pa, pb) = two_nodes("unique").await;
    let pa = Arc::new(pa);
    let pb = Arc::new(pb);
    let attempts = (0..40).map(|i| {
        let p = if i % 2 == 0 { pa.clone() } else { pb.clone() };
        async move { p.signup("the-one", "password123").await.status }
    });
    let statuses = join_all(attempts).await;
    let created = statuses.iter().filter(|s| **s == 201).count();
    let conflicts = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!(created, 1, "exactly one signup wins: {statuses:?}");
    assert_eq!(conflicts, 39, "every other one is a 409: {statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_never_fork_a_session_on_refresh() {
    let (_a, _b, pa, pb) = two_nodes("rotation").await;
    let s = pa.signup("rotator", "password123").await;
    assert_eq!(s.status, 201);
    let refresh = s.body["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    let pa = Arc::new(pa);
    let pb = Arc::new(pb);
    let attempts = (0..16).map(|i| {
        let p = if i % 2 == 0 { pa.clone() } else { pb.clone() };
        let refresh = refresh.clone();
        async move { p.refresh(&refresh).await }
    });
    let answers = join_all(attempts).await;
    let pairs: HashSet<(String, String)> = answers
        .iter()
        .filter(|a| a.status == 200)
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
    assert!(
        answers.iter().all(|a| a.status == 200 || a.status == 503),
        "only successes or clean 503s: {:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert_eq!(
        pairs.len(),
        1,
        "every success returns the same successor pair"
    );
    let (token, next_refresh) = pairs.into_iter().next().expect("one pair");
    assert_eq!(pa.introspect(&token).await.body["active"], true);
    // The successor rotates normally on either node: the session did not fork.
    let again = pb.refresh(&next_refresh).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
}
