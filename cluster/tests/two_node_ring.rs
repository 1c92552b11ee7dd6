//! With one node every key is ours, so routing is proven here on a two-node ring, in process:
//! keys the other node owns take the forwarding path (503 here: no peers are wired) and never
//! reach a local shard; keys this node owns are served by its shards.

use std::sync::Arc;

use commonrock_actors::crypto::tokens::{ServerSecrets, TokenKind};
use commonrock_actors::engine::session_key;
use commonrock_actors::metrics::EngineMetrics;
use commonrock_actors::model::{Limit, ProjectSettings};
use commonrock_actors::ratelimit::LimitCheck;
use commonrock_actors::store::embedded::EmbeddedStore;
use commonrock_actors::tenant::Change;
use commonrock_actors::{DomainError, Engine, EngineConfig};
use commonrock_cluster::{Membership, NodeId, Ring, Route};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_of_the_other_node_take_the_not_owner_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(EmbeddedStore::open(dir.path()).expect("store opens"));
    let secrets = ServerSecrets::parse(&ServerSecrets::generate_file_text())
        .expect("generated secret parses");
    let ring = Ring::new([NodeId::new("node-a"), NodeId::new("node-b")], 256).expect("ring");
    let membership = Arc::new(Membership::new(NodeId::new("node-a"), ring));
    let engine = Engine::start(
        EngineConfig {
            shards: 4,
            argon2_threads: 1,
            ..EngineConfig::default()
        },
        store,
        secrets.clone(),
        membership.clone(),
        Arc::new(commonrock_actors::owner::NoPeers),
        EngineMetrics::unregistered(),
    )
    .await
    .expect("engine starts");
    engine
        .apply(Change::CreateOrg {
            slug: "org-two".into(),
            name: "Two".into(),
        })
        .await
        .expect("org");
    engine
        .apply(Change::CreateProject {
            org_slug: "org-two".into(),
            slug: "two-nodes".into(),
            name: "Two nodes".into(),
            settings: ProjectSettings::default(),
        })
        .await
        .expect("project");
    let project = engine
        .tenants()
        .project("two-nodes")
        .cloned()
        .expect("published");

    let (mut local, mut remote) = (0, 0);
    for _ in 0..200 {
        let session_id = uuid::Uuid::new_v4();
        let token = secrets
            .mint(secrets.current_key_id(), TokenKind::Access, session_id, 0)
            .expect("current key mints");
        let outcome = engine.introspect(&project, &token).await;
        match membership.route(&session_key(session_id)) {
            Route::Local => {
                local += 1;
                // Served by a local shard: an unknown session is simply inactive.
                assert!(matches!(outcome, Ok(None)), "local key: {outcome:?}");
            }
            Route::Remote(node) => {
                remote += 1;
                assert_eq!(node, NodeId::new("node-b"));
                assert!(
                    matches!(
                        outcome,
                        Err(DomainError::Unavailable {
                            reason: "owner unavailable",
                            ..
                        })
                    ),
                    "remote key: {outcome:?}"
                );
            }
            Route::Pending | Route::Unavailable => {
                panic!("a settled two-node ring always has an owner")
            }
        }
    }
    assert!(
        local > 50 && remote > 50,
        "both paths taken: {local} local, {remote} remote"
    );

    // Rate-limit buckets follow the same ownership.
    let (mut limited_local, mut limited_remote) = (false, false);
    for i in 0..64 {
        let key = format!("account-{i}").into_bytes();
        let check = vec![LimitCheck {
            name: "test",
            key: key.clone(),
            limit: Limit::new(10, 10),
        }];
        let out = engine.check_limits(&key, check).await;
        match membership.route(&key) {
            Route::Local => {
                limited_local = true;
                assert!(out.is_ok(), "local bucket: {out:?}");
            }
            _ => {
                limited_remote = true;
                assert!(matches!(out, Err(DomainError::Unavailable { .. })));
            }
        }
    }
    assert!(limited_local && limited_remote);
    engine.stop();
}
