//! HTTP metrics: requests and latency by route template and status (never by path, which
//! would put session ids and external ids into label values).

use std::time::Duration;

use http::StatusCode;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    seconds: HistogramVec,
}

impl HttpMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new("commonrock_http_requests_total", "HTTP requests answered"),
            &["route", "status"],
        )?;
        let seconds = HistogramVec::new(
            HistogramOpts::new("commonrock_http_request_seconds", "HTTP request latency").buckets(
                vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5,
                ],
            ),
            &["route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(seconds.clone()))?;
        Ok(Self { requests, seconds })
    }

    pub fn observe(&self, route: &str, status: StatusCode, elapsed: Duration) {
        self.requests
            .with_label_values(&[route, status.as_str()])
            .inc();
        self.seconds
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }
}

/// Connection metrics of the HTTP listeners (`listener` is `main` or `admin`).
#[derive(Clone)]
pub struct ConnMetrics {
    pub open: prometheus::IntGaugeVec,
    /// Idle connections closed to make room for a new one.
    pub shed: IntCounterVec,
    /// New connections refused because every connection was busy.
    pub refused: IntCounterVec,
    /// Connections that ended with an error, by kind (reset, malformed, head_too_large,
    /// header_timeout, timeout, protocol, io, accept): client behaviour, not node failures.
    pub errors: IntCounterVec,
}

impl ConnMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let open = prometheus::IntGaugeVec::new(
            Opts::new("commonrock_http_connections", "open HTTP connections"),
            &["listener"],
        )?;
        let shed = IntCounterVec::new(
            Opts::new(
                "commonrock_http_connections_shed_total",
                "idle HTTP connections closed to make room at the connection limit",
            ),
            &["listener"],
        )?;
        let refused = IntCounterVec::new(
            Opts::new(
                "commonrock_http_connections_refused_total",
                "HTTP connections refused at the connection limit (all busy)",
            ),
            &["listener"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "commonrock_http_connection_errors_total",
                "HTTP connections that ended with a client or protocol error, by kind",
            ),
            &["listener", "kind"],
        )?;
        registry.register(Box::new(open.clone()))?;
        registry.register(Box::new(shed.clone()))?;
        registry.register(Box::new(refused.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        Ok(Self {
            open,
            shed,
            refused,
            errors,
        })
    }
}
