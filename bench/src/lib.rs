//! The bench suite: a load generator (`loadgen`), a baseline server (`baseline`) measured in the
//! same run, and the driver behind `scripts/bench` (`benchsuite`). This library holds what they
//! share: the load generator's JSON summary and readings from `/proc`.

pub mod proc_stats;

use serde::{Deserialize, Serialize};

/// Latency percentiles of one run, in microseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Latency {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl Latency {
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Latency {
        Latency {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

/// What one `loadgen` run prints (one JSON object on stdout or in `--out`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    /// `closed` or `open`.
    pub mode: String,
    pub body: String,
    pub connections: usize,
    /// Open loop: the intended request rate (requests per second).
    pub target_rate: Option<f64>,
    /// Seconds over which the counts below were taken (after the warm-up).
    pub measured_s: f64,
    /// Requests answered in the measured window (any status).
    pub requests: u64,
    /// Answers with a 2xx status whose body held the expected text (when one was given).
    pub ok: u64,
    /// Answers with another status, by status code.
    pub bad_status: std::collections::BTreeMap<u16, u64>,
    /// 2xx answers missing the expected text.
    pub unexpected_body: u64,
    /// Connection or protocol failures (each followed by a reconnect).
    pub errors: u64,
    /// Open loop: scheduled requests still unsent when the run ended; counted in the histogram
    /// with their wait so far, never dropped silently.
    pub late_at_end: u64,
    pub throughput_rps: f64,
    /// Tokens (or other items) per second: requests × items per request.
    pub items_per_s: f64,
    /// Closed loop: from send to the whole answer. Open loop: from the *intended* send time
    /// (coordinated omission accounted for).
    pub latency_us: Latency,
    /// CPU the load generator itself used (user + system, whole process, whole run).
    pub loadgen_cpu_s: f64,
    pub loadgen_threads: usize,
    pub wall_s: f64,
}
