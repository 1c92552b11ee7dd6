//! The owner protocol: the part of a request that only the owner of a key may answer (a
//! session read or change, a draw from an exact rate-limit bucket), as one value that runs on
//! a local shard or crosses to the owner node unchanged. Placement and transport live in the
//! cluster crate behind [`KeyRouter`] and [`Forwarder`]; the engine only decides "here or
//! there" and retries an explicit "not owner" once.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::DomainError;
use crate::model::{Limit, Session, SessionState, UnixSecs};
use crate::ratelimit::{LimitCheck, Refused};
use crate::shard::{RefreshOutcome, RefreshRequest};

/// Where a key lives right now, as this node's ring says.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Placement {
    /// This node owns the key: local shard `index`.
    Local(usize),
    /// Another node owns it; forward to this node id.
    Remote(String),
    /// This node gained the key at an epoch not every member has seen yet: wait, then ask again.
    Pending,
    /// Nobody can answer for it now (an empty ring, or this node is fenced).
    Unavailable,
}

/// Placement of routing keys and the state of this node's ownership; implemented by the
/// cluster's membership (a single node owns everything).
#[async_trait]
pub trait KeyRouter: Send + Sync + 'static {
    fn place(&self, key: &[u8], local_shards: usize) -> Placement;
    /// The ring epoch this node routes by (0 for a node without a cluster).
    fn epoch(&self) -> u64 {
        0
    }
    /// A value that changes whenever this node stops being able to answer as an owner (a
    /// lapsed lease): an owner call that saw it change must not answer.
    fn fence_generation(&self) -> u64 {
        0
    }
    /// Live members, for node-local shares of capacity limits.
    fn members(&self) -> usize {
        1
    }
    /// Reads the membership now if this node's ring is older than `epoch` (bounded wait).
    async fn refresh(&self, _epoch: u64) {}
    /// Waits until ownership gained at the current epoch may be used, or `timeout` passed.
    async fn settled(&self, _timeout: Duration) {}
}

/// The part of a request that runs on the key's owner.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum OwnerCall {
    /// A session as the owner knows it. `min_counter` is the presented token's counter: a
    /// cached copy behind it is stale (another owner rotated it) and is reloaded.
    Get {
        session_id: Uuid,
        with_user: bool,
        min_counter: u64,
    },
    /// Several sessions with one owner (batch introspection).
    GetMany {
        sessions: Vec<(Uuid, u64)>,
    },
    Refresh(Box<RefreshRequest>),
    Revoke {
        session_id: Uuid,
        now: UnixSecs,
    },
    /// Draws from buckets that all live with `route`'s owner.
    Limit {
        route: Vec<u8>,
        checks: Vec<WireLimitCheck>,
    },
}

impl OwnerCall {
    /// The routing key of every session or bucket the call touches, for the owner's check.
    pub fn routes(&self) -> Vec<Vec<u8>> {
        use crate::routing::session_key;
        match self {
            OwnerCall::Get { session_id, .. } | OwnerCall::Revoke { session_id, .. } => {
                vec![session_key(*session_id)]
            }
            OwnerCall::Refresh(r) => vec![session_key(r.session_id)],
            OwnerCall::GetMany { sessions } => {
                sessions.iter().map(|(id, _)| session_key(*id)).collect()
            }
            OwnerCall::Limit { route, .. } => vec![route.clone()],
        }
    }
}

/// A rate-limit check as it crosses the wire: its name travels as text.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireLimitCheck {
    pub name: String,
    pub key: Vec<u8>,
    pub limit: Limit,
}

/// Every bucket name the engine uses; a name from the wire maps back onto one of these (the
/// metric label set stays closed whatever a peer sends).
const LIMIT_NAMES: &[&str] = &[
    "login_per_account_ip",
    "login_per_account",
    "login_per_ip",
    "signup_per_ip",
    "public_per_ip",
    "per_client",
    "per_secret_key",
];

fn limit_name(name: &str) -> &'static str {
    LIMIT_NAMES
        .iter()
        .find(|n| **n == name)
        .copied()
        .unwrap_or("other")
}

impl From<&LimitCheck> for WireLimitCheck {
    fn from(c: &LimitCheck) -> Self {
        WireLimitCheck {
            name: c.name.to_string(),
            key: c.key.clone(),
            limit: c.limit,
        }
    }
}

impl From<WireLimitCheck> for LimitCheck {
    fn from(c: WireLimitCheck) -> Self {
        LimitCheck {
            name: limit_name(&c.name),
            key: c.key,
            limit: c.limit,
        }
    }
}

/// What the owner answers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum OwnerReply {
    Session(Option<SessionState>),
    Sessions(Vec<Option<SessionState>>),
    Refresh(WireRefresh),
    Revoked(bool),
    /// `Some(name, retry_after_ms)` when a bucket refused.
    Limit(Option<(String, u64)>),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum WireRefresh {
    Rotated(Box<Session>),
    Replayed(Box<Session>),
    TheftDetected,
}

impl From<RefreshOutcome> for WireRefresh {
    fn from(o: RefreshOutcome) -> Self {
        match o {
            RefreshOutcome::Rotated(s) => WireRefresh::Rotated(s),
            RefreshOutcome::Replayed(s) => WireRefresh::Replayed(s),
            RefreshOutcome::TheftDetected => WireRefresh::TheftDetected,
        }
    }
}

impl From<WireRefresh> for RefreshOutcome {
    fn from(o: WireRefresh) -> Self {
        match o {
            WireRefresh::Rotated(s) => RefreshOutcome::Rotated(s),
            WireRefresh::Replayed(s) => RefreshOutcome::Replayed(s),
            WireRefresh::TheftDetected => RefreshOutcome::TheftDetected,
        }
    }
}

impl OwnerReply {
    pub fn refused(r: Option<Refused>) -> Self {
        OwnerReply::Limit(r.map(|r| (r.name.to_string(), r.retry_after.as_millis() as u64)))
    }
}

/// Why an owner call failed, as it crosses the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OwnerError {
    /// The receiver does not own (every) key of the call at its `epoch`: refresh, retry once.
    NotOwner {
        epoch: u64,
    },
    /// The receiver cannot answer now (fenced, store down, shard restarting): 503.
    Unavailable,
    InvalidRefreshToken,
    /// A failure the receiver logged; the caller answers 500 without detail.
    Internal,
}

impl From<DomainError> for OwnerError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::InvalidRefreshToken => OwnerError::InvalidRefreshToken,
            DomainError::Internal(detail) => {
                tracing::error!(%detail, "owner call failed");
                OwnerError::Internal
            }
            _ => OwnerError::Unavailable,
        }
    }
}

impl From<OwnerError> for DomainError {
    fn from(e: OwnerError) -> Self {
        match e {
            OwnerError::NotOwner { .. } => DomainError::unavailable("ownership is moving"),
            OwnerError::Unavailable => DomainError::unavailable("owner unavailable"),
            OwnerError::InvalidRefreshToken => DomainError::InvalidRefreshToken,
            OwnerError::Internal => DomainError::Internal("the owner node failed".into()),
        }
    }
}

/// Sends an owner call to another node; implemented by the cluster's transport.
#[async_trait]
pub trait Forwarder: Send + Sync + 'static {
    /// One hop to `node`, which must answer as owner (never re-forwards). A transport failure
    /// or timeout is `OwnerError::Unavailable`.
    async fn forward(
        &self,
        node: &str,
        epoch: u64,
        call: &OwnerCall,
    ) -> Result<OwnerReply, OwnerError>;
}

/// A node without peers: every call for a remote key fails (a single node never has one).
pub struct NoPeers;

#[async_trait]
impl Forwarder for NoPeers {
    async fn forward(&self, _: &str, _: u64, _: &OwnerCall) -> Result<OwnerReply, OwnerError> {
        Err(OwnerError::Unavailable)
    }
}

/// The request being served: its id (which a forward carries to the owner) and its route
/// template. Log lines of events inside it are tagged with both (`node::logs`).
#[derive(Clone)]
pub struct RequestContext {
    pub id: std::sync::Arc<str>,
    pub route: &'static str,
}

tokio::task_local! {
    /// Set for the whole handling of a request (and of a forwarded call on its owner).
    pub static REQUEST: RequestContext;
}

/// The current request id, if the caller set one.
pub fn request_id() -> Option<std::sync::Arc<str>> {
    REQUEST.try_with(|r| r.id.clone()).ok()
}

/// The current request's id and route template, if any.
pub fn request_context() -> Option<RequestContext> {
    REQUEST.try_with(RequestContext::clone).ok()
}

/// A bounded wait shared by the engine's retries: how long to wait for pending ownership.
pub const SETTLE_WAIT: Duration = Duration::from_secs(3);

#[cfg(test)]
mod tests {
    use super::*;

    /// A forwarded answer carries the same session the owner's shard handed out: the shared key
    /// id and the external id survive the crossing.
    #[test]
    fn a_session_reply_crosses_the_wire_unchanged() {
        let session = SessionState {
            id: Uuid::now_v7(),
            project_id: Uuid::new_v4(),
            end_user_id: Uuid::new_v4(),
            external_id: "alice@example.com".into(),
            key_id: "k2".into(),
            counter: 7,
            rotated_at: 1_700_000_000,
            access_expires_at: 1_700_003_600,
            prev_access_expires_at: 1_700_000_100,
            refresh_expires_at: 1_702_592_000,
            absolute_expires_at: 1_705_000_000,
            revoked: false,
        };
        let reply = OwnerReply::Sessions(vec![Some(session.clone()), None]);
        let json = serde_json::to_vec(&reply).expect("serialises");
        match serde_json::from_slice::<OwnerReply>(&json).expect("parses") {
            OwnerReply::Sessions(back) => assert_eq!(back, vec![Some(session), None]),
            other => panic!("{other:?}"),
        }
    }
}
