//! The membership worker: one task per node that renews this node's heartbeat, reads every
//! member's heartbeat and the ring record, changes the ring by conditional writes (a joining
//! node adds itself, a leaving node removes itself, the lowest live owner removes owners whose
//! heartbeat stopped advancing), publishes the ring, and fences this node when its lease lapses.
//!
//! Safety of a takeover rests on two clocks that never compare wall time: this node's lease
//! runs from the *start* of a renewal that succeeded, and a peer removes it only after seeing
//! no advance of its beat for lease + poll on the peer's own monotonic clock, measured from
//! the first time the peer saw the last beat (which was written after that renewal started).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use commonrock_actors::store::members::{Heartbeat, MemberStatus, MemberStore, RingRecord};
use commonrock_actors::store::StoreError;
use prometheus::{IntCounter, IntGauge, Registry};
use tokio::task::JoinHandle;

use crate::membership::{Member, Membership, View};
use crate::ring::{NodeId, Ring};

/// How a node takes part in the cluster.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub node_id: String,
    /// `host:port` peers dial for this node's cluster listener.
    pub advertise: String,
    /// The ring's name: nodes with another server secret get another ring.
    pub cluster: String,
    /// Published in heartbeats so nodes with another secret are recognised and reported.
    pub fingerprint: String,
    pub lease: Duration,
    pub poll: Duration,
    pub vnodes: u32,
}

impl WorkerConfig {
    /// Seconds a heartbeat row outlives its last renewal: only clean-up, never liveness.
    fn heartbeat_ttl_s(&self) -> u32 {
        (self.lease.as_secs() as u32 * 3).max(10)
    }

    /// How long a peer's beat may stand still before it is taken over.
    fn takeover_after(&self) -> Duration {
        self.lease + self.poll
    }
}

/// Cluster metrics (members, epoch, fencing); forwards are counted by the engine.
#[derive(Clone)]
pub struct ClusterMetrics {
    pub members: IntGauge,
    pub epoch: IntGauge,
    pub fenced: IntGauge,
    pub fencings: IntCounter,
    pub ring_changes: IntCounter,
    pub foreign_nodes: IntGauge,
}

impl ClusterMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = ClusterMetrics {
            members: IntGauge::new(
                "commonrock_cluster_members",
                "live members of this node's cluster (same secret, heartbeat advancing)",
            )?,
            epoch: IntGauge::new("commonrock_cluster_epoch", "ring epoch this node routes by")?,
            fenced: IntGauge::new(
                "commonrock_cluster_fenced",
                "1 while this node may not answer as owner (lease lapsed or not joined)",
            )?,
            fencings: IntCounter::new(
                "commonrock_cluster_fencings_total",
                "times this node's lease lapsed and it fenced itself",
            )?,
            ring_changes: IntCounter::new(
                "commonrock_cluster_ring_changes_total",
                "ring epochs this node has applied",
            )?,
            foreign_nodes: IntGauge::new(
                "commonrock_cluster_foreign_nodes",
                "nodes in this keyspace with another server secret (refused)",
            )?,
        };
        registry.register(Box::new(m.members.clone()))?;
        registry.register(Box::new(m.epoch.clone()))?;
        registry.register(Box::new(m.fenced.clone()))?;
        registry.register(Box::new(m.fencings.clone()))?;
        registry.register(Box::new(m.ring_changes.clone()))?;
        registry.register(Box::new(m.foreign_nodes.clone()))?;
        Ok(m)
    }
}

/// Called after the ring changed or the node was fenced (the engine drops what it lost).
pub type OnChange = Arc<dyn Fn() + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error(
        "node id {0:?} is already live in this keyspace (its heartbeat advances): give this \
         node another --node-id, or stop the other one"
    )]
    DuplicateNodeId(String),
    #[error("cannot reach the membership tables: {0}")]
    Store(#[from] StoreError),
}

/// What the worker knows of one peer's heartbeat.
struct Observed {
    generation: u64,
    beat: u64,
    /// When this node first saw the current (generation, beat), on its own monotonic clock.
    since: Instant,
    heartbeat: Heartbeat,
}

struct Shared {
    status: Mutex<MemberStatus>,
}

/// The running worker: leave the ring, then stop.
pub struct WorkerHandle {
    shared: Arc<Shared>,
    membership: Arc<Membership>,
    task: JoinHandle<()>,
    store: Arc<dyn MemberStore>,
    config: WorkerConfig,
}

struct Worker {
    store: Arc<dyn MemberStore>,
    membership: Arc<Membership>,
    config: WorkerConfig,
    metrics: ClusterMetrics,
    on_change: OnChange,
    shared: Arc<Shared>,
    generation: u64,
    beat: u64,
    observed: HashMap<String, Observed>,
    /// Owners without any heartbeat row, since when (this node's clock).
    absent_since: HashMap<String, Instant>,
    reported_foreign: HashSet<(String, u64)>,
    last_error_log: Option<Instant>,
}

/// Starts the worker: refuses a node id that is live elsewhere, then joins in the background.
pub async fn start(
    store: Arc<dyn MemberStore>,
    membership: Arc<Membership>,
    config: WorkerConfig,
    metrics: ClusterMetrics,
    on_change: OnChange,
) -> Result<WorkerHandle, JoinError> {
    refuse_duplicate(&*store, &config).await?;
    let shared = Arc::new(Shared {
        status: Mutex::new(MemberStatus::Joining),
    });
    let worker = Worker {
        store: store.clone(),
        membership: membership.clone(),
        config: config.clone(),
        metrics,
        on_change,
        shared: shared.clone(),
        generation: random_u64(),
        beat: 0,
        observed: HashMap::new(),
        absent_since: HashMap::new(),
        reported_foreign: HashSet::new(),
        last_error_log: None,
    };
    let task = tokio::spawn(worker.run());
    Ok(WorkerHandle {
        shared,
        membership,
        task,
        store,
        config,
    })
}

/// A row with this node's id whose beat advances within a takeover window belongs to a live
/// process: two nodes with one id would both believe they own its keys.
async fn refuse_duplicate(store: &dyn MemberStore, config: &WorkerConfig) -> Result<(), JoinError> {
    let mine = |rows: Vec<Heartbeat>| rows.into_iter().find(|h| h.node_id == config.node_id);
    let Some(first) = mine(store.list_heartbeats().await?) else {
        return Ok(());
    };
    if first.status == MemberStatus::Leaving {
        // A clean stop that did not get to delete its row: the old process is gone or going.
        tracing::info!(node_id = %config.node_id, "previous run of this node id left; rejoining");
    }
    tracing::info!(
        node_id = %config.node_id,
        wait_ms = config.takeover_after().as_millis() as u64,
        "a heartbeat with this node id exists: waiting to see whether it is still live"
    );
    let deadline = Instant::now() + config.takeover_after() + config.poll;
    while Instant::now() < deadline {
        tokio::time::sleep(config.poll).await;
        match mine(store.list_heartbeats().await?) {
            None => return Ok(()),
            Some(h) if h.generation != first.generation || h.beat != first.beat => {
                return Err(JoinError::DuplicateNodeId(config.node_id.clone()));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // The generation only tells two runs apart; a failed OS RNG falls back to the clock.
    if getrandom::fill(&mut b).is_err() {
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
    }
    u64::from_le_bytes(b)
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Worker {
    async fn run(mut self) {
        let mut every = tokio::time::interval(self.config.poll);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = self.membership.poked() => {}
            }
            self.cycle().await;
        }
    }

    fn status(&self) -> MemberStatus {
        *self.shared.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One poll: fence if the lease lapsed, read, change the ring if needed, renew, publish.
    async fn cycle(&mut self) {
        if self.membership.lease_lapsed() && self.membership.fence() {
            self.metrics.fencings.inc();
            self.metrics.fenced.set(1);
            tracing::warn!(
                node_id = %self.config.node_id,
                "lease lapsed: not answering as owner until the membership is read again"
            );
            (self.on_change)();
        }
        let started = Instant::now();
        // The ring first: every owner in it wrote a heartbeat before joining it (see
        // `change_ring`), so the heartbeats read next hold an address for each owner.
        let read = async {
            let ring = self.store.get_ring(&self.config.cluster).await?;
            let rows = self.store.list_heartbeats().await?;
            Ok::<_, StoreError>((rows, ring))
        };
        let (rows, ring) = match read.await {
            Ok(r) => r,
            Err(e) => return self.failed("read", e),
        };
        self.observe(rows, started);
        let mut ring = ring.unwrap_or_default();
        match self.change_ring(&ring).await {
            Ok(Some(next)) => ring = next,
            Ok(None) => {}
            Err(e) => return self.failed("ring change", e),
        }
        let settled_before = self.membership.view().settled;
        let status = self.reported_status(&ring, settled_before);
        self.beat += 1;
        let heartbeat = Heartbeat {
            node_id: self.config.node_id.clone(),
            advertise: self.config.advertise.clone(),
            status,
            generation: self.generation,
            beat: self.beat,
            seen_epoch: ring.epoch,
            secret_fingerprint: self.config.fingerprint.clone(),
            wall_ms: wall_ms(),
        };
        if let Err(e) = self
            .store
            .put_heartbeat(&heartbeat, self.config.heartbeat_ttl_s())
            .await
        {
            return self.failed("heartbeat", e);
        }
        self.observed.insert(
            heartbeat.node_id.clone(),
            Observed {
                generation: heartbeat.generation,
                beat: heartbeat.beat,
                since: started,
                heartbeat,
            },
        );
        self.membership.renew_lease(started + self.config.lease);
        self.publish(&ring);
        self.membership.unfence();
        self.metrics
            .fenced
            .set(i64::from(self.membership.is_fenced()));
    }

    fn failed(&mut self, what: &'static str, e: StoreError) {
        // One line per few seconds: a store outage must not flood the log.
        let now = Instant::now();
        if self
            .last_error_log
            .is_none_or(|t| now.duration_since(t) > Duration::from_secs(5))
        {
            self.last_error_log = Some(now);
            tracing::warn!(error = %e, what, "membership poll failed; the lease runs out unless the next one succeeds");
        }
    }

    /// Records every heartbeat; reports nodes with another secret once per run of theirs.
    fn observe(&mut self, rows: Vec<Heartbeat>, now: Instant) {
        let mut seen = HashSet::new();
        let mut foreign = 0;
        for hb in rows {
            if hb.secret_fingerprint != self.config.fingerprint {
                foreign += 1;
                if self
                    .reported_foreign
                    .insert((hb.node_id.clone(), hb.generation))
                {
                    tracing::error!(
                        peer = %hb.node_id,
                        advertise = %hb.advertise,
                        "a node in this keyspace uses another server secret: it is refused and never shares this ring; give every node the same --secret-file"
                    );
                }
                continue;
            }
            seen.insert(hb.node_id.clone());
            if hb.node_id == self.config.node_id && hb.generation == self.generation {
                continue;
            }
            match self.observed.get_mut(&hb.node_id) {
                Some(o) if o.generation == hb.generation && o.beat == hb.beat => {
                    o.heartbeat = hb;
                }
                _ => {
                    self.observed.insert(
                        hb.node_id.clone(),
                        Observed {
                            generation: hb.generation,
                            beat: hb.beat,
                            since: now,
                            heartbeat: hb,
                        },
                    );
                }
            }
        }
        self.metrics.foreign_nodes.set(foreign);
        let me = &self.config.node_id;
        self.observed.retain(|id, _| seen.contains(id) || id == me);
    }

    fn live(&self, node: &str, now: Instant) -> bool {
        if node == self.config.node_id {
            return true;
        }
        self.observed
            .get(node)
            .is_some_and(|o| now.duration_since(o.since) <= self.config.takeover_after())
    }

    /// The owners whose beat has stood still (or whose row is gone) for a takeover window.
    fn dead_owners(&mut self, ring: &RingRecord, now: Instant) -> Vec<String> {
        let takeover = self.config.takeover_after();
        let mut dead = Vec::new();
        for owner in &ring.owners {
            if self.observed.contains_key(owner) {
                self.absent_since.remove(owner);
                if !self.live(owner, now) {
                    dead.push(owner.clone());
                }
            } else {
                let since = *self.absent_since.entry(owner.clone()).or_insert(now);
                if now.duration_since(since) > takeover {
                    dead.push(owner.clone());
                }
            }
        }
        let owners: HashSet<&String> = ring.owners.iter().collect();
        self.absent_since.retain(|id, _| owners.contains(id));
        dead
    }

    /// The ring this node wants, if it differs from `ring`; written by a conditional write.
    async fn change_ring(&mut self, ring: &RingRecord) -> Result<Option<RingRecord>, StoreError> {
        let me = self.config.node_id.clone();
        let now = Instant::now();
        let leaving = self.status() == MemberStatus::Leaving;
        let mut owners: Vec<String> = ring.owners.clone();
        let in_ring = owners.contains(&me);
        if leaving {
            owners.retain(|o| *o != me);
        } else if !in_ring && self.beat > 0 {
            // Only after a first heartbeat: peers that see this node in the ring must find
            // its address among the heartbeats.
            owners.push(me.clone());
        }
        // Only the lowest live owner removes dead ones, so peers do not race to do it.
        let dead = self.dead_owners(ring, now);
        let coordinator = ring
            .owners
            .iter()
            .filter(|o| self.live(o, now) && !dead.contains(o))
            .min();
        if in_ring && coordinator == Some(&me) && !self.membership.is_fenced() {
            owners.retain(|o| !dead.contains(o));
        }
        owners.sort();
        owners.dedup();
        if owners == ring.owners {
            return Ok(None);
        }
        let next = RingRecord {
            epoch: ring.epoch + 1,
            owners,
        };
        let expected = (ring.epoch > 0).then_some(ring.epoch);
        if self
            .store
            .cas_ring(&self.config.cluster, expected, &next)
            .await?
        {
            tracing::info!(
                epoch = next.epoch,
                owners = ?next.owners,
                removed_dead = ?dead,
                "ring changed"
            );
            Ok(Some(next))
        } else {
            // Another node changed it first: read again next cycle.
            Ok(None)
        }
    }

    fn reported_status(&self, ring: &RingRecord, settled: bool) -> MemberStatus {
        match self.status() {
            MemberStatus::Leaving => MemberStatus::Leaving,
            _ if ring.owners.contains(&self.config.node_id)
                && settled
                && self.membership.epoch() == ring.epoch =>
            {
                MemberStatus::Up
            }
            _ => MemberStatus::Joining,
        }
    }

    /// Publishes `ring` (a new epoch resets "settled"), settles it once every live member
    /// reports it, and refreshes the member list.
    fn publish(&mut self, ring: &RingRecord) {
        let now = Instant::now();
        let current = self.membership.view_arc();
        let live: Vec<&Observed> = self
            .observed
            .iter()
            .filter(|(id, _)| self.live(id, now))
            .map(|(_, o)| o)
            .collect();
        // Addresses first: a caller woken by the new epoch must be able to dial every owner.
        let mut members: Vec<Member> = live
            .iter()
            .map(|o| Member {
                node_id: o.heartbeat.node_id.clone(),
                advertise: o.heartbeat.advertise.clone(),
                status: o.heartbeat.status,
                last_heartbeat_ms: o.heartbeat.wall_ms,
            })
            .collect();
        members.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        self.metrics.members.set(members.len() as i64);
        self.membership.set_members(members);
        let settled = live.iter().all(|o| o.heartbeat.seen_epoch >= ring.epoch);
        let changed = current.epoch != ring.epoch;
        if changed || settled != current.settled {
            let ring_now = if changed {
                // The vnode count was validated at start, so building cannot fail.
                Ring::new(
                    ring.owners.iter().map(|o| NodeId::new(o.clone())),
                    self.config.vnodes,
                )
                .unwrap_or_else(|_| current.ring.clone())
            } else {
                current.ring.clone()
            };
            let stable = if settled {
                ring_now.clone()
            } else if current.settled {
                current.ring.clone()
            } else {
                current.stable.clone()
            };
            self.membership.publish(View {
                epoch: ring.epoch,
                ring: ring_now,
                stable,
                settled,
            });
            if changed {
                self.metrics.ring_changes.inc();
                self.metrics.epoch.set(ring.epoch as i64);
                (self.on_change)();
            }
        }
    }
}

impl WorkerHandle {
    /// Leaves the ring (SPEC §9): marks this node leaving, removes it from the owners, and
    /// waits until every live member routes by a ring without it, so no peer forwards here
    /// any more. Bounded by `timeout`; true when the leave completed.
    pub async fn leave(&self, timeout: Duration) -> bool {
        *self.shared.status.lock().unwrap_or_else(|p| p.into_inner()) = MemberStatus::Leaving;
        let me = NodeId::new(self.config.node_id.clone());
        self.membership
            .wait_for(timeout, |m| {
                let v = m.view();
                !v.ring.contains(&me) && v.settled
            })
            .await
    }

    /// Stops the worker and deletes this node's heartbeat, so a restart with the same id
    /// rejoins without waiting for the row to lapse.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        if let Err(e) = self.store.delete_heartbeat(&self.config.node_id).await {
            tracing::warn!(error = %e, "could not delete this node's heartbeat; it expires by itself");
        }
    }
}
