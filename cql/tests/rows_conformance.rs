//! The `RowStore` (simple DB) conformance suite against a real CQL server
//! (`scripts/cql-server start`, which `scripts/check` runs): the checks the embedded store
//! passes.

use std::sync::Arc;

use commonrock_actors::store::rows::{
    DefinitionRecord, IndexBound, IndexEntry, IndexRange, MetaInserted, MetaReplaced, PkRange,
    RowAddr, RowInsert, RowQuota, RowStore, RowUpdate, RowWritten, TableKey,
};
use commonrock_actors::store::{backfill_conformance, rows_conformance};
use commonrock_cql::{CqlOptions, CqlStore};

mod common;

use common::nodes;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_store_passes_the_row_store_suite() {
    let opts = CqlOptions::new(nodes(), "cr_cql_rows");
    let store = CqlStore::connect(&opts, &prometheus::Registry::new())
        .await
        .expect("connects and migrates");
    let store: Arc<dyn RowStore> = Arc::new(store);
    rows_conformance::run_all(store).await;
}

/// CREATE INDEX's backfill with rows moved and deleted around it (the engine over CQL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_index_backfill_survives_racing_writers() {
    let opts = CqlOptions::new(nodes(), "cr_cql_rows");
    let store = CqlStore::connect(&opts, &prometheus::Registry::new())
        .await
        .expect("connects and migrates");
    backfill_conformance::run_all(Arc::new(store)).await;
}

/// A definition's id lookup left behind by a rename (the node died between the rename's batch
/// and the lookup update) still leads to it, and is repaired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_definition_lookup_behind_a_rename_is_followed_and_repaired() {
    let opts = CqlOptions::new(nodes(), "cr_cql_rows");
    let store = CqlStore::connect(&opts, &prometheus::Registry::new())
        .await
        .expect("connects and migrates");
    let p = uuid::Uuid::now_v7();
    let d = DefinitionRecord {
        project_id: p,
        id: uuid::Uuid::now_v7(),
        name: "old".into(),
        sql: "SELECT 1".into(),
        public: false,
        tables: Vec::new(),
        created_at: 1,
    };
    assert_eq!(
        store.insert_definition(&d, 10).await.unwrap(),
        MetaInserted::Created
    );
    let mut renamed = d.clone();
    renamed.name = "new".into();
    assert_eq!(
        store.replace_definition(&renamed).await.unwrap(),
        MetaReplaced::Replaced
    );
    let lookup = |name: &'static str| {
        let session = store.session();
        async move {
            session
                .query_unpaged(
                    "INSERT INTO cr_cql_rows.sql_definition_ids (project_id, id, name) \
                     VALUES (?, ?, ?)",
                    (p, d.id, name),
                )
                .await
                .unwrap();
        }
    };
    lookup("old").await;
    assert_eq!(
        store.get_definition(p, d.id).await.unwrap(),
        Some(renamed.clone())
    );
    let rows = store
        .session()
        .query_unpaged(
            "SELECT name FROM cr_cql_rows.sql_definition_ids WHERE project_id = ? AND id = ?",
            (p, d.id),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let (name,) = rows.first_row::<(String,)>().unwrap();
    assert_eq!(name, "new", "the lookup was repaired");
    // Replace and delete find it through a stale lookup too.
    lookup("old").await;
    let mut again = renamed.clone();
    again.name = "newer".into();
    assert_eq!(
        store.replace_definition(&again).await.unwrap(),
        MetaReplaced::Replaced
    );
    lookup("new").await;
    assert!(store.delete_definition(p, d.id).await.unwrap());
    assert_eq!(store.get_definition(p, d.id).await.unwrap(), None);
    assert!(store.list_definitions(p).await.unwrap().is_empty());
}

fn key(project_id: uuid::Uuid) -> TableKey {
    TableKey {
        project_id,
        table_id: uuid::Uuid::now_v7(),
    }
}

fn insert(t: TableKey, pk: Vec<u8>, entries: Vec<IndexEntry>) -> RowInsert {
    RowInsert {
        table: t,
        addr: RowAddr { bucket: 0, pk },
        value: b"v".to_vec(),
        index_entries: entries,
        quota: RowQuota {
            max_table_rows: 10_000,
            max_project_rows: 10_000,
        },
    }
}

fn entry(index: &str, key: &[u8], unique: bool) -> IndexEntry {
    IndexEntry {
        index: index.into(),
        key: key.to_vec(),
        unique,
    }
}

/// What the CQL layout adds: reads past one page, index reads merged over the index's
/// sub-partitions and resumed at an entry, UNIQUE values (even empty ones) moved by updates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_rows_page_merge_and_move_unique_values() {
    // 1,200 conditional inserts at once queue up in a one-node test server; the 2 s request
    // deadline made some of them unknown outcomes (Timeout) on a loaded machine. The test is
    // about layout, not latency, so it gives them time.
    let opts = CqlOptions {
        request_timeout: std::time::Duration::from_secs(30),
        ..CqlOptions::new(nodes(), "cr_cql_rows")
    };
    let store = CqlStore::connect(&opts, &prometheus::Registry::new())
        .await
        .expect("connects and migrates");
    let t = key(uuid::Uuid::now_v7());
    let n: u16 = 1200;
    let mut tasks = Vec::new();
    let store = Arc::new(store);
    for i in 0..n {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let k = [(i % 7) as u8];
            store
                .insert_row(&insert(
                    t,
                    i.to_be_bytes().to_vec(),
                    vec![entry("by_k", &k, false)],
                ))
                .await
                .unwrap()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), RowWritten::Done);
    }
    assert_eq!(store.count_rows(t).await.unwrap(), u64::from(n));
    let rows = store
        .scan_bucket(t, 0, &PkRange::all(), 5000, false)
        .await
        .unwrap();
    assert_eq!(rows.len(), usize::from(n), "more than one page");
    assert!(rows.windows(2).all(|w| w[0].pk < w[1].pk));

    // The whole index, 100 entries at a time, resumed after the last entry seen.
    let mut seen: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    loop {
        let lower = match seen.last() {
            Some((k, pk)) => IndexBound::Entry {
                key: k.clone(),
                pk: pk.clone(),
            },
            None => IndexBound::Unbounded,
        };
        let range = IndexRange {
            lower,
            upper: IndexBound::Unbounded,
        };
        let page = store
            .scan_index(t, "by_k", &range, 100, false)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        seen.extend(page);
    }
    assert_eq!(seen.len(), usize::from(n));
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "ordered by (key, pk)");
    let back = store
        .scan_index(t, "by_k", &IndexRange::all(), 10, true)
        .await
        .unwrap();
    let mut tail = seen[seen.len() - 10..].to_vec();
    tail.reverse();
    assert_eq!(back, tail);

    // UNIQUE: an empty value, moved to a taken value (refused) and to a free one.
    let u = key(uuid::Uuid::now_v7());
    let a = insert(u, vec![1], vec![entry("email", b"", true)]);
    let b = insert(u, vec![2], vec![entry("email", b"b", true)]);
    assert_eq!(store.insert_row(&a).await.unwrap(), RowWritten::Done);
    assert_eq!(store.insert_row(&b).await.unwrap(), RowWritten::Done);
    let mut again = insert(u, vec![3], vec![entry("email", b"", true)]);
    assert_eq!(
        store.insert_row(&again).await.unwrap(),
        RowWritten::UniqueViolation {
            index: "email".into()
        }
    );
    let to = |value: &[u8], key: &[u8]| RowUpdate {
        table: u,
        addr: RowAddr {
            bucket: 0,
            pk: vec![1],
        },
        expected: b"v".to_vec(),
        value: value.to_vec(),
        old_entries: vec![entry("email", b"", true)],
        new_entries: vec![entry("email", key, true)],
    };
    assert_eq!(
        store.update_row(&to(b"w", b"b")).await.unwrap(),
        RowWritten::UniqueViolation {
            index: "email".into()
        }
    );
    assert_eq!(
        store.update_row(&to(b"w", b"c")).await.unwrap(),
        RowWritten::Done
    );
    // The empty value is free again; the pk-3 insert's pk claim was released on its refusal.
    again.index_entries = vec![entry("email", b"", true)];
    assert_eq!(store.insert_row(&again).await.unwrap(), RowWritten::Done);
    let got = store
        .get_rows(
            u,
            &[
                RowAddr {
                    bucket: 0,
                    pk: vec![1],
                },
                RowAddr {
                    bucket: 0,
                    pk: vec![3],
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(got, vec![Some(b"w".to_vec()), Some(b"v".to_vec())]);
    let entries = store
        .scan_index(u, "email", &IndexRange::all(), 10, false)
        .await
        .unwrap();
    assert_eq!(
        entries,
        vec![
            (b"".to_vec(), vec![3]),
            (b"b".to_vec(), vec![2]),
            (b"c".to_vec(), vec![1]),
        ]
    );
}

/// Claims left by a write that died between its claims and its batch: an old pk claim without
/// its row, and an old UNIQUE claim whose owner holds no pk claim, are taken over; fresh ones
/// are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_rows_take_over_abandoned_claims() {
    let opts = CqlOptions::new(nodes(), "cr_cql_rows");
    let store = CqlStore::connect(&opts, &prometheus::Registry::new())
        .await
        .expect("connects and migrates");
    let t = key(uuid::Uuid::now_v7());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let claim = |pk: &'static [u8], ts: i64| {
        let session = store.session();
        async move {
            session
                .query_unpaged(
                    "INSERT INTO cr_cql_rows.sql_row_claims (project_id, table_id, pk, digest, ts) \
                     VALUES (?, ?, ?, ?, ?) IF NOT EXISTS",
                    (t.project_id, t.table_id, pk, vec![0u8; 32], ts),
                )
                .await
                .unwrap();
        }
    };
    claim(b"fresh", now).await;
    claim(b"old", now - 120_000_000).await;
    store
        .session()
        .query_unpaged(
            "INSERT INTO cr_cql_rows.sql_unique_claims (project_id, table_id, index_name, key, \
             owner, ts) VALUES (?, ?, 'email', ?, ?, ?) IF NOT EXISTS",
            (
                t.project_id,
                t.table_id,
                b"x".to_vec(),
                b"gone".to_vec(),
                now - 120_000_000,
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .insert_row(&insert(t, b"fresh".to_vec(), Vec::new()))
            .await
            .unwrap(),
        RowWritten::Conflict,
        "a fresh claim may be an insert in flight"
    );
    let ins = insert(t, b"old".to_vec(), vec![entry("email", b"x", true)]);
    assert_eq!(store.insert_row(&ins).await.unwrap(), RowWritten::Done);
    assert_eq!(
        store
            .get_rows(
                t,
                &[RowAddr {
                    bucket: 0,
                    pk: b"old".to_vec()
                }]
            )
            .await
            .unwrap(),
        vec![Some(b"v".to_vec())]
    );
    let mut other = insert(t, b"new".to_vec(), vec![entry("email", b"x", true)]);
    assert_eq!(
        store.insert_row(&other).await.unwrap(),
        RowWritten::UniqueViolation {
            index: "email".into()
        }
    );
    other.index_entries.clear();
    assert_eq!(store.insert_row(&other).await.unwrap(), RowWritten::Done);
}
