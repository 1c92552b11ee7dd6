//! Node-to-node forwarding: an owner call crosses to its owner as one HTTP/1.1 request on a
//! pooled keep-alive connection (measured against HTTP/2 and others in docs/architecture.md),
//! authenticated both ways with a key derived from the server secret.
//!
//! With `--cluster-tls-cert/-key/-ca` the connections are mutual TLS (tls.rs): both ends
//! present a certificate of the cluster CA and the caller checks the owner's against the host
//! it advertises; the MACs stay on top. Without them the channel is plain TCP and the cluster
//! network must be private (docs/cluster.md): the MACs keep nodes with another secret out and
//! make forged calls and answers useless, but they do not hide tokens' session ids or a user's
//! external id from someone who can read the network.

pub mod auth;
pub mod client;
pub mod server;
pub mod tls;

use commonrock_actors::owner::{OwnerCall, OwnerError, OwnerReply};
use serde::{Deserialize, Serialize};

/// The only path of the cluster listener.
pub const OWNER_PATH: &str = "/cluster/v1/owner";

/// Header carrying the MAC of a request body, and of an answer (bound to its request's MAC).
pub const MAC_HEADER: &str = "x-commonrock-cluster-mac";

/// Largest forwarded body: a batch of 1,000 sessions is well below it.
pub const MAX_BODY: usize = 4 << 20;

/// A forwarded owner call with what the owner needs besides it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// The sender's ring epoch: a receiver behind it reads the membership first.
    pub epoch: u64,
    pub from: String,
    /// The sender's wall clock: calls older than a few minutes are refused (replays).
    pub sent_ms: i64,
    /// The entry node's request id, for the owner's log lines.
    pub request_id: Option<String>,
    pub call: OwnerCall,
}

/// What the owner answers.
pub type Answer = Result<OwnerReply, OwnerError>;

pub(crate) fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
