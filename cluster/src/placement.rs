//! The engine's `KeyRouter` on top of the ring: a key owned by this node goes to one of its
//! local shards (jump hash); any other key takes the not-owner path.

use commonrock_actors::shards::{KeyRouter, Placement};

use crate::membership::{Membership, Route};
use crate::ring::local_shard;

impl KeyRouter for Membership {
    fn place(&self, key: &[u8], local_shards: usize) -> Placement {
        match self.route(key) {
            Route::Local => Placement::Local(local_shard(key, local_shards)),
            Route::Remote(node) => Placement::Remote(node.into_string()),
            Route::Unavailable => Placement::Unavailable,
        }
    }
}
