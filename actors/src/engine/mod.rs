//! The engine: what the HTTP layer calls. It owns no state itself; it routes each operation
//! to the actor that owns the key (a session shard or the tenant directory), runs Argon2 on
//! the bounded pool, and reads tenant configuration from the published snapshot.

mod admin;
mod introspect;
mod owner;
pub mod portal;
mod sessions;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use ractor::rpc::CallResult;
use ractor::ActorRef;

use crate::crypto::password::PasswordPool;
use crate::crypto::tokens::ServerSecrets;
use crate::directory::{self, DirectoryArgs, DirectoryHandle, DirectoryMessage};
use crate::error::DomainError;
use crate::metrics::EngineMetrics;
use crate::model::{SessionState, UnixSecs};
use crate::owner::{Forwarder, KeyRouter, OwnerCall, OwnerReply};
use crate::shard::ShardMessage;
use crate::shards::{self, ShardSet, SupervisorArgs, SupervisorMessage};
use crate::store::timed::TimedStore;
use crate::store::Store;
use crate::tenant::{Applied, Change, TenantMessage, TenantSnapshot};

pub use introspect::Active;
pub use owner::node_share;
pub use sessions::{Caller, Credentials, Issued};

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub shards: usize,
    /// Sessions cached per node, split evenly over the shards.
    pub session_cache: usize,
    pub argon2_threads: usize,
    pub argon2_queue: usize,
    pub store_timeout: Duration,
    /// Deadline of an actor call; above the store timeout so a slow store surfaces as such.
    pub call_timeout: Duration,
    /// Portal sessions: the idle timeout and the absolute lifetime, in seconds.
    pub portal_idle_s: u32,
    pub portal_lifetime_s: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            shards: 8,
            session_cache: 1_000_000,
            argon2_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            argon2_queue: 4096,
            store_timeout: Duration::from_secs(2),
            call_timeout: Duration::from_millis(2500),
            portal_idle_s: portal::IDLE_TIMEOUT_S,
            portal_lifetime_s: portal::ABSOLUTE_TIMEOUT_S,
        }
    }
}

pub struct Engine {
    store: Arc<dyn Store>,
    secrets: ServerSecrets,
    passwords: PasswordPool,
    shards: Arc<ShardSet>,
    router: Arc<dyn KeyRouter>,
    forwarder: Arc<dyn Forwarder>,
    capacity: owner::CapacityBuckets,
    tenants: Arc<ArcSwap<TenantSnapshot>>,
    directory: Arc<DirectoryHandle>,
    directory_supervisor: ActorRef<DirectoryMessage>,
    supervisor: ActorRef<SupervisorMessage>,
    metrics: EngineMetrics,
    call_timeout: Duration,
    /// The portal's own project: its settings are the portal sessions' rules.
    portal: crate::tenant::ProjectView,
}

pub fn now() -> UnixSecs {
    chrono::Utc::now().timestamp()
}

impl Engine {
    pub async fn start(
        config: EngineConfig,
        store: Arc<dyn Store>,
        secrets: ServerSecrets,
        router: Arc<dyn KeyRouter>,
        forwarder: Arc<dyn Forwarder>,
        metrics: EngineMetrics,
    ) -> Result<Arc<Engine>, DomainError> {
        let store: Arc<dyn Store> = Arc::new(TimedStore::new(
            store,
            config.store_timeout,
            metrics.clone(),
        ));
        let passwords =
            PasswordPool::start(config.argon2_threads, config.argon2_queue, metrics.clone())?;
        let tenants = Arc::new(ArcSwap::from_pointee(TenantSnapshot::default()));
        let (directory_supervisor, directory) = directory::start(DirectoryArgs {
            store: store.clone(),
            snapshot: tenants.clone(),
            metrics: metrics.clone(),
        })
        .await?;
        let (supervisor, shards) = shards::start(SupervisorArgs {
            shards: config.shards,
            store: store.clone(),
            metrics: metrics.clone(),
            cache_capacity: config.session_cache,
            call_timeout: config.call_timeout,
        })
        .await?;
        Ok(Arc::new(Engine {
            store,
            secrets,
            passwords,
            shards,
            router,
            forwarder,
            capacity: owner::CapacityBuckets::new(),
            tenants,
            directory,
            directory_supervisor,
            portal: portal::portal_project(config.portal_idle_s, config.portal_lifetime_s),
            supervisor,
            metrics,
            call_timeout: config.call_timeout,
        }))
    }

    /// The current tenant configuration; request paths read it without a message hop.
    pub fn tenants(&self) -> arc_swap::Guard<Arc<TenantSnapshot>> {
        self.tenants.load()
    }

    pub fn metrics(&self) -> &EngineMetrics {
        &self.metrics
    }

    pub fn store_kind(&self) -> &'static str {
        self.store.kind()
    }

    pub async fn ping_store(&self) -> Result<(), DomainError> {
        Ok(self.store.ping().await?)
    }

    /// Placement of keys and the state of this node's ownership.
    pub fn router(&self) -> &Arc<dyn KeyRouter> {
        &self.router
    }

    /// Applies a tenant-configuration change through its owner actor.
    pub async fn apply(&self, change: Change) -> Result<Applied, DomainError> {
        let out = self
            .directory
            .current()
            .call(
                |reply| TenantMessage::Apply {
                    change,
                    now: now(),
                    reply,
                },
                Some(self.call_timeout * 2),
            )
            .await;
        match out {
            Ok(CallResult::Success(r)) => r,
            Ok(CallResult::Timeout) => Err(DomainError::unavailable("tenant directory timed out")),
            _ => Err(DomainError::unavailable("tenant directory unavailable")),
        }
    }

    /// Periodic housekeeping (rate-limit buckets, cache expiry); call every few seconds.
    pub fn tick(&self) {
        let now = now();
        self.shards.cast_all(|| ShardMessage::Tick { now });
        self.capacity.purge_idle();
    }

    /// Asks the tenant directory to reload if another node changed tenant configuration;
    /// call about once a second (one single-row read when nothing changed).
    pub fn poll_tenants(&self) {
        // A full mailbox or a restarting directory skips one poll; the next one catches up.
        let _ = self.directory.current().send_message(TenantMessage::Poll);
    }

    /// Fault injection: makes shard `index` panic while answering; returns what the caller
    /// of a crashed shard sees.
    pub async fn crash_shard(&self, index: usize) -> Result<(), DomainError> {
        if index >= self.shards.len() {
            return Err(DomainError::NotFound("shard"));
        }
        self.shards
            .call(index, |reply| ShardMessage::Crash { reply })
            .await?
    }

    /// Fault injection: makes the tenant directory panic while answering, after arranging
    /// that its next `fail_starts` starts fail too.
    pub async fn crash_directory(&self, fail_starts: u32) -> Result<(), DomainError> {
        // A call, not a cast: the supervisor must know before the crash it is about to see.
        self.directory_supervisor
            .call(
                |reply| DirectoryMessage::FailStarts(fail_starts, reply),
                Some(self.call_timeout),
            )
            .await
            .map_err(|_| DomainError::unavailable("tenant directory supervisor"))?;
        match self
            .directory
            .current()
            .call(
                |reply| TenantMessage::Crash { reply },
                Some(self.call_timeout),
            )
            .await
        {
            Ok(CallResult::Success(())) => Ok(()),
            _ => Err(DomainError::unavailable("tenant directory crashed")),
        }
    }

    /// Fault injection: the next `n` shard starts fail (a restart then retries with backoff).
    pub async fn fail_shard_starts(&self, n: u32) -> Result<(), DomainError> {
        self.supervisor
            .call(
                |reply| SupervisorMessage::FailStarts(n, reply),
                Some(self.call_timeout),
            )
            .await
            .map(|_| ())
            .map_err(|_| DomainError::unavailable("shard supervisor"))
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Stops the actors (after HTTP has drained).
    pub fn stop(&self) {
        self.supervisor.stop(Some("shutdown".into()));
        self.directory_supervisor.stop(Some("shutdown".into()));
    }

    async fn get_session(
        &self,
        session_id: uuid::Uuid,
        with_user: bool,
        min_counter: u64,
    ) -> Result<Option<SessionState>, DomainError> {
        let call = OwnerCall::Get {
            session_id,
            with_user,
            min_counter,
        };
        match self.owner(&session_key(session_id), call).await? {
            OwnerReply::Session(s) => Ok(s),
            _ => Err(owner::mismatch()),
        }
    }

    pub(crate) fn security_event(&self, event: &'static str) {
        self.metrics
            .security_events
            .with_label_values(&[event])
            .inc();
    }
}

pub use crate::routing::{account_key, credential_key, ip_key, session_key};

/// SQL tables and definitions live in the row store, outside the tenant directory: a change
/// moves the configuration epoch all the same, so every node's compiled definitions go stale.
#[async_trait::async_trait]
impl crate::sql::compiled::SchemaAnnouncer for Engine {
    async fn announce(&self) {
        if let Err(e) = self.apply(crate::tenant::Change::SqlSchemaChanged).await {
            // Other nodes then keep compiled definitions until the next configuration change.
            self.security_event("sql_schema_announce_failed");
            tracing::error!(error = %e, "could not announce a SQL schema change to other nodes");
        }
    }
}
