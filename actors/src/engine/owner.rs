//! Reaching a key's owner: run the call on a local shard when this node owns the key, else
//! forward it in one hop; answer forwarded calls as owner (never forwarding again). Also the
//! node-local buckets of capacity limits, which need no owner at all.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use uuid::Uuid;

use crate::error::DomainError;
use crate::model::{Limit, SessionState};
use crate::owner::{OwnerCall, OwnerError, OwnerReply, Placement, SETTLE_WAIT};
use crate::ratelimit::{retry_after_secs, Buckets, LimitCheck, Refused};
use crate::routing::session_key;
use crate::shard::{Owned, ShardMessage};

use super::Engine;

/// Node-local buckets for limits that protect capacity (per public client, per secret key):
/// each node holds its share of the limit, so the hot paths need no hop (SPEC §3). A few
/// mutexes, picked by key hash, so two cores rarely meet on one.
pub(crate) struct CapacityBuckets {
    parts: Vec<Mutex<Buckets>>,
}

impl CapacityBuckets {
    pub(crate) fn new() -> Self {
        CapacityBuckets {
            parts: (0..16).map(|_| Mutex::new(Buckets::default())).collect(),
        }
    }

    fn check(&self, check: &LimitCheck) -> Result<(), Refused> {
        let i = (xxhash_rust::xxh3::xxh3_64(&check.key) % self.parts.len() as u64) as usize;
        // A poisoned lock only means another thread panicked mid-check: the buckets are
        // plain counters, still usable.
        let mut part = self.parts[i].lock().unwrap_or_else(|p| p.into_inner());
        part.check_all(&check.key, std::slice::from_ref(check))
    }

    pub(crate) fn purge_idle(&self) {
        for part in &self.parts {
            part.lock().unwrap_or_else(|p| p.into_inner()).purge_idle();
        }
    }
}

/// This node's share of a capacity limit among `members` live nodes (at least 1 per unit, so
/// a small limit never becomes "refuse everything"; 0 keeps meaning "disabled").
pub fn node_share(limit: Limit, members: usize) -> Limit {
    let n = members.max(1) as u32;
    let part = |v: u32| if v == 0 { 0 } else { (v / n).max(1) };
    Limit {
        burst: part(limit.burst),
        per_minute: part(limit.per_minute),
    }
}

fn rate_limited(engine: &Engine, refused: Refused) -> DomainError {
    engine
        .metrics
        .rate_limited
        .with_label_values(&[refused.name])
        .inc();
    DomainError::RateLimited {
        limit: refused.name,
        retry_after: Duration::from_secs(retry_after_secs(refused.retry_after)),
    }
}

impl Engine {
    /// Draws from a capacity limit's node-local bucket (the node's share of the limit).
    pub fn check_capacity(&self, check: LimitCheck) -> Result<(), DomainError> {
        let check = LimitCheck {
            limit: node_share(check.limit, self.router.members()),
            ..check
        };
        self.capacity
            .check(&check)
            .map_err(|refused| rate_limited(self, refused))
    }

    /// Draws from account-protecting buckets that all live with `routing_key`'s owner: exact
    /// across the cluster while ownership is stable.
    pub async fn check_limits(
        &self,
        routing_key: &[u8],
        checks: Vec<LimitCheck>,
    ) -> Result<(), DomainError> {
        if checks.is_empty() {
            return Ok(());
        }
        let call = OwnerCall::Limit {
            route: routing_key.to_vec(),
            checks: checks.iter().map(Into::into).collect(),
        };
        match self.owner(routing_key, call).await? {
            OwnerReply::Limit(None) => Ok(()),
            OwnerReply::Limit(Some((name, retry_ms))) => {
                let name = checks
                    .iter()
                    .map(|c| c.name)
                    .find(|n| *n == name)
                    .unwrap_or("other");
                Err(rate_limited(
                    self,
                    Refused {
                        name,
                        retry_after: Duration::from_millis(retry_ms),
                    },
                ))
            }
            _ => Err(mismatch()),
        }
    }

    /// Runs `call` on the owner of `key`: a local shard, or one hop to the owner node. Only an
    /// explicit "not owner" is retried, once, after this node refreshed its ring.
    pub(crate) async fn owner(
        &self,
        key: &[u8],
        call: OwnerCall,
    ) -> Result<OwnerReply, DomainError> {
        let mut retried = false;
        let mut waited = false;
        loop {
            let outcome = match self.router.place(key, self.shards.len()) {
                Placement::Local(shard) => match self.run_owned(shard, key, call.clone()).await {
                    // The local outcome keeps its own error (a store timeout stays one).
                    Ok(done) => return done,
                    Err(e) => Err(e),
                },
                Placement::Remote(node) => self.forward(&node, &call).await,
                Placement::Pending if !waited => {
                    waited = true;
                    self.router.settled(SETTLE_WAIT).await;
                    continue;
                }
                Placement::Pending => Err(OwnerError::Unavailable),
                Placement::Unavailable => Err(OwnerError::Unavailable),
            };
            match outcome {
                Err(OwnerError::NotOwner { epoch }) if !retried => {
                    retried = true;
                    self.router
                        .refresh(epoch.max(self.router.epoch() + 1))
                        .await;
                }
                other => return other.map_err(DomainError::from),
            }
        }
    }

    /// One hop to `node` at this node's epoch, counted by outcome and timed.
    pub(crate) async fn forward(
        &self,
        node: &str,
        call: &OwnerCall,
    ) -> Result<OwnerReply, OwnerError> {
        let started = std::time::Instant::now();
        let out = self
            .forwarder
            .forward(node, self.router.epoch(), call)
            .await;
        self.metrics
            .forward_seconds
            .observe(started.elapsed().as_secs_f64());
        let label = match &out {
            Ok(_) => "ok",
            Err(OwnerError::NotOwner { .. }) => "not_owner",
            Err(OwnerError::Unavailable) => "unavailable",
            Err(_) => "error",
        };
        self.metrics.forwards.with_label_values(&[label]).inc();
        out
    }

    /// Answers a call forwarded by another node: as owner, or "not owner at my epoch".
    pub async fn serve_forwarded(
        &self,
        call: OwnerCall,
        sender_epoch: u64,
    ) -> Result<OwnerReply, OwnerError> {
        if sender_epoch > self.router.epoch() {
            self.router.refresh(sender_epoch).await;
        }
        let routes = call.routes();
        let Some(first) = routes.first() else {
            return Err(OwnerError::Internal);
        };
        let mut waited = false;
        loop {
            let placed: Vec<Placement> = routes
                .iter()
                .map(|k| self.router.place(k, self.shards.len()))
                .collect();
            if placed.contains(&Placement::Unavailable) {
                return Err(OwnerError::Unavailable);
            }
            if placed.iter().any(|p| matches!(p, Placement::Remote(_))) {
                return Err(OwnerError::NotOwner {
                    epoch: self.router.epoch(),
                });
            }
            if placed.contains(&Placement::Pending) {
                if waited {
                    return Err(OwnerError::Unavailable);
                }
                waited = true;
                self.router.settled(SETTLE_WAIT).await;
                continue;
            }
            let Placement::Local(shard) = placed[0] else {
                return Err(OwnerError::Internal);
            };
            return self
                .run_owned(shard, first, call)
                .await?
                .map_err(OwnerError::from);
        }
    }

    /// Runs an owner call on local shard `shard` and checks afterwards that this node still
    /// owned `key` the whole time: a node fenced meanwhile answers 503, a key that moved
    /// answers "not owner" so the caller asks the new owner (whose cache is then the only one).
    async fn run_owned(
        &self,
        shard: usize,
        key: &[u8],
        call: OwnerCall,
    ) -> Result<Result<OwnerReply, DomainError>, OwnerError> {
        let fence = self.router.fence_generation();
        // A batch checks every key it read; anything else has one key (no allocation).
        let batch = match &call {
            OwnerCall::GetMany { .. } => call.routes(),
            _ => Vec::new(),
        };
        let out = self.run_local(shard, call).await;
        if self.router.fence_generation() != fence {
            return Err(OwnerError::Unavailable);
        }
        let still_owner = |route: &[u8]| match self.router.place(route, self.shards.len()) {
            Placement::Local(_) => Ok(()),
            Placement::Remote(_) => Err(OwnerError::NotOwner {
                epoch: self.router.epoch(),
            }),
            Placement::Pending | Placement::Unavailable => Err(OwnerError::Unavailable),
        };
        if batch.is_empty() {
            still_owner(key)?;
        }
        for route in &batch {
            still_owner(route)?;
        }
        Ok(out)
    }

    /// Sessions this node owns, each read through the shard that owns it, the shards in
    /// parallel, answered in input order. A batch must never run on one shard for all: that
    /// shard would cache its siblings' sessions, and such a copy misses their revocations
    /// (which go to the owning shard), so a later batch could call a revoked session active.
    async fn get_many(
        &self,
        sessions: Vec<(Uuid, u64)>,
    ) -> Result<Vec<Option<SessionState>>, DomainError> {
        let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, (id, _)) in sessions.iter().enumerate() {
            match self.router.place(&session_key(*id), self.shards.len()) {
                Placement::Local(shard) => groups.entry(shard).or_default().push(i),
                // Moved meanwhile: the ownership check after the call tells the caller.
                _ => return Err(DomainError::unavailable("ownership is moving")),
            }
        }
        if groups.len() == 1 {
            let shard = groups.into_keys().next().unwrap_or_default();
            return self
                .shards
                .call(shard, |reply| ShardMessage::GetMany { sessions, reply })
                .await?;
        }
        let calls = groups.into_iter().map(|(shard, items)| {
            let subset: Vec<(Uuid, u64)> = items.iter().map(|&i| sessions[i]).collect();
            async move {
                let found = self
                    .shards
                    .call(shard, |reply| ShardMessage::GetMany {
                        sessions: subset,
                        reply,
                    })
                    .await;
                (items, found)
            }
        });
        let mut out = vec![None; sessions.len()];
        for (items, found) in futures_util::future::join_all(calls).await {
            let found = found??;
            if found.len() != items.len() {
                return Err(mismatch());
            }
            for (i, s) in items.into_iter().zip(found) {
                out[i] = s;
            }
        }
        Ok(out)
    }

    async fn run_local(&self, shard: usize, call: OwnerCall) -> Result<OwnerReply, DomainError> {
        let shards = &self.shards;
        Ok(match call {
            OwnerCall::Get {
                session_id,
                with_user,
                min_counter,
            } => OwnerReply::Session(
                shards
                    .call(shard, |reply| ShardMessage::Get {
                        session_id,
                        with_user,
                        min_counter,
                        reply,
                    })
                    .await??,
            ),
            // Not `shard`: each session is read by the shard that owns it.
            OwnerCall::GetMany { sessions } => OwnerReply::Sessions(self.get_many(sessions).await?),
            OwnerCall::Refresh(request) => OwnerReply::Refresh(
                shards
                    .call(shard, |reply| ShardMessage::Refresh { request, reply })
                    .await??
                    .into(),
            ),
            OwnerCall::Revoke { session_id, now } => OwnerReply::Revoked(
                shards
                    .call(shard, |reply| ShardMessage::Revoke {
                        session_id,
                        now,
                        reply,
                    })
                    .await??,
            ),
            OwnerCall::Limit { route, checks } => {
                let checks = checks.into_iter().map(Into::into).collect();
                let out = shards
                    .call(shard, |reply| ShardMessage::Limit {
                        route,
                        checks,
                        reply,
                    })
                    .await?;
                OwnerReply::refused(out.err())
            }
        })
    }

    /// The ring changed or this node was fenced: every shard forgets the sessions and buckets
    /// it no longer owns. Pending keys (gained, not yet usable) were never cached here.
    pub fn ownership_changed(&self) {
        let router = self.router.clone();
        let shards = self.shards.len();
        let owned: Owned = std::sync::Arc::new(move |key: &[u8]| {
            matches!(
                router.place(key, shards),
                Placement::Local(_) | Placement::Pending
            )
        });
        self.shards.cast_all(|| ShardMessage::Retain {
            owned: owned.clone(),
        });
        self.metrics.ownership_changes.inc();
    }
}

/// An owner answered with a reply of another kind: a bug or a foreign peer, never a client's.
pub(crate) fn mismatch() -> DomainError {
    DomainError::Internal("owner reply does not match the call".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_share_divides_and_never_reaches_zero() {
        let l = Limit {
            burst: 100,
            per_minute: 600,
        };
        assert_eq!(node_share(l, 1), l);
        assert_eq!(
            node_share(l, 3),
            Limit {
                burst: 33,
                per_minute: 200
            }
        );
        let small = Limit {
            burst: 2,
            per_minute: 0,
        };
        assert_eq!(
            node_share(small, 10),
            Limit {
                burst: 1,
                per_minute: 0
            }
        );
    }
}
