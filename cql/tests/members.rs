//! The `MemberStore` (heartbeats and ring) on a real CQL server (`scripts/cql-server start`,
//! which `scripts/check` runs). Every test uses its own node ids and cluster names, since
//! heartbeats of every cluster share one partition and the tests run at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use commonrock_actors::store::members::{Heartbeat, MemberStatus, MemberStore, RingRecord};
use commonrock_cql::{CqlOptions, CqlStore};
use uuid::Uuid;

mod common;

use common::nodes;

async fn store() -> CqlStore {
    let opts = CqlOptions::new(nodes(), "cr_cql_members");
    CqlStore::connect(&opts, &prometheus::Registry::new())
        .await
        .expect("connects and migrates")
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::new_v4())
}

fn heartbeat(node_id: &str) -> Heartbeat {
    Heartbeat {
        node_id: node_id.to_string(),
        advertise: "10.0.0.7:7400".into(),
        status: MemberStatus::Joining,
        // Above i64::MAX: the generation is a random u64 and must survive whole.
        generation: u64::MAX - 12_345,
        beat: 1,
        seen_epoch: 4,
        secret_fingerprint: "fp-0123abcd".into(),
        wall_ms: 1_700_000_000_123,
    }
}

/// The heartbeats among `ids` (other tests' rows share the partition).
async fn mine(store: &CqlStore, ids: &[&str]) -> Vec<Heartbeat> {
    let mut found: Vec<Heartbeat> = store
        .list_heartbeats()
        .await
        .expect("lists heartbeats")
        .into_iter()
        .filter(|h| ids.contains(&h.node_id.as_str()))
        .collect();
    found.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    found
}

fn ring(epoch: u64, owners: &[&str]) -> RingRecord {
    RingRecord {
        epoch,
        owners: owners.iter().map(|s| s.to_string()).collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_round_trips_is_overwritten_and_deleted() {
    let store = store().await;
    let a = unique("node-a");
    let b = unique("node-b");
    let first = heartbeat(&a);
    store.put_heartbeat(&first, 60).await.unwrap();
    assert_eq!(mine(&store, &[&a, &b]).await, vec![first.clone()]);

    let renewed = Heartbeat {
        status: MemberStatus::Up,
        beat: 2,
        seen_epoch: 5,
        wall_ms: first.wall_ms + 3_000,
        ..first.clone()
    };
    store.put_heartbeat(&renewed, 60).await.unwrap();
    let other = Heartbeat {
        status: MemberStatus::Leaving,
        generation: 7,
        ..heartbeat(&b)
    };
    store.put_heartbeat(&other, 60).await.unwrap();
    let mut both = vec![renewed.clone(), other.clone()];
    both.sort_by(|x, y| x.node_id.cmp(&y.node_id));
    assert_eq!(mine(&store, &[&a, &b]).await, both, "one row per node");

    store.delete_heartbeat(&a).await.unwrap();
    assert_eq!(mine(&store, &[&a, &b]).await, vec![other]);
    store.delete_heartbeat(&b).await.unwrap();
    assert_eq!(mine(&store, &[&a, &b]).await, Vec::<Heartbeat>::new());
    // Deleting what is not there is not an error (a node leaving twice).
    store.delete_heartbeat(&a).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_expires_with_its_ttl() {
    let store = store().await;
    let short = unique("node-short");
    let long = unique("node-long");
    store.put_heartbeat(&heartbeat(&long), 120).await.unwrap();
    store.put_heartbeat(&heartbeat(&short), 1).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = mine(&store, &[&short, &long]).await;
        if found.iter().all(|h| h.node_id != short) {
            assert_eq!(found, vec![heartbeat(&long)], "only the short TTL expired");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a heartbeat with a 1 s TTL still listed after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    store.delete_heartbeat(&long).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_ring_is_written_once() {
    let store = store().await;
    let cluster = unique("cluster");
    assert_eq!(store.get_ring(&cluster).await.unwrap(), None);
    // An update on a ring that does not exist is refused and creates none.
    assert!(!store
        .cas_ring(&cluster, Some(1), &ring(2, &["x"]))
        .await
        .unwrap());
    assert_eq!(store.get_ring(&cluster).await.unwrap(), None);

    let first = ring(1, &["a"]);
    assert!(store.cas_ring(&cluster, None, &first).await.unwrap());
    assert!(!store
        .cas_ring(&cluster, None, &ring(1, &["b"]))
        .await
        .unwrap());
    assert_eq!(store.get_ring(&cluster).await.unwrap(), Some(first));
    // Another cluster's ring is another row.
    assert_eq!(store.get_ring(&unique("cluster")).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_changes_only_from_the_expected_epoch() {
    let store = store().await;
    let cluster = unique("cluster");
    assert!(store
        .cas_ring(&cluster, None, &ring(1, &["a"]))
        .await
        .unwrap());
    let second = ring(2, &["a", "b"]);
    assert!(store.cas_ring(&cluster, Some(1), &second).await.unwrap());
    assert!(
        !store
            .cas_ring(&cluster, Some(1), &ring(2, &["c"]))
            .await
            .unwrap(),
        "a stale epoch is refused"
    );
    assert_eq!(store.get_ring(&cluster).await.unwrap(), Some(second));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_ring_changes_have_one_winner() {
    let store = Arc::new(store().await);
    let cluster = unique("cluster");
    assert!(store
        .cas_ring(&cluster, None, &ring(1, &["a"]))
        .await
        .unwrap());
    assert!(store
        .cas_ring(&cluster, Some(1), &ring(2, &["a", "b"]))
        .await
        .unwrap());

    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = Arc::clone(&store);
            let cluster = cluster.clone();
            tokio::spawn(async move {
                let next = ring(3, &["a", &format!("n{i:02}")]);
                let applied = store
                    .cas_ring(&cluster, Some(2), &next)
                    .await
                    .expect("conditional write answers");
                (applied, next)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (applied, next) = task.await.expect("task completes");
        if applied {
            winners.push(next);
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one writer wins epoch 3: {winners:?}"
    );
    assert_eq!(
        store.get_ring(&cluster).await.unwrap(),
        Some(winners.remove(0))
    );
}
