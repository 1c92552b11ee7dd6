//! The engine's `KeyRouter` on top of the membership: a key owned by this node goes to one of
//! its local shards (jump hash); any other key is forwarded to its owner.

use std::time::Duration;

use async_trait::async_trait;
use commonrock_actors::owner::{KeyRouter, Placement};

use crate::membership::{Membership, Route};
use crate::ring::local_shard;

#[async_trait]
impl KeyRouter for Membership {
    fn place(&self, key: &[u8], local_shards: usize) -> Placement {
        match self.route(key) {
            Route::Local => Placement::Local(local_shard(key, local_shards)),
            Route::Remote(node) => Placement::Remote(node.into_string()),
            Route::Pending => Placement::Pending,
            Route::Unavailable => Placement::Unavailable,
        }
    }

    fn epoch(&self) -> u64 {
        Membership::epoch(self)
    }

    fn fence_generation(&self) -> u64 {
        Membership::fence_generation(self)
    }

    fn members(&self) -> usize {
        self.view().ring.len().max(1)
    }

    async fn refresh(&self, epoch: u64) {
        Membership::refresh(self, epoch).await;
    }

    async fn settled(&self, timeout: Duration) {
        Membership::settled(self, timeout).await;
    }
}
