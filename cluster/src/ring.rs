//! Consistent-hash ring with virtual nodes, and jump hashing onto local shards.
//!
//! Every hash here is computed over explicitly laid-out bytes with the seed-free
//! xxh3_64, never through `std::hash::Hash` or `RandomState`: each process in the
//! cluster must reach the same placement independently, across platforms and
//! releases, or two nodes would both believe they own a key.

use std::fmt;

use xxhash_rust::xxh3::xxh3_64;

/// Virtual nodes per node unless configured otherwise: enough that three nodes
/// stay within a few percent of a fair share, small enough that a ring of a few
/// hundred nodes is still a cache-friendly array.
pub const DEFAULT_VNODES: u32 = 256;

/// Upper bound on virtual nodes per node, so a mistyped setting is an error
/// instead of an allocation that takes the process down.
pub const MAX_VNODES: u32 = 1 << 16;

/// Identity of a cluster node as it appears on the ring.
///
/// The bytes of the id are the placement input, so renaming a node moves its keys.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct NodeId(String);

impl NodeId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for NodeId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for NodeId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl AsRef<str> for NodeId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    #[error("a ring needs at least one virtual node per node")]
    ZeroVnodes,
    #[error("{vnodes} virtual nodes per node exceeds the maximum of {max}")]
    TooManyVnodes { vnodes: u32, max: u32 },
}

/// Hash of a key as placed on the ring.
///
/// Part of the cluster's wire-level contract: changing it moves every key.
pub fn key_hash(key: &[u8]) -> u64 {
    xxh3_64(key)
}

/// Which of a node's `shards` local shard actors handles `key`, by jump
/// consistent hash (Lamping & Veach, 2014) seeded with [`key_hash`].
///
/// Jump hashing rather than `hash % shards` so that changing the shard count
/// moves only about `1/(n+1)` of the keys, all of them into the new shard, and
/// needs no state. `shards == 0` returns 0 instead of panicking: there is no valid
/// answer, and callers must not have zero shards.
pub fn local_shard(key: &[u8], shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    // usize is at most 64 bits on every supported target, so this is lossless.
    let buckets = shards as u64;
    let mut state = key_hash(key);
    let mut bucket: u64 = 0;
    let mut next: u64 = 0;
    while next < buckets {
        bucket = next;
        // The paper's 64-bit LCG step; its high bits drive the next jump.
        state = state
            .wrapping_mul(2_862_933_555_777_941_757)
            .wrapping_add(1);
        let scale = (1u64 << 31) as f64 / ((state >> 33) + 1) as f64;
        // Float-to-int `as` saturates, so a huge jump just ends the loop.
        next = ((bucket + 1) as f64 * scale) as u64;
    }
    // bucket < buckets == shards, so it fits back into usize.
    bucket as usize
}

/// Immutable consistent-hash ring.
///
/// Changes produce new rings ([`Ring::with_node`], [`Ring::without_node`]) so a
/// published ring can be shared by concurrent readers without locking.
#[derive(Clone, PartialEq, Eq)]
pub struct Ring {
    /// Sorted and unique; the position doubles as the tie-break rank.
    nodes: Vec<NodeId>,
    vnodes: u32,
    /// Sorted vnode tokens, kept apart from `owners` so the binary search walks a
    /// dense `u64` array.
    tokens: Vec<u64>,
    /// `owners[i]` indexes `nodes` for `tokens[i]`.
    owners: Vec<usize>,
}

impl Ring {
    /// Builds a ring in which each distinct node gets `vnodes` tokens.
    ///
    /// Input order does not matter and duplicate ids count once, so every member
    /// that sees the same set of nodes builds the same ring.
    pub fn new(nodes: impl IntoIterator<Item = NodeId>, vnodes: u32) -> Result<Ring, RingError> {
        if vnodes == 0 {
            return Err(RingError::ZeroVnodes);
        }
        if vnodes > MAX_VNODES {
            return Err(RingError::TooManyVnodes {
                vnodes,
                max: MAX_VNODES,
            });
        }
        Ok(Self::build(nodes.into_iter().collect(), vnodes))
    }

    /// A one-node ring with [`DEFAULT_VNODES`], for single-node deployments.
    pub fn single(node: NodeId) -> Ring {
        Self::build(vec![node], DEFAULT_VNODES)
    }

    /// A ring with no nodes, on which every lookup is `None`.
    pub fn empty(vnodes: u32) -> Result<Ring, RingError> {
        Self::new(std::iter::empty(), vnodes)
    }

    /// `vnodes` must already be validated; `new` is the only entry point that takes
    /// it from outside, and derived rings reuse a validated value.
    fn build(mut nodes: Vec<NodeId>, vnodes: u32) -> Ring {
        nodes.sort_unstable();
        nodes.dedup();
        let mut entries = Vec::with_capacity(nodes.len() * vnodes as usize);
        for (index, node) in nodes.iter().enumerate() {
            // node bytes ‖ 0x00 ‖ vnode index as u32 big-endian. The suffix has a
            // fixed length, so distinct (node, index) pairs never share an input.
            let mut input = Vec::with_capacity(node.0.len() + 5);
            input.extend_from_slice(node.0.as_bytes());
            input.push(0);
            let suffix_at = input.len();
            input.extend_from_slice(&[0; 4]);
            for vnode in 0..vnodes {
                input[suffix_at..].copy_from_slice(&vnode.to_be_bytes());
                entries.push((xxh3_64(&input), index));
            }
        }
        Self::assemble(nodes, vnodes, entries)
    }

    /// Sorting by (token, node rank) resolves equal tokens from different nodes in
    /// favour of the smaller node id, the same way on every member.
    fn assemble(nodes: Vec<NodeId>, vnodes: u32, mut entries: Vec<(u64, usize)>) -> Ring {
        entries.sort_unstable();
        let (tokens, owners) = entries.into_iter().unzip();
        Ring {
            nodes,
            vnodes,
            tokens,
            owners,
        }
    }

    /// The node owning `key`, or `None` if the ring has no nodes.
    pub fn owner(&self, key: &[u8]) -> Option<&NodeId> {
        self.owner_of_token(key_hash(key))
    }

    /// Owner of the first vnode token at or after `token`, wrapping past the top.
    fn owner_of_token(&self, token: u64) -> Option<&NodeId> {
        let at = self.tokens.partition_point(|&t| t < token);
        let slot = if at == self.tokens.len() { 0 } else { at };
        let index = *self.owners.get(slot)?;
        self.nodes.get(index)
    }

    /// The distinct nodes, sorted by id.
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    pub fn contains(&self, node: &NodeId) -> bool {
        self.nodes.binary_search(node).is_ok()
    }

    /// Number of distinct nodes (not vnodes).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn vnodes(&self) -> u32 {
        self.vnodes
    }

    /// This ring plus `node`; an unchanged copy if it is already a member.
    pub fn with_node(&self, node: NodeId) -> Ring {
        if self.contains(&node) {
            return self.clone();
        }
        let mut nodes = self.nodes.clone();
        nodes.push(node);
        Self::build(nodes, self.vnodes)
    }

    /// This ring minus `node`; an unchanged copy if it is not a member.
    pub fn without_node(&self, node: &NodeId) -> Ring {
        if !self.contains(node) {
            return self.clone();
        }
        let nodes = self.nodes.iter().filter(|n| *n != node).cloned().collect();
        Self::build(nodes, self.vnodes)
    }
}

impl fmt::Debug for Ring {
    /// Tokens are omitted: thousands of hashes bury the part worth reading.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("nodes", &self.nodes)
            .field("vnodes", &self.vnodes)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn ids(names: &[&str]) -> Vec<NodeId> {
        names.iter().map(|n| NodeId::from(*n)).collect()
    }

    fn ring(names: &[&str]) -> Ring {
        Ring::new(ids(names), DEFAULT_VNODES).expect("DEFAULT_VNODES is valid")
    }

    fn keys(count: usize) -> Vec<Vec<u8>> {
        (0..count)
            .map(|i| format!("session:{i:08}").into_bytes())
            .collect()
    }

    fn owner_counts(ring: &Ring, keys: &[Vec<u8>]) -> Vec<usize> {
        let mut counts = vec![0; ring.len()];
        for key in keys {
            let owner = ring.owner(key).expect("non-empty ring");
            let index = ring.nodes().binary_search(owner).expect("owner is a node");
            counts[index] += 1;
        }
        counts
    }

    #[test]
    fn fixture_placement_is_pinned() {
        // These values are the cluster's placement contract. If this test fails,
        // the change would move every key in a live cluster during a rolling
        // upgrade; fix the change, do not update the constants.
        //
        // Published xxh3_64 reference vector for empty input, so the pin below is
        // known to be xxh3 itself and not an accident of this crate.
        assert_eq!(key_hash(b""), 0x2D06_8005_38D3_94C2);
        assert_eq!(key_hash(b"commonrock"), 10_340_947_138_989_324_269);
        let ring = ring(&["node-a", "node-b", "node-c"]);
        // Vnode token layout: node bytes, 0x00, vnode index as u32 big-endian
        // (vnodes 0 and 255 here).
        for input in [
            &b"node-a\x00\x00\x00\x00\x00"[..],
            b"node-c\x00\x00\x00\x00\xff",
        ] {
            assert!(ring.tokens.binary_search(&xxh3_64(input)).is_ok());
        }
        let expected: [(&[u8], &str); 10] = [
            (b"project:alpha", "node-b"),
            (b"project:beta", "node-b"),
            (b"tenant:acme", "node-a"),
            (b"tenant:globex", "node-b"),
            (b"user:alice@example.com", "node-a"),
            (b"user:bob@example.com", "node-a"),
            (b"session:00000000-0000-0000-0000-000000000000", "node-b"),
            (b"session:01890a5d-ac96-774b-bcce-b302099a8057", "node-c"),
            (b"ratelimit:203.0.113.7", "node-b"),
            (b"", "node-c"),
        ];
        for (key, owner) in expected {
            assert_eq!(
                ring.owner(key).map(NodeId::as_str),
                Some(owner),
                "key {:?}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn empty_ring_has_no_owner() {
        let ring = Ring::empty(DEFAULT_VNODES).expect("valid vnodes");
        assert!(ring.is_empty());
        assert_eq!(ring.len(), 0);
        assert_eq!(ring.owner(b"anything"), None);
    }

    #[test]
    fn vnode_count_is_validated() {
        assert_eq!(Ring::new(ids(&["a"]), 0), Err(RingError::ZeroVnodes));
        assert_eq!(
            Ring::new(ids(&["a"]), MAX_VNODES + 1),
            Err(RingError::TooManyVnodes {
                vnodes: MAX_VNODES + 1,
                max: MAX_VNODES
            })
        );
        assert!(Ring::new(ids(&["a"]), MAX_VNODES).is_ok());
    }

    #[test]
    fn single_node_owns_everything() {
        let ring = Ring::single(NodeId::from("solo"));
        assert_eq!(ring.vnodes(), DEFAULT_VNODES);
        for key in keys(1000) {
            assert_eq!(ring.owner(&key).map(NodeId::as_str), Some("solo"));
        }
    }

    #[test]
    fn lookup_wraps_and_breaks_ties_by_node_id() {
        let nodes = ids(&["a", "b", "c"]);
        // "c" and "a" collide at 10, "b" and "a" at 20; input order is scrambled.
        let ring = Ring::assemble(nodes, 1, vec![(20, 1), (10, 2), (20, 0), (10, 0)]);
        let at = |token| ring.owner_of_token(token).map(NodeId::as_str);
        assert_eq!(at(0), Some("a"));
        assert_eq!(at(10), Some("a"));
        assert_eq!(at(11), Some("a"));
        assert_eq!(at(20), Some("a"));
        // Past the last token the ring wraps to the first.
        assert_eq!(at(21), Some("a"));
        assert_eq!(at(u64::MAX), Some("a"));

        let ring = Ring::assemble(ids(&["a", "b"]), 1, vec![(10, 1), (20, 0)]);
        let at = |token| ring.owner_of_token(token).map(NodeId::as_str);
        assert_eq!(at(10), Some("b"));
        assert_eq!(at(11), Some("a"));
        assert_eq!(at(21), Some("b"));
    }

    #[test]
    fn three_nodes_are_balanced() {
        let ring = ring(&["node-a", "node-b", "node-c"]);
        let keys = keys(100_000);
        let counts = owner_counts(&ring, &keys);
        for (node, count) in ring.nodes().iter().zip(&counts) {
            let share = *count as f64 / keys.len() as f64;
            eprintln!("3 nodes: {node} owns {:.2}%", share * 100.0);
            assert!((0.25..=0.42).contains(&share), "{node} owns {share}");
        }
    }

    #[test]
    fn five_nodes_are_balanced() {
        let ring = ring(&["n1", "n2", "n3", "n4", "n5"]);
        let keys = keys(100_000);
        let fair = keys.len() as f64 / 5.0;
        for (node, count) in ring.nodes().iter().zip(owner_counts(&ring, &keys)) {
            let deviation = (count as f64 - fair) / fair;
            eprintln!("5 nodes: {node} deviates {:+.2}%", deviation * 100.0);
            assert!(deviation.abs() <= 0.35, "{node} deviates {deviation}");
        }
    }

    #[test]
    fn ring_edits_return_new_rings() {
        let base = ring(&["a", "b"]);
        let grown = base.with_node(NodeId::from("c"));
        assert_eq!(base.len(), 2);
        assert_eq!(grown.nodes(), ids(&["a", "b", "c"]).as_slice());
        assert_eq!(grown, ring(&["c", "a", "b"]));
        assert_eq!(grown.with_node(NodeId::from("a")), grown);
        assert_eq!(grown.without_node(&NodeId::from("c")), base);
        assert_eq!(base.without_node(&NodeId::from("zzz")), base);
        let emptied = base
            .without_node(&NodeId::from("a"))
            .without_node(&NodeId::from("b"));
        assert!(emptied.is_empty());
        assert_eq!(emptied.owner(b"k"), None);
    }

    #[test]
    fn local_shard_handles_degenerate_counts() {
        assert_eq!(local_shard(b"k", 0), 0);
        assert_eq!(local_shard(b"k", 1), 0);
        assert!(local_shard(b"k", usize::MAX) < usize::MAX);
    }

    #[test]
    fn local_shard_is_balanced_over_eight_shards() {
        let keys = keys(100_000);
        let mut counts = [0usize; 8];
        for key in &keys {
            counts[local_shard(key, 8)] += 1;
        }
        let fair = keys.len() as f64 / 8.0;
        for (shard, count) in counts.iter().enumerate() {
            let deviation = (*count as f64 - fair) / fair;
            eprintln!(
                "8 shards: shard {shard} deviates {:+.2}%",
                deviation * 100.0
            );
            assert!(
                deviation.abs() <= 0.05,
                "shard {shard} deviates {deviation}"
            );
        }
    }

    #[test]
    fn growing_shards_moves_keys_only_into_the_new_shard() {
        let keys = keys(20_000);
        for shards in 1..32 {
            let mut moved = 0usize;
            for key in &keys {
                let before = local_shard(key, shards);
                let after = local_shard(key, shards + 1);
                if before != after {
                    assert_eq!(after, shards, "key moved between old shards");
                    moved += 1;
                }
            }
            let fraction = moved as f64 / keys.len() as f64;
            let expected = 1.0 / (shards + 1) as f64;
            assert!(
                (fraction - expected).abs() <= expected * 0.2,
                "{shards}->{}: moved {fraction}, expected about {expected}",
                shards + 1
            );
        }
    }

    fn node_names(
        count: impl Into<proptest::collection::SizeRange>,
    ) -> impl Strategy<Value = Vec<NodeId>> {
        proptest::collection::btree_set("[a-z0-9.-]{1,16}", count)
            .prop_map(|names| names.into_iter().map(NodeId::from).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn adding_a_node_moves_only_keys_to_it(names in node_names(3..9usize), pick in any::<prop::sample::Index>()) {
            // One of the n+1 generated names is held back as the joining node.
            let mut nodes = names;
            let newcomer = nodes.remove(pick.index(nodes.len()));
            let n = nodes.len();
            let before = Ring::new(nodes, DEFAULT_VNODES).expect("valid vnodes");
            let after = before.with_node(newcomer.clone());
            let keys = keys(4_000);
            let mut moved = 0usize;
            for key in &keys {
                let old = before.owner(key).expect("non-empty");
                let new = after.owner(key).expect("non-empty");
                if old != new {
                    prop_assert_eq!(new, &newcomer);
                    moved += 1;
                }
            }
            let fraction = moved as f64 / keys.len() as f64;
            prop_assert!(fraction <= 2.0 / (n + 1) as f64, "{n} nodes: moved {fraction}");
        }

        #[test]
        fn removing_a_node_moves_only_its_keys(nodes in node_names(2..8usize), pick in any::<prop::sample::Index>()) {
            let leaving = nodes[pick.index(nodes.len())].clone();
            let before = Ring::new(nodes, DEFAULT_VNODES).expect("valid vnodes");
            let after = before.without_node(&leaving);
            for key in keys(4_000) {
                let old = before.owner(&key).expect("non-empty");
                let new = after.owner(&key).expect("one node left");
                prop_assert!(old == new || *old == leaving);
                prop_assert_ne!(new, &leaving);
            }
        }

        #[test]
        fn input_order_and_duplicates_do_not_change_placement(
            (nodes, shuffled) in node_names(1..8usize)
                .prop_flat_map(|nodes| (Just(nodes.clone()), Just(nodes).prop_shuffle())),
            duplicate in any::<prop::sample::Index>(),
        ) {
            let reference = Ring::new(nodes.clone(), 64).expect("valid vnodes");
            let mut with_duplicates = shuffled.clone();
            with_duplicates.push(nodes[duplicate.index(nodes.len())].clone());
            with_duplicates.extend(shuffled.iter().rev().cloned());
            for candidate in [shuffled, with_duplicates] {
                let ring = Ring::new(candidate, 64).expect("valid vnodes");
                prop_assert_eq!(&ring, &reference);
                for key in keys(500) {
                    prop_assert_eq!(ring.owner(&key), reference.owner(&key));
                }
            }
            let unique: BTreeSet<_> = nodes.iter().collect();
            prop_assert_eq!(reference.len(), unique.len());
        }

        #[test]
        fn local_shard_is_in_range(key in proptest::collection::vec(any::<u8>(), 0..64), shards in 1usize..1024) {
            prop_assert!(local_shard(&key, shards) < shards);
        }
    }
}
