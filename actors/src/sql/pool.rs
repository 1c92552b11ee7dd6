//! The SQL pool: a few OS threads of its own (not the Argon2 pool, not tokio's blocking pool)
//! that run statements, because GlueSQL's storage traits are synchronous. A thread reaches the
//! async row store with `Handle::block_on`. The queue is bounded: a full pool answers
//! `Unavailable` at once instead of queueing without end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use tokio::sync::oneshot;

use super::error::SqlError;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Big enough for the engine's recursion over the deepest statement the validator admits.
const STACK_BYTES: usize = 32 * 1024 * 1024;

pub struct SqlPool {
    jobs: Option<Sender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    busy: Arc<AtomicUsize>,
}

impl SqlPool {
    /// `threads` workers, at most `queue` statements waiting.
    pub fn new(threads: usize, queue: usize) -> Result<SqlPool, SqlError> {
        let (jobs, rx) = crossbeam_channel::bounded::<Job>(queue.max(1));
        let busy = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let rx: Receiver<Job> = rx.clone();
            let busy = Arc::clone(&busy);
            let handle = std::thread::Builder::new()
                .name(format!("commonrock-sql-{i}"))
                .stack_size(STACK_BYTES)
                .spawn(move || {
                    crate::store::inline::allow_inline_reads();
                    while let Ok(job) = rx.recv() {
                        busy.fetch_add(1, Ordering::Relaxed);
                        // A panicking statement must not take its worker down with it.
                        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                            tracing::error!("sql statement panicked");
                        }
                        busy.fetch_sub(1, Ordering::Relaxed);
                    }
                })
                .map_err(|e| SqlError::Internal(format!("cannot start sql thread: {e}")))?;
            handles.push(handle);
        }
        Ok(SqlPool {
            jobs: Some(jobs),
            threads: handles,
            busy,
        })
    }

    /// Workers running a statement right now (tests prove a timed-out one is freed).
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::Relaxed)
    }

    /// Runs `f` on a worker; `Unavailable` when the queue is full.
    pub async fn run<T, F>(&self, f: F) -> Result<T, SqlError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, SqlError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        let jobs = self
            .jobs
            .as_ref()
            .ok_or_else(|| SqlError::Unavailable("sql pool stopped".into()))?;
        match jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(SqlError::Unavailable("sql pool is full".into()))
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(SqlError::Unavailable("sql pool stopped".into()))
            }
        }
        rx.await
            .map_err(|_| SqlError::Internal("sql statement panicked".into()))?
    }
}

impl Drop for SqlPool {
    fn drop(&mut self) {
        drop(self.jobs.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
