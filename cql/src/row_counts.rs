//! Row counts for the row quotas, kept per project on this node between reads.
//!
//! Every insert checks its table's and its project's row counts against the quotas. Reading
//! the counter partition for each insert was one of its four CQL round trips (with the primary
//! key's conditional claim, the logged batch and the counter update). Counts read here are used
//! for `FRESH_FOR` with this node's own inserts and deletes applied on top, and only while the
//! count is further than `NEAR` rows below both limits; near a limit every insert reads the
//! counters again. So the quota can be overshot only by what other nodes insert within
//! `FRESH_FOR` while this node still sees the project at least `NEAR` rows below its limit,
//! which is the same kind of excess concurrent inserts already cause (the counters are
//! approximate: docs/operations.md).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use commonrock_actors::store::rows::{RowQuota, TableKey};
use uuid::Uuid;

/// How long counts read from the store are used.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// Within this many rows of a limit the counters are read for every insert.
pub const NEAR: u64 = 1_000;
/// Projects kept at most; past it the cache starts again empty.
const CAPACITY: usize = 10_000;

struct Counts {
    read_at: Instant,
    tables: HashMap<Uuid, u64>,
    total: u64,
}

#[derive(Default)]
pub struct RowCounts {
    projects: Mutex<HashMap<Uuid, Counts>>,
}

impl RowCounts {
    /// (this table's rows, the project's rows) if known recently and far from both limits.
    pub fn fresh(&self, table: TableKey, quota: &RowQuota) -> Option<(u64, u64)> {
        let projects = self.projects.lock().unwrap_or_else(|p| p.into_inner());
        let counts = projects.get(&table.project_id)?;
        if counts.read_at.elapsed() >= FRESH_FOR {
            return None;
        }
        let mine = counts.tables.get(&table.table_id).copied().unwrap_or(0);
        let far = |n: u64, limit: u64| n.saturating_add(NEAR) < limit;
        (far(mine, quota.max_table_rows) && far(counts.total, quota.max_project_rows))
            .then_some((mine, counts.total))
    }

    /// Counts just read from the store: rows per table of `project_id`.
    pub fn read(&self, project_id: Uuid, tables: HashMap<Uuid, u64>) {
        let total = tables.values().fold(0u64, |a, n| a.saturating_add(*n));
        let mut projects = self.projects.lock().unwrap_or_else(|p| p.into_inner());
        if projects.len() >= CAPACITY {
            projects.clear();
        }
        projects.insert(
            project_id,
            Counts {
                read_at: Instant::now(),
                tables,
                total,
            },
        );
    }

    /// This node inserted (`delta` > 0) or deleted rows of `table`.
    pub fn changed(&self, table: TableKey, delta: i64) {
        let mut projects = self.projects.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(counts) = projects.get_mut(&table.project_id) {
            let apply = |n: u64| n.saturating_add_signed(delta);
            let mine = counts.tables.entry(table.table_id).or_insert(0);
            *mine = apply(*mine);
            counts.total = apply(counts.total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(project_id: Uuid, table_id: Uuid) -> TableKey {
        TableKey {
            project_id,
            table_id,
        }
    }

    const QUOTA: RowQuota = RowQuota {
        max_table_rows: 10_000,
        max_project_rows: 50_000,
    };

    #[test]
    fn counts_are_used_until_near_a_limit() {
        let (p, t) = (Uuid::now_v7(), Uuid::now_v7());
        let cache = RowCounts::default();
        assert_eq!(cache.fresh(key(p, t), &QUOTA), None, "nothing read yet");
        cache.read(p, HashMap::from([(t, 8_000), (Uuid::now_v7(), 5)]));
        assert_eq!(cache.fresh(key(p, t), &QUOTA), Some((8_000, 8_005)));
        cache.changed(key(p, t), 998);
        assert_eq!(cache.fresh(key(p, t), &QUOTA), Some((8_998, 9_003)));
        // 9,000 rows: within NEAR of the table's 10,000, so the store is asked again.
        cache.changed(key(p, t), 2);
        assert_eq!(cache.fresh(key(p, t), &QUOTA), None);
        cache.changed(key(p, t), -500);
        assert_eq!(cache.fresh(key(p, t), &QUOTA), Some((8_500, 8_505)));
    }

    #[test]
    fn a_table_not_in_the_counts_has_none_and_deletes_never_go_below_zero() {
        let (p, t) = (Uuid::now_v7(), Uuid::now_v7());
        let cache = RowCounts::default();
        cache.read(p, HashMap::new());
        assert_eq!(cache.fresh(key(p, t), &QUOTA), Some((0, 0)));
        cache.changed(key(p, t), -3);
        assert_eq!(cache.fresh(key(p, t), &QUOTA), Some((0, 0)));
    }
}
