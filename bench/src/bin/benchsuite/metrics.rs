//! A node's `/metrics` (Prometheus text format) read through the admin API: sums of one
//! metric's series, selected by label values.

use crate::calls::admin_get;
use crate::server::Creds;

/// One reading of a node's `/metrics`.
pub struct Metrics {
    text: String,
}

impl Metrics {
    pub fn read(addr: &str, c: &Creds) -> Result<Metrics, String> {
        admin_get(addr, c, "/metrics").map(|text| Metrics { text })
    }

    /// The sum of the series of `name` whose labels include every pair of `labels`; `None`
    /// when there is no such series (a labelled counter has none until first incremented).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = None;
        for s in self.text.lines().filter_map(sample) {
            let selected = labels
                .iter()
                .all(|(k, want)| s.labels.iter().any(|(lk, lv)| lk == k && lv == want));
            if s.name == name && selected {
                *found.get_or_insert(0.0) += s.value;
            }
        }
        found
    }

    /// `sum`, with no series counted as 0.
    pub fn count(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.sum(name, labels).unwrap_or(0.0)
    }
}

/// One sample line of the text format.
struct Sample<'a> {
    name: &'a str,
    /// Label names and values, escapes undone.
    labels: Vec<(String, String)>,
    value: f64,
}

/// Parses `name{k="v",…} value`. Label values may hold braces (route templates such as
/// `/{slug}/v1/…`), so they are scanned, not split.
fn sample(line: &str) -> Option<Sample<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut labels = Vec::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        loop {
            let (key_start, c) = chars.next()?;
            if c == '}' {
                rest = &inner[key_start + 1..];
                break;
            }
            if c == ',' {
                continue;
            }
            let eq = inner[key_start..].find('=')? + key_start;
            let key = inner[key_start..eq].trim().to_string();
            while chars.next()?.0 < eq {}
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    other => value.push(other),
                }
            }
            labels.push((key, value));
        }
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP commonrock_forwards_total owner calls forwarded
# TYPE commonrock_forwards_total counter
commonrock_forwards_total{outcome="ok"} 200
commonrock_forwards_total{outcome="unavailable"} 3
commonrock_http_requests_total{route="/{slug}/v1/sessions/introspect",status="200"} 300
commonrock_http_requests_total{route="/{slug}/v1/sessions/introspect/batch",status="200"} 7
commonrock_http_requests_total{route="a\"b,c}",status="503"} 1
commonrock_sql_rows_read_total 1001
commonrock_forward_seconds_sum 0.25
"#;

    fn m() -> Metrics {
        Metrics { text: TEXT.into() }
    }

    #[test]
    fn sums_series_selected_by_labels() {
        assert_eq!(m().sum("commonrock_forwards_total", &[]), Some(203.0));
        let ok = m().sum("commonrock_forwards_total", &[("outcome", "ok")]);
        assert_eq!(ok, Some(200.0));
        let single = [("route", "/{slug}/v1/sessions/introspect")];
        assert_eq!(
            m().sum("commonrock_http_requests_total", &single),
            Some(300.0)
        );
        let odd = [("route", "a\"b,c}")];
        assert_eq!(m().sum("commonrock_http_requests_total", &odd), Some(1.0));
        assert_eq!(m().sum("commonrock_sql_rows_read_total", &[]), Some(1001.0));
        assert_eq!(m().sum("commonrock_forward_seconds_sum", &[]), Some(0.25));
    }

    #[test]
    fn absent_series_are_none_or_zero() {
        let missing = [("outcome", "error")];
        assert_eq!(m().sum("commonrock_forwards_total", &missing), None);
        assert_eq!(m().count("commonrock_forwards_total", &missing), 0.0);
        assert_eq!(m().sum("commonrock_forwards", &[]), None);
    }
}
