//! The domain engine of CommonRock: actors that own tenants and sessions, the `Store` port
//! and its embedded implementation, token and password crypto.
//!
//! # Supervision tree
//!
//! ```text
//! node (tokio runtime)
//! ├── DirectorySupervisor        restarts a failed directory (it reloads from the store) and
//! │   │                          republishes its reference; request paths keep the snapshot
//! │   └── TenantDirectory        one actor: applies every tenant-configuration change to the
//! │                              store, then publishes an immutable TenantSnapshot (ArcSwap)
//! │                              that request paths read without a message hop
//! ├── ShardSupervisor            restarts a failed shard and republishes the shard set
//! │   ├── SessionShard 0         owns the sessions and rate-limit buckets whose routing key
//! │   ├── SessionShard 1         maps to it (cluster ring → this node → jump hash → shard);
//! │   └── …                      a restarted shard starts with an empty cache and reloads
//! │                              from the store on demand; callers of the dead one get 503
//! └── PasswordPool (threads)     ≤ one Argon2 thread per core, bounded queue, 503 when full
//! ```
//!
//! Both supervisors restart at once a few times, then back off (100 ms doubling to 5 s, see
//! `supervision::RestartPolicy`), and retry a start that fails instead of giving up.
//!
//! Every actor call has a deadline (`EngineConfig::call_timeout`); every store call has one
//! too (`EngineConfig::store_timeout`, 2 s by default).

pub mod crypto;
pub mod directory;
pub mod engine;
pub mod error;
pub mod metrics;
pub mod model;
pub mod origin;
pub mod owner;
pub mod ratelimit;
pub mod routing;
pub mod shard;
pub mod shards;
pub mod sql;
pub mod store;
pub mod supervision;
pub mod tenant;

pub use engine::{Engine, EngineConfig};
pub use error::DomainError;
