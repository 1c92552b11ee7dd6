//! The tenant directory's supervisor and the handle the engine reaches the directory through.
//! A failed directory is restarted (its start reloads the snapshot from the store) and its new
//! reference published; meanwhile request paths keep reading the last published snapshot, and
//! only configuration changes answer 503. A start that fails (the store is away) is retried
//! after a backoff, never given up.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::error::DomainError;
use crate::metrics::EngineMetrics;
use crate::store::Store;
use crate::supervision::{dead_child, RestartPolicy};
use crate::tenant::{TenantArgs, TenantDirectory, TenantMessage, TenantSnapshot};

/// The current directory, as published by its supervisor.
pub struct DirectoryHandle {
    current: ArcSwap<ActorRef<TenantMessage>>,
}

impl DirectoryHandle {
    pub fn current(&self) -> Arc<ActorRef<TenantMessage>> {
        self.current.load_full()
    }
}

pub struct DirectorySupervisor;

pub struct DirectoryArgs {
    pub store: Arc<dyn Store>,
    pub snapshot: Arc<ArcSwap<TenantSnapshot>>,
    pub metrics: EngineMetrics,
}

pub struct DirectoryState {
    handle: Arc<DirectoryHandle>,
    args: DirectoryArgs,
    policy: RestartPolicy,
    down: bool,
    /// Fault injection: this many coming directory starts fail.
    fail_starts: u32,
}

pub enum DirectoryMessage {
    GetHandle(RpcReplyPort<Arc<DirectoryHandle>>),
    /// Starts a replacement for the dead directory (sent to itself, after a backoff).
    Respawn,
    /// Fault injection (only reachable when the node enables it): the next `n` starts fail.
    FailStarts(u32, RpcReplyPort<()>),
}

/// A failed start is never retried sooner than this.
const MIN_RETRY: Duration = Duration::from_millis(50);

async fn spawn_directory(
    args: &DirectoryArgs,
    supervisor: &ActorRef<DirectoryMessage>,
) -> Result<ActorRef<TenantMessage>, ActorProcessingErr> {
    let (directory, _) = Actor::spawn_linked(
        None,
        TenantDirectory,
        TenantArgs {
            store: args.store.clone(),
            snapshot: args.snapshot.clone(),
        },
        supervisor.get_cell(),
    )
    .await?;
    Ok(directory)
}

impl DirectoryState {
    async fn respawn(&mut self, myself: &ActorRef<DirectoryMessage>) {
        if !self.down {
            return;
        }
        let started = if self.fail_starts > 0 {
            self.fail_starts -= 1;
            Err(ActorProcessingErr::from(
                "fault injection: directory start refused",
            ))
        } else {
            spawn_directory(&self.args, myself).await
        };
        match started {
            Ok(fresh) => {
                self.handle.current.store(Arc::new(fresh));
                self.down = false;
                self.args.metrics.directory_restarts.inc();
            }
            Err(e) => {
                self.args
                    .metrics
                    .restart_failures
                    .with_label_values(&["tenant_directory"])
                    .inc();
                let delay = self.policy.next_delay().max(MIN_RETRY);
                tracing::error!(error = %e, retry_in = ?delay, "tenant directory did not start; retrying");
                myself.send_after(delay, || DirectoryMessage::Respawn);
            }
        }
    }
}

impl Actor for DirectorySupervisor {
    type Msg = DirectoryMessage;
    type State = DirectoryState;
    type Arguments = DirectoryArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: DirectoryArgs,
    ) -> Result<DirectoryState, ActorProcessingErr> {
        // The first start must succeed: a node without its tenants cannot serve.
        let first = spawn_directory(&args, &myself).await?;
        Ok(DirectoryState {
            handle: Arc::new(DirectoryHandle {
                current: ArcSwap::from_pointee(first),
            }),
            args,
            policy: RestartPolicy::default(),
            down: false,
            fail_starts: 0,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: DirectoryMessage,
        state: &mut DirectoryState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            DirectoryMessage::GetHandle(reply) => {
                let _ = reply.send(state.handle.clone());
            }
            DirectoryMessage::Respawn => state.respawn(&myself).await,
            DirectoryMessage::FailStarts(n, reply) => {
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
        state: &mut DirectoryState,
    ) -> Result<(), ActorProcessingErr> {
        let Some(dead) = dead_child(&event, "tenant directory") else {
            return Ok(());
        };
        if state.handle.current().get_id() != dead {
            return Ok(());
        }
        state.down = true;
        let delay = state.policy.next_delay();
        if delay.is_zero() {
            state.respawn(&myself).await;
        } else {
            tracing::warn!(delay = ?delay, "tenant directory restarting often: backing off");
            myself.send_after(delay, || DirectoryMessage::Respawn);
        }
        Ok(())
    }
}

/// Starts the supervisor and the directory (which loads the snapshot before this returns).
pub async fn start(
    args: DirectoryArgs,
) -> Result<(ActorRef<DirectoryMessage>, Arc<DirectoryHandle>), DomainError> {
    let (sup, _) = Actor::spawn(None, DirectorySupervisor, args)
        .await
        .map_err(|e| DomainError::Internal(format!("cannot start tenant directory: {e}")))?;
    match sup
        .call(DirectoryMessage::GetHandle, Some(Duration::from_secs(5)))
        .await
    {
        Ok(ractor::rpc::CallResult::Success(handle)) => Ok((sup, handle)),
        _ => Err(DomainError::Internal(
            "tenant directory supervisor did not answer".into(),
        )),
    }
}
