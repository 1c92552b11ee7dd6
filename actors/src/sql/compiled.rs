//! Compiled query definitions: a definition's record, its project's table catalog and the
//! analysed statement, kept per node so that an execution costs the statement's own store
//! reads and writes, not a definition read, a catalog read and a parse.
//!
//! An entry is good while nothing changed: this node's own DDL and definition changes drop
//! every entry at once (`invalidate`), and a change on another node moves the tenant
//! configuration epoch, which every node polls each second; an entry compiled under another
//! epoch is not used. So a change is seen by the next request on the node that made it and
//! within the poll bound everywhere else.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use super::analyze::{Analysis, Catalog};
use crate::store::rows::DefinitionRecord;

/// Most entries kept; past it the cache starts again empty (definitions are few per project,
/// so only a node serving very many projects gets there).
const CAPACITY: usize = 10_000;

/// One definition ready to run.
pub struct Compiled {
    pub record: DefinitionRecord,
    pub catalog: Arc<Catalog>,
    pub analysis: Arc<Analysis>,
}

struct Entry {
    generation: u64,
    epoch: Option<Uuid>,
    compiled: Arc<Compiled>,
}

#[derive(Default)]
pub struct CompiledCache {
    /// Moves on every local change; entries of an older generation are stale.
    generation: AtomicU64,
    entries: Mutex<HashMap<Uuid, Entry>>,
}

impl CompiledCache {
    /// The current generation: read it before loading what gets inserted.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Definition `id` of `project_id`, if compiled under this generation and `epoch`.
    pub fn get(&self, project_id: Uuid, id: Uuid, epoch: Option<Uuid>) -> Option<Arc<Compiled>> {
        let generation = self.generation();
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(&id)
            .filter(|e| {
                e.generation == generation
                    && e.epoch == epoch
                    && e.compiled.record.project_id == project_id
            })
            .map(|e| Arc::clone(&e.compiled))
    }

    /// Keeps `compiled`, loaded under `generation` and `epoch`, unless a change happened
    /// meanwhile (then it may already be stale).
    pub fn insert(&self, generation: u64, epoch: Option<Uuid>, compiled: Arc<Compiled>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if generation != self.generation() {
            return;
        }
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(
            compiled.record.id,
            Entry {
                generation,
                epoch,
                compiled,
            },
        );
    }

    /// Drops every entry: a table or definition changed on this node.
    pub fn invalidate(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Tells the other nodes sharing the store that tables or definitions changed (the node moves
/// the tenant configuration epoch).
#[async_trait::async_trait]
pub trait SchemaAnnouncer: Send + Sync {
    async fn announce(&self);
}
