//! The membership port: heartbeat rows and the ring record that a cluster keeps in its store
//! (SPEC §9). The cluster crate drives it; the CQL store implements it. An embedded store has
//! none: its node is a cluster of one.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// What a node says about itself in its heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    /// Started, not yet an owner of keys (or an owner whose epoch not every member has seen).
    Joining,
    /// Owns its share of the keys.
    Up,
    /// Shutting down: owns nothing, still forwards and answers until every ring drops it.
    Leaving,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Joining => "joining",
            MemberStatus::Up => "up",
            MemberStatus::Leaving => "leaving",
        }
    }
}

/// One node's heartbeat row, overwritten on every renewal with a TTL (a dead node's row
/// disappears by itself). Liveness is "`beat` advanced", judged on the observer's monotonic
/// clock; `wall_ms` is only shown to operators.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub node_id: String,
    /// `host:port` of the node's cluster listener, as peers dial it.
    pub advertise: String,
    pub status: MemberStatus,
    /// Random per process start: tells a restarted node from the one before it.
    pub generation: u64,
    /// Grows by one on every renewal of this generation.
    pub beat: u64,
    /// The ring epoch this node routes by.
    pub seen_epoch: u64,
    /// Non-secret fingerprint of the server secret: nodes with another secret are foreign.
    pub secret_fingerprint: String,
    /// The writer's wall clock (milliseconds since the Unix epoch), for display only.
    pub wall_ms: i64,
}

/// The owners of keys at one epoch. Changed only by a conditional write on `epoch`, so two
/// nodes can never publish two different rings for one epoch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingRecord {
    pub epoch: u64,
    /// Node ids, sorted and unique.
    pub owners: Vec<String>,
}

/// Where a cluster keeps its membership. `cluster` names one ring (nodes with another server
/// secret use another one, so they can never share a ring); heartbeats of every cluster on a
/// keyspace are listed together, so a foreign node is seen and reported.
#[async_trait]
pub trait MemberStore: Send + Sync + 'static {
    /// Overwrites this node's heartbeat; the row expires `ttl_s` seconds later unless renewed.
    async fn put_heartbeat(&self, heartbeat: &Heartbeat, ttl_s: u32) -> Result<(), StoreError>;
    /// Removes a heartbeat (a node that left cleanly).
    async fn delete_heartbeat(&self, node_id: &str) -> Result<(), StoreError>;
    /// Every heartbeat row that has not expired.
    async fn list_heartbeats(&self) -> Result<Vec<Heartbeat>, StoreError>;
    /// The current ring of `cluster`, if one was ever written.
    async fn get_ring(&self, cluster: &str) -> Result<Option<RingRecord>, StoreError>;
    /// Writes `next` if the stored epoch is still `expected` (`None`: no ring yet); false when
    /// another node changed the ring first.
    async fn cas_ring(
        &self,
        cluster: &str,
        expected: Option<u64>,
        next: &RingRecord,
    ) -> Result<bool, StoreError>;
}
