//! `commonrock_sql_*` metrics, registered on the registry the node passes in.

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct SqlMetrics {
    /// By kind (select/insert/update/delete) and outcome (ok or the error code).
    pub executions: IntCounterVec,
    pub rows_returned: IntCounter,
    pub rows_read: IntCounter,
    pub latency: HistogramVec,
    /// Compiled-definition lookups by result (`hit`, `miss`).
    pub compiled: IntCounterVec,
}

impl SqlMetrics {
    pub fn new(registry: &Registry) -> Result<SqlMetrics, prometheus::Error> {
        let executions = IntCounterVec::new(
            Opts::new(
                "commonrock_sql_executions_total",
                "query definition executions by kind and outcome",
            ),
            &["kind", "outcome"],
        )?;
        let rows_returned = IntCounter::new(
            "commonrock_sql_rows_returned_total",
            "rows returned by query definition executions",
        )?;
        let rows_read = IntCounter::new(
            "commonrock_sql_rows_read_total",
            "rows read from the row store by query definition executions",
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "commonrock_sql_execution_seconds",
                "latency of query definition executions",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["kind"],
        )?;
        let compiled = IntCounterVec::new(
            Opts::new(
                "commonrock_sql_compiled_lookups_total",
                "compiled query definition lookups by result (a miss reads, parses and analyses)",
            ),
            &["result"],
        )?;
        // Both series exist before the first execution.
        compiled.with_label_values(&["hit"]);
        compiled.with_label_values(&["miss"]);
        registry.register(Box::new(compiled.clone()))?;
        registry.register(Box::new(executions.clone()))?;
        registry.register(Box::new(rows_returned.clone()))?;
        registry.register(Box::new(rows_read.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        Ok(SqlMetrics {
            executions,
            rows_returned,
            rows_read,
            latency,
            compiled,
        })
    }
}
