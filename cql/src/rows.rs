//! `RowStore` (the simple DB) on ScyllaDB. Tables: `schema/002_sql_rows.cql`.
//!
//! Every CQL table here is written either only conditionally or only plainly, never both:
//! ScyllaDB (and Cassandra) do not order a plain write against a lightweight transaction on
//! the same cells, so mixing them could let an old plain write overwrite a newer LWT (or the
//! reverse) and lose data.
//!
//! - Metadata (`sql_tables`, `sql_definitions`): conditional only, one partition per project.
//!   Quotas are checked by reading the (small) partition before the insert, so two concurrent
//!   creates may together exceed the quota by one each. A definition is renamed by one
//!   conditional batch on its project's partition (claim the new name, release the old one);
//!   its id lookup (`sql_definition_ids`, plain) follows, and a reader whose lookup is behind
//!   finds the id among the partition's names.
//! - Rows (`sql_rows`) and index entries (`sql_index_entries`): plain only, always written
//!   together in a logged batch, so a row and its entries land together.
//! - The row's claim (`sql_row_claims`, one partition per row): conditional only. It says the
//!   row exists and holds a digest (SHA-256) of its current bytes and the write timestamp of
//!   its last batch. An insert claims it `IF NOT EXISTS`; update and delete compare-and-set it
//!   `IF digest = ? AND ts = ?` and only then write the row with a batch at a timestamp above
//!   the previous one, so the batches of one row apply in the order their claims were won
//!   whatever the clocks of the nodes. The port's compare-and-set on the row's bytes therefore
//!   runs on the claim, because the row itself is plain-written.
//! - UNIQUE values (`sql_unique_claims`, one partition per value): conditional only, claimed
//!   before the row's batch and released after the row leaves the value.
//! - A claim left by a write that died between its claims and its batch (older than a minute,
//!   its row or owner's pk claim missing) is taken over by the next insert.
//! - Row counts (`sql_row_counts`): counters, updated after the batch (approximate: a failure
//!   between the batch and the counter update, or a timeout, leaves the count off by one).
//! - Index backfill (CREATE INDEX over existing rows): an entry is written, plainly, with the
//!   timestamp of the row's last batch (read from its claim, whose digest must match the row
//!   the entry was computed from), so any later batch of the row, which moves or keeps the
//!   entry itself, wins over it whatever the order of arrival.

use std::collections::{HashMap, HashSet};
use std::ops::Bound;

use async_trait::async_trait;
use commonrock_actors::store::rows::{
    DefinitionRecord, IndexBound, IndexEntry, IndexRange, MetaInserted, MetaReplaced, PkRange,
    RowAddr, RowDelete, RowInsert, RowQuota, RowStore, RowUpdate, RowWritten, StoredRow, TableKey,
    TableRecord,
};
use commonrock_actors::store::StoreError;
use futures_util::{StreamExt, TryStreamExt};
use scylla::client::session::Session as CqlSession;
use scylla::deserialize::row::DeserializeRow;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{Counter, CqlValue};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::store::{applied, decode, encode, exec_error, unavailable, CqlStore};

/// Rows fetched per page of a large read.
const PAGE_SIZE: i32 = 500;
/// Index sub-partitions: an index of a table at its row quota spreads over this many
/// partitions; every index read queries all of them and merges.
pub const INDEX_SHARDS: i32 = 4;
/// Reads running at once for one multi-get.
const READ_CONCURRENCY: usize = 16;
/// pks per `IN` list of a multi-get.
const IN_CHUNK: usize = 100;
/// A claim this old whose row is missing belongs to a write that died between its claim and
/// its batch (far beyond any request timeout): the next insert takes it over.
const STALE_CLAIM_MICROS: i64 = 60_000_000;

/// The statements of the simple DB, prepared once in [`CqlStore::connect`].
pub struct RowStatements {
    list_table_names: PreparedStatement,
    insert_table: PreparedStatement,
    get_table: PreparedStatement,
    list_tables: PreparedStatement,
    update_table: PreparedStatement,
    delete_table: PreparedStatement,

    list_definition_names: PreparedStatement,
    insert_definition: PreparedStatement,
    get_definition: PreparedStatement,
    list_definitions: PreparedStatement,
    list_definition_ids: PreparedStatement,
    update_definition: PreparedStatement,
    delete_definition: PreparedStatement,
    put_definition_id: PreparedStatement,
    get_definition_id: PreparedStatement,
    delete_definition_id: PreparedStatement,

    get_rows: PreparedStatement,
    /// `[lower][upper][reverse]`, bounds 0 = unbounded, 1 = inclusive, 2 = exclusive.
    scan_rows: Vec<PreparedStatement>,
    purge_scan: PreparedStatement,
    put_row: PreparedStatement,
    delete_row: PreparedStatement,

    get_claim: PreparedStatement,
    insert_claim: PreparedStatement,
    cas_claim: PreparedStatement,
    delete_claim: PreparedStatement,
    purge_claim: PreparedStatement,

    /// `[lower][upper][reverse]`, bounds 0 = unbounded, 1 = key inclusive, 2 = key exclusive,
    /// 3 = after/before an entry.
    scan_index: Vec<PreparedStatement>,
    put_entry: PreparedStatement,
    delete_entry: PreparedStatement,

    claim_unique: PreparedStatement,
    get_unique: PreparedStatement,
    take_unique: PreparedStatement,
    release_unique: PreparedStatement,
    purge_unique: PreparedStatement,

    add_count: PreparedStatement,
    get_count: PreparedStatement,
    project_counts: PreparedStatement,
    delete_count: PreparedStatement,
}

async fn prep(
    session: &CqlSession,
    cql: String,
    idempotent: bool,
) -> Result<PreparedStatement, StoreError> {
    let mut p = session
        .prepare(cql.as_str())
        .await
        .map_err(|e| unavailable(format!("cannot prepare {cql}: {e}")))?;
    p.set_is_idempotent(idempotent);
    p.set_page_size(PAGE_SIZE);
    Ok(p)
}

const BUCKET_WHERE: &str = "project_id = ? AND table_id = ? AND bucket = ?";
const INDEX_WHERE: &str = "project_id = ? AND table_id = ? AND index_name = ? AND shard = ?";

pub(crate) async fn prepare(session: &CqlSession, ks: &str) -> Result<RowStatements, StoreError> {
    let mut scan_rows = Vec::new();
    for lower in ["", " AND pk >= ?", " AND pk > ?"] {
        for upper in ["", " AND pk <= ?", " AND pk < ?"] {
            for order in ["ASC", "DESC"] {
                scan_rows.push(
                    prep(
                        session,
                        format!(
                            "SELECT pk, value FROM {ks}.sql_rows WHERE {BUCKET_WHERE}{lower}{upper} \
                             ORDER BY pk {order} LIMIT ?"
                        ),
                        true,
                    )
                    .await?,
                );
            }
        }
    }
    // Tuple relations throughout: CQL refuses single- and multi-column slices mixed on the
    // clustering columns.
    let mut scan_index = Vec::new();
    for lower in [
        "",
        " AND (key) >= (?)",
        " AND (key) > (?)",
        " AND (key, pk) > (?, ?)",
    ] {
        for upper in [
            "",
            " AND (key) <= (?)",
            " AND (key) < (?)",
            " AND (key, pk) < (?, ?)",
        ] {
            for order in ["key ASC, pk ASC", "key DESC, pk DESC"] {
                scan_index.push(
                    prep(
                        session,
                        format!(
                            "SELECT key, pk FROM {ks}.sql_index_entries WHERE {INDEX_WHERE}\
                             {lower}{upper} ORDER BY {order} LIMIT ?"
                        ),
                        true,
                    )
                    .await?,
                );
            }
        }
    }
    Ok(RowStatements {
        list_table_names: prep(
            session,
            format!("SELECT name FROM {ks}.sql_tables WHERE project_id = ?"),
            true,
        )
        .await?,
        insert_table: prep(
            session,
            format!(
                "INSERT INTO {ks}.sql_tables (project_id, name, id, version, data) \
                 VALUES (?, ?, ?, ?, ?) IF NOT EXISTS"
            ),
            false,
        )
        .await?,
        get_table: prep(
            session,
            format!("SELECT data FROM {ks}.sql_tables WHERE project_id = ? AND name = ?"),
            true,
        )
        .await?,
        list_tables: prep(
            session,
            format!("SELECT data FROM {ks}.sql_tables WHERE project_id = ?"),
            true,
        )
        .await?,
        update_table: prep(
            session,
            format!(
                "UPDATE {ks}.sql_tables SET version = ?, data = ? \
                 WHERE project_id = ? AND name = ? IF id = ? AND version = ?"
            ),
            false,
        )
        .await?,
        delete_table: prep(
            session,
            format!("DELETE FROM {ks}.sql_tables WHERE project_id = ? AND name = ? IF EXISTS"),
            false,
        )
        .await?,
        list_definition_names: prep(
            session,
            format!("SELECT name FROM {ks}.sql_definitions WHERE project_id = ?"),
            true,
        )
        .await?,
        insert_definition: prep(
            session,
            format!(
                "INSERT INTO {ks}.sql_definitions (project_id, name, id, data) \
                 VALUES (?, ?, ?, ?) IF NOT EXISTS"
            ),
            false,
        )
        .await?,
        get_definition: prep(
            session,
            format!(
                "SELECT id, data FROM {ks}.sql_definitions WHERE project_id = ? AND name = ?"
            ),
            true,
        )
        .await?,
        list_definitions: prep(
            session,
            format!("SELECT data FROM {ks}.sql_definitions WHERE project_id = ?"),
            true,
        )
        .await?,
        list_definition_ids: prep(
            session,
            format!("SELECT name, id FROM {ks}.sql_definitions WHERE project_id = ?"),
            true,
        )
        .await?,
        update_definition: prep(
            session,
            format!(
                "UPDATE {ks}.sql_definitions SET data = ? WHERE project_id = ? AND name = ? \
                 IF id = ?"
            ),
            false,
        )
        .await?,
        delete_definition: prep(
            session,
            format!(
                "DELETE FROM {ks}.sql_definitions WHERE project_id = ? AND name = ? IF id = ?"
            ),
            false,
        )
        .await?,
        put_definition_id: prep(
            session,
            format!("INSERT INTO {ks}.sql_definition_ids (project_id, id, name) VALUES (?, ?, ?)"),
            true,
        )
        .await?,
        get_definition_id: prep(
            session,
            format!("SELECT name FROM {ks}.sql_definition_ids WHERE project_id = ? AND id = ?"),
            true,
        )
        .await?,
        delete_definition_id: prep(
            session,
            format!("DELETE FROM {ks}.sql_definition_ids WHERE project_id = ? AND id = ?"),
            true,
        )
        .await?,
        get_rows: prep(
            session,
            format!("SELECT pk, value FROM {ks}.sql_rows WHERE {BUCKET_WHERE} AND pk IN ?"),
            true,
        )
        .await?,
        scan_rows,
        purge_scan: prep(
            session,
            format!("SELECT pk, index_entries FROM {ks}.sql_rows WHERE {BUCKET_WHERE} LIMIT ?"),
            true,
        )
        .await?,
        put_row: prep(
            session,
            format!(
                "INSERT INTO {ks}.sql_rows (project_id, table_id, bucket, pk, value, index_entries) \
                 VALUES (?, ?, ?, ?, ?, ?)"
            ),
            true,
        )
        .await?,
        delete_row: prep(
            session,
            format!("DELETE FROM {ks}.sql_rows WHERE {BUCKET_WHERE} AND pk = ?"),
            true,
        )
        .await?,
        get_claim: prep(
            session,
            format!(
                "SELECT digest, ts FROM {ks}.sql_row_claims \
                 WHERE project_id = ? AND table_id = ? AND pk = ?"
            ),
            true,
        )
        .await?,
        insert_claim: prep(
            session,
            format!(
                "INSERT INTO {ks}.sql_row_claims (project_id, table_id, pk, digest, ts) \
                 VALUES (?, ?, ?, ?, ?) IF NOT EXISTS"
            ),
            false,
        )
        .await?,
        cas_claim: prep(
            session,
            format!(
                "UPDATE {ks}.sql_row_claims SET digest = ?, ts = ? \
                 WHERE project_id = ? AND table_id = ? AND pk = ? IF digest = ? AND ts = ?"
            ),
            false,
        )
        .await?,
        delete_claim: prep(
            session,
            format!(
                "DELETE FROM {ks}.sql_row_claims WHERE project_id = ? AND table_id = ? AND pk = ? \
                 IF digest = ? AND ts = ?"
            ),
            false,
        )
        .await?,
        purge_claim: prep(
            session,
            format!(
                "DELETE FROM {ks}.sql_row_claims WHERE project_id = ? AND table_id = ? AND pk = ? \
                 IF EXISTS"
            ),
            false,
        )
        .await?,
        scan_index,
        put_entry: prep(
            session,
            format!(
                "INSERT INTO {ks}.sql_index_entries \
                 (project_id, table_id, index_name, shard, key, pk) VALUES (?, ?, ?, ?, ?, ?)"
            ),
            true,
        )
        .await?,
        delete_entry: prep(
            session,
            format!(
                "DELETE FROM {ks}.sql_index_entries WHERE {INDEX_WHERE} AND key = ? AND pk = ?"
            ),
            true,
        )
        .await?,
        claim_unique: prep(
            session,
            format!(
                "INSERT INTO {ks}.sql_unique_claims (project_id, table_id, index_name, key, \
                 owner, ts) VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS"
            ),
            false,
        )
        .await?,
        get_unique: prep(
            session,
            format!(
                "SELECT owner, ts FROM {ks}.sql_unique_claims WHERE project_id = ? \
                 AND table_id = ? AND index_name = ? AND key = ?"
            ),
            true,
        )
        .await?,
        take_unique: prep(
            session,
            format!(
                "UPDATE {ks}.sql_unique_claims SET owner = ?, ts = ? WHERE project_id = ? \
                 AND table_id = ? AND index_name = ? AND key = ? IF owner = ? AND ts = ?"
            ),
            false,
        )
        .await?,
        release_unique: prep(
            session,
            format!(
                "DELETE FROM {ks}.sql_unique_claims WHERE project_id = ? AND table_id = ? \
                 AND index_name = ? AND key = ? IF owner = ?"
            ),
            false,
        )
        .await?,
        purge_unique: prep(
            session,
            format!(
                "DELETE FROM {ks}.sql_unique_claims WHERE project_id = ? AND table_id = ? \
                 AND index_name = ? AND key = ? IF EXISTS"
            ),
            false,
        )
        .await?,
        add_count: prep(
            session,
            format!(
                "UPDATE {ks}.sql_row_counts SET n = n + ? WHERE project_id = ? AND table_id = ?"
            ),
            false,
        )
        .await?,
        get_count: prep(
            session,
            format!("SELECT n FROM {ks}.sql_row_counts WHERE project_id = ? AND table_id = ?"),
            true,
        )
        .await?,
        project_counts: prep(
            session,
            format!("SELECT table_id, n FROM {ks}.sql_row_counts WHERE project_id = ?"),
            true,
        )
        .await?,
        delete_count: prep(
            session,
            format!("DELETE FROM {ks}.sql_row_counts WHERE project_id = ? AND table_id = ?"),
            true,
        )
        .await?,
    })
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn digest(value: &[u8]) -> Vec<u8> {
    Sha256::digest(value).to_vec()
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// The index sub-partition of a row's entries: FNV-1a of the pk bytes (stable forever).
fn shard_of(pk: &[u8]) -> i32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in pk {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % INDEX_SHARDS as u64) as i32
}

fn cql_limit(limit: usize) -> i32 {
    i32::try_from(limit).unwrap_or(i32::MAX)
}

fn bucket_value(bucket: u32) -> Result<i32, StoreError> {
    i32::try_from(bucket).map_err(|_| corrupt(format!("bucket {bucket} out of range")))
}

/// A row's index entries as stored beside it (for purging a dropped table): per entry
/// `unique (1 byte) ‖ index length (u32 BE) ‖ index ‖ key length (u32 BE) ‖ key`.
fn encode_entries(entries: &[IndexEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        out.push(u8::from(e.unique));
        out.extend_from_slice(&(e.index.len() as u32).to_be_bytes());
        out.extend_from_slice(e.index.as_bytes());
        out.extend_from_slice(&(e.key.len() as u32).to_be_bytes());
        out.extend_from_slice(&e.key);
    }
    out
}

fn decode_entries(mut bytes: &[u8]) -> Result<Vec<IndexEntry>, StoreError> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], StoreError> {
        if bytes.len() < n {
            return Err(corrupt("truncated index entry list"));
        }
        let (head, rest) = bytes.split_at(n);
        *bytes = rest;
        Ok(head)
    }
    fn len(bytes: &mut &[u8]) -> Result<usize, StoreError> {
        let raw = take(bytes, 4)?;
        Ok(u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize)
    }
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let unique = take(&mut bytes, 1)?[0] == 1;
        let n = len(&mut bytes)?;
        let index = String::from_utf8(take(&mut bytes, n)?.to_vec()).map_err(corrupt)?;
        let n = len(&mut bytes)?;
        let key = take(&mut bytes, n)?.to_vec();
        out.push(IndexEntry { index, key, unique });
    }
    Ok(out)
}

/// An empty or inverted pk range (the server need not see it).
fn empty_pk_range(range: &PkRange) -> bool {
    match (&range.lower, &range.upper) {
        (Bound::Included(l), Bound::Included(u)) => l > u,
        (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(u))
        | (Bound::Excluded(l), Bound::Included(u)) => l >= u,
        _ => false,
    }
}

/// A position between index entries: before all entries of a key, just at an entry, or after
/// all entries of a key.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Slot<'a> {
    Before,
    At(&'a [u8]),
    After,
}

/// An inverted index range: nothing lies strictly between its two positions.
fn empty_index_range(range: &IndexRange) -> bool {
    let lower = match &range.lower {
        IndexBound::Unbounded => return false,
        IndexBound::Key { key, inclusive } => (
            key,
            if *inclusive {
                Slot::Before
            } else {
                Slot::After
            },
        ),
        IndexBound::Entry { key, pk } => (key, Slot::At(pk)),
    };
    let upper = match &range.upper {
        IndexBound::Unbounded => return false,
        IndexBound::Key { key, inclusive } => (
            key,
            if *inclusive {
                Slot::After
            } else {
                Slot::Before
            },
        ),
        IndexBound::Entry { key, pk } => (key, Slot::At(pk)),
    };
    lower >= upper
}

fn same_entry(a: &IndexEntry, b: &IndexEntry) -> bool {
    a.index == b.index && a.key == b.key
}

/// Values of one batch statement (statements differ, so values are dynamic).
type BatchRow = Vec<CqlValue>;

/// The statements of one logged batch and their values.
#[derive(Default)]
struct RowBatch<'a> {
    statements: Vec<&'a PreparedStatement>,
    values: Vec<BatchRow>,
}

impl<'a> RowBatch<'a> {
    fn push(&mut self, statement: &'a PreparedStatement, values: BatchRow) {
        self.statements.push(statement);
        self.values.push(values);
    }
}

impl CqlStore {
    /// Every row of a (possibly multi-page) query, at most `limit`.
    async fn collect<R>(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
        limit: usize,
    ) -> Result<Vec<R>, StoreError>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm> + Send + 'static,
    {
        let pager = self
            .session
            .execute_iter(statement.clone(), values)
            .await
            .map_err(unavailable)?;
        pager
            .rows_stream::<R>()
            .map_err(corrupt)?
            .take(limit)
            .try_collect()
            .await
            .map_err(unavailable)
    }

    async fn logged_batch(
        &self,
        rows: RowBatch<'_>,
        timestamp: Option<i64>,
    ) -> Result<(), StoreError> {
        let RowBatch { statements, values } = rows;
        if statements.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::new(BatchType::Logged);
        for s in statements {
            batch.append_statement(s.clone());
        }
        // With a fixed timestamp, applying the batch twice changes nothing.
        batch.set_is_idempotent(timestamp.is_some());
        batch.set_timestamp(timestamp);
        self.session
            .batch(&batch, values)
            .await
            .map_err(exec_error)
            .map(|_| ())
    }

    /// (this table's count, the project's total) from the counters.
    /// (rows of `table`, rows of its project) for the quota check: from the counters, or
    /// from `row_counts` while those were read recently and are far from the limits.
    async fn counts(&self, table: TableKey, quota: &RowQuota) -> Result<(u64, u64), StoreError> {
        if let Some(known) = self.row_counts.fresh(table, quota) {
            return Ok(known);
        }
        let rows: Vec<(Uuid, Option<Counter>)> = self
            .collect(&self.rows.project_counts, (table.project_id,), usize::MAX)
            .await?;
        let tables: HashMap<Uuid, u64> = rows
            .into_iter()
            .map(|(id, n)| (id, n.map_or(0, |c| c.0).max(0) as u64))
            .collect();
        let mine = tables.get(&table.table_id).copied().unwrap_or(0);
        let total = tables.values().fold(0u64, |a, n| a.saturating_add(*n));
        self.row_counts.read(table.project_id, tables);
        Ok((mine, total))
    }

    async fn add_count(&self, table: TableKey, delta: i64) -> Result<(), StoreError> {
        self.run(
            &self.rows.add_count,
            (Counter(delta), table.project_id, table.table_id),
        )
        .await?;
        self.row_counts.changed(table, delta);
        Ok(())
    }

    async fn get_claim(
        &self,
        table: TableKey,
        pk: &[u8],
    ) -> Result<Option<(Vec<u8>, i64)>, StoreError> {
        let rows = self
            .run(&self.rows.get_claim, (table.project_id, table.table_id, pk))
            .await?
            .into_rows_result()
            .map_err(unavailable)?;
        let row = rows
            .maybe_first_row::<(Option<Vec<u8>>, Option<i64>)>()
            .map_err(corrupt)?;
        Ok(match row {
            Some((Some(d), Some(ts))) => Some((d, ts)),
            _ => None,
        })
    }

    /// Claims a UNIQUE value for `pk`: (it is `pk`'s now, this call claimed it).
    async fn claim_unique(
        &self,
        table: TableKey,
        entry: &IndexEntry,
        pk: &[u8],
        ts: i64,
    ) -> Result<(bool, bool), StoreError> {
        let ok = self
            .conditional(
                "sql_claim_unique",
                &self.rows.claim_unique,
                (
                    table.project_id,
                    table.table_id,
                    &entry.index,
                    &entry.key,
                    pk,
                    ts,
                ),
            )
            .await?;
        if ok {
            return Ok((true, true));
        }
        // Ours already (an update keeping its value, or an earlier attempt of this row)?
        let Some((owner, old_ts)) = self.unique_claim(table, entry).await? else {
            // Released meanwhile: refused this time, free for the caller's retry.
            return Ok((false, false));
        };
        if owner == pk {
            return Ok((true, false));
        }
        // Every row holds its pk claim while it holds a UNIQUE value, so an old value claim
        // whose owner has no pk claim was left by a write that died half-way.
        if now_micros() - old_ts < STALE_CLAIM_MICROS
            || self.get_claim(table, &owner).await?.is_some()
        {
            return Ok((false, false));
        }
        let ok = self
            .conditional(
                "sql_take_over_unique",
                &self.rows.take_unique,
                (
                    pk,
                    ts,
                    table.project_id,
                    table.table_id,
                    &entry.index,
                    &entry.key,
                    &owner,
                    old_ts,
                ),
            )
            .await?;
        Ok((ok, ok))
    }

    /// Takes over the pk claim of an insert that died between its claim and its batch: the
    /// claim is old and its row absent. Returns the new claim's timestamp.
    async fn take_over_stale_claim(
        &self,
        table: TableKey,
        addr: &RowAddr,
        claim: &[u8],
    ) -> Result<Option<i64>, StoreError> {
        let Some((current, old_ts)) = self.get_claim(table, &addr.pk).await? else {
            return Ok(None);
        };
        let now = now_micros();
        if now - old_ts < STALE_CLAIM_MICROS
            || self.get_rows(table, std::slice::from_ref(addr)).await?[0].is_some()
        {
            return Ok(None);
        }
        let ts = now.max(old_ts + 1);
        let ok = self
            .conditional(
                "sql_take_over_row",
                &self.rows.cas_claim,
                (
                    claim,
                    ts,
                    table.project_id,
                    table.table_id,
                    &addr.pk,
                    &current,
                    old_ts,
                ),
            )
            .await?;
        Ok(ok.then_some(ts))
    }

    async fn release_unique(
        &self,
        table: TableKey,
        entry: &IndexEntry,
        pk: &[u8],
    ) -> Result<(), StoreError> {
        self.conditional(
            "sql_release_unique",
            &self.rows.release_unique,
            (
                table.project_id,
                table.table_id,
                &entry.index,
                &entry.key,
                pk,
            ),
        )
        .await
        .map(|_| ())
    }

    /// Claims every UNIQUE value of `entries` not in `keep`; on a value held by another row,
    /// releases what it claimed and names the index.
    async fn claim_uniques(
        &self,
        table: TableKey,
        entries: &[IndexEntry],
        keep: &[IndexEntry],
        pk: &[u8],
        ts: i64,
    ) -> Result<Result<Vec<IndexEntry>, String>, StoreError> {
        let mut taken: Vec<IndexEntry> = Vec::new();
        for e in entries.iter().filter(|e| e.unique) {
            if keep.iter().any(|k| k.unique && same_entry(k, e))
                || taken.iter().any(|t| same_entry(t, e))
            {
                continue;
            }
            let (ours, new) = self.claim_unique(table, e, pk, ts).await?;
            if new {
                taken.push(e.clone());
            }
            if !ours {
                for t in &taken {
                    self.release_unique(table, t, pk).await?;
                }
                return Ok(Err(e.index.clone()));
            }
        }
        Ok(Ok(taken))
    }

    fn put_statements<'a>(
        &'a self,
        batch: &mut RowBatch<'a>,
        table: TableKey,
        addr: &RowAddr,
        value: &[u8],
        entries: &[IndexEntry],
    ) -> Result<(), StoreError> {
        let pk = &addr.pk;
        let bucket = bucket_value(addr.bucket)?;
        batch.push(
            &self.rows.put_row,
            vec![
                CqlValue::Uuid(table.project_id),
                CqlValue::Uuid(table.table_id),
                CqlValue::Int(bucket),
                CqlValue::Blob(pk.to_vec()),
                CqlValue::Blob(value.to_vec()),
                CqlValue::Blob(encode_entries(entries)),
            ],
        );
        for e in entries {
            batch.push(&self.rows.put_entry, self.entry_values(table, e, pk));
        }
        Ok(())
    }

    fn entry_values(&self, table: TableKey, e: &IndexEntry, pk: &[u8]) -> BatchRow {
        vec![
            CqlValue::Uuid(table.project_id),
            CqlValue::Uuid(table.table_id),
            CqlValue::Text(e.index.clone()),
            CqlValue::Int(shard_of(pk)),
            CqlValue::Blob(e.key.clone()),
            CqlValue::Blob(pk.to_vec()),
        ]
    }

    /// Names in a small metadata partition (tables or definitions of a project).
    async fn names(
        &self,
        statement: &PreparedStatement,
        project_id: Uuid,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = self.collect(statement, (project_id,), usize::MAX).await?;
        Ok(rows.into_iter().map(|(n,)| n).collect())
    }

    async fn scan_index_shard(
        &self,
        statement: &PreparedStatement,
        mut values: Vec<CqlValue>,
        shard: i32,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        values[3] = CqlValue::Int(shard);
        self.collect(statement, values, limit).await
    }
}

/// Query definitions: the id lookup and the rename.
impl CqlStore {
    /// The record stored under `name` if it is definition `id`'s.
    async fn definition_named(
        &self,
        project_id: Uuid,
        name: &str,
        id: Uuid,
    ) -> Result<Option<DefinitionRecord>, StoreError> {
        let rows = self
            .run(&self.rows.get_definition, (project_id, name))
            .await?
            .into_rows_result()
            .map_err(unavailable)?;
        match rows
            .maybe_first_row::<(Option<Uuid>, Option<String>)>()
            .map_err(corrupt)?
        {
            Some((Some(found), Some(data))) if found == id => {
                decode(&data, "sql definition").map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Definition `id`'s current name and record. The id lookup says where to look; a lookup
    /// with no record of this id behind it is either stale (the definition is gone, or an
    /// insert is in flight) or behind a rename (updated just after the rename's batch, or
    /// never if the node died in between): the id is then looked for among the partition's
    /// names, and a lookup found behind is repaired.
    async fn find_definition(
        &self,
        project_id: Uuid,
        id: Uuid,
    ) -> Result<Option<(String, DefinitionRecord)>, StoreError> {
        let rows = self
            .run(&self.rows.get_definition_id, (project_id, id))
            .await?
            .into_rows_result()
            .map_err(unavailable)?;
        let Some((Some(name),)) = rows
            .maybe_first_row::<(Option<String>,)>()
            .map_err(corrupt)?
        else {
            return Ok(None);
        };
        if let Some(d) = self.definition_named(project_id, &name, id).await? {
            return Ok(Some((name, d)));
        }
        let names: Vec<(String, Option<Uuid>)> = self
            .collect(&self.rows.list_definition_ids, (project_id,), usize::MAX)
            .await?;
        let Some((name, _)) = names.into_iter().find(|(_, found)| *found == Some(id)) else {
            return Ok(None);
        };
        let Some(d) = self.definition_named(project_id, &name, id).await? else {
            return Ok(None);
        };
        self.run(&self.rows.put_definition_id, (project_id, id, &name))
            .await?;
        Ok(Some((name, d)))
    }

    /// One attempt at a rename: the new name claimed and the old one released in one
    /// conditional batch on the project's partition, so readers see one record or the other.
    async fn rename_definition(
        &self,
        d: &DefinitionRecord,
        old_name: &str,
        data: &str,
    ) -> Result<bool, StoreError> {
        let mut batch = Batch::new(BatchType::Logged);
        batch.append_statement(self.rows.insert_definition.clone());
        batch.append_statement(self.rows.delete_definition.clone());
        let values = (
            (d.project_id, &d.name, d.id, data),
            (d.project_id, old_name, d.id),
        );
        let ok = applied(
            self.session
                .batch(&batch, values)
                .await
                .map_err(exec_error)?,
        )?;
        self.count_lwt("sql_rename_definition", ok);
        if ok {
            // Readers whose lookup still names the old name find the id by its new one.
            self.run(&self.rows.put_definition_id, (d.project_id, d.id, &d.name))
                .await?;
        }
        Ok(ok)
    }

    /// Who holds a UNIQUE value, if anyone.
    async fn unique_owner(
        &self,
        table: TableKey,
        entry: &IndexEntry,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .unique_claim(table, entry)
            .await?
            .map(|(owner, _)| owner))
    }

    /// A UNIQUE value's claim: its owner pk and the claim's write time (micros).
    async fn unique_claim(
        &self,
        table: TableKey,
        entry: &IndexEntry,
    ) -> Result<Option<(Vec<u8>, i64)>, StoreError> {
        let rows = self
            .run(
                &self.rows.get_unique,
                (table.project_id, table.table_id, &entry.index, &entry.key),
            )
            .await?
            .into_rows_result()
            .map_err(unavailable)?;
        Ok(
            match rows
                .maybe_first_row::<(Option<Vec<u8>>, Option<i64>)>()
                .map_err(corrupt)?
            {
                Some((Some(owner), Some(ts))) => Some((owner, ts)),
                _ => None,
            },
        )
    }
}

fn pk_bound_values(bound: &Bound<Vec<u8>>, values: &mut Vec<CqlValue>) -> usize {
    match bound {
        Bound::Unbounded => 0,
        Bound::Included(v) => {
            values.push(CqlValue::Blob(v.clone()));
            1
        }
        Bound::Excluded(v) => {
            values.push(CqlValue::Blob(v.clone()));
            2
        }
    }
}

fn index_bound_values(bound: &IndexBound, values: &mut Vec<CqlValue>) -> usize {
    match bound {
        IndexBound::Unbounded => 0,
        IndexBound::Key { key, inclusive } => {
            values.push(CqlValue::Blob(key.clone()));
            if *inclusive {
                1
            } else {
                2
            }
        }
        IndexBound::Entry { key, pk } => {
            values.push(CqlValue::Blob(key.clone()));
            values.push(CqlValue::Blob(pk.clone()));
            3
        }
    }
}

#[async_trait]
impl RowStore for CqlStore {
    fn kind(&self) -> &'static str {
        "scylla"
    }

    async fn create_table(
        &self,
        table: &TableRecord,
        max_tables: u64,
    ) -> Result<MetaInserted, StoreError> {
        let names = self
            .names(&self.rows.list_table_names, table.project_id)
            .await?;
        if names.contains(&table.name) {
            return Ok(MetaInserted::AlreadyExists);
        }
        if names.len() as u64 >= max_tables {
            return Ok(MetaInserted::QuotaExceeded);
        }
        let ok = self
            .conditional(
                "sql_create_table",
                &self.rows.insert_table,
                (
                    table.project_id,
                    &table.name,
                    table.id,
                    table.version as i64,
                    encode(table)?,
                ),
            )
            .await?;
        if !ok {
            return Ok(MetaInserted::AlreadyExists);
        }
        // The quota is checked again after the claim: two creations at the limit both see
        // room before it, but the later of them counts the other and takes its own back
        // (under contention both may; never more than the quota stay).
        let names = self
            .names(&self.rows.list_table_names, table.project_id)
            .await?;
        if names.len() as u64 > max_tables {
            self.conditional(
                "sql_create_table_undo",
                &self.rows.delete_table,
                (table.project_id, &table.name),
            )
            .await?;
            return Ok(MetaInserted::QuotaExceeded);
        }
        Ok(MetaInserted::Created)
    }

    async fn get_table(
        &self,
        project_id: Uuid,
        name: &str,
    ) -> Result<Option<TableRecord>, StoreError> {
        self.one_document(&self.rows.get_table, (project_id, name), "sql table")
            .await
    }

    async fn list_tables(&self, project_id: Uuid) -> Result<Vec<TableRecord>, StoreError> {
        self.all_documents(&self.rows.list_tables, (project_id,), "sql table")
            .await
    }

    async fn update_table(
        &self,
        table: &TableRecord,
        expected_version: u64,
    ) -> Result<bool, StoreError> {
        self.conditional(
            "sql_update_table",
            &self.rows.update_table,
            (
                table.version as i64,
                encode(table)?,
                table.project_id,
                &table.name,
                table.id,
                expected_version as i64,
            ),
        )
        .await
    }

    async fn delete_table(&self, project_id: Uuid, name: &str) -> Result<bool, StoreError> {
        self.conditional(
            "sql_delete_table",
            &self.rows.delete_table,
            (project_id, name),
        )
        .await
    }

    async fn purge_rows(
        &self,
        table: TableKey,
        buckets: u32,
        limit: usize,
    ) -> Result<u64, StoreError> {
        let limit = limit.max(1);
        let mut deleted = 0usize;
        for bucket in 0..buckets {
            if deleted >= limit {
                break;
            }
            let b = bucket_value(bucket)?;
            let rows: Vec<(Vec<u8>, Option<Vec<u8>>)> = self
                .collect(
                    &self.rows.purge_scan,
                    (
                        table.project_id,
                        table.table_id,
                        b,
                        cql_limit(limit - deleted),
                    ),
                    limit - deleted,
                )
                .await?;
            for (pk, entries) in rows {
                let entries = decode_entries(entries.as_deref().unwrap_or_default())?;
                let mut batch = RowBatch::default();
                batch.push(
                    &self.rows.delete_row,
                    vec![
                        CqlValue::Uuid(table.project_id),
                        CqlValue::Uuid(table.table_id),
                        CqlValue::Int(b),
                        CqlValue::Blob(pk.clone()),
                    ],
                );
                for e in &entries {
                    batch.push(&self.rows.delete_entry, self.entry_values(table, e, &pk));
                }
                self.logged_batch(batch, None).await?;
                for e in entries.iter().filter(|e| e.unique) {
                    self.release_unique(table, e, &pk).await?;
                }
                self.conditional(
                    "sql_purge_claim",
                    &self.rows.purge_claim,
                    (table.project_id, table.table_id, &pk),
                )
                .await?;
                deleted += 1;
            }
        }
        if deleted > 0 {
            self.add_count(table, -(deleted as i64)).await?;
        } else {
            // Done: the table id is never reused, so its counter can go for good.
            self.run(&self.rows.delete_count, (table.project_id, table.table_id))
                .await?;
        }
        Ok(deleted as u64)
    }

    async fn insert_definition(
        &self,
        definition: &DefinitionRecord,
        max_definitions: u64,
    ) -> Result<MetaInserted, StoreError> {
        let d = definition;
        let names = self
            .names(&self.rows.list_definition_names, d.project_id)
            .await?;
        if names.contains(&d.name) {
            return Ok(MetaInserted::AlreadyExists);
        }
        if names.len() as u64 >= max_definitions {
            return Ok(MetaInserted::QuotaExceeded);
        }
        // The id lookup first: if the claim below fails or never happens, the lookup points
        // at a name whose definition has another id (or none) and is ignored.
        self.run(&self.rows.put_definition_id, (d.project_id, d.id, &d.name))
            .await?;
        let ok = self
            .conditional(
                "sql_insert_definition",
                &self.rows.insert_definition,
                (d.project_id, &d.name, d.id, encode(d)?),
            )
            .await?;
        if ok {
            // As for tables: counted again after the claim, never more than the quota stay.
            let names = self
                .names(&self.rows.list_definition_names, d.project_id)
                .await?;
            if names.len() as u64 <= max_definitions {
                return Ok(MetaInserted::Created);
            }
            self.conditional(
                "sql_insert_definition_undo",
                &self.rows.delete_definition,
                (d.project_id, &d.name, d.id),
            )
            .await?;
        }
        self.run(&self.rows.delete_definition_id, (d.project_id, d.id))
            .await?;
        Ok(if ok {
            MetaInserted::QuotaExceeded
        } else {
            MetaInserted::AlreadyExists
        })
    }

    async fn get_definition(
        &self,
        project_id: Uuid,
        id: Uuid,
    ) -> Result<Option<DefinitionRecord>, StoreError> {
        Ok(self.find_definition(project_id, id).await?.map(|(_, d)| d))
    }

    async fn list_definitions(
        &self,
        project_id: Uuid,
    ) -> Result<Vec<DefinitionRecord>, StoreError> {
        self.all_documents(&self.rows.list_definitions, (project_id,), "sql definition")
            .await
    }

    async fn delete_definition(&self, project_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        let Some((name, _)) = self.find_definition(project_id, id).await? else {
            return Ok(false);
        };
        let ok = self
            .conditional(
                "sql_delete_definition",
                &self.rows.delete_definition,
                (project_id, &name, id),
            )
            .await?;
        // Applied or not, the lookup no longer leads to this id's definition.
        self.run(&self.rows.delete_definition_id, (project_id, id))
            .await?;
        Ok(ok)
    }

    async fn replace_definition(
        &self,
        definition: &DefinitionRecord,
    ) -> Result<MetaReplaced, StoreError> {
        let d = definition;
        let data = encode(d)?;
        // A refused write may only mean that a concurrent replace moved the record between
        // the read and the write: look again a few times before calling it gone.
        for _ in 0..3 {
            let Some((old_name, _)) = self.find_definition(d.project_id, d.id).await? else {
                return Ok(MetaReplaced::NotFound);
            };
            if old_name == d.name {
                if self
                    .conditional(
                        "sql_replace_definition",
                        &self.rows.update_definition,
                        (&data, d.project_id, &d.name, d.id),
                    )
                    .await?
                {
                    return Ok(MetaReplaced::Replaced);
                }
                continue;
            }
            if self.rename_definition(d, &old_name, &data).await? {
                return Ok(MetaReplaced::Replaced);
            }
            let rows = self
                .run(&self.rows.get_definition, (d.project_id, &d.name))
                .await?
                .into_rows_result()
                .map_err(unavailable)?;
            if let Some((Some(holder), _)) = rows
                .maybe_first_row::<(Option<Uuid>, Option<String>)>()
                .map_err(corrupt)?
            {
                if holder != d.id {
                    return Ok(MetaReplaced::NameTaken);
                }
            }
        }
        Ok(MetaReplaced::NotFound)
    }

    async fn get_rows(
        &self,
        table: TableKey,
        addrs: &[RowAddr],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut by_bucket: HashMap<u32, Vec<Vec<u8>>> = HashMap::new();
        for a in addrs {
            let pks = by_bucket.entry(a.bucket).or_default();
            if !pks.contains(&a.pk) {
                pks.push(a.pk.clone());
            }
        }
        let mut reads = Vec::new();
        for (bucket, pks) in by_bucket {
            let b = bucket_value(bucket)?;
            for chunk in pks.chunks(IN_CHUNK) {
                reads.push((bucket, b, chunk.to_vec()));
            }
        }
        let found: Vec<Vec<(u32, Vec<u8>, Vec<u8>)>> = futures_util::stream::iter(reads)
            .map(|(bucket, b, pks)| async move {
                let n = pks.len();
                let rows: Vec<(Vec<u8>, Option<Vec<u8>>)> = self
                    .collect(
                        &self.rows.get_rows,
                        (table.project_id, table.table_id, b, pks),
                        n,
                    )
                    .await?;
                Ok::<_, StoreError>(
                    rows.into_iter()
                        .filter_map(|(pk, v)| v.map(|v| (bucket, pk, v)))
                        .collect(),
                )
            })
            .buffer_unordered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        let map: HashMap<(u32, Vec<u8>), Vec<u8>> = found
            .into_iter()
            .flatten()
            .map(|(b, pk, v)| ((b, pk), v))
            .collect();
        Ok(addrs
            .iter()
            .map(|a| map.get(&(a.bucket, a.pk.clone())).cloned())
            .collect())
    }

    async fn scan_bucket(
        &self,
        table: TableKey,
        bucket: u32,
        range: &PkRange,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<StoredRow>, StoreError> {
        if limit == 0 || empty_pk_range(range) {
            return Ok(Vec::new());
        }
        let mut values = vec![
            CqlValue::Uuid(table.project_id),
            CqlValue::Uuid(table.table_id),
            CqlValue::Int(bucket_value(bucket)?),
        ];
        let lower = pk_bound_values(&range.lower, &mut values);
        let upper = pk_bound_values(&range.upper, &mut values);
        values.push(CqlValue::Int(cql_limit(limit)));
        let statement = &self.rows.scan_rows[(lower * 3 + upper) * 2 + usize::from(reverse)];
        let rows: Vec<(Vec<u8>, Option<Vec<u8>>)> = self.collect(statement, values, limit).await?;
        Ok(rows
            .into_iter()
            .map(|(pk, value)| StoredRow {
                pk,
                value: value.unwrap_or_default(),
            })
            .collect())
    }

    async fn scan_index(
        &self,
        table: TableKey,
        index: &str,
        range: &IndexRange,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        if limit == 0 || empty_index_range(range) {
            return Ok(Vec::new());
        }
        let mut values = vec![
            CqlValue::Uuid(table.project_id),
            CqlValue::Uuid(table.table_id),
            CqlValue::Text(index.to_owned()),
            CqlValue::Int(0),
        ];
        let lower = index_bound_values(&range.lower, &mut values);
        let upper = index_bound_values(&range.upper, &mut values);
        values.push(CqlValue::Int(cql_limit(limit)));
        let statement = &self.rows.scan_index[(lower * 4 + upper) * 2 + usize::from(reverse)];
        let shards = futures_util::future::try_join_all(
            (0..INDEX_SHARDS).map(|s| self.scan_index_shard(statement, values.clone(), s, limit)),
        )
        .await?;
        // Each shard is ordered; the merge of their first `limit` entries holds the first
        // `limit` entries of the whole index range.
        let mut all: Vec<(Vec<u8>, Vec<u8>)> = shards.into_iter().flatten().collect();
        all.sort_unstable();
        if reverse {
            all.reverse();
        }
        all.truncate(limit);
        Ok(all)
    }

    async fn insert_row(&self, insert: &RowInsert) -> Result<RowWritten, StoreError> {
        let t = insert.table;
        let pk = &insert.addr.pk;
        let (mine, total) = self.counts(t, &insert.quota).await?;
        if mine >= insert.quota.max_table_rows || total >= insert.quota.max_project_rows {
            return Ok(RowWritten::QuotaExceeded);
        }
        let mut ts = now_micros();
        let claim = digest(&insert.value);
        let claimed = self
            .conditional(
                "sql_insert_row",
                &self.rows.insert_claim,
                (t.project_id, t.table_id, pk, &claim, ts),
            )
            .await?;
        if !claimed {
            match self.take_over_stale_claim(t, &insert.addr, &claim).await? {
                Some(taken_at) => ts = taken_at,
                None => return Ok(RowWritten::Conflict),
            }
        }
        match self
            .claim_uniques(t, &insert.index_entries, &[], pk, ts)
            .await?
        {
            Ok(_) => {}
            Err(index) => {
                self.conditional(
                    "sql_release_row",
                    &self.rows.delete_claim,
                    (t.project_id, t.table_id, pk, &claim, ts),
                )
                .await?;
                return Ok(RowWritten::UniqueViolation { index });
            }
        }
        let mut batch = RowBatch::default();
        self.put_statements(
            &mut batch,
            t,
            &insert.addr,
            &insert.value,
            &insert.index_entries,
        )?;
        self.logged_batch(batch, Some(ts)).await?;
        self.add_count(t, 1).await?;
        Ok(RowWritten::Done)
    }

    async fn update_row(&self, update: &RowUpdate) -> Result<RowWritten, StoreError> {
        let t = update.table;
        let pk = &update.addr.pk;
        let expected = digest(&update.expected);
        let Some((current, old_ts)) = self.get_claim(t, pk).await? else {
            return Ok(RowWritten::Conflict);
        };
        if current != expected {
            return Ok(RowWritten::Conflict);
        }
        let ts = now_micros().max(old_ts + 1);
        let taken = match self
            .claim_uniques(t, &update.new_entries, &update.old_entries, pk, ts)
            .await?
        {
            Ok(taken) => taken,
            Err(index) => return Ok(RowWritten::UniqueViolation { index }),
        };
        let swapped = self
            .conditional(
                "sql_update_row",
                &self.rows.cas_claim,
                (
                    digest(&update.value),
                    ts,
                    t.project_id,
                    t.table_id,
                    pk,
                    &expected,
                    old_ts,
                ),
            )
            .await?;
        if !swapped {
            for e in &taken {
                self.release_unique(t, e, pk).await?;
            }
            return Ok(RowWritten::Conflict);
        }
        let mut batch = RowBatch::default();
        // An entry both removed and written in one batch would lose to its own tombstone
        // (same timestamp): only entries that really go are deleted.
        for e in update
            .old_entries
            .iter()
            .filter(|e| !update.new_entries.iter().any(|n| same_entry(n, e)))
        {
            batch.push(&self.rows.delete_entry, self.entry_values(t, e, pk));
        }
        self.put_statements(
            &mut batch,
            t,
            &update.addr,
            &update.value,
            &update.new_entries,
        )?;
        self.logged_batch(batch, Some(ts)).await?;
        let kept: HashSet<(&str, &[u8])> = update
            .new_entries
            .iter()
            .filter(|e| e.unique)
            .map(|e| (e.index.as_str(), e.key.as_slice()))
            .collect();
        for e in update.old_entries.iter().filter(|e| e.unique) {
            if !kept.contains(&(e.index.as_str(), e.key.as_slice())) {
                self.release_unique(t, e, pk).await?;
            }
        }
        Ok(RowWritten::Done)
    }

    async fn delete_row(&self, delete: &RowDelete) -> Result<RowWritten, StoreError> {
        let t = delete.table;
        let pk = &delete.addr.pk;
        let bucket = bucket_value(delete.addr.bucket)?;
        let expected = digest(&delete.expected);
        let Some((current, old_ts)) = self.get_claim(t, pk).await? else {
            return Ok(RowWritten::Conflict);
        };
        if current != expected {
            return Ok(RowWritten::Conflict);
        }
        let released = self
            .conditional(
                "sql_delete_row",
                &self.rows.delete_claim,
                (t.project_id, t.table_id, pk, &expected, old_ts),
            )
            .await?;
        if !released {
            return Ok(RowWritten::Conflict);
        }
        // Just above the row's last write: it shadows every earlier write of the row and no
        // later insert, which claims with the current time.
        let mut batch = RowBatch::default();
        batch.push(
            &self.rows.delete_row,
            vec![
                CqlValue::Uuid(t.project_id),
                CqlValue::Uuid(t.table_id),
                CqlValue::Int(bucket),
                CqlValue::Blob(pk.clone()),
            ],
        );
        for e in &delete.entries {
            batch.push(&self.rows.delete_entry, self.entry_values(t, e, pk));
        }
        self.logged_batch(batch, Some(old_ts + 1)).await?;
        for e in delete.entries.iter().filter(|e| e.unique) {
            self.release_unique(t, e, pk).await?;
        }
        self.add_count(t, -1).await?;
        Ok(RowWritten::Done)
    }

    async fn count_rows(&self, table: TableKey) -> Result<u64, StoreError> {
        let rows = self
            .run(&self.rows.get_count, (table.project_id, table.table_id))
            .await?
            .into_rows_result()
            .map_err(unavailable)?;
        let n = rows
            .maybe_first_row::<(Option<Counter>,)>()
            .map_err(corrupt)?
            .and_then(|(n,)| n)
            .map_or(0, |c| c.0);
        Ok(n.max(0) as u64)
    }

    async fn put_index_entry(
        &self,
        table: TableKey,
        addr: &RowAddr,
        row: &[u8],
        entry: &IndexEntry,
    ) -> Result<RowWritten, StoreError> {
        let pk = &addr.pk;
        let Some((current, ts)) = self.get_claim(table, pk).await? else {
            return Ok(RowWritten::Conflict);
        };
        if current != digest(row) {
            return Ok(RowWritten::Conflict);
        }
        if entry.unique {
            let (ours, _) = self.claim_unique(table, entry, pk, now_micros()).await?;
            if !ours {
                // Held by another row, or released between the claim and the look (retry).
                return Ok(match self.unique_owner(table, entry).await? {
                    Some(owner) if owner != *pk => RowWritten::UniqueViolation {
                        index: entry.index.clone(),
                    },
                    _ => RowWritten::Conflict,
                });
            }
        }
        // At the timestamp of the batch that wrote `row`: every later batch of the row, which
        // writes or deletes this entry itself, wins over it.
        let mut put = self.rows.put_entry.clone();
        put.set_timestamp(Some(ts));
        self.run(&put, self.entry_values(table, entry, pk)).await?;
        Ok(RowWritten::Done)
    }

    async fn remove_index_entry(
        &self,
        table: TableKey,
        addr: &RowAddr,
        row: Option<&[u8]>,
        entry: &IndexEntry,
    ) -> Result<RowWritten, StoreError> {
        let pk = &addr.pk;
        let before = self.get_claim(table, pk).await?;
        match (&before, row) {
            (None, None) => {}
            (Some((current, _)), Some(row)) if *current == digest(row) => {}
            _ => return Ok(RowWritten::Conflict),
        }
        // At the row's current timestamp, so no later batch of the row is shadowed. An absent
        // row's delete batch already removed the entry (it listed every index of the table).
        if let Some((_, ts)) = &before {
            let mut delete = self.rows.delete_entry.clone();
            delete.set_timestamp(Some(*ts));
            self.run(&delete, self.entry_values(table, entry, pk))
                .await?;
        }
        if entry.unique {
            self.release_unique(table, entry, pk).await?;
        }
        // A write of the row meanwhile may have moved it back to this key, counting on the
        // claim just released: the caller looks again and claims it anew.
        if self.get_claim(table, pk).await? != before {
            return Ok(RowWritten::Conflict);
        }
        Ok(RowWritten::Done)
    }

    async fn purge_index(
        &self,
        table: TableKey,
        index: &str,
        unique: bool,
        limit: usize,
    ) -> Result<u64, StoreError> {
        let limit = limit.max(1);
        let mut deleted = 0usize;
        // Statement 0: the whole index, ascending.
        let scan = &self.rows.scan_index[0];
        for shard in 0..INDEX_SHARDS {
            if deleted >= limit {
                break;
            }
            let left = limit - deleted;
            let entries: Vec<(Vec<u8>, Vec<u8>)> = self
                .collect(
                    scan,
                    (
                        table.project_id,
                        table.table_id,
                        index,
                        shard,
                        cql_limit(left),
                    ),
                    left,
                )
                .await?;
            for (key, pk) in entries {
                let e = IndexEntry {
                    index: index.to_owned(),
                    key,
                    unique,
                };
                self.run(&self.rows.delete_entry, self.entry_values(table, &e, &pk))
                    .await?;
                if unique {
                    self.conditional(
                        "sql_purge_unique",
                        &self.rows.purge_unique,
                        (table.project_id, table.table_id, index, &e.key),
                    )
                    .await?;
                }
                deleted += 1;
            }
        }
        Ok(deleted as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_lists_round_trip() {
        let entries = vec![
            IndexEntry {
                index: "by_k".into(),
                key: Vec::new(),
                unique: false,
            },
            IndexEntry {
                index: "u".into(),
                key: vec![0, 1, 255],
                unique: true,
            },
        ];
        assert_eq!(decode_entries(&encode_entries(&entries)).unwrap(), entries);
        assert!(decode_entries(&[1, 0, 0]).is_err());
        assert!(decode_entries(&[]).unwrap().is_empty());
    }

    #[test]
    fn shards_are_stable_and_in_range() {
        assert_eq!(shard_of(b"abc"), shard_of(b"abc"));
        let mut seen = HashSet::new();
        for i in 0u16..200 {
            let s = shard_of(&i.to_be_bytes());
            assert!((0..INDEX_SHARDS).contains(&s));
            seen.insert(s);
        }
        assert_eq!(seen.len(), INDEX_SHARDS as usize);
    }

    #[test]
    fn inverted_index_ranges_are_empty() {
        let key = |k: &[u8], inclusive| IndexBound::Key {
            key: k.to_vec(),
            inclusive,
        };
        let r = |lower, upper| IndexRange { lower, upper };
        assert!(!empty_index_range(&IndexRange::all()));
        assert!(!empty_index_range(&r(key(b"a", true), key(b"a", true))));
        assert!(empty_index_range(&r(key(b"a", false), key(b"a", true))));
        assert!(empty_index_range(&r(key(b"b", true), key(b"a", true))));
        assert!(!empty_index_range(&r(
            IndexBound::Entry {
                key: b"a".to_vec(),
                pk: vec![0]
            },
            key(b"a", true)
        )));
        assert!(empty_index_range(&r(
            IndexBound::Entry {
                key: b"a".to_vec(),
                pk: vec![0]
            },
            key(b"a", false)
        )));
    }
}
