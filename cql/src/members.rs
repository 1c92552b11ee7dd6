//! `MemberStore` on ScyllaDB: the cluster's heartbeats and its ring (schema version 3).
//!
//! - Heartbeats (`cluster_heartbeats`): plain writes only, each `USING TTL`, all in one small
//!   partition so that one read lists every node (of every cluster on the keyspace, so foreign
//!   nodes are seen too). A renewal overwrites the row and restarts its TTL.
//! - The ring (`cluster_ring`, a row per cluster): lightweight transactions only, `IF NOT
//!   EXISTS` for the first ring and `IF epoch = ?` after, so the epoch is what two nodes race
//!   on and exactly one of them wins it.
//!
//! Plain statements run at the store's consistency, the conditional ones at its serial
//! consistency (both set by the session's execution profile).

use async_trait::async_trait;
use commonrock_actors::store::members::{Heartbeat, MemberStore, RingRecord};
use commonrock_actors::store::StoreError;
use scylla::client::session::Session as CqlSession;
use scylla::statement::prepared::PreparedStatement;

use crate::store::{decode, encode, prep, unavailable, CqlStore};

/// The partition key of every heartbeat row: a cluster has a handful of nodes, so one
/// partition holds them all and is listed with one read.
const PART: &str = "members";
/// The longest TTL Cassandra and ScyllaDB accept (20 years).
const MAX_TTL_S: u32 = 630_720_000;

/// The membership statements, prepared once in [`CqlStore::connect`].
pub struct MemberStatements {
    put_heartbeat: PreparedStatement,
    delete_heartbeat: PreparedStatement,
    list_heartbeats: PreparedStatement,
    get_ring: PreparedStatement,
    insert_ring: PreparedStatement,
    update_ring: PreparedStatement,
}

pub(crate) async fn prepare(
    session: &CqlSession,
    ks: &str,
) -> Result<MemberStatements, StoreError> {
    Ok(MemberStatements {
        put_heartbeat: prep(
            session,
            format!(
                "INSERT INTO {ks}.cluster_heartbeats (part, node_id, data) VALUES (?, ?, ?) \
                 USING TTL ?"
            ),
            true,
        )
        .await?,
        delete_heartbeat: prep(
            session,
            format!("DELETE FROM {ks}.cluster_heartbeats WHERE part = ? AND node_id = ?"),
            true,
        )
        .await?,
        list_heartbeats: prep(
            session,
            format!("SELECT data FROM {ks}.cluster_heartbeats WHERE part = ?"),
            true,
        )
        .await?,
        get_ring: prep(
            session,
            format!("SELECT epoch, owners FROM {ks}.cluster_ring WHERE cluster = ?"),
            true,
        )
        .await?,
        insert_ring: prep(
            session,
            format!(
                "INSERT INTO {ks}.cluster_ring (cluster, epoch, owners) VALUES (?, ?, ?) \
                 IF NOT EXISTS"
            ),
            false,
        )
        .await?,
        update_ring: prep(
            session,
            format!(
                "UPDATE {ks}.cluster_ring SET epoch = ?, owners = ? WHERE cluster = ? \
                 IF epoch = ?"
            ),
            false,
        )
        .await?,
    })
}

/// Epochs are bigints in the table; one beyond `i64::MAX` could not be compared there.
fn epoch_column(epoch: u64) -> Result<i64, StoreError> {
    i64::try_from(epoch).map_err(|_| StoreError::Corrupt(format!("ring epoch {epoch} too large")))
}

#[async_trait]
impl MemberStore for CqlStore {
    async fn put_heartbeat(&self, heartbeat: &Heartbeat, ttl_s: u32) -> Result<(), StoreError> {
        // TTL 0 would mean "forever": a heartbeat must always expire.
        let ttl = ttl_s.clamp(1, MAX_TTL_S) as i32;
        self.run(
            &self.members.put_heartbeat,
            (PART, &heartbeat.node_id, encode(heartbeat)?, ttl),
        )
        .await
        .map(|_| ())
    }

    async fn delete_heartbeat(&self, node_id: &str) -> Result<(), StoreError> {
        self.run(&self.members.delete_heartbeat, (PART, node_id))
            .await
            .map(|_| ())
    }

    async fn list_heartbeats(&self) -> Result<Vec<Heartbeat>, StoreError> {
        // One partition of a row per node: small enough to read unpaged, which keeps a
        // timeout reported as one.
        let rows = self
            .run(&self.members.list_heartbeats, (PART,))
            .await?
            .into_rows_result()
            .map_err(unavailable)?;
        let mut out = Vec::with_capacity(rows.rows_num());
        for row in rows
            .rows::<(Option<String>,)>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?
        {
            let (data,) = row.map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if let Some(data) = data {
                out.push(decode(&data, "heartbeat")?);
            }
        }
        Ok(out)
    }

    async fn get_ring(&self, cluster: &str) -> Result<Option<RingRecord>, StoreError> {
        let row = self
            .run(&self.members.get_ring, (cluster,))
            .await?
            .into_rows_result()
            .map_err(unavailable)?
            .maybe_first_row::<(Option<i64>, Option<String>)>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        match row {
            None => Ok(None),
            Some((Some(epoch), Some(owners))) => Ok(Some(RingRecord {
                epoch: u64::try_from(epoch)
                    .map_err(|_| StoreError::Corrupt(format!("ring epoch {epoch}")))?,
                owners: decode(&owners, "ring owners")?,
            })),
            Some(_) => Err(StoreError::Corrupt(format!(
                "ring of {cluster} without an epoch or owners"
            ))),
        }
    }

    async fn cas_ring(
        &self,
        cluster: &str,
        expected: Option<u64>,
        next: &RingRecord,
    ) -> Result<bool, StoreError> {
        let epoch = epoch_column(next.epoch)?;
        let owners = encode(&next.owners)?;
        match expected {
            None => {
                self.conditional(
                    "insert_ring",
                    &self.members.insert_ring,
                    (cluster, epoch, owners),
                )
                .await
            }
            Some(expected) => {
                self.conditional(
                    "update_ring",
                    &self.members.update_ring,
                    (epoch, owners, cluster, epoch_column(expected)?),
                )
                .await
            }
        }
    }
}
