//! The row-storage port of the simple DB: app tables' metadata, query definitions, rows and
//! secondary-index entries. Shaped like CQL: every row read or write touches one partition
//! (project, table, bucket), index reads are ordered slices of one index, and the only
//! conditional writes are single-row ones (a pk claim, a row compare-and-set), plus the
//! one-partition swap of a definition's name.
//!
//! Keys are opaque, order-preserving bytes chosen by the SQL layer (`crate::sql::keys`); the
//! store only compares them bytewise. Values are opaque bytes (JSON objects today).

use std::ops::Bound;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::StoreError;
use crate::model::UnixSecs;

/// Where a table's rows live. The table id (not its name) keys rows, so a dropped and
/// re-created table never sees the old rows, whatever is left of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TableKey {
    pub project_id: Uuid,
    pub table_id: Uuid,
}

/// Column types of app tables (SPEC §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    Text,
    /// INTEGER / INT / BIGINT: 64-bit signed.
    Integer,
    /// FLOAT / DOUBLE / REAL: 64-bit IEEE.
    Float,
    Boolean,
    Uuid,
    /// Seconds precision on output (`YYYY-MM-DDTHH:MM:SSZ`), microseconds stored.
    Timestamp,
    /// Any JSON value.
    Json,
}

impl ColumnType {
    /// The name used in definitions' parameter lists and docs.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Integer => "integer",
            ColumnType::Float => "float",
            ColumnType::Boolean => "boolean",
            ColumnType::Uuid => "uuid",
            ColumnType::Timestamp => "timestamp",
            ColumnType::Json => "json",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnSpec {
    /// Lowercase (identifiers are case-insensitive unless quoted, and quoted ones are
    /// refused if not lowercase, so one spelling exists).
    pub name: String,
    pub ty: ColumnType,
    pub nullable: bool,
    /// Value of rows written before `ALTER TABLE ... ADD COLUMN` (JSON in the row encoding),
    /// and of inserts that omit the column.
    #[serde(default)]
    pub default: Option<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexSpec {
    pub name: String,
    pub column: String,
    pub unique: bool,
    /// Being backfilled by CREATE INDEX: every writer maintains its entries (UNIQUE claims
    /// included), but readers neither plan with it nor treat it as a unique key until the
    /// backfill is done. Records written before backfills existed lack it: ready. Omitted
    /// when false, so ready indexes are stored (and shown) as before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub building: bool,
}

/// One app table of a project.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableRecord {
    pub project_id: Uuid,
    pub id: Uuid,
    /// Lowercase, unique per project.
    pub name: String,
    pub columns: Vec<ColumnSpec>,
    /// Name of the primary-key column (single-column keys).
    pub primary_key: String,
    pub indexes: Vec<IndexSpec>,
    /// Fixed at CREATE TABLE: rows spread over `hash(pk bytes) % buckets` partitions.
    pub buckets: u32,
    /// Bumped by every change (ADD COLUMN, CREATE INDEX); compare-and-set guard.
    pub version: u64,
    pub created_at: UnixSecs,
}

impl TableRecord {
    pub fn key(&self) -> TableKey {
        TableKey {
            project_id: self.project_id,
            table_id: self.id,
        }
    }

    pub fn column(&self, name: &str) -> Option<&ColumnSpec> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The indexes readers may use. A building index is complete only for rows written since
    /// it was declared, so a read through it (or a keyset order trusting its uniqueness) could
    /// miss rows; writers use all of `indexes`.
    pub fn ready_indexes(&self) -> impl Iterator<Item = &IndexSpec> {
        self.indexes.iter().filter(|i| !i.building)
    }
}

/// A registered query definition. The analysis (parameters, warnings) is recomputed from `sql`
/// against the current tables, so only the text and what DROP TABLE must know are stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinitionRecord {
    pub project_id: Uuid,
    pub id: Uuid,
    /// Unique per project.
    pub name: String,
    pub sql: String,
    pub public: bool,
    /// Tables the statement names (lowercase): what DROP TABLE checks.
    pub tables: Vec<String>,
    pub created_at: UnixSecs,
}

/// Outcome of inserting a table or a definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaInserted {
    Created,
    /// The name is taken in this project.
    AlreadyExists,
    /// The project already holds its quota of tables / definitions.
    QuotaExceeded,
}

/// Outcome of replacing a definition under its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaReplaced {
    Replaced,
    /// No definition with this id in the project.
    NotFound,
    /// Another definition of the project has the new name.
    NameTaken,
}

/// An index entry of one row: `key` is the order-preserving encoding of the indexed value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub index: String,
    pub key: Vec<u8>,
    /// Another row holding an entry with the same (index, key) makes the write fail.
    pub unique: bool,
}

/// One bound of an index slice; entries are ordered by (key, pk).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexBound {
    Unbounded,
    /// Lower: key ≥ / > `key`; upper: key ≤ / < `key` (all pks of that key either way).
    Key {
        key: Vec<u8>,
        inclusive: bool,
    },
    /// Strictly after (lower) / before (upper) the entry (key, pk): the keyset position.
    Entry {
        key: Vec<u8>,
        pk: Vec<u8>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexRange {
    pub lower: IndexBound,
    pub upper: IndexBound,
}

impl IndexRange {
    pub fn all() -> Self {
        IndexRange {
            lower: IndexBound::Unbounded,
            upper: IndexBound::Unbounded,
        }
    }
}

/// A pk slice inside one bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkRange {
    pub lower: Bound<Vec<u8>>,
    pub upper: Bound<Vec<u8>>,
}

impl PkRange {
    pub fn all() -> Self {
        PkRange {
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
        }
    }
}

/// A row's address: its bucket and primary-key bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RowAddr {
    pub bucket: u32,
    pub pk: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRow {
    pub pk: Vec<u8>,
    pub value: Vec<u8>,
}

/// Quotas an insert must respect, checked atomically with it (embedded) or against counters
/// (CQL: approximate under concurrency).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowQuota {
    pub max_table_rows: u64,
    pub max_project_rows: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowInsert {
    pub table: TableKey,
    pub addr: RowAddr,
    pub value: Vec<u8>,
    pub index_entries: Vec<IndexEntry>,
    pub quota: RowQuota,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowWritten {
    Done,
    /// Insert: a row with this pk exists. Update/delete: the row changed or vanished since it
    /// was read (compare-and-set lost); the caller re-reads or reports a conflict.
    Conflict,
    /// A unique index already holds this key for another row.
    UniqueViolation {
        index: String,
    },
    QuotaExceeded,
}

/// Replace a row whose stored value is still `expected`, moving its index entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowUpdate {
    pub table: TableKey,
    pub addr: RowAddr,
    pub expected: Vec<u8>,
    pub value: Vec<u8>,
    pub old_entries: Vec<IndexEntry>,
    pub new_entries: Vec<IndexEntry>,
}

/// Delete a row whose stored value is still `expected`, with its index entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowDelete {
    pub table: TableKey,
    pub addr: RowAddr,
    pub expected: Vec<u8>,
    pub entries: Vec<IndexEntry>,
}

/// The port. Every write returns only once durable. Index entries are written with their row
/// (embedded: one transaction; CQL: a logged batch after the pk claim), and index readers
/// re-check each entry against its row, so an entry left behind by a crash between a CQL
/// claim and its batch is harmless.
#[async_trait]
pub trait RowStore: Send + Sync + 'static {
    fn kind(&self) -> &'static str;

    // Tables: one small partition per project.
    /// Insert if the name is free and the project has fewer than `max_tables` tables.
    async fn create_table(
        &self,
        table: &TableRecord,
        max_tables: u64,
    ) -> Result<MetaInserted, StoreError>;
    async fn get_table(
        &self,
        project_id: Uuid,
        name: &str,
    ) -> Result<Option<TableRecord>, StoreError>;
    async fn list_tables(&self, project_id: Uuid) -> Result<Vec<TableRecord>, StoreError>;
    /// Writes `table` (version already bumped) if the stored version is `expected_version`.
    async fn update_table(
        &self,
        table: &TableRecord,
        expected_version: u64,
    ) -> Result<bool, StoreError>;
    /// Removes the metadata only (true if it existed); rows go with [`RowStore::purge_rows`].
    async fn delete_table(&self, project_id: Uuid, name: &str) -> Result<bool, StoreError>;
    /// Deletes up to `limit` rows (with their index entries) of a dropped table; returns how
    /// many were deleted, so 0 means done. Also resets the table's row count.
    async fn purge_rows(
        &self,
        table: TableKey,
        buckets: u32,
        limit: usize,
    ) -> Result<u64, StoreError>;

    // Definitions: one small partition per project.
    /// Insert if the name is free and the project has fewer than `max_definitions`.
    async fn insert_definition(
        &self,
        definition: &DefinitionRecord,
        max_definitions: u64,
    ) -> Result<MetaInserted, StoreError>;
    async fn get_definition(
        &self,
        project_id: Uuid,
        id: Uuid,
    ) -> Result<Option<DefinitionRecord>, StoreError>;
    async fn list_definitions(&self, project_id: Uuid)
        -> Result<Vec<DefinitionRecord>, StoreError>;
    async fn delete_definition(&self, project_id: Uuid, id: Uuid) -> Result<bool, StoreError>;
    /// Swaps the stored record of `definition.id` for `definition` (text, name, flags) in one
    /// atomic step: readers see the old record or the new one, never neither.
    async fn replace_definition(
        &self,
        definition: &DefinitionRecord,
    ) -> Result<MetaReplaced, StoreError>;

    // Rows: partition (project, table, bucket), clustered by pk bytes.
    /// One answer per address, in order (CQL: concurrent single-partition reads).
    async fn get_rows(
        &self,
        table: TableKey,
        addrs: &[RowAddr],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError>;
    /// Up to `limit` rows of one bucket inside `range`, ascending by pk (descending if
    /// `reverse`).
    async fn scan_bucket(
        &self,
        table: TableKey,
        bucket: u32,
        range: &PkRange,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<StoredRow>, StoreError>;
    /// Up to `limit` entries `(key, pk)` of one index inside `range`, ordered by key then pk
    /// (both descending if `reverse`).
    async fn scan_index(
        &self,
        table: TableKey,
        index: &str,
        range: &IndexRange,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError>;
    /// Conditional insert: `Conflict` if the pk exists, `UniqueViolation` if a unique entry is
    /// taken, `QuotaExceeded` past the quota; nothing is written then.
    async fn insert_row(&self, insert: &RowInsert) -> Result<RowWritten, StoreError>;
    async fn update_row(&self, update: &RowUpdate) -> Result<RowWritten, StoreError>;
    async fn delete_row(&self, delete: &RowDelete) -> Result<RowWritten, StoreError>;
    /// Rows in the table (exact on the embedded store, counter-based on CQL).
    async fn count_rows(&self, table: TableKey) -> Result<u64, StoreError>;

    // Index backfill (CREATE INDEX on a table with rows; `sql::backfill`).
    /// Writes `entry` of the row at `addr` for an index being built, provided the row's
    /// stored value is still `row` (the bytes the entry was computed from). `Done` (also when
    /// the entry is there already), `Conflict` (the row changed or vanished: re-read it) or
    /// `UniqueViolation` (another row holds this UNIQUE key). The entry never overrides a
    /// later write of the row: embedded checks the row in the writer's transaction; CQL writes
    /// the entry at the timestamp of the row's last batch, which every later batch exceeds.
    async fn put_index_entry(
        &self,
        table: TableKey,
        addr: &RowAddr,
        row: &[u8],
        entry: &IndexEntry,
    ) -> Result<RowWritten, StoreError>;
    /// Undoes a backfilled entry whose row has since moved to another key: removes exactly
    /// (index, key, pk) and the UNIQUE claim of that key if this pk holds it, provided the
    /// row's stored value is still `row` (`None`: absent), which the caller checked does not
    /// map to `entry.key`. `Done` or `Conflict` (the row changed again: re-read it).
    async fn remove_index_entry(
        &self,
        table: TableKey,
        addr: &RowAddr,
        row: Option<&[u8]>,
        entry: &IndexEntry,
    ) -> Result<RowWritten, StoreError>;
    /// Deletes up to `limit` entries of one index (with their UNIQUE claims if `unique`) of
    /// an index no writer maintains any more (dropped, failed backfill); returns how many, so
    /// 0 means none are left.
    async fn purge_index(
        &self,
        table: TableKey,
        index: &str,
        unique: bool,
        limit: usize,
    ) -> Result<u64, StoreError>;
}
