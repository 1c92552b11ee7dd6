//! GlueSQL's synchronous storage traits over the async [`RowStore`], for one statement of one
//! project on one SQL-pool thread. Reads are prefetched in pages; every row handed to the
//! engine passes `Control::tick`, which enforces the deadline, cancellation and the
//! per-statement row and byte caps, so a runaway statement stops reading and frees its thread.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use gluesql_core::ast::{ColumnDef, ColumnUniqueOption, DataType, Expr, IndexOperator};
use gluesql_core::data::{Key, Schema, SchemaIndex, SchemaIndexOrd, Value};
use gluesql_core::error::{Error as GlueError, Result as GlueResult};
use gluesql_core::store::{
    AlterTable, CustomFunction, CustomFunctionMut, Index, IndexMut, Metadata, Planner, RowIter,
    Store, StoreMut, Transaction,
};

use super::analyze::Catalog;
use super::error::SqlError;
use super::keys::{bucket_of, decode_row, encode_key, encode_row, stored_to_value, NULL_KEY};
use crate::store::rows::{
    ColumnType, IndexBound, IndexEntry, IndexRange, IndexSpec, PkRange, RowAddr, RowDelete,
    RowInsert, RowQuota, RowStore, RowUpdate, RowWritten, TableRecord,
};

/// Name of the pseudo-index that orders a table by primary key (index names may not start
/// with `__`).
pub const PK_INDEX: &str = "__pk";

/// Shared between the async caller and the pool thread running the statement.
pub struct Control {
    pub deadline: Instant,
    pub cancelled: AtomicBool,
    pub rows_read: AtomicU64,
    pub bytes_read: AtomicU64,
    pub max_rows_read: u64,
    pub max_bytes_read: u64,
}

impl Control {
    fn check(&self) -> Result<(), SqlError> {
        if self.cancelled.load(Ordering::Relaxed) || Instant::now() >= self.deadline {
            return Err(SqlError::Timeout);
        }
        Ok(())
    }

    /// Accounts for one row read from the store.
    fn tick(&self, bytes: usize) -> Result<(), SqlError> {
        self.check()?;
        let rows = self.rows_read.fetch_add(1, Ordering::Relaxed) + 1;
        if rows > self.max_rows_read {
            return Err(SqlError::Quota {
                message: format!("the statement read more than {} rows", self.max_rows_read),
            });
        }
        let total = self.bytes_read.fetch_add(bytes as u64, Ordering::Relaxed) + bytes as u64;
        if total > self.max_bytes_read {
            return Err(SqlError::Quota {
                message: format!("the statement read more than {} bytes", self.max_bytes_read),
            });
        }
        Ok(())
    }
}

/// Where a keyset page resumes: the scan of `index` on `table` starts strictly after `after`
/// (the rows before it fail the keyset predicate anyway).
#[derive(Clone, Debug)]
pub struct ScanHint {
    pub table: String,
    pub index: String,
    pub descending: bool,
    pub after: Vec<u8>,
}

/// Only rows whose `index` key (the pk for [`PK_INDEX`]) is `key` can match the statement
/// (see `lookup`), so a scan of `table` reads just those.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restriction {
    pub table: String,
    pub index: String,
    pub key: Vec<u8>,
}

/// (table name, pk bytes) of a row read by the statement.
type SeenKey = (String, Vec<u8>);

/// Which write the statement does: GlueSQL's `insert_data` serves INSERT and UPDATE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    Read,
    Insert,
    Update,
    Delete,
}

pub struct RowsAdapter {
    pub rt: tokio::runtime::Handle,
    pub store: Arc<dyn RowStore>,
    /// The project's tables, shared with the compiled definition (never copied per run).
    pub tables: Arc<Catalog>,
    pub control: Arc<Control>,
    pub hint: Option<ScanHint>,
    pub restriction: Option<Restriction>,
    /// Rows a store page carries (the CQL store pages by 500).
    pub page_size: usize,
    /// First page of a paged read: limit + 1 + slack, so a keyset page reads about its limit.
    pub first_page: usize,
    pub mode: WriteMode,
    pub quota: RowQuota,
    /// Stored bytes of rows read by UPDATE / DELETE: their compare-and-set guard.
    seen: RefCell<HashMap<SeenKey, Vec<u8>>>,
    /// The real error behind a GlueSQL `StorageMsg`.
    pub failure: RefCell<Option<SqlError>>,
}

impl RowsAdapter {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rt: tokio::runtime::Handle,
        store: Arc<dyn RowStore>,
        tables: Arc<Catalog>,
        control: Arc<Control>,
        hint: Option<ScanHint>,
        page_size: usize,
        first_page: usize,
        mode: WriteMode,
        quota: RowQuota,
    ) -> Self {
        RowsAdapter {
            rt,
            store,
            tables,
            control,
            hint,
            restriction: None,
            page_size: page_size.max(1),
            first_page: first_page.clamp(1, page_size.max(1)),
            mode,
            quota,
            seen: RefCell::new(HashMap::new()),
            failure: RefCell::new(None),
        }
    }

    fn fail(&self, e: SqlError) -> GlueError {
        let mut failure = self.failure.borrow_mut();
        if failure.is_none() {
            *failure = Some(e);
        }
        GlueError::StorageMsg("statement aborted".into())
    }

    fn table(&self, name: &str) -> GlueResult<&TableRecord> {
        self.tables
            .get(&name.to_lowercase())
            .ok_or_else(|| self.fail(SqlError::invalid(format!("unknown table {name}"))))
    }

    fn block<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, crate::store::StoreError>>,
    ) -> GlueResult<T> {
        self.control.check().map_err(|e| self.fail(e))?;
        self.rt
            .block_on(f)
            .map_err(|e| self.fail(SqlError::from(e)))
    }

    fn pk_bytes(&self, table: &TableRecord, key: &Key) -> GlueResult<Vec<u8>> {
        let value = Value::from(key.clone());
        let pk_ty = table.column(&table.primary_key).map(|c| c.ty);
        pk_ty
            .and_then(|ty| encode_key(ty, &value))
            .ok_or_else(|| self.fail(SqlError::invalid("primary key value has the wrong type")))
    }

    fn decode(&self, table: &TableRecord, bytes: &[u8]) -> GlueResult<Vec<Value>> {
        decode_row(table, bytes).map_err(|e| self.fail(SqlError::Internal(e)))
    }

    fn key_of(&self, table: &TableRecord, values: &[Value]) -> GlueResult<Key> {
        let i = table
            .columns
            .iter()
            .position(|c| c.name == table.primary_key)
            .ok_or_else(|| self.fail(SqlError::Internal("primary key column missing".into())))?;
        Key::try_from(values[i].clone())
            .map_err(|_| self.fail(SqlError::invalid("unsupported primary key value")))
    }

    /// The row with primary-key bytes `pk`, if any.
    fn point_read(&self, table: &TableRecord, pk: Vec<u8>) -> GlueResult<Option<Vec<Value>>> {
        let addr = RowAddr {
            bucket: bucket_of(&pk, table.buckets),
            pk,
        };
        let found = self.block(
            self.store
                .get_rows(table.key(), std::slice::from_ref(&addr)),
        )?;
        match found.into_iter().next().flatten() {
            Some(bytes) => {
                self.control.tick(bytes.len()).map_err(|e| self.fail(e))?;
                self.remember(table, &addr.pk, &bytes);
                Ok(Some(self.decode(table, &bytes)?))
            }
            None => Ok(None),
        }
    }

    fn remember(&self, table: &TableRecord, pk: &[u8], bytes: &[u8]) {
        if self.mode == WriteMode::Update || self.mode == WriteMode::Delete {
            self.seen
                .borrow_mut()
                .insert((table.name.clone(), pk.to_vec()), bytes.to_vec());
        }
    }
}

/// The engine's view of a table: only the primary key is declared unique to GlueSQL (its own
/// UNIQUE check scans the table; ours is the index claim in the store), and every ready index
/// plus the pk pseudo-index is declared so its planner can pick them (a building index lacks
/// the entries of older rows, so the planner must not see it).
pub fn glue_schema(table: &TableRecord) -> Schema {
    let column_defs = table
        .columns
        .iter()
        .map(|c| ColumnDef {
            name: c.name.clone(),
            data_type: match c.ty {
                ColumnType::Text | ColumnType::Json => DataType::Text,
                ColumnType::Integer => DataType::Int,
                ColumnType::Float => DataType::Float,
                ColumnType::Boolean => DataType::Boolean,
                ColumnType::Uuid => DataType::Uuid,
                ColumnType::Timestamp => DataType::Timestamp,
            },
            nullable: c.nullable && c.name != table.primary_key,
            default: c
                .default
                .as_ref()
                .and_then(|d| stored_to_value(c.ty, d).ok())
                .map(Expr::Value),
            unique: (c.name == table.primary_key)
                .then_some(ColumnUniqueOption { is_primary: true }),
            comment: None,
        })
        .collect();
    let created = chrono::DateTime::from_timestamp(table.created_at, 0)
        .unwrap_or_default()
        .naive_utc();
    let mut indexes = vec![SchemaIndex {
        name: PK_INDEX.to_owned(),
        expr: Expr::Identifier(table.primary_key.clone()),
        order: SchemaIndexOrd::Both,
        created,
    }];
    indexes.extend(table.ready_indexes().map(|i| SchemaIndex {
        name: i.name.clone(),
        expr: Expr::Identifier(i.column.clone()),
        order: SchemaIndexOrd::Both,
        created,
    }));
    Schema {
        table_name: table.name.clone(),
        column_defs: Some(column_defs),
        indexes,
        engine: None,
        foreign_keys: Vec::new(),
        comment: None,
    }
}

/// Index entries of a row for every index, building ones included: writers maintain an index
/// from the moment it is declared, so its backfill only has to cover older rows.
pub fn index_entries(table: &TableRecord, values: &[Value]) -> Result<Vec<IndexEntry>, SqlError> {
    table
        .indexes
        .iter()
        .map(|index| index_entry(table, index, values))
        .collect()
}

/// A row's entry in one index (NULLs are indexed but never unique-checked).
pub fn index_entry(
    table: &TableRecord,
    index: &IndexSpec,
    values: &[Value],
) -> Result<IndexEntry, SqlError> {
    let (i, spec) = table
        .columns
        .iter()
        .enumerate()
        .find(|(_, c)| c.name == index.column)
        .ok_or_else(|| SqlError::Internal("indexed column missing".into()))?;
    let value = values
        .get(i)
        .ok_or_else(|| SqlError::Internal("row shorter than its table".into()))?;
    let key = encode_key(spec.ty, value)
        .ok_or_else(|| SqlError::invalid(format!("column {} has the wrong type", spec.name)))?;
    Ok(IndexEntry {
        index: index.name.clone(),
        unique: index.unique && *value != Value::Null,
        key,
    })
}

impl Store for RowsAdapter {
    fn fetch_schema(&self, table_name: &str) -> GlueResult<Option<Schema>> {
        Ok(self.tables.get(&table_name.to_lowercase()).map(glue_schema))
    }

    fn fetch_all_schemas(&self) -> GlueResult<Vec<Schema>> {
        Ok(self.tables.values().map(glue_schema).collect())
    }

    fn fetch_data(&self, table_name: &str, key: &Key) -> GlueResult<Option<Vec<Value>>> {
        let table = self.table(table_name)?;
        let pk = self.pk_bytes(table, key)?;
        self.point_read(table, pk)
    }

    fn scan_data<'a>(&'a self, table_name: &str) -> GlueResult<RowIter<'a>> {
        let table = self.table(table_name)?;
        if let Some(r) = self.restriction.as_ref().filter(|r| r.table == table.name) {
            if r.index == PK_INDEX {
                let row = self.point_read(table, r.key.clone())?;
                return Ok(Box::new(row.into_iter().map(move |values| {
                    let key = self.key_of(table, &values)?;
                    Ok((key, values))
                })));
            }
            let bound = |inclusive| IndexBound::Key {
                key: r.key.clone(),
                inclusive,
            };
            let range = IndexRange {
                lower: bound(true),
                upper: bound(true),
            };
            return self.index_scan(table, &r.index, false, range);
        }
        Ok(Box::new(BucketScan {
            adapter: self,
            table,
            bucket: 0,
            after: None,
            buffer: VecDeque::new(),
            done: false,
            page: self.page_size,
        }))
    }
}

/// All rows of a table, bucket after bucket, a page at a time.
struct BucketScan<'a> {
    adapter: &'a RowsAdapter,
    table: &'a TableRecord,
    bucket: u32,
    after: Option<Vec<u8>>,
    buffer: VecDeque<(Vec<u8>, Vec<u8>)>,
    done: bool,
    page: usize,
}

impl Iterator for BucketScan<'_> {
    type Item = GlueResult<(Key, Vec<Value>)>;

    fn next(&mut self) -> Option<Self::Item> {
        let a = self.adapter;
        loop {
            if let Some((pk, bytes)) = self.buffer.pop_front() {
                if let Err(e) = a.control.tick(bytes.len()) {
                    self.done = true;
                    return Some(Err(a.fail(e)));
                }
                a.remember(self.table, &pk, &bytes);
                return Some(a.decode(self.table, &bytes).and_then(|values| {
                    let key = a.key_of(self.table, &values)?;
                    Ok((key, values))
                }));
            }
            if self.done || self.bucket >= self.table.buckets {
                return None;
            }
            let range = PkRange {
                lower: self.after.clone().map_or(Bound::Unbounded, Bound::Excluded),
                upper: Bound::Unbounded,
            };
            let rows = match a.block(a.store.scan_bucket(
                self.table.key(),
                self.bucket,
                &range,
                self.page,
                false,
            )) {
                Ok(rows) => rows,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            if rows.len() < self.page {
                self.bucket += 1;
                self.after = None;
            } else {
                self.after = rows.last().map(|r| r.pk.clone());
            }
            self.buffer
                .extend(rows.into_iter().map(|r| (r.pk, r.value)));
        }
    }
}

/// Rows in pk order across buckets: a k-way merge of per-bucket ordered pages.
struct PkMerge<'a> {
    adapter: &'a RowsAdapter,
    table: &'a TableRecord,
    descending: bool,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    heads: Vec<BucketCursor>,
    page: usize,
    failed: bool,
}

struct BucketCursor {
    buffer: VecDeque<(Vec<u8>, Vec<u8>)>,
    last: Option<Vec<u8>>,
    exhausted: bool,
}

impl PkMerge<'_> {
    fn refill(&mut self, b: usize) -> GlueResult<()> {
        let a = self.adapter;
        let cursor = &self.heads[b];
        if !cursor.buffer.is_empty() || cursor.exhausted {
            return Ok(());
        }
        let mut range = PkRange {
            lower: self.lower.clone(),
            upper: self.upper.clone(),
        };
        if let Some(last) = &cursor.last {
            if self.descending {
                range.upper = Bound::Excluded(last.clone());
            } else {
                range.lower = Bound::Excluded(last.clone());
            }
        }
        let rows = a.block(a.store.scan_bucket(
            self.table.key(),
            b as u32,
            &range,
            self.page,
            self.descending,
        ))?;
        let cursor = &mut self.heads[b];
        cursor.exhausted = rows.len() < self.page;
        cursor.last = rows.last().map(|r| r.pk.clone());
        cursor
            .buffer
            .extend(rows.into_iter().map(|r| (r.pk, r.value)));
        Ok(())
    }
}

impl Iterator for PkMerge<'_> {
    type Item = GlueResult<(Key, Vec<Value>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        for b in 0..self.heads.len() {
            if let Err(e) = self.refill(b) {
                self.failed = true;
                return Some(Err(e));
            }
        }
        // Later refills fetch more: the first round was sized for one page of output.
        self.page = (self.page * 2).min(self.adapter.page_size);
        let best = (0..self.heads.len())
            .filter(|b| !self.heads[*b].buffer.is_empty())
            .min_by(|x, y| {
                let (kx, ky) = (&self.heads[*x].buffer[0].0, &self.heads[*y].buffer[0].0);
                if self.descending {
                    ky.cmp(kx)
                } else {
                    kx.cmp(ky)
                }
            })?;
        let (pk, bytes) = self.heads[best].buffer.pop_front()?;
        let a = self.adapter;
        if let Err(e) = a.control.tick(bytes.len()) {
            self.failed = true;
            return Some(Err(a.fail(e)));
        }
        a.remember(self.table, &pk, &bytes);
        Some(a.decode(self.table, &bytes).and_then(|values| {
            let key = a.key_of(self.table, &values)?;
            Ok((key, values))
        }))
    }
}

/// Rows in index order: pages of entries, then one multi-get per page; an entry that no
/// longer matches its row (left by a crash between a CQL claim and its batch) is skipped.
struct IndexScan<'a> {
    adapter: &'a RowsAdapter,
    table: &'a TableRecord,
    index: String,
    column: usize,
    ty: ColumnType,
    descending: bool,
    /// What is left to fetch (moves past each page).
    range: IndexRange,
    /// The scan's original bounds, which a row's current value must still satisfy.
    admit: IndexRange,
    buffer: VecDeque<(Vec<u8>, Vec<u8>)>,
    exhausted: bool,
    failed: bool,
    page: usize,
}

impl IndexScan<'_> {
    fn fill(&mut self) -> GlueResult<()> {
        let a = self.adapter;
        let entries = a.block(a.store.scan_index(
            self.table.key(),
            &self.index,
            &self.range,
            self.page,
            self.descending,
        ))?;
        self.exhausted = entries.len() < self.page;
        if let Some((key, pk)) = entries.last() {
            let next = IndexBound::Entry {
                key: key.clone(),
                pk: pk.clone(),
            };
            if self.descending {
                self.range.upper = next;
            } else {
                self.range.lower = next;
            }
        }
        let addrs: Vec<RowAddr> = entries
            .iter()
            .map(|(_, pk)| RowAddr {
                bucket: bucket_of(pk, self.table.buckets),
                pk: pk.clone(),
            })
            .collect();
        let rows = a.block(a.store.get_rows(self.table.key(), &addrs))?;
        for ((key, pk), row) in entries.into_iter().zip(rows) {
            if let Some(bytes) = row {
                let _ = key;
                self.buffer.push_back((pk, bytes));
            }
        }
        self.page = (self.page * 2).min(a.page_size);
        Ok(())
    }
}

impl Iterator for IndexScan<'_> {
    type Item = GlueResult<(Key, Vec<Value>)>;

    fn next(&mut self) -> Option<Self::Item> {
        let a = self.adapter;
        loop {
            if self.failed {
                return None;
            }
            if let Some((pk, bytes)) = self.buffer.pop_front() {
                if let Err(e) = a.control.tick(bytes.len()) {
                    self.failed = true;
                    return Some(Err(a.fail(e)));
                }
                let values = match a.decode(self.table, &bytes) {
                    Ok(v) => v,
                    Err(e) => return Some(Err(e)),
                };
                // Re-check the entry against the row (stale entries are skipped).
                let current = encode_key(self.ty, &values[self.column]);
                if !self.range_admits(current.as_deref()) {
                    continue;
                }
                a.remember(self.table, &pk, &bytes);
                return Some(a.key_of(self.table, &values).map(|k| (k, values)));
            }
            if self.exhausted {
                return None;
            }
            if let Err(e) = self.fill() {
                self.failed = true;
                return Some(Err(e));
            }
        }
    }
}

impl IndexScan<'_> {
    /// Whether a row's current key lies in the scanned key range (bounds by key only).
    fn range_admits(&self, key: Option<&[u8]>) -> bool {
        let Some(key) = key else { return false };
        let lower_ok = match &self.admit.lower {
            IndexBound::Unbounded => true,
            IndexBound::Key { key: k, inclusive } => {
                if *inclusive {
                    key >= k.as_slice()
                } else {
                    key > k.as_slice()
                }
            }
            IndexBound::Entry { key: k, .. } => key >= k.as_slice(),
        };
        let upper_ok = match &self.admit.upper {
            IndexBound::Unbounded => true,
            IndexBound::Key { key: k, inclusive } => {
                if *inclusive {
                    key <= k.as_slice()
                } else {
                    key < k.as_slice()
                }
            }
            IndexBound::Entry { key: k, .. } => key <= k.as_slice(),
        };
        lower_ok && upper_ok
    }
}

impl Index for RowsAdapter {
    fn scan_indexed_data<'a>(
        &'a self,
        table_name: &str,
        index_name: &str,
        asc: Option<bool>,
        cmp_value: Option<(&IndexOperator, Value)>,
    ) -> GlueResult<RowIter<'a>> {
        let table = self.table(table_name)?;
        let descending = asc == Some(false);
        let column_name = if index_name == PK_INDEX {
            table.primary_key.clone()
        } else {
            table
                .ready_indexes()
                .find(|i| i.name == index_name)
                .map(|i| i.column.clone())
                .ok_or_else(|| self.fail(SqlError::Internal("unknown index".into())))?
        };
        let spec = table
            .column(&column_name)
            .ok_or_else(|| self.fail(SqlError::Internal("indexed column missing".into())))?;
        let mut range = IndexRange::all();
        // No comparison: the engine reads the index for its ORDER BY.
        let ordering = cmp_value.is_none();
        let mut resumed = false;
        if let Some((op, value)) = cmp_value {
            let Some(key) = encode_key(spec.ty, &value) else {
                return Ok(Box::new(std::iter::empty()));
            };
            let k = |inclusive| IndexBound::Key {
                key: key.clone(),
                inclusive,
            };
            match op {
                IndexOperator::Eq => {
                    range.lower = k(true);
                    range.upper = k(true);
                }
                IndexOperator::Gt => range.lower = k(false),
                IndexOperator::GtEq => range.lower = k(true),
                IndexOperator::Lt => range.upper = k(false),
                IndexOperator::LtEq => range.upper = k(true),
            }
            // SQL comparisons never match NULL, which sorts first.
            if matches!(range.lower, IndexBound::Unbounded) {
                range.lower = IndexBound::Key {
                    key: NULL_KEY.to_vec(),
                    inclusive: false,
                };
            }
        } else if let Some(hint) = &self.hint {
            if hint.table == table.name && hint.index == index_name && hint.descending == descending
            {
                let b = IndexBound::Key {
                    key: hint.after.clone(),
                    inclusive: false,
                };
                if descending {
                    range.upper = b;
                } else {
                    range.lower = b;
                }
                resumed = true;
            }
        }
        if index_name == PK_INDEX && ordering {
            if let Some(r) = self
                .restriction
                .as_ref()
                .filter(|r| r.table == table.name && r.index != PK_INDEX)
            {
                // `WHERE indexed = v ORDER BY pk`: the entries of key v are in pk order.
                let within = |pk: Option<&Vec<u8>>| match pk {
                    Some(pk) => IndexBound::Entry {
                        key: r.key.clone(),
                        pk: pk.clone(),
                    },
                    None => IndexBound::Key {
                        key: r.key.clone(),
                        inclusive: true,
                    },
                };
                let after = self.hint.as_ref().filter(|_| resumed).map(|h| &h.after);
                let range = if descending {
                    IndexRange {
                        lower: within(None),
                        upper: within(after),
                    }
                } else {
                    IndexRange {
                        lower: within(after),
                        upper: within(None),
                    }
                };
                return self.index_scan(table, &r.index, descending, range);
            }
        }
        if index_name == PK_INDEX {
            let to_pk = |b: &IndexBound, lower: bool| match b {
                IndexBound::Unbounded => Bound::Unbounded,
                IndexBound::Key {
                    key,
                    inclusive: true,
                } => Bound::Included(key.clone()),
                IndexBound::Key {
                    key,
                    inclusive: false,
                } => {
                    let _ = lower;
                    Bound::Excluded(key.clone())
                }
                IndexBound::Entry { key, .. } => Bound::Excluded(key.clone()),
            };
            let per_bucket = self.first_page.div_ceil(table.buckets.max(1) as usize) + 1;
            return Ok(Box::new(PkMerge {
                adapter: self,
                table,
                descending,
                lower: to_pk(&range.lower, true),
                upper: to_pk(&range.upper, false),
                heads: (0..table.buckets)
                    .map(|_| BucketCursor {
                        buffer: VecDeque::new(),
                        last: None,
                        exhausted: false,
                    })
                    .collect(),
                page: per_bucket.min(self.page_size),
                failed: false,
            }));
        }
        if !ordering {
            return self.index_scan(table, index_name, descending, range);
        }
        // Our keys put NULL first; GlueSQL sorts NULL last ascending (first descending), and
        // an index read for ORDER BY must give the order a sort would: values, then NULLs.
        let null = IndexBound::Key {
            key: NULL_KEY.to_vec(),
            inclusive: true,
        };
        let nulls = IndexRange {
            lower: null.clone(),
            upper: null,
        };
        if matches!(range.lower, IndexBound::Unbounded) {
            range.lower = IndexBound::Key {
                key: NULL_KEY.to_vec(),
                inclusive: false,
            };
        }
        let values = self.index_scan(table, index_name, descending, range)?;
        if !descending {
            return Ok(Box::new(
                values.chain(self.index_scan(table, index_name, false, nulls)?),
            ));
        }
        // Descending, the NULLs come first, so a resumed page is past them.
        if resumed {
            return Ok(values);
        }
        Ok(Box::new(
            self.index_scan(table, index_name, true, nulls)?
                .chain(values),
        ))
    }
}

impl RowsAdapter {
    /// Rows of a secondary index's slice `range`, in index order.
    fn index_scan<'a>(
        &'a self,
        table: &'a TableRecord,
        index_name: &str,
        descending: bool,
        range: IndexRange,
    ) -> GlueResult<RowIter<'a>> {
        let (column, spec) = table
            .indexes
            .iter()
            .find(|i| i.name == index_name)
            .and_then(|i| {
                table
                    .columns
                    .iter()
                    .enumerate()
                    .find(|(_, c)| c.name == i.column)
            })
            .ok_or_else(|| self.fail(SqlError::Internal("unknown index".into())))?;
        Ok(Box::new(IndexScan {
            adapter: self,
            table,
            index: index_name.to_owned(),
            column,
            ty: spec.ty,
            descending,
            admit: range.clone(),
            range,
            buffer: VecDeque::new(),
            exhausted: false,
            failed: false,
            page: self.first_page,
        }))
    }
}

impl StoreMut for RowsAdapter {
    fn insert_data(&mut self, table_name: &str, rows: Vec<(Key, Vec<Value>)>) -> GlueResult<()> {
        let table = self.table(table_name)?.clone();
        for (key, values) in rows {
            let pk = self.pk_bytes(&table, &key)?;
            let addr = RowAddr {
                bucket: bucket_of(&pk, table.buckets),
                pk: pk.clone(),
            };
            let value = encode_row(&table, &values).map_err(|e| self.fail(SqlError::invalid(e)))?;
            let entries = index_entries(&table, &values).map_err(|e| self.fail(e))?;
            let written = match self.mode {
                WriteMode::Insert => self.block(self.store.insert_row(&RowInsert {
                    table: table.key(),
                    addr,
                    value,
                    index_entries: entries,
                    quota: self.quota,
                }))?,
                WriteMode::Update => {
                    let expected = self
                        .seen
                        .borrow()
                        .get(&(table.name.clone(), pk.clone()))
                        .cloned()
                        .ok_or_else(|| {
                            self.fail(SqlError::Internal("updated row not read".into()))
                        })?;
                    let old_values = self.decode(&table, &expected)?;
                    let old_entries =
                        index_entries(&table, &old_values).map_err(|e| self.fail(e))?;
                    self.block(self.store.update_row(&RowUpdate {
                        table: table.key(),
                        addr,
                        expected,
                        value,
                        old_entries,
                        new_entries: entries,
                    }))?
                }
                _ => return Err(self.fail(SqlError::Internal("write in a read statement".into()))),
            };
            match written {
                RowWritten::Done => {}
                RowWritten::Conflict if self.mode == WriteMode::Insert => {
                    return Err(self.fail(SqlError::Conflict {
                        message: format!("a row with this primary key exists in {}", table.name),
                    }))
                }
                RowWritten::Conflict => {
                    return Err(self.fail(SqlError::Conflict {
                        message: "a row changed concurrently; retry".into(),
                    }))
                }
                RowWritten::UniqueViolation { index } => {
                    // Building indexes too: their UNIQUE claims hold from their declaration.
                    let column = table
                        .indexes
                        .iter()
                        .find(|i| i.name == index)
                        .map_or(index.clone(), |i| i.column.clone());
                    return Err(self.fail(SqlError::Conflict {
                        message: format!("a row with this {column} exists in {}", table.name),
                    }));
                }
                RowWritten::QuotaExceeded => {
                    return Err(self.fail(SqlError::Quota {
                        message: "row quota exceeded".into(),
                    }))
                }
            }
        }
        Ok(())
    }

    fn delete_data(&mut self, table_name: &str, keys: Vec<Key>) -> GlueResult<()> {
        let table = self.table(table_name)?.clone();
        for key in keys {
            let pk = self.pk_bytes(&table, &key)?;
            let Some(expected) = self
                .seen
                .borrow()
                .get(&(table.name.clone(), pk.clone()))
                .cloned()
            else {
                return Err(self.fail(SqlError::Internal("deleted row not read".into())));
            };
            let values = self.decode(&table, &expected)?;
            let entries = index_entries(&table, &values).map_err(|e| self.fail(e))?;
            let written = self.block(self.store.delete_row(&RowDelete {
                table: table.key(),
                addr: RowAddr {
                    bucket: bucket_of(&pk, table.buckets),
                    pk,
                },
                expected,
                entries,
            }))?;
            if written != RowWritten::Done {
                return Err(self.fail(SqlError::Conflict {
                    message: "a row changed concurrently; retry".into(),
                }));
            }
        }
        Ok(())
    }
}

impl Planner for RowsAdapter {
    fn plan(
        &self,
        statement: gluesql_core::plan::StatementPlan,
    ) -> GlueResult<gluesql_core::plan::StatementPlan> {
        use gluesql_core::planner::{
            fetch_schema_map, plan_aggregate, plan_hash_join, plan_index, plan_primary_key,
            plan_schemaless, validate,
        };
        let schema_map = fetch_schema_map(self, &statement)?;
        validate(&schema_map, &statement)?;
        let statement = plan_schemaless(&schema_map, statement)?;
        let statement = plan_primary_key(&schema_map, statement);
        // The default planner leaves this out: without it no index is ever used.
        let statement = plan_index(&schema_map, statement);
        let statement = plan_hash_join(&schema_map, statement);
        Ok(plan_aggregate(statement))
    }
}

impl IndexMut for RowsAdapter {}
impl AlterTable for RowsAdapter {}
impl Transaction for RowsAdapter {}
impl CustomFunction for RowsAdapter {}
impl CustomFunctionMut for RowsAdapter {}
impl Metadata for RowsAdapter {}
