//! A session shard: the single writer of its sessions and the owner of its rate-limit
//! buckets. It caches the compact `SessionState` of its sessions (loaded from the store on a
//! miss, so a restarted shard simply starts cold) and serialises every change of a session it
//! owns, so concurrent refreshes on this node can never fork a session; the store's
//! compare-and-set covers other nodes. Changes read the full record from the store first:
//! they write it back, and the cache keeps only what request paths read.

use std::collections::HashMap;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use uuid::Uuid;

use crate::error::DomainError;
use crate::metrics::EngineMetrics;
use crate::model::{Session, SessionState, UnixSecs};
use crate::ratelimit::{Buckets, LimitCheck, Refused};
use crate::store::Store;

/// What a refresh asks of the shard; the MAC of the presented token is already verified.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RefreshRequest {
    pub session_id: Uuid,
    pub project_id: Uuid,
    /// Counter of the presented refresh token.
    pub counter: u64,
    pub device_id: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub access_ttl_s: u32,
    pub refresh_ttl_s: u32,
    pub grace_s: u32,
    pub now: UnixSecs,
}

#[derive(Clone, Debug)]
pub enum RefreshOutcome {
    /// The counter moved: new tokens.
    Rotated(Box<Session>),
    /// The immediately previous token inside the grace window: the already issued successor.
    Replayed(Box<Session>),
    /// Reuse of an older token: the session is now revoked.
    TheftDetected,
}

pub type Reply<T> = RpcReplyPort<Result<T, DomainError>>;

/// Whether this node owns a routing key, as of the ring that was just published.
pub type Owned = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

pub enum ShardMessage {
    Get {
        session_id: Uuid,
        /// Also hand out the external id (Bearer paths); introspection does not need it.
        with_user: bool,
        /// The presented token's counter: a cached copy behind it is stale, not a theft.
        min_counter: u64,
        reply: Reply<Option<SessionState>>,
    },
    GetMany {
        sessions: Vec<(Uuid, u64)>,
        reply: Reply<Vec<Option<SessionState>>>,
    },
    /// Warms the cache with a session just written to the store by its creator. A new
    /// session id has no other writer, so creation needs no turn in the mailbox: the store
    /// write (an fsync, or a quorum round trip) must not hold up this shard's introspections.
    Cache { session: Box<Session> },
    Refresh {
        request: Box<RefreshRequest>,
        reply: Reply<RefreshOutcome>,
    },
    /// Revokes the session if it is live; answers whether it was.
    Revoke {
        session_id: Uuid,
        now: UnixSecs,
        reply: Reply<bool>,
    },
    /// Draws from every listed bucket; all buckets of one request live in this shard.
    Limit {
        route: Vec<u8>,
        checks: Vec<LimitCheck>,
        reply: RpcReplyPort<Result<(), Refused>>,
    },
    /// Periodic housekeeping: drop refilled buckets and expired cache entries.
    Tick { now: UnixSecs },
    /// Ownership changed: forget cached sessions and buckets whose routing key this node no
    /// longer owns (all of them when it is fenced); their new owner loads from the store.
    Retain { owned: Owned },
    /// Fault injection (only reachable when the node enables it): panics mid-request.
    Crash { reply: Reply<()> },
}

/// A cached session, stored inline in the shard's map: no allocation of its own but the
/// external id (≈ 120 bytes plus the map's slack, against ~500 for the full record).
struct Cached {
    project_id: Uuid,
    end_user_id: Uuid,
    counter: u64,
    rotated_at: UnixSecs,
    access_expires_at: UnixSecs,
    prev_access_expires_at: UnixSecs,
    refresh_expires_at: UnixSecs,
    absolute_expires_at: UnixSecs,
    key: u16,
    revoked: bool,
    external_id: Box<str>,
}

impl Cached {
    fn expires_at(&self) -> UnixSecs {
        crate::model::expiry(
            self.access_expires_at,
            self.refresh_expires_at,
            self.absolute_expires_at,
        )
    }
}

/// Immutable configuration of one shard.
pub struct SessionShard;

pub struct ShardArgs {
    pub index: usize,
    pub store: Arc<dyn Store>,
    pub metrics: EngineMetrics,
    /// Sessions cached at most; past it an arbitrary entry is dropped (it reloads on demand).
    pub cache_capacity: usize,
}

pub struct ShardState {
    label: String,
    store: Arc<dyn Store>,
    metrics: EngineMetrics,
    cache: HashMap<Uuid, Cached>,
    /// Key ids are few: cached sessions refer to them by index.
    key_ids: Vec<Arc<str>>,
    cache_capacity: usize,
    buckets: Buckets,
}

impl ShardState {
    fn key_index(&mut self, key_id: &str) -> u16 {
        if let Some(i) = self.key_ids.iter().position(|k| &**k == key_id) {
            return i as u16;
        }
        self.key_ids.push(key_id.into());
        // Key ids come from the server-secret file: a handful, never 65,536.
        (self.key_ids.len() - 1).min(usize::from(u16::MAX)) as u16
    }

    fn cache_put(&mut self, s: &Session) {
        if self.cache.len() >= self.cache_capacity && !self.cache.contains_key(&s.id) {
            if let Some(victim) = self.cache.keys().next().copied() {
                self.cache.remove(&victim);
            }
        }
        let key = self.key_index(&s.key_id);
        self.cache.insert(
            s.id,
            Cached {
                project_id: s.project_id,
                end_user_id: s.end_user_id,
                counter: s.counter,
                rotated_at: s.rotated_at,
                access_expires_at: s.access_expires_at,
                prev_access_expires_at: s.prev_access_expires_at,
                refresh_expires_at: s.refresh_expires_at,
                absolute_expires_at: s.absolute_expires_at,
                key,
                revoked: s.revoked_at.is_some(),
                external_id: s.external_id.as_str().into(),
            },
        );
    }

    fn view(&self, id: Uuid, c: &Cached, with_user: bool) -> SessionState {
        SessionState {
            id,
            project_id: c.project_id,
            end_user_id: c.end_user_id,
            external_id: if with_user {
                c.external_id.clone()
            } else {
                Box::default()
            },
            key_id: self
                .key_ids
                .get(usize::from(c.key))
                .cloned()
                .unwrap_or_else(|| Arc::from("")),
            counter: c.counter,
            rotated_at: c.rotated_at,
            access_expires_at: c.access_expires_at,
            prev_access_expires_at: c.prev_access_expires_at,
            refresh_expires_at: c.refresh_expires_at,
            absolute_expires_at: c.absolute_expires_at,
            revoked: c.revoked,
        }
    }

    fn publish_size(&self) {
        self.metrics
            .sessions_cached
            .with_label_values(&[&self.label])
            .set(self.cache.len() as i64);
    }

    async fn state(
        &mut self,
        id: Uuid,
        with_user: bool,
        min_counter: u64,
    ) -> Result<Option<SessionState>, DomainError> {
        if let Some(c) = self.cache.get(&id) {
            if c.counter >= min_counter {
                return Ok(Some(self.view(id, c, with_user)));
            }
        }
        match self.store.get_session(id).await? {
            Some(s) => {
                self.cache_put(&s);
                Ok(self.cache.get(&id).map(|c| self.view(id, c, with_user)))
            }
            None => Ok(None),
        }
    }

    /// The full record, always from the store: a change writes it back whole.
    async fn record(&mut self, id: Uuid) -> Result<Option<Session>, DomainError> {
        let found = self.store.get_session(id).await?;
        match &found {
            Some(s) => {
                self.cache_put(s);
            }
            None => {
                self.cache.remove(&id);
            }
        }
        Ok(found)
    }

    /// Writes `next` over `current` with compare-and-set; on a lost race (another node wrote)
    /// the caller reads again and decides again.
    async fn cas(
        &mut self,
        current: &Session,
        next: Session,
    ) -> Result<Option<Session>, DomainError> {
        if self.store.cas_session(&next, current.version).await? {
            self.cache_put(&next);
            Ok(Some(next))
        } else {
            self.cache.remove(&current.id);
            Ok(None)
        }
    }

    async fn refresh(&mut self, r: &RefreshRequest) -> Result<RefreshOutcome, DomainError> {
        // A lost compare-and-set means another node changed the session: reload and decide
        // again. Three rounds are plenty; each loss is a real concurrent change.
        for _ in 0..3 {
            let Some(current) = self.record(r.session_id).await? else {
                return Err(DomainError::InvalidRefreshToken);
            };
            if current.project_id != r.project_id || !current.is_live(r.now) {
                return Err(DomainError::InvalidRefreshToken);
            }
            // Another device presenting the token is not proof of theft: plain refusal.
            if current.device_id != r.device_id {
                return Err(DomainError::InvalidRefreshToken);
            }
            if r.counter == current.counter {
                let mut next = current.clone();
                next.counter += 1;
                next.rotated_at = r.now;
                next.prev_access_expires_at = current.access_expires_at;
                next.access_expires_at =
                    (r.now + i64::from(r.access_ttl_s)).min(current.absolute_expires_at);
                next.refresh_expires_at =
                    (r.now + i64::from(r.refresh_ttl_s)).min(current.absolute_expires_at);
                next.last_used_at = r.now;
                if r.ip.is_some() {
                    next.ip.clone_from(&r.ip);
                }
                if r.user_agent.is_some() {
                    next.user_agent.clone_from(&r.user_agent);
                }
                next.version += 1;
                match self.cas(&current, next).await? {
                    Some(s) => return Ok(RefreshOutcome::Rotated(Box::new(s))),
                    None => continue,
                }
            }
            if r.counter + 1 == current.counter
                && r.grace_s > 0
                && r.now < current.rotated_at + i64::from(r.grace_s)
            {
                return Ok(RefreshOutcome::Replayed(Box::new(current)));
            }
            if r.counter < current.counter {
                let mut next = current.clone();
                next.revoked_at = Some(r.now);
                next.version += 1;
                match self.cas(&current, next).await? {
                    Some(_) => return Ok(RefreshOutcome::TheftDetected),
                    None => continue,
                }
            }
            // A counter ahead of the store cannot come from us with a valid MAC unless the
            // store lost a write; refuse rather than guess.
            return Err(DomainError::InvalidRefreshToken);
        }
        Err(DomainError::unavailable("session write contention"))
    }

    async fn revoke(&mut self, id: Uuid, now: UnixSecs) -> Result<bool, DomainError> {
        for _ in 0..3 {
            let Some(current) = self.record(id).await? else {
                return Ok(false);
            };
            if current.revoked_at.is_some() {
                return Ok(false);
            }
            let mut next = current.clone();
            next.revoked_at = Some(now);
            next.version += 1;
            if self.cas(&current, next).await?.is_some() {
                return Ok(true);
            }
        }
        Err(DomainError::unavailable("session write contention"))
    }
}

fn answer<T>(reply: RpcReplyPort<T>, value: T) {
    // The caller may have timed out and gone; that is its business, not a shard failure.
    if reply.send(value).is_err() {
        tracing::debug!("shard reply dropped: caller gone");
    }
}

impl Actor for SessionShard {
    type Msg = ShardMessage;
    type State = ShardState;
    type Arguments = ShardArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: ShardArgs,
    ) -> Result<ShardState, ActorProcessingErr> {
        let state = ShardState {
            label: args.index.to_string(),
            store: args.store,
            metrics: args.metrics,
            cache: HashMap::new(),
            key_ids: Vec::new(),
            cache_capacity: args.cache_capacity.max(1),
            buckets: Buckets::default(),
        };
        state.publish_size();
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: ShardMessage,
        state: &mut ShardState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ShardMessage::Get {
                session_id,
                with_user,
                min_counter,
                reply,
            } => {
                let out = state.state(session_id, with_user, min_counter).await;
                answer(reply, out);
            }
            ShardMessage::GetMany { sessions, reply } => {
                let mut out = Vec::with_capacity(sessions.len());
                let mut failed = None;
                for (id, min_counter) in sessions {
                    match state.state(id, false, min_counter).await {
                        Ok(s) => out.push(s),
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                answer(reply, failed.map_or(Ok(out), Err));
            }
            ShardMessage::Cache { session } => {
                // Only if nothing newer was cached meanwhile (a refresh can already have run).
                if !state.cache.contains_key(&session.id) {
                    state.cache_put(&session);
                }
            }
            ShardMessage::Refresh { request, reply } => {
                let out = state.refresh(&request).await;
                answer(reply, out);
            }
            ShardMessage::Revoke {
                session_id,
                now,
                reply,
            } => {
                let out = state.revoke(session_id, now).await;
                answer(reply, out);
            }
            ShardMessage::Limit {
                route,
                checks,
                reply,
            } => {
                let out = state.buckets.check_all(&route, &checks);
                answer(reply, out);
            }
            ShardMessage::Retain { owned } => {
                state
                    .cache
                    .retain(|id, _| owned(&crate::routing::session_key(*id)));
                state.buckets.retain_routes(&*owned);
                state.publish_size();
            }
            ShardMessage::Tick { now } => {
                state.buckets.purge_idle();
                state.cache.retain(|_, s| s.expires_at() > now);
                state.publish_size();
            }
            ShardMessage::Crash { reply } => {
                // Dropping the reply after the panic is exactly what an in-flight caller sees
                // when a shard dies: it must get a clean 503.
                let _keep = reply;
                panic!("fault injection: shard crash requested");
            }
        }
        Ok(())
    }
}
