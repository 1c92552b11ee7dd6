//! The node's view of cluster membership: which ring is current, and whether a
//! key is served here or forwarded.

use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use crate::ring::{NodeId, Ring};

/// Where a request for a key must go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This node owns the key.
    Local,
    /// Another node owns the key; forward to it.
    Remote(NodeId),
    /// The ring has no nodes, so nobody can serve the key.
    Unavailable,
}

/// The local node id plus the current ring.
///
/// The ring sits in an `ArcSwap` because every request reads it and only a
/// membership change writes it: readers take a snapshot without locking or
/// contending with each other, and a replacement never blocks them.
#[derive(Debug)]
pub struct Membership {
    local: NodeId,
    ring: ArcSwap<Ring>,
}

impl Membership {
    pub fn new(local: NodeId, ring: Ring) -> Self {
        Self {
            local,
            ring: ArcSwap::from_pointee(ring),
        }
    }

    pub fn local(&self) -> &NodeId {
        &self.local
    }

    /// Snapshot of the current ring. Hold it only briefly: a long-lived guard keeps
    /// a superseded ring alive; use `Guard::into_inner` to keep it longer.
    pub fn ring(&self) -> Guard<Arc<Ring>> {
        self.ring.load()
    }

    /// Publishes `ring` and returns the one it replaced, so the caller can work
    /// out which keys moved.
    pub fn replace(&self, ring: Ring) -> Arc<Ring> {
        self.ring.swap(Arc::new(ring))
    }

    /// Routes `key` against one snapshot, so a concurrent `replace` cannot make a
    /// single decision mix two rings.
    pub fn route(&self, key: &[u8]) -> Route {
        let ring = self.ring.load();
        match ring.owner(key) {
            None => Route::Unavailable,
            Some(owner) if *owner == self.local => Route::Local,
            Some(owner) => Route::Remote(owner.clone()),
        }
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
    fn replace_publishes_the_new_ring() {
        let membership = Membership::new(NodeId::from("node-a"), two_node_ring());
        let old = membership.replace(Ring::single(NodeId::from("node-a")));
        assert_eq!(old.len(), 2);
        assert_eq!(membership.ring().len(), 1);
        for key in keys() {
            assert_eq!(membership.route(&key), Route::Local);
        }
        membership.replace(Ring::empty(DEFAULT_VNODES).expect("valid vnodes"));
        assert_eq!(membership.route(b"k"), Route::Unavailable);
    }
}
