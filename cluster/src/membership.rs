//! The node's view of the cluster: the ring it routes by, whether ownership it gained may be
//! used yet, its lease (fencing), and the members it knows. Request paths read it without
//! locking; only the membership worker changes it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, Guard};
use commonrock_actors::store::members::MemberStatus;
use tokio::sync::{watch, Notify};

use crate::ring::{NodeId, Ring};

/// Where a request for a key must go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This node owns the key and may answer for it.
    Local,
    /// Another node owns the key; forward to it.
    Remote(NodeId),
    /// This node gained the key at an epoch that not every member has seen yet, or has not
    /// read the membership yet since it started.
    Pending,
    /// Nobody can serve the key now: an empty ring, or this node is fenced.
    Unavailable,
}

/// One member as this node sees it (for operators and for dialling peers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub node_id: String,
    pub advertise: String,
    pub status: MemberStatus,
    /// The member's own wall clock at its last heartbeat (display only).
    pub last_heartbeat_ms: i64,
}

/// The ring a node routes by, published as one immutable value.
#[derive(Debug, Clone)]
pub struct View {
    pub epoch: u64,
    pub ring: Ring,
    /// The ring of the last epoch every live member had seen: a key this node owns in `ring`
    /// but not in `stable` may be served only once `settled` (its previous owner has let go).
    pub stable: Ring,
    pub settled: bool,
}

/// The local node id plus everything request paths need to route a key.
#[derive(Debug)]
pub struct Membership {
    local: NodeId,
    view: ArcSwap<View>,
    members: ArcSwap<Vec<Member>>,
    addresses: ArcSwap<HashMap<String, String>>,
    /// Lease deadline in nanoseconds since `base` (monotonic); `u64::MAX` for a cluster of one.
    lease_until: AtomicU64,
    base: Instant,
    /// Set when the lease lapsed, until the worker has rejoined: sticky, so a node that wakes
    /// from a pause never answers as owner from what it knew before.
    fenced: AtomicBool,
    fence_generation: AtomicU64,
    /// Bumped on every published change; waiters (refresh, settle) watch it.
    changes: watch::Sender<u64>,
    /// Wakes the worker for an immediate poll (a peer said "not owner at a newer epoch").
    poke: Notify,
    /// The worker's poll interval, bounding how long a refresh waits.
    poll: Duration,
}

impl Membership {
    /// A node that is a cluster of one (embedded store): owns every key, never fenced.
    pub fn single(local: NodeId) -> Self {
        let ring = Ring::single(local.clone());
        let m = Self::with_view(
            local,
            View {
                epoch: 0,
                ring: ring.clone(),
                stable: ring,
                settled: true,
            },
            Duration::from_millis(250),
        );
        m.lease_until.store(u64::MAX, Ordering::Release);
        m
    }

    /// A cluster node before its first successful poll: owns nothing, fenced.
    pub fn joining(local: NodeId, vnodes: u32, poll: Duration) -> Self {
        let empty = Ring::empty(vnodes).unwrap_or_else(|_| Ring::single(local.clone()));
        let m = Self::with_view(
            local,
            View {
                epoch: 0,
                ring: empty.clone(),
                stable: empty,
                settled: false,
            },
            poll,
        );
        m.fenced.store(true, Ordering::Release);
        m
    }

    fn with_view(local: NodeId, view: View, poll: Duration) -> Self {
        Self {
            local,
            view: ArcSwap::from_pointee(view),
            members: ArcSwap::from_pointee(Vec::new()),
            addresses: ArcSwap::from_pointee(HashMap::new()),
            lease_until: AtomicU64::new(0),
            base: Instant::now(),
            fenced: AtomicBool::new(false),
            fence_generation: AtomicU64::new(0),
            changes: watch::channel(0).0,
            poke: Notify::new(),
            poll,
        }
    }

    /// A test fixture: a fixed ring, settled, never fenced.
    pub fn new(local: NodeId, ring: Ring) -> Self {
        let m = Self::with_view(
            local,
            View {
                epoch: 1,
                ring: ring.clone(),
                stable: ring,
                settled: true,
            },
            Duration::from_millis(250),
        );
        m.lease_until.store(u64::MAX, Ordering::Release);
        m
    }

    pub fn local(&self) -> &NodeId {
        &self.local
    }

    /// Snapshot of the current view. Hold it only briefly.
    pub fn view(&self) -> Guard<Arc<View>> {
        self.view.load()
    }

    /// The current view, kept as long as the caller likes.
    pub fn view_arc(&self) -> Arc<View> {
        self.view.load_full()
    }

    /// Snapshot of the current ring.
    pub fn ring(&self) -> Ring {
        self.view.load().ring.clone()
    }

    pub fn epoch(&self) -> u64 {
        self.view.load().epoch
    }

    /// Publishes a new view.
    pub fn publish(&self, view: View) {
        self.view.store(Arc::new(view));
        self.changes.send_modify(|n| *n += 1);
    }

    /// Replaces the ring at the next epoch, settled at once (tests and tools).
    pub fn replace(&self, ring: Ring) -> Arc<View> {
        let old = self.view.load_full();
        self.publish(View {
            epoch: old.epoch + 1,
            ring: ring.clone(),
            stable: ring,
            settled: true,
        });
        old
    }

    pub fn set_members(&self, members: Vec<Member>) {
        let addresses = members
            .iter()
            .map(|m| (m.node_id.clone(), m.advertise.clone()))
            .collect();
        self.addresses.store(Arc::new(addresses));
        self.members.store(Arc::new(members));
    }

    pub fn members(&self) -> Arc<Vec<Member>> {
        self.members.load_full()
    }

    /// The cluster address a peer advertised.
    pub fn address(&self, node: &str) -> Option<String> {
        self.addresses.load().get(node).cloned()
    }

    fn nanos(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_nanos() as u64
    }

    /// Extends the lease to `valid_until` (the start of the successful renewal plus the lease).
    pub fn renew_lease(&self, valid_until: Instant) {
        self.lease_until
            .store(self.nanos(valid_until).max(1), Ordering::Release);
    }

    /// Whether the lease has lapsed (or was never granted); a cluster of one never lapses.
    pub fn lease_lapsed(&self) -> bool {
        let until = self.lease_until.load(Ordering::Acquire);
        until != u64::MAX && self.nanos(Instant::now()) >= until
    }

    /// Stops answering as owner until `unfence` (called by the worker after a full successful
    /// cycle). Returns whether this call fenced it (it was not fenced before).
    pub fn fence(&self) -> bool {
        let was = self.fenced.swap(true, Ordering::AcqRel);
        if !was {
            self.fence_generation.fetch_add(1, Ordering::AcqRel);
            self.changes.send_modify(|n| *n += 1);
        }
        !was
    }

    pub fn unfence(&self) {
        if self.fenced.swap(false, Ordering::AcqRel) {
            self.changes.send_modify(|n| *n += 1);
        }
    }

    /// Fenced: by the worker, or because the lease has run out right now.
    pub fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::Acquire) || self.lease_lapsed()
    }

    /// Changes whenever the node is fenced: an owner call that saw it change must not answer.
    pub fn fence_generation(&self) -> u64 {
        self.fence_generation.load(Ordering::Acquire)
    }

    /// Whether this node has joined: it owns keys, its epoch is settled, it is not fenced.
    pub fn joined(&self) -> bool {
        let v = self.view.load();
        v.settled && v.ring.contains(&self.local) && !self.is_fenced()
    }

    /// Routes `key` against one snapshot, so a concurrent change cannot mix two rings.
    pub fn route(&self, key: &[u8]) -> Route {
        let view = self.view.load();
        match view.ring.owner(key) {
            // Not joined yet (the first membership read is still coming): wait, do not refuse.
            None if view.epoch == 0 && !view.settled => Route::Pending,
            None => Route::Unavailable,
            Some(owner) if *owner == self.local => {
                if self.is_fenced() {
                    Route::Unavailable
                } else if view.settled || view.stable.owner(key) == Some(&self.local) {
                    Route::Local
                } else {
                    Route::Pending
                }
            }
            Some(owner) => Route::Remote(owner.clone()),
        }
    }

    /// Asks the worker for an immediate poll and waits (a few polls at most) until this node
    /// routes by `epoch` or later.
    pub async fn refresh(&self, epoch: u64) {
        if self.epoch() >= epoch {
            return;
        }
        self.poke.notify_one();
        let mut rx = self.changes.subscribe();
        let wait = self.poll * 4;
        let _ = tokio::time::timeout(wait, async {
            while self.epoch() < epoch {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }

    /// Waits until the current epoch is settled (or `timeout`).
    pub async fn settled(&self, timeout: Duration) {
        let mut rx = self.changes.subscribe();
        let _ = tokio::time::timeout(timeout, async {
            while !self.view.load().settled {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }

    /// Resolves when someone asked for an immediate poll.
    pub async fn poked(&self) {
        self.poke.notified().await;
    }

    /// Waits until `done` holds for the membership (or `timeout`); true if it did.
    pub async fn wait_for(&self, timeout: Duration, done: impl Fn(&Membership) -> bool) -> bool {
        let mut rx = self.changes.subscribe();
        tokio::time::timeout(timeout, async {
            while !done(self) {
                if rx.changed().await.is_err() {
                    return false;
                }
            }
            true
        })
        .await
        .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::DEFAULT_VNODES;

    fn two_node_ring() -> Ring {
        Ring::new(
            [NodeId::from("node-a"), NodeId::from("node-b")],
            DEFAULT_VNODES,
        )
        .expect("DEFAULT_VNODES is valid")
    }

    fn keys() -> impl Iterator<Item = Vec<u8>> {
        (0..1_000).map(|i| format!("project:{i}").into_bytes())
    }

    #[test]
    fn routes_local_and_remote_on_a_two_node_ring() {
        let ring = two_node_ring();
        let a = Membership::new(NodeId::from("node-a"), ring.clone());
        let b = Membership::new(NodeId::from("node-b"), ring.clone());
        let (mut local, mut remote) = (0, 0);
        for key in keys() {
            let owner = ring.owner(&key).expect("non-empty ring").clone();
            let (on_a, on_b) = (a.route(&key), b.route(&key));
            if owner == *a.local() {
                assert_eq!(on_a, Route::Local);
                assert_eq!(on_b, Route::Remote(owner));
            } else {
                assert_eq!(on_a, Route::Remote(owner));
                assert_eq!(on_b, Route::Local);
            }
            if on_a == Route::Local {
                local += 1;
            } else {
                remote += 1;
            }
        }
        // Both outcomes must actually occur for the test to mean anything.
        assert!(local > 0 && remote > 0, "local {local}, remote {remote}");
    }

    #[test]
    fn empty_ring_is_unavailable() {
        let empty = Ring::empty(DEFAULT_VNODES).expect("valid vnodes");
        let membership = Membership::new(NodeId::from("node-a"), empty);
        assert_eq!(membership.route(b"project:alpha"), Route::Unavailable);
    }

    #[test]
    fn a_node_that_has_not_read_the_membership_yet_makes_callers_wait() {
        let m = Membership::joining(
            NodeId::from("node-a"),
            DEFAULT_VNODES,
            Duration::from_millis(250),
        );
        assert_eq!(m.route(b"project:alpha"), Route::Pending);
        assert!(!m.joined());
    }

    #[test]
    fn replace_publishes_the_new_ring() {
        let membership = Membership::new(NodeId::from("node-a"), two_node_ring());
        let old = membership.replace(Ring::single(NodeId::from("node-a")));
        assert_eq!(old.ring.len(), 2);
        assert_eq!(membership.ring().len(), 1);
        for key in keys() {
            assert_eq!(membership.route(&key), Route::Local);
        }
        membership.replace(Ring::empty(DEFAULT_VNODES).expect("valid vnodes"));
        assert_eq!(membership.route(b"k"), Route::Unavailable);
    }

    #[test]
    fn gained_keys_wait_until_the_epoch_is_settled() {
        let a = NodeId::from("node-a");
        let m = Membership::new(a.clone(), Ring::single(NodeId::from("node-b")));
        let both = two_node_ring();
        m.publish(View {
            epoch: 2,
            ring: both.clone(),
            stable: Ring::single(NodeId::from("node-b")),
            settled: false,
        });
        let gained = keys()
            .find(|k| both.owner(k) == Some(&a))
            .expect("a owns some keys");
        assert_eq!(m.route(&gained), Route::Pending);
        m.publish(View {
            epoch: 2,
            ring: both.clone(),
            stable: both,
            settled: true,
        });
        assert_eq!(m.route(&gained), Route::Local);
    }

    #[test]
    fn a_lapsed_lease_fences_local_keys_but_still_routes_remote_ones() {
        let m = Membership::new(NodeId::from("node-a"), two_node_ring());
        m.renew_lease(Instant::now() - Duration::from_millis(1));
        assert!(m.is_fenced());
        let ring = two_node_ring();
        for key in keys() {
            match ring.owner(&key).map(NodeId::as_str) {
                Some("node-a") => assert_eq!(m.route(&key), Route::Unavailable),
                _ => assert!(matches!(m.route(&key), Route::Remote(_))),
            }
        }
        let generation = m.fence_generation();
        assert!(m.fence());
        assert!(!m.fence(), "fencing twice is one fence");
        assert_eq!(m.fence_generation(), generation + 1);
        m.renew_lease(Instant::now() + Duration::from_secs(60));
        assert!(m.is_fenced(), "fenced stays until the worker unfences");
        m.unfence();
        assert!(!m.is_fenced());
    }
}
