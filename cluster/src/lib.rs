//! Cluster placement: a deterministic consistent-hash ring deciding which node owns a key,
//! jump hashing onto a node's local shards, and the read-mostly membership snapshot.

pub mod membership;
pub mod placement;
pub mod ring;

pub use membership::{Membership, Route};
pub use ring::{key_hash, local_shard, NodeId, Ring, RingError, DEFAULT_VNODES, MAX_VNODES};
