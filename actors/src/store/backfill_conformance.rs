//! The races of CREATE INDEX's backfill, for every [`RowStore`]: another writer (one that
//! knows the index, as the backfill's wait guarantees) moves or deletes a row at the worst
//! moments of that row's backfill, and the index must still end with exactly one entry per
//! row, UNIQUE claims included. [`run_all`] runs the engine over a decorator that injects the
//! writes; the embedded and CQL tests call it.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use gluesql_core::data::Value;
use serde_json::{json, Map, Value as Json};
use uuid::Uuid;

use super::rows::{
    ColumnType, DefinitionRecord, IndexEntry, IndexRange, MetaInserted, MetaReplaced, PkRange,
    RowAddr, RowDelete, RowInsert, RowStore, RowUpdate, RowWritten, StoredRow, TableKey,
    TableRecord,
};
use super::StoreError;
use crate::sql::keys::{bucket_of, decode_row, encode_key, encode_row};
use crate::sql::storage::index_entries;
use crate::sql::{ExecuteRequest, SqlConfig, SqlEngine, SqlError};

/// What the decorator does to a row, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Race {
    /// Move the row to another key just before the backfill's put.
    MoveBeforePut,
    /// Move it just after the put (the entry written must be taken back).
    MoveAfterPut,
    /// Delete it just after the put.
    DeleteAfterPut,
    /// Move it after the put and again just before the entry is taken back.
    MoveAfterPutAndBeforeRemove,
}

const TABLE: &str = "t";

struct RacingStore {
    inner: Arc<dyn RowStore>,
    project: Uuid,
    /// pk -> the race to run on it (once).
    races: Mutex<HashMap<Vec<u8>, Race>>,
}

impl RacingStore {
    fn take(&self, pk: &[u8], when: &[Race]) -> Option<Race> {
        let mut races = self.races.lock().unwrap();
        let race = *races.get(pk)?;
        if !when.contains(&race) {
            return None;
        }
        // The two-step race stays armed for its second step (in `remove_index_entry`).
        if race != Race::MoveAfterPutAndBeforeRemove {
            races.remove(pk);
        }
        Some(race)
    }

    async fn current(&self, addr: &RowAddr) -> (TableRecord, Vec<u8>, Vec<Value>) {
        let t = self
            .inner
            .get_table(self.project, TABLE)
            .await
            .unwrap()
            .unwrap();
        let row = self
            .inner
            .get_rows(t.key(), std::slice::from_ref(addr))
            .await
            .unwrap()
            .remove(0)
            .expect("the raced row exists");
        let values = decode_row(&t, &row).unwrap();
        (t, row, values)
    }

    /// Adds 1000 to the row's `n`, moving its entries as any statement would.
    async fn move_row(&self, addr: &RowAddr) {
        let (t, old, old_values) = self.current(addr).await;
        let mut values = old_values.clone();
        let n = t.columns.iter().position(|c| c.name == "n").unwrap();
        values[n] = match &values[n] {
            Value::I64(v) => Value::I64(v + 1000),
            _ => Value::I64(1000),
        };
        let update = RowUpdate {
            table: t.key(),
            addr: addr.clone(),
            expected: old,
            value: encode_row(&t, &values).unwrap(),
            old_entries: index_entries(&t, &old_values).unwrap(),
            new_entries: index_entries(&t, &values).unwrap(),
        };
        assert_eq!(
            self.inner.update_row(&update).await.unwrap(),
            RowWritten::Done
        );
    }

    async fn delete_row_now(&self, addr: &RowAddr) {
        let (t, old, values) = self.current(addr).await;
        let delete = RowDelete {
            table: t.key(),
            addr: addr.clone(),
            expected: old,
            entries: index_entries(&t, &values).unwrap(),
        };
        assert_eq!(
            self.inner.delete_row(&delete).await.unwrap(),
            RowWritten::Done
        );
    }
}

#[async_trait]
impl RowStore for RacingStore {
    fn kind(&self) -> &'static str {
        "racing"
    }
    async fn create_table(&self, t: &TableRecord, max: u64) -> Result<MetaInserted, StoreError> {
        self.inner.create_table(t, max).await
    }
    async fn get_table(&self, p: Uuid, name: &str) -> Result<Option<TableRecord>, StoreError> {
        self.inner.get_table(p, name).await
    }
    async fn list_tables(&self, p: Uuid) -> Result<Vec<TableRecord>, StoreError> {
        self.inner.list_tables(p).await
    }
    async fn update_table(&self, t: &TableRecord, v: u64) -> Result<bool, StoreError> {
        self.inner.update_table(t, v).await
    }
    async fn delete_table(&self, p: Uuid, name: &str) -> Result<bool, StoreError> {
        self.inner.delete_table(p, name).await
    }
    async fn purge_rows(&self, t: TableKey, b: u32, limit: usize) -> Result<u64, StoreError> {
        self.inner.purge_rows(t, b, limit).await
    }
    async fn insert_definition(
        &self,
        d: &DefinitionRecord,
        max: u64,
    ) -> Result<MetaInserted, StoreError> {
        self.inner.insert_definition(d, max).await
    }
    async fn get_definition(
        &self,
        p: Uuid,
        id: Uuid,
    ) -> Result<Option<DefinitionRecord>, StoreError> {
        self.inner.get_definition(p, id).await
    }
    async fn list_definitions(&self, p: Uuid) -> Result<Vec<DefinitionRecord>, StoreError> {
        self.inner.list_definitions(p).await
    }
    async fn delete_definition(&self, p: Uuid, id: Uuid) -> Result<bool, StoreError> {
        self.inner.delete_definition(p, id).await
    }
    async fn replace_definition(&self, d: &DefinitionRecord) -> Result<MetaReplaced, StoreError> {
        self.inner.replace_definition(d).await
    }
    async fn get_rows(
        &self,
        t: TableKey,
        addrs: &[RowAddr],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.inner.get_rows(t, addrs).await
    }
    async fn scan_bucket(
        &self,
        t: TableKey,
        bucket: u32,
        range: &PkRange,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<StoredRow>, StoreError> {
        self.inner
            .scan_bucket(t, bucket, range, limit, reverse)
            .await
    }
    async fn scan_index(
        &self,
        t: TableKey,
        index: &str,
        range: &IndexRange,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        self.inner.scan_index(t, index, range, limit, reverse).await
    }
    async fn insert_row(&self, i: &RowInsert) -> Result<RowWritten, StoreError> {
        self.inner.insert_row(i).await
    }
    async fn update_row(&self, u: &RowUpdate) -> Result<RowWritten, StoreError> {
        self.inner.update_row(u).await
    }
    async fn delete_row(&self, d: &RowDelete) -> Result<RowWritten, StoreError> {
        self.inner.delete_row(d).await
    }
    async fn count_rows(&self, t: TableKey) -> Result<u64, StoreError> {
        self.inner.count_rows(t).await
    }
    async fn put_index_entry(
        &self,
        t: TableKey,
        addr: &RowAddr,
        row: &[u8],
        entry: &IndexEntry,
    ) -> Result<RowWritten, StoreError> {
        if self.take(&addr.pk, &[Race::MoveBeforePut]).is_some() {
            self.move_row(addr).await;
        }
        let written = self.inner.put_index_entry(t, addr, row, entry).await?;
        if written == RowWritten::Done {
            let after = [
                Race::MoveAfterPut,
                Race::DeleteAfterPut,
                Race::MoveAfterPutAndBeforeRemove,
            ];
            match self.take(&addr.pk, &after) {
                Some(Race::DeleteAfterPut) => self.delete_row_now(addr).await,
                Some(_) => self.move_row(addr).await,
                None => {}
            }
        }
        Ok(written)
    }
    async fn remove_index_entry(
        &self,
        t: TableKey,
        addr: &RowAddr,
        row: Option<&[u8]>,
        entry: &IndexEntry,
    ) -> Result<RowWritten, StoreError> {
        let second_step = self.races.lock().unwrap().remove(&addr.pk);
        if second_step == Some(Race::MoveAfterPutAndBeforeRemove) {
            self.move_row(addr).await;
        }
        self.inner.remove_index_entry(t, addr, row, entry).await
    }
    async fn purge_index(
        &self,
        t: TableKey,
        index: &str,
        unique: bool,
        limit: usize,
    ) -> Result<u64, StoreError> {
        self.inner.purge_index(t, index, unique, limit).await
    }
}

async fn run(engine: &SqlEngine, project: Uuid, sql: &str, p: Json) -> Result<(), SqlError> {
    let name = format!("d{}", Uuid::now_v7().simple());
    let def = engine
        .register_definition(project, &name, sql, true)
        .await?;
    let params = p.as_object().cloned().unwrap_or_default();
    engine
        .execute(
            &def,
            ExecuteRequest {
                params,
                ..Default::default()
            },
        )
        .await
        .map(|_| ())
}

fn pk(id: i64) -> Vec<u8> {
    encode_key(ColumnType::Integer, &Value::I64(id)).unwrap()
}

/// (key, pk) pairs of an index.
type Entries = BTreeSet<(Vec<u8>, Vec<u8>)>;

/// (the entries of index `t_n`, the entries its rows call for).
async fn entries(store: &dyn RowStore, t: &TableRecord) -> (Entries, Entries) {
    let found = store
        .scan_index(t.key(), "t_n", &IndexRange::all(), 100_000, false)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let mut expected = BTreeSet::new();
    for bucket in 0..t.buckets {
        for r in store
            .scan_bucket(t.key(), bucket, &PkRange::all(), 100_000, false)
            .await
            .unwrap()
        {
            let row: Map<String, Json> = serde_json::from_slice(&r.value).unwrap();
            let n = row
                .get("n")
                .and_then(Json::as_i64)
                .map_or(Value::Null, Value::I64);
            expected.insert((encode_key(ColumnType::Integer, &n).unwrap(), r.pk));
        }
    }
    (found, expected)
}

/// Rows 1..=4 (11..=14 for the UNIQUE index) raced as the `Race` variants list them; afterwards every
/// row has exactly its entry, the deleted row is gone, and a UNIQUE index frees the keys the
/// moved rows left and holds the ones they took.
pub async fn run_all(inner: Arc<dyn RowStore>) {
    let project = Uuid::now_v7();
    let racing = Arc::new(RacingStore {
        inner,
        project,
        races: Mutex::new(HashMap::new()),
    });
    // Short enough that each CREATE INDEX's wait stays a few seconds, long enough for an LWT
    // insert on a cold CQL server on a loaded 2-core machine (300 ms was not).
    let config = SqlConfig {
        statement_timeout: Duration::from_secs(3),
        store_call_margin: Duration::from_millis(100),
        compiled_staleness: Duration::ZERO,
        buckets: 4,
        ..SqlConfig::default()
    };
    let store: Arc<dyn RowStore> = racing.clone();
    let engine = SqlEngine::new(store, config, b"k", &prometheus::Registry::new()).unwrap();
    let races = [
        (1, Race::MoveBeforePut),
        (2, Race::MoveAfterPut),
        (3, Race::DeleteAfterPut),
        (4, Race::MoveAfterPutAndBeforeRemove),
    ];
    for unique in [false, true] {
        let offset = if unique { 10 } else { 0 };
        let _ = engine
            .execute_ddl(project, "DROP TABLE IF EXISTS t CASCADE")
            .await;
        engine
            .execute_ddl(
                project,
                "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)",
            )
            .await
            .unwrap();
        for i in 0..20 {
            // Repeated values for the plain index, distinct ones for the UNIQUE one.
            let n = if unique { i } else { i % 5 };
            run(
                &engine,
                project,
                "INSERT INTO t (id, n) VALUES (:id, :n)",
                json!({"id": i, "n": n}),
            )
            .await
            .unwrap();
        }
        racing
            .races
            .lock()
            .unwrap()
            .extend(races.iter().map(|(id, race)| (pk(id + offset), *race)));
        let sql = if unique {
            "CREATE UNIQUE INDEX t_n ON t (n)"
        } else {
            "CREATE INDEX t_n ON t (n)"
        };
        engine.execute_ddl(project, sql).await.unwrap();
        assert!(
            racing.races.lock().unwrap().is_empty(),
            "every race ran (unique: {unique})"
        );
        let t = racing
            .inner
            .get_table(project, TABLE)
            .await
            .unwrap()
            .unwrap();
        let (found, expected) = entries(racing.inner.as_ref(), &t).await;
        assert_eq!(found, expected, "unique: {unique}");
        assert_eq!(found.len(), 19, "unique: {unique}");
        let gone = pk(3 + offset);
        let row = racing
            .inner
            .get_rows(
                t.key(),
                &[RowAddr {
                    bucket: bucket_of(&gone, t.buckets),
                    pk: gone,
                }],
            )
            .await
            .unwrap();
        assert_eq!(row, vec![None], "the deleted row stays deleted");
        if unique {
            // Row 12 moved from 12 to 1012; row 14 from 14 to 2014; row 13 (13) is gone.
            for (id, n, ok) in [
                (100, 12, true),
                (101, 14, true),
                (102, 13, true),
                (103, 1012, false),
                (104, 2014, false),
                (105, 1011, false),
            ] {
                let r = run(
                    &engine,
                    project,
                    "INSERT INTO t (id, n) VALUES (:id, :n)",
                    json!({"id": id, "n": n}),
                )
                .await;
                assert_eq!(r.is_ok(), ok, "n = {n}: {r:?}");
            }
        }
    }
}
