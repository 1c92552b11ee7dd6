//! Threads that exist to block (the SQL pool's) may run a store's synchronous reads in place.
//!
//! The embedded store hands each read to tokio's blocking pool so that no runtime worker waits
//! on file I/O. A SQL pool thread is already such a thread, parked in `Handle::block_on` while
//! its statement reads: handing the read on cost a second thread switch per point read (about
//! a tenth of a keyed SELECT's CPU) and bought nothing.

use std::cell::Cell;

thread_local! {
    static INLINE_READS: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as a blocking one for the rest of its life.
pub fn allow_inline_reads() {
    INLINE_READS.with(|f| f.set(true));
}

/// Whether the calling thread may run a synchronous read in place.
pub fn inline_reads_allowed() -> bool {
    INLINE_READS.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_marked_threads_read_in_place() {
        assert!(!inline_reads_allowed());
        std::thread::spawn(|| {
            allow_inline_reads();
            assert!(inline_reads_allowed());
        })
        .join()
        .unwrap();
        assert!(!inline_reads_allowed());
    }
}
