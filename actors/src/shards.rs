//! The shard supervisor and the handle request paths use to reach a shard. The supervisor
//! restarts a failed shard (which reloads lazily from the store) and publishes the new
//! reference; callers of the dead one get a clean error (503), never a hang. Restarts follow a
//! `RestartPolicy`, and a start that fails is retried, never given up.

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
use crate::supervision::{dead_child, RestartPolicy};

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
    /// Restart intensity per shard.
    policies: Vec<RestartPolicy>,
    /// Shards whose actor is dead and not yet replaced.
    down: Vec<bool>,
    /// Fault injection: this many coming shard starts fail.
    fail_starts: u32,
}

/// Messages to the supervisor: it hands out the shard set; its real work is supervision.
pub enum SupervisorMessage {
    GetShards(RpcReplyPort<Arc<ShardSet>>),
    /// Starts a replacement for dead shard `index` (sent to itself, after a backoff).
    Respawn {
        index: usize,
    },
    /// Fault injection (only reachable when the node enables it): the next `n` shard starts
    /// fail, as a start that cannot get its resources would.
    FailStarts(u32, RpcReplyPort<()>),
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

impl SupervisorState {
    /// Replaces dead shard `index`; a failed start is retried after the policy's delay, so the
    /// supervisor itself never fails and a shard is never left dead for good.
    async fn respawn(&mut self, myself: &ActorRef<SupervisorMessage>, index: usize) {
        if !self.down.get(index).copied().unwrap_or(false) {
            return;
        }
        let started = if self.fail_starts > 0 {
            self.fail_starts -= 1;
            Err(ActorProcessingErr::from(
                "fault injection: shard start refused",
            ))
        } else {
            spawn_shard(
                index,
                self.store.clone(),
                self.metrics.clone(),
                self.per_shard_capacity,
                myself.get_cell(),
            )
            .await
        };
        match started {
            Ok(fresh) => {
                let mut next = (*self.set.refs.load_full()).clone();
                next[index] = fresh;
                self.set.refs.store(Arc::new(next));
                self.down[index] = false;
                self.metrics.shard_restarts.inc();
            }
            Err(e) => {
                self.metrics
                    .restart_failures
                    .with_label_values(&["shard"])
                    .inc();
                let delay = self.policies[index].next_delay().max(MIN_RETRY);
                tracing::error!(shard = index, error = %e, retry_in = ?delay, "shard did not start; retrying");
                myself.send_after(delay, move || SupervisorMessage::Respawn { index });
            }
        }
    }
}

/// A failed start is never retried sooner than this.
const MIN_RETRY: Duration = Duration::from_millis(50);

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
            policies: (0..shards).map(|_| RestartPolicy::default()).collect(),
            down: vec![false; shards],
            fail_starts: 0,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: SupervisorMessage,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMessage::GetShards(reply) => {
                let _ = reply.send(state.set.clone());
            }
            SupervisorMessage::Respawn { index } => state.respawn(&myself, index).await,
            SupervisorMessage::FailStarts(n, reply) => {
                state.fail_starts = n;
                let _ = reply.send(());
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
        let Some(dead) = dead_child(&event, "shard") else {
            return Ok(());
        };
        let refs = state.set.refs.load_full();
        let Some(index) = refs.iter().position(|r| r.get_id() == dead) else {
            return Ok(());
        };
        state.down[index] = true;
        let delay = state.policies[index].next_delay();
        if delay.is_zero() {
            state.respawn(&myself, index).await;
        } else {
            tracing::warn!(shard = index, delay = ?delay, "shard restarting often: backing off");
            myself.send_after(delay, move || SupervisorMessage::Respawn { index });
        }
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
