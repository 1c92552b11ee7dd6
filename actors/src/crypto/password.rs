//! Argon2id on a truly bounded pool: at most one worker thread per core, so at most that many
//! 19 MiB hashes exist at once; queued jobs hold no Argon2 memory, and past `queue_bound`
//! waiting jobs the caller is refused at once (503) instead of piling up. `spawn_blocking`
//! alone would run every request's hash in parallel.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use crossbeam_channel::{Sender, TrySendError};
use tokio::sync::oneshot;

use super::secrets::fill_random;
use crate::metrics::EngineMetrics;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PoolError {
    #[error("password pool is full")]
    Busy,
    #[error("password pool stopped")]
    Stopped,
    #[error("password hashing failed")]
    Hash,
}

type Job = Box<dyn FnOnce() + Send + 'static>;

pub struct PasswordPool {
    jobs: Sender<Job>,
    queued: Arc<AtomicUsize>,
    queue_bound: usize,
    /// A real hash of a random password: unknown users are verified against it so that they
    /// cost the same time as known ones.
    dummy_hash: String,
    metrics: EngineMetrics,
}

fn hasher() -> Argon2<'static> {
    // argon2 defaults are OWASP's Argon2id recommendation: m=19456 KiB, t=2, p=1.
    Argon2::default()
}

/// Argon2 runs in the SCHED_IDLE class: on a small machine a login storm then takes only the
/// CPU that introspection leaves over (measured on 2 cores: storm p99 26 ms with SCHED_IDLE,
/// 137 ms with SCHED_BATCH at nice 19, 3.5 s at normal priority). Logins alone still get every
/// core they are allowed. Best effort: a platform that refuses keeps the normal priority.
fn lower_priority() {
    use thread_priority::{
        set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
        ThreadPriority, ThreadSchedulePolicy,
    };
    let policy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    if let Err(e) = set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, policy)
    {
        tracing::warn!(error = ?e, "cannot lower the argon2 threads' priority");
    }
}

/// Hashes on the calling thread: for offline tools only (a server hashes through the pool).
pub fn hash_now(password: &[u8]) -> Result<String, PoolError> {
    let mut salt = [0u8; 16];
    fill_random(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|_| PoolError::Hash)?;
    hasher()
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|_| PoolError::Hash)
}

fn verify_now(password: &[u8], phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher().verify_password(password, &parsed).is_ok(),
        Err(_) => false,
    }
}

impl PasswordPool {
    /// Starts `threads` workers (clamped to 1..=cores) with room for `queue_bound` waiting jobs.
    pub fn start(
        threads: usize,
        queue_bound: usize,
        metrics: EngineMetrics,
    ) -> Result<Self, PoolError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = threads.clamp(1, cores);
        let (tx, rx) = crossbeam_channel::bounded::<Job>(queue_bound.max(1));
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    lower_priority();
                    while let Ok(job) = rx.recv() {
                        job();
                    }
                })
                .map_err(|_| PoolError::Stopped)?;
        }
        let dummy_hash = {
            let mut pw = [0u8; 32];
            fill_random(&mut pw);
            hash_now(&pw)?
        };
        Ok(Self {
            jobs: tx,
            queued: Arc::new(AtomicUsize::new(0)),
            queue_bound: queue_bound.max(1),
            dummy_hash,
            metrics,
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        // Count queued + running jobs ourselves: the channel bound alone does not include the
        // jobs the workers already took.
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.queue_bound {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            self.metrics.argon2_rejected.inc();
            return Err(PoolError::Busy);
        }
        self.metrics.argon2_queue_depth.inc();
        let (tx, rx) = oneshot::channel();
        let queued = self.queued.clone();
        let metrics = self.metrics.clone();
        let job: Job = Box::new(move || {
            let started = Instant::now();
            let out = work();
            metrics
                .argon2_seconds
                .observe(started.elapsed().as_secs_f64());
            queued.fetch_sub(1, Ordering::AcqRel);
            metrics.argon2_queue_depth.dec();
            // The caller may have gone away (client disconnected); nothing to do then.
            let _ = tx.send(out);
        });
        match self.jobs.try_send(job) {
            Ok(()) => rx.await.map_err(|_| PoolError::Stopped),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(1, Ordering::AcqRel);
                self.metrics.argon2_queue_depth.dec();
                self.metrics.argon2_rejected.inc();
                Err(PoolError::Busy)
            }
        }
    }

    pub async fn hash(&self, password: String) -> Result<String, PoolError> {
        self.metrics.argon2_hashes.inc();
        self.run(move || hash_now(password.as_bytes())).await?
    }

    /// Verifies against `phc`, or against the dummy hash when the user does not exist (always
    /// false then), so both paths cost one full Argon2 verification.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, PoolError> {
        self.metrics.argon2_verifications.inc();
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy_hash.clone());
        let ok = self
            .run(move || verify_now(password.as_bytes(), &phc))
            .await?;
        Ok(ok && known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_fail() {
        let pool = PasswordPool::start(1, 8, EngineMetrics::unregistered()).expect("pool starts");
        let h = pool.hash("password123".into()).await.expect("hashes");
        assert!(h.starts_with("$argon2id$"));
        assert!(pool
            .verify("password123".into(), Some(h.clone()))
            .await
            .expect("runs"));
        assert!(!pool
            .verify("password124".into(), Some(h))
            .await
            .expect("runs"));
        assert!(!pool.verify("password123".into(), None).await.expect("runs"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_is_refused_not_grown() {
        let metrics = EngineMetrics::unregistered();
        let pool = Arc::new(PasswordPool::start(1, 2, metrics.clone()).expect("pool starts"));
        let jobs: Vec<_> = (0..12)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.hash("password123".into()).await })
            })
            .collect();
        let mut busy = 0;
        for j in jobs {
            if j.await.expect("task") == Err(PoolError::Busy) {
                busy += 1;
            }
        }
        assert!(busy >= 8, "at most 2 jobs fit, {busy} were refused");
        assert_eq!(metrics.argon2_rejected.get(), busy);
    }
}
