//! Restart intensity for the supervisors: a crashing actor is restarted at once a few times,
//! then with a growing delay, so a fault that repeats (a poison message, a store that refuses
//! every start) neither spins a core nor gives up on the actor for good.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Restarts within this window count towards the intensity.
const WINDOW: Duration = Duration::from_secs(10);
/// Restarts within the window that happen at once.
const FREE: usize = 3;
/// First delay once the free restarts are spent; doubles with each further restart.
const BASE: Duration = Duration::from_millis(100);
/// Longest delay between two restarts: an actor is never given up.
const MAX: Duration = Duration::from_secs(5);

/// The child a supervision event reports dead (failed or stopped), logged as `what`; None for
/// events that need no restart.
pub fn dead_child(event: &ractor::SupervisionEvent, what: &str) -> Option<ractor::ActorId> {
    match event {
        ractor::SupervisionEvent::ActorFailed(cell, err) => {
            tracing::error!(error = %err, actor = what, "actor failed, restarting");
            Some(cell.get_id())
        }
        ractor::SupervisionEvent::ActorTerminated(cell, _, reason) => {
            tracing::warn!(reason = ?reason, actor = what, "actor stopped, restarting");
            Some(cell.get_id())
        }
        _ => None,
    }
}

#[derive(Debug, Default)]
pub struct RestartPolicy {
    recent: VecDeque<Instant>,
}

impl RestartPolicy {
    /// Records one more restart now; how long to wait before attempting it.
    pub fn next_delay(&mut self) -> Duration {
        self.delay_at(Instant::now())
    }

    fn delay_at(&mut self, now: Instant) -> Duration {
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > WINDOW)
        {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        // Past 2^6 the delay is at its cap anyway: keep the memory bounded.
        if self.recent.len() > FREE + 8 {
            self.recent.pop_front();
        }
        let over = self.recent.len().saturating_sub(FREE);
        if over == 0 {
            return Duration::ZERO;
        }
        BASE.saturating_mul(1 << (over - 1).min(6)).min(MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_restarts_are_immediate_then_delays_grow_to_a_cap() {
        let mut p = RestartPolicy::default();
        let t0 = Instant::now();
        let delays: Vec<Duration> = (0..10)
            .map(|i| p.delay_at(t0 + Duration::from_millis(i)))
            .collect();
        assert_eq!(&delays[..3], &[Duration::ZERO; 3]);
        assert_eq!(delays[3], BASE);
        assert_eq!(delays[4], BASE * 2);
        assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
        assert_eq!(*delays.last().expect("ten"), MAX);
        // A quiet window forgives the past.
        assert_eq!(p.delay_at(t0 + WINDOW * 2), Duration::ZERO);
    }
}
