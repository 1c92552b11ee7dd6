//! The cluster (SPEC §9): a deterministic consistent-hash ring deciding which node owns a key,
//! jump hashing onto a node's local shards, membership kept in the store by a worker that
//! heartbeats, changes the ring by conditional writes and fences this node when its lease
//! lapses, and forwarding of owner calls to their owner node.

pub mod forward;
pub mod membership;
pub mod placement;
pub mod ring;
pub mod worker;

pub use membership::{Member, Membership, Route, View};
pub use ring::{key_hash, local_shard, NodeId, Ring, RingError, DEFAULT_VNODES, MAX_VNODES};
