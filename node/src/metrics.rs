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
