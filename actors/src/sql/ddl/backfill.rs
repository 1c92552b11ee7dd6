//! CREATE INDEX on a table that has rows: the index is declared `building` (every writer
//! maintains it from then on, readers ignore it), the statements that read the catalog before
//! that are waited out, then every row gets its entry through the store's conditional
//! `put_index_entry`, and the index is marked ready. A duplicate value of a UNIQUE index takes
//! the index away again. If the node dies midway the index stays `building` (maintained,
//! unused) until the same CREATE INDEX runs again and resumes: every step is idempotent.

use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};

use crate::sql::error::SqlError;
use crate::sql::keys::decode_row;
use crate::sql::storage::index_entry;
use crate::store::rows::{
    IndexEntry, IndexSpec, PkRange, RowAddr, RowStore, RowWritten, TableKey, TableRecord,
};

/// Rows of one page backfilled at once (each is a few store round trips on CQL).
const CONCURRENCY: usize = 8;
/// Tries per row before giving up on a row that keeps changing (the CREATE INDEX fails with
/// a conflict and can be run again).
const ROW_ATTEMPTS: u32 = 20;
/// Longest pause between two tries of one row.
const MAX_PAUSE: Duration = Duration::from_millis(200);
/// Compare-and-set tries of the table record against concurrent DDL.
const TABLE_ATTEMPTS: u32 = 10;
/// Entries deleted per store call when an index is purged.
pub(crate) const PURGE_BATCH: usize = 1000;

/// Why a backfill stopped.
enum Stop {
    /// Two rows hold the same value of a UNIQUE index.
    Duplicate,
    Failed(SqlError),
}

impl From<SqlError> for Stop {
    fn from(e: SqlError) -> Self {
        Stop::Failed(e)
    }
}

impl From<crate::store::StoreError> for Stop {
    fn from(e: crate::store::StoreError) -> Self {
        Stop::Failed(e.into())
    }
}

/// Waits `settle` (long enough that no statement which read the catalog without the index can
/// still write), backfills `index` of `table` (whose record declares it building) and returns
/// the table with the index ready. A UNIQUE index over duplicate values is removed and its
/// entries purged, and the answer is a conflict naming the column.
pub(crate) async fn build_index(
    store: Arc<dyn RowStore>,
    table: TableRecord,
    index: IndexSpec,
    settle: Duration,
    page_size: usize,
) -> Result<TableRecord, SqlError> {
    tokio::time::sleep(settle).await;
    let job = Backfill {
        store: store.as_ref(),
        table: &table,
        index: &index,
        page_size: page_size.max(1),
    };
    match job.run().await {
        Ok(rows) => {
            tracing::info!(table = %table.name, index = %index.name, rows, "index backfilled");
            finish(store.as_ref(), &table, &index).await
        }
        Err(Stop::Duplicate) => {
            abandon(store.as_ref(), &table, &index).await?;
            Err(SqlError::Conflict {
                message: format!(
                    "cannot create unique index {}: column {} has duplicate values",
                    index.name, index.column
                ),
            })
        }
        Err(Stop::Failed(e)) => {
            tracing::warn!(table = %table.name, index = %index.name, error = %e,
                "index backfill stopped; the index stays building until CREATE INDEX runs again");
            Err(e)
        }
    }
}

/// Deletes every entry (and UNIQUE claim) of an index, in bounded batches.
pub(crate) async fn purge_index(
    store: &dyn RowStore,
    table: TableKey,
    index: &IndexSpec,
) -> Result<(), SqlError> {
    while store
        .purge_index(table, &index.name, index.unique, PURGE_BATCH)
        .await?
        > 0
    {}
    Ok(())
}

struct Backfill<'a> {
    store: &'a dyn RowStore,
    table: &'a TableRecord,
    index: &'a IndexSpec,
    page_size: usize,
}

impl Backfill<'_> {
    /// Every bucket in pages; returns the rows seen.
    async fn run(&self) -> Result<u64, Stop> {
        let key = self.table.key();
        let mut rows_seen = 0u64;
        for bucket in 0..self.table.buckets {
            let mut after: Option<Vec<u8>> = None;
            loop {
                let range = PkRange {
                    lower: after.clone().map_or(Bound::Unbounded, Bound::Excluded),
                    upper: Bound::Unbounded,
                };
                let rows = self
                    .store
                    .scan_bucket(key, bucket, &range, self.page_size, false)
                    .await?;
                let full = rows.len() >= self.page_size;
                after = rows.last().map(|r| r.pk.clone());
                rows_seen += rows.len() as u64;
                futures_util::stream::iter(rows)
                    .map(|r| self.row(RowAddr { bucket, pk: r.pk }, r.value))
                    .buffer_unordered(CONCURRENCY)
                    .try_collect::<Vec<()>>()
                    .await?;
                if !full {
                    break;
                }
            }
        }
        Ok(rows_seen)
    }

    fn entry(&self, bytes: &[u8]) -> Result<IndexEntry, SqlError> {
        let values = decode_row(self.table, bytes).map_err(SqlError::Internal)?;
        index_entry(self.table, self.index, &values)
    }

    async fn reread(&self, addr: &RowAddr) -> Result<Option<Vec<u8>>, Stop> {
        let found = self
            .store
            .get_rows(self.table.key(), std::slice::from_ref(addr))
            .await?;
        Ok(found.into_iter().next().flatten())
    }

    /// One row's entry. Writers that read the catalog since the index was declared maintain
    /// it themselves, so the only race left is a write of this row between the read that the
    /// entry was computed from and the entry itself: the put refuses a row that has changed
    /// already, and an entry whose row moved right after the put is taken back.
    async fn row(&self, addr: RowAddr, value: Vec<u8>) -> Result<(), Stop> {
        let key = self.table.key();
        let mut current = Some(value);
        let mut pause = Duration::from_millis(5);
        for attempt in 0..ROW_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
                current = self.reread(&addr).await?;
            }
            // Deleted: its delete removed whatever entry it had.
            let Some(bytes) = current.take() else {
                return Ok(());
            };
            let entry = self.entry(&bytes)?;
            match self
                .store
                .put_index_entry(key, &addr, &bytes, &entry)
                .await?
            {
                RowWritten::Done => {}
                RowWritten::Conflict => continue,
                RowWritten::UniqueViolation { .. } => return Err(Stop::Duplicate),
                RowWritten::QuotaExceeded => {
                    return Err(SqlError::Internal("quota answer to an index entry".into()).into())
                }
            }
            let now = self.reread(&addr).await?;
            if now.as_deref() == Some(bytes.as_slice()) {
                return Ok(());
            }
            if let Some(moved) = &now {
                // Same key: the writer that moved the row rewrote this very entry.
                if self.entry(moved)? == entry {
                    return Ok(());
                }
            }
            // The row left the key (or vanished) after the put: the writer that moved it
            // wrote its own new entry, and this one must go.
            if self
                .store
                .remove_index_entry(key, &addr, now.as_deref(), &entry)
                .await?
                == RowWritten::Done
            {
                return Ok(());
            }
        }
        Err(SqlError::Conflict {
            message: format!(
                "a row of table {} kept changing during the backfill of index {}; run the CREATE INDEX again to resume",
                self.table.name, self.index.name
            ),
        }
        .into())
    }
}

/// The current record of `table` (same id), or why it is gone.
async fn current_table(store: &dyn RowStore, table: &TableRecord) -> Result<TableRecord, SqlError> {
    store
        .get_table(table.project_id, &table.name)
        .await?
        .filter(|t| t.id == table.id)
        .ok_or_else(|| SqlError::Conflict {
            message: format!("table {} was dropped during the index backfill", table.name),
        })
}

/// Marks the index ready by compare-and-set, re-reading the record when other DDL (ADD
/// COLUMN, another index) bumped its version meanwhile.
async fn finish(
    store: &dyn RowStore,
    table: &TableRecord,
    index: &IndexSpec,
) -> Result<TableRecord, SqlError> {
    for _ in 0..TABLE_ATTEMPTS {
        let mut current = current_table(store, table).await?;
        let Some(spec) = current.indexes.iter_mut().find(|i| i.name == index.name) else {
            return Err(SqlError::Conflict {
                message: format!("index {} was removed during its backfill", index.name),
            });
        };
        if !spec.building {
            // A concurrent run of the same CREATE INDEX finished first.
            return Ok(current);
        }
        spec.building = false;
        let expected = current.version;
        current.version += 1;
        if store.update_table(&current, expected).await? {
            return Ok(current);
        }
    }
    Err(SqlError::Conflict {
        message: format!(
            "table {} kept changing; run the CREATE INDEX again to finish it",
            table.name
        ),
    })
}

/// Takes a UNIQUE index over duplicate values away again (and its entries).
async fn abandon(
    store: &dyn RowStore,
    table: &TableRecord,
    index: &IndexSpec,
) -> Result<(), SqlError> {
    if remove_index(store, table, index).await?.is_none() {
        // Still declared (building): writers maintain it, so its entries must stay.
        return Err(SqlError::Conflict {
            message: format!(
                "column {} has duplicate values, and table {} kept changing while index {} was being removed; run the CREATE INDEX again",
                index.column, table.name, index.name
            ),
        });
    }
    Ok(())
}

/// Removes `index` from the table's record (compare-and-set, re-reading on concurrent DDL),
/// then purges its entries: readers stop using it with the record, and an entry a writer that
/// read the old record adds later is purged again by the next CREATE INDEX of that name.
/// Returns the table as saved (unchanged if it no longer had the index; `None` if the record
/// kept changing).
pub(crate) async fn remove_index(
    store: &dyn RowStore,
    table: &TableRecord,
    index: &IndexSpec,
) -> Result<Option<TableRecord>, SqlError> {
    for _ in 0..TABLE_ATTEMPTS {
        let mut current = current_table(store, table).await?;
        let before = current.indexes.len();
        current.indexes.retain(|i| i.name != index.name);
        if current.indexes.len() == before {
            purge_index(store, table.key(), index).await?;
            return Ok(Some(current));
        }
        let expected = current.version;
        current.version += 1;
        if store.update_table(&current, expected).await? {
            purge_index(store, table.key(), index).await?;
            return Ok(Some(current));
        }
    }
    Ok(None)
}
