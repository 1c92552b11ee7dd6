//! The shard supervisor and the handle request paths use to reach a shard. The supervisor
//! restarts a failed shard (which reloads lazily from the store) and publishes the new
//! reference; callers of the dead one get a clean error (503), never a hang.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::error::DomainError;
use crate::metrics::EngineMetrics;
use crate::shard::{SessionShard, ShardArgs, ShardMessage};
use crate::store::Store;

pub use crate::owner::{KeyRouter, Placement};

/// Shard references as currently published by the supervisor.
pub struct ShardSet {
    refs: ArcSwap<Vec<ActorRef<ShardMessage>>>,
    in_flight: Vec<AtomicI64>,
    metrics: EngineMetrics,
    call_timeout: Duration,
}

impl ShardSet {
    pub fn len(&self) -> usize {
        self.in_flight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// One request/reply round trip to shard `index`, bounded by the call deadline.
    pub async fn call<T: Send + 'static>(
        &self,
        index: usize,
        build: impl FnOnce(RpcReplyPort<T>) -> ShardMessage,
    ) -> Result<T, DomainError> {
        let refs = self.refs.load();
        let shard = refs
            .get(index)
            .ok_or(DomainError::Internal(format!("no shard {index}")))?;
        let label = index.to_string();
        let gauge = self
            .metrics
            .shard_mailbox_depth
            .with_label_values(&[&label]);
        let counter = &self.in_flight[index];
        gauge.set(counter.fetch_add(1, Ordering::Relaxed) + 1);
        let out = shard.call(build, Some(self.call_timeout)).await;
        gauge.set(counter.fetch_sub(1, Ordering::Relaxed) - 1);
        match out {
            Ok(CallResult::Success(v)) => Ok(v),
            Ok(CallResult::Timeout) => Err(DomainError::unavailable("shard call timed out")),
            Ok(CallResult::SenderError) | Err(_) => {
                Err(DomainError::unavailable("shard unavailable"))
            }
        }
    }

    /// Sends one message without waiting; a shard being restarted misses it (it only warms
    /// a cache).
    pub fn cast(&self, index: usize, message: ShardMessage) {
        if let Some(shard) = self.refs.load().get(index) {
            let _ = shard.send_message(message);
        }
    }

    /// Sends without waiting (housekeeping ticks).
    pub fn cast_all(&self, make: impl Fn() -> ShardMessage) {
        for shard in self.refs.load().iter() {
            // A shard being restarted misses one tick; the next one reaches its successor.
            let _ = shard.send_message(make());
        }
    }
}

pub struct ShardSupervisor;

pub struct SupervisorArgs {
    pub shards: usize,
    pub store: Arc<dyn Store>,
    pub metrics: EngineMetrics,
    pub cache_capacity: usize,
    pub call_timeout: Duration,
}

pub struct SupervisorState {
    set: Arc<ShardSet>,
    store: Arc<dyn Store>,
    metrics: EngineMetrics,
    per_shard_capacity: usize,
}

/// Messages to the supervisor: it only hands out the shard set; its real work is supervision.
pub enum SupervisorMessage {
    GetShards(RpcReplyPort<Arc<ShardSet>>),
}

async fn spawn_shard(
    index: usize,
    state_store: Arc<dyn Store>,
    metrics: EngineMetrics,
    capacity: usize,
    supervisor: ActorCell,
) -> Result<ActorRef<ShardMessage>, ActorProcessingErr> {
    let args = ShardArgs {
        index,
        store: state_store,
        metrics,
        cache_capacity: capacity,
    };
    let (shard, _) = Actor::spawn_linked(None, SessionShard, args, supervisor).await?;
    Ok(shard)
}

impl Actor for ShardSupervisor {
    type Msg = SupervisorMessage;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let shards = args.shards.max(1);
        let per_shard_capacity = (args.cache_capacity / shards).max(1);
        let mut refs = Vec::with_capacity(shards);
        for i in 0..shards {
            refs.push(
                spawn_shard(
                    i,
                    args.store.clone(),
                    args.metrics.clone(),
                    per_shard_capacity,
                    myself.get_cell(),
                )
                .await?,
            );
        }
        let set = Arc::new(ShardSet {
            refs: ArcSwap::from_pointee(refs),
            in_flight: (0..shards).map(|_| AtomicI64::new(0)).collect(),
            metrics: args.metrics.clone(),
            call_timeout: args.call_timeout,
        });
        Ok(SupervisorState {
            set,
            store: args.store,
            metrics: args.metrics,
            per_shard_capacity,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: SupervisorMessage,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMessage::GetShards(reply) => {
                let _ = reply.send(state.set.clone());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let dead = match &event {
            SupervisionEvent::ActorFailed(cell, err) => {
                tracing::error!(error = %err, "shard failed, restarting");
                cell.get_id()
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                tracing::warn!(reason = ?reason, "shard stopped, restarting");
                cell.get_id()
            }
            _ => return Ok(()),
        };
        let refs = state.set.refs.load_full();
        let Some(index) = refs.iter().position(|r| r.get_id() == dead) else {
            return Ok(());
        };
        let fresh = spawn_shard(
            index,
            state.store.clone(),
            state.metrics.clone(),
            state.per_shard_capacity,
            myself.get_cell(),
        )
        .await?;
        let mut next = (*refs).clone();
        next[index] = fresh;
        state.set.refs.store(Arc::new(next));
        state.metrics.shard_restarts.inc();
        Ok(())
    }
}

/// Starts the supervisor and its shards; returns the handle request paths use.
pub async fn start(
    args: SupervisorArgs,
) -> Result<(ActorRef<SupervisorMessage>, Arc<ShardSet>), DomainError> {
    let (sup, _) = Actor::spawn(None, ShardSupervisor, args)
        .await
        .map_err(|e| DomainError::Internal(format!("cannot start shards: {e}")))?;
    let set = match sup
        .call(SupervisorMessage::GetShards, Some(Duration::from_secs(5)))
        .await
    {
        Ok(CallResult::Success(set)) => set,
        _ => {
            return Err(DomainError::Internal(
                "shard supervisor did not answer".into(),
            ))
        }
    };
    Ok((sup, set))
}
