//! CREATE INDEX over existing rows (the backfill) on a real embedded store: reads through the
//! new index, UNIQUE checks, writers racing the backfill, and resumption of a backfill that
//! did not finish.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use commonrock_actors::sql::ddl::DdlOutcome;
use commonrock_actors::sql::keys::encode_key;
use commonrock_actors::sql::{CursorMode, ExecuteRequest, Page, SqlConfig, SqlEngine, SqlError};
use commonrock_actors::store::backfill_conformance;
use commonrock_actors::store::embedded::EmbeddedStore;
use commonrock_actors::store::rows::{
    ColumnType, IndexRange, IndexSpec, PkRange, RowStore, TableRecord,
};
use gluesql_core::data::Value;
use serde_json::{json, Map, Value as Json};
use uuid::Uuid;

struct Fixture {
    engine: Arc<SqlEngine>,
    project: Uuid,
    _dir: tempfile::TempDir,
}

/// Short statement timeout and margin: the backfill waits for their sum.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn RowStore> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let config = SqlConfig {
        statement_timeout: Duration::from_millis(1500),
        store_call_margin: Duration::from_millis(100),
        compiled_staleness: Duration::ZERO,
        // Small pages and few buckets: the backfill crosses pages and buckets.
        page_size: 7,
        buckets: 4,
        ..SqlConfig::default()
    };
    let engine = SqlEngine::new(
        store,
        config,
        b"test-cursor-key",
        &prometheus::Registry::new(),
    )
    .unwrap();
    Fixture {
        engine: Arc::new(engine),
        project: Uuid::now_v7(),
        _dir: dir,
    }
}

impl Fixture {
    async fn ddl(&self, sql: &str) -> Result<DdlOutcome, SqlError> {
        self.engine.execute_ddl(self.project, sql).await
    }

    async fn run(&self, sql: &str, p: Json) -> Result<Page, SqlError> {
        let name = format!("d{}", Uuid::now_v7().simple());
        let def = self
            .engine
            .register_definition(self.project, &name, sql, true)
            .await?;
        self.engine
            .execute(
                &def,
                ExecuteRequest {
                    params: p.as_object().cloned().unwrap_or_default(),
                    limit: Some(1000),
                    ..Default::default()
                },
            )
            .await
    }

    async fn table(&self, name: &str) -> TableRecord {
        self.engine
            .store()
            .get_table(self.project, name)
            .await
            .unwrap()
            .unwrap()
    }

    /// Every (key, pk) of an index.
    async fn entries(&self, table: &str, index: &str) -> BTreeSet<(Vec<u8>, Vec<u8>)> {
        let t = self.table(table).await;
        self.engine
            .store()
            .scan_index(t.key(), index, &IndexRange::all(), 1_000_000, false)
            .await
            .unwrap()
            .into_iter()
            .collect()
    }

    /// The entries an integer column's index must hold: one per row, from the stored rows.
    async fn expected_entries(&self, table: &str, column: &str) -> BTreeSet<(Vec<u8>, Vec<u8>)> {
        let t = self.table(table).await;
        let mut out = BTreeSet::new();
        for bucket in 0..t.buckets {
            let rows = self
                .engine
                .store()
                .scan_bucket(t.key(), bucket, &PkRange::all(), 1_000_000, false)
                .await
                .unwrap();
            for r in rows {
                let row: Map<String, Json> = serde_json::from_slice(&r.value).unwrap();
                let value = match row.get(column).and_then(Json::as_i64) {
                    Some(n) => Value::I64(n),
                    None => Value::Null,
                };
                out.insert((encode_key(ColumnType::Integer, &value).unwrap(), r.pk));
            }
        }
        out
    }
}

fn ids(page: &Page) -> Vec<i64> {
    page.rows
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

fn index<'a>(table: &'a TableRecord, name: &str) -> Option<&'a IndexSpec> {
    table.indexes.iter().find(|i| i.name == name)
}

const INSERT: &str = "INSERT INTO t (id, n, email) VALUES (:id, :n, :email)";

async fn table_with_rows(f: &Fixture, rows: i64) {
    f.ddl("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, email TEXT NOT NULL)")
        .await
        .unwrap();
    for i in 0..rows {
        f.run(
            INSERT,
            json!({"id": i, "n": i % 5, "email": format!("u{i:03}@x")}),
        )
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_over_existing_rows_serves_lookups_and_keyset_pages() {
    let f = fixture();
    table_with_rows(&f, 60).await;
    let DdlOutcome::Altered(t) = f.ddl("CREATE INDEX t_n ON t (n)").await.unwrap() else {
        panic!("an index alters its table");
    };
    assert!(!index(&t, "t_n").unwrap().building);
    assert_eq!(
        f.entries("t", "t_n").await,
        f.expected_entries("t", "n").await
    );
    // No ORDER BY, so the planner picks the index for the WHERE clause: only the matching
    // rows are read.
    let page = f
        .run("SELECT id FROM t WHERE n = :n", json!({"n": 3}))
        .await
        .unwrap();
    let mut found = ids(&page);
    found.sort_unstable();
    assert_eq!(found, (0..60).filter(|i| i % 5 == 3).collect::<Vec<_>>());
    assert_eq!(page.rows_read, 12);

    // UNIQUE over distinct values: keyset pages walk the new index.
    f.ddl("CREATE UNIQUE INDEX t_email ON t (email)")
        .await
        .unwrap();
    let def = f
        .engine
        .register_definition(
            f.project,
            "by_email",
            "SELECT id, email FROM t ORDER BY email",
            true,
        )
        .await
        .unwrap();
    assert!(
        def.keyset_unavailable.is_none(),
        "{:?}",
        def.keyset_unavailable
    );
    let mut cursor = None;
    let mut seen = Vec::new();
    loop {
        let page = f
            .engine
            .execute(
                &def,
                ExecuteRequest {
                    limit: Some(7),
                    cursor: cursor.clone(),
                    mode: CursorMode::Keyset,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(
            page.rows_read <= 7 + 4,
            "a keyset page read {}",
            page.rows_read
        );
        seen.extend(ids(&page));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, (0..60).collect::<Vec<_>>());
    let dup = f
        .run(INSERT, json!({"id": 100, "n": 1, "email": "u007@x"}))
        .await;
    assert!(matches!(dup, Err(SqlError::Conflict { .. })), "{dup:?}");

    // UNIQUE over duplicates: refused, and the table is as before.
    let before = f.table("t").await.indexes;
    let r = f.ddl("CREATE UNIQUE INDEX t_n_u ON t (n)").await;
    match r {
        Err(SqlError::Conflict { message }) => {
            assert!(
                message.contains("column n has duplicate values"),
                "{message}"
            )
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(f.table("t").await.indexes, before);
    assert!(f.entries("t", "t_n_u").await.is_empty());
    f.run(INSERT, json!({"id": 100, "n": 3, "email": "new@x"}))
        .await
        .unwrap();
    // The same name over distinct values works afterwards.
    f.ddl("CREATE UNIQUE INDEX t_n_u ON t (id)").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_racing_the_backfill_leave_exactly_one_entry_per_row() {
    let f = fixture();
    table_with_rows(&f, 150).await;
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let engine = Arc::clone(&f.engine);
        let project = f.project;
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let reg = |name: &'static str, sql: &'static str| {
                let engine = Arc::clone(&engine);
                async move {
                    engine
                        .register_definition(project, name, sql, true)
                        .await
                        .unwrap()
                }
            };
            let update = reg("upd", "UPDATE t SET n = :n WHERE id = :id").await;
            let insert = reg("ins", INSERT).await;
            let delete = reg("del", "DELETE FROM t WHERE id = :id").await;
            let run = |def, p: Json| {
                let engine = Arc::clone(&engine);
                async move {
                    // Conflicts (a row changed meanwhile) are fine: the point is the race.
                    let _ = engine
                        .execute(
                            &def,
                            ExecuteRequest {
                                params: p.as_object().cloned().unwrap_or_default(),
                                ..Default::default()
                            },
                        )
                        .await;
                }
            };
            let mut i: i64 = 0;
            while !done.load(Ordering::Relaxed) {
                let id = (i * 37) % 150;
                run(update.clone(), json!({"id": id, "n": 1000 + i})).await;
                if i % 3 == 0 {
                    run(
                        insert.clone(),
                        json!({"id": 10_000 + i, "n": i, "email": "e"}),
                    )
                    .await;
                }
                if i % 7 == 0 {
                    run(delete.clone(), json!({"id": (i * 11) % 150})).await;
                }
                i += 1;
            }
            i
        })
    };
    // Let the writer get going, so that some of its statements read the catalog without the
    // index and finish during the backfill's wait.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = f.ddl("CREATE INDEX t_n ON t (n)").await;
    done.store(true, Ordering::Relaxed);
    let writes = writer.await.unwrap();
    r.unwrap();
    assert!(writes > 5, "the writer ran {writes} rounds");
    assert_eq!(
        f.entries("t", "t_n").await,
        f.expected_entries("t", "n").await
    );
    assert!(!index(&f.table("t").await, "t_n").unwrap().building);
}

/// The store-level races of one row's backfill (`store::backfill_conformance`, also run on
/// CQL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_moved_or_deleted_around_their_backfill_end_with_the_right_entries() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn RowStore> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    backfill_conformance::run_all(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_that_died_midway_resumes_and_its_index_stays_unused_meanwhile() {
    let f = fixture();
    table_with_rows(&f, 30).await;
    // What a node that died right after declaring the index leaves behind.
    let mut t = f.table("t").await;
    for (name, column, unique) in [("t_n", "n", false), ("t_email", "email", true)] {
        t.indexes.push(IndexSpec {
            name: name.into(),
            column: column.into(),
            unique,
            building: true,
        });
    }
    let expected = t.version;
    t.version += 1;
    assert!(f.engine.store().update_table(&t, expected).await.unwrap());

    // Writers maintain the building index, UNIQUE claims included.
    for i in 30..35 {
        f.run(
            INSERT,
            json!({"id": i, "n": i % 5, "email": format!("u{i:03}@x")}),
        )
        .await
        .unwrap();
    }
    assert_eq!(f.entries("t", "t_n").await.len(), 5);
    let dup = f
        .run(INSERT, json!({"id": 99, "n": 0, "email": "u031@x"}))
        .await;
    assert!(matches!(dup, Err(SqlError::Conflict { .. })), "{dup:?}");
    // Readers do not use it: lookups scan (and find every row), keyset refuses the column.
    let page = f
        .run("SELECT id FROM t WHERE n = :n", json!({"n": 2}))
        .await
        .unwrap();
    let mut found = ids(&page);
    found.sort_unstable();
    assert_eq!(found, (0..35).filter(|i| i % 5 == 2).collect::<Vec<_>>());
    assert_eq!(page.rows_read, 35, "a scan, not the incomplete index");
    let def = f
        .engine
        .register_definition(
            f.project,
            "by_email",
            "SELECT id FROM t ORDER BY email",
            true,
        )
        .await
        .unwrap();
    assert!(def.keyset_unavailable.is_some());

    // Another definition under a building name is refused; the same one resumes.
    let r = f.ddl("CREATE UNIQUE INDEX t_n ON t (n)").await;
    assert!(matches!(r, Err(SqlError::Conflict { .. })), "{r:?}");
    f.ddl("CREATE INDEX t_n ON t (n)").await.unwrap();
    f.ddl("CREATE UNIQUE INDEX IF NOT EXISTS t_email ON t (email)")
        .await
        .unwrap();
    let t = f.table("t").await;
    assert!(t.indexes.iter().all(|i| !i.building), "{:?}", t.indexes);
    assert_eq!(
        f.entries("t", "t_n").await,
        f.expected_entries("t", "n").await
    );
    assert_eq!(f.entries("t", "t_email").await.len(), 35);
    let def = f.engine.get_definition(f.project, def.id).await.unwrap();
    assert!(def.keyset_unavailable.is_none());
    // Ready now: the plain statement says it exists.
    let r = f.ddl("CREATE INDEX t_n ON t (n)").await;
    assert!(matches!(r, Err(SqlError::Conflict { .. })), "{r:?}");
    // DROP TABLE takes the backfilled entries too.
    let key = t.key();
    f.ddl("DROP TABLE t CASCADE").await.unwrap();
    for name in ["t_n", "t_email"] {
        let left = f
            .engine
            .store()
            .scan_index(key, name, &IndexRange::all(), 10, false)
            .await
            .unwrap();
        assert!(left.is_empty(), "{name}: {left:?}");
    }
}
