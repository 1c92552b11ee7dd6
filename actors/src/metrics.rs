//! Engine metrics, registered once on the node's registry. Labels are low-cardinality
//! (operation, outcome, shard index): never a token, user or tenant id.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

#[derive(Clone)]
pub struct EngineMetrics {
    pub argon2_hashes: IntCounter,
    pub argon2_verifications: IntCounter,
    pub argon2_queue_depth: IntGauge,
    pub argon2_rejected: IntCounter,
    pub argon2_seconds: Histogram,
    pub sessions_cached: IntGaugeVec,
    pub shard_mailbox_depth: IntGaugeVec,
    pub shard_restarts: IntCounter,
    /// Tenant-directory actors restarted by their supervisor.
    pub directory_restarts: IntCounter,
    /// Actor starts that failed during a restart (retried after a backoff), by actor kind.
    pub restart_failures: IntCounterVec,
    pub store_seconds: HistogramVec,
    pub store_errors: IntCounterVec,
    pub rate_limited: IntCounterVec,
    pub security_events: IntCounterVec,
    /// Owner calls sent to another node, by outcome (ok, not_owner, unavailable, error).
    pub forwards: IntCounterVec,
    pub forward_seconds: Histogram,
    /// Ring changes and fencing that made shards drop what they no longer own.
    pub ownership_changes: IntCounter,
}

impl EngineMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            argon2_hashes: IntCounter::new(
                "commonrock_argon2_hashes_total",
                "passwords hashed with argon2id",
            )?,
            argon2_verifications: IntCounter::new(
                "commonrock_argon2_verifications_total",
                "argon2id password verifications run (known and unknown users)",
            )?,
            argon2_queue_depth: IntGauge::new(
                "commonrock_argon2_queue_depth",
                "argon2 jobs waiting for or running on the pool",
            )?,
            argon2_rejected: IntCounter::new(
                "commonrock_argon2_rejected_total",
                "argon2 jobs refused because the queue was full",
            )?,
            argon2_seconds: Histogram::with_opts(
                HistogramOpts::new("commonrock_argon2_seconds", "argon2 job run time")
                    .buckets(vec![0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0]),
            )?,
            sessions_cached: IntGaugeVec::new(
                Opts::new(
                    "commonrock_sessions_cached",
                    "sessions held in shard caches",
                ),
                &["shard"],
            )?,
            shard_mailbox_depth: IntGaugeVec::new(
                Opts::new(
                    "commonrock_shard_mailbox_depth",
                    "calls sent to a shard actor and not yet answered",
                ),
                &["shard"],
            )?,
            shard_restarts: IntCounter::new(
                "commonrock_shard_restarts_total",
                "shard actors restarted by their supervisor",
            )?,
            directory_restarts: IntCounter::new(
                "commonrock_tenant_directory_restarts_total",
                "tenant-directory actors restarted by their supervisor",
            )?,
            restart_failures: IntCounterVec::new(
                Opts::new(
                    "commonrock_actor_restart_failures_total",
                    "actor restarts whose start failed (retried after a backoff), by actor",
                ),
                &["actor"],
            )?,
            store_seconds: HistogramVec::new(
                HistogramOpts::new("commonrock_store_seconds", "store call latency").buckets(vec![
                    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0,
                ]),
                &["op"],
            )?,
            store_errors: IntCounterVec::new(
                Opts::new("commonrock_store_errors_total", "store calls that failed"),
                &["op", "kind"],
            )?,
            rate_limited: IntCounterVec::new(
                Opts::new(
                    "commonrock_rate_limited_total",
                    "requests refused by a limit",
                ),
                &["limit"],
            )?,
            security_events: IntCounterVec::new(
                Opts::new(
                    "commonrock_security_events_total",
                    "refresh-token theft, lock-outs, revocations and admin actions",
                ),
                &["event"],
            )?,
            forwards: IntCounterVec::new(
                Opts::new(
                    "commonrock_forwards_total",
                    "owner calls forwarded to another node, by outcome",
                ),
                &["outcome"],
            )?,
            forward_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "commonrock_forward_seconds",
                    "round trip of an owner call forwarded to another node",
                )
                .buckets(vec![
                    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0,
                    2.5,
                ]),
            )?,
            ownership_changes: IntCounter::new(
                "commonrock_ownership_changes_total",
                "ring changes or fencing that made shards drop keys this node no longer owns",
            )?,
        };
        registry.register(Box::new(m.forwards.clone()))?;
        registry.register(Box::new(m.forward_seconds.clone()))?;
        registry.register(Box::new(m.ownership_changes.clone()))?;
        registry.register(Box::new(m.argon2_hashes.clone()))?;
        registry.register(Box::new(m.argon2_verifications.clone()))?;
        registry.register(Box::new(m.argon2_queue_depth.clone()))?;
        registry.register(Box::new(m.argon2_rejected.clone()))?;
        registry.register(Box::new(m.argon2_seconds.clone()))?;
        registry.register(Box::new(m.sessions_cached.clone()))?;
        registry.register(Box::new(m.shard_mailbox_depth.clone()))?;
        registry.register(Box::new(m.shard_restarts.clone()))?;
        registry.register(Box::new(m.directory_restarts.clone()))?;
        registry.register(Box::new(m.restart_failures.clone()))?;
        registry.register(Box::new(m.store_seconds.clone()))?;
        registry.register(Box::new(m.store_errors.clone()))?;
        registry.register(Box::new(m.rate_limited.clone()))?;
        registry.register(Box::new(m.security_events.clone()))?;
        Ok(m)
    }

    /// Metrics on a private registry, for tests and tools that do not export them.
    pub fn unregistered() -> Self {
        Self::new(&Registry::new()).expect("a fresh registry has no name clashes")
    }
}
