//! Log lines on stderr, as text or JSON. An event logged while a request is served carries
//! that request's id and route template (`request_id=… route=…` at the end of a text line,
//! top-level `"request_id"` and `"route"` keys in JSON), read from the request's task-local
//! context when the event is written.
//!
//! A tracing span per request did the same, but the span was built (its fields formatted, a
//! registry slot taken) for every request, about 5 % of an introspection's CPU, while almost
//! no request logs anything. Here the cost falls on the lines actually written.

use std::fmt::{self, Write as _};

use commonrock_actors::owner::request_context;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;

use crate::config::LogFormat;

/// Installs the global subscriber: `RUST_LOG` filters (default `info`), colours only on a
/// terminal.
pub fn init(log_format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match log_format {
        LogFormat::Json => builder
            .fmt_fields(format::JsonFields::new())
            .event_format(Tagged {
                inner: format::format().json(),
                json: true,
            })
            .init(),
        LogFormat::Text => builder
            .event_format(Tagged {
                // The line is formatted into a buffer first, whose writer knows nothing of
                // the terminal: the format itself carries the colour choice.
                inner: format::format().with_ansi(ansi),
                json: false,
            })
            .init(),
    }
}

/// A line format with the current request's id and route added.
struct Tagged<F> {
    inner: F,
    json: bool,
}

impl<S, N, F> FormatEvent<S, N> for Tagged<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some(request) = request_context() else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        writer.write_str(&tag(line, &request.id, request.route, self.json))
    }
}

/// `line` (one formatted event ending in a newline) with the request's id and route added.
fn tag(mut line: String, id: &str, route: &str, json: bool) -> String {
    if json {
        // Every JSON line is one object: the keys go in before its closing brace.
        if line.ends_with("}\n") {
            line.truncate(line.len() - 2);
            let quoted = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
            let _ = writeln!(
                line,
                ",\"request_id\":{},\"route\":{}}}",
                quoted(id),
                quoted(route)
            );
        }
    } else {
        let had_newline = line.ends_with('\n');
        if had_newline {
            line.pop();
        }
        // The id is printable ASCII without spaces (`api::request_id`), the route a template.
        let _ = write!(line, " request_id={id} route={route}");
        if had_newline {
            line.push('\n');
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::tag;

    #[test]
    fn text_lines_end_with_the_request() {
        assert_eq!(
            tag(
                "2026 WARN x: slow store\n".into(),
                "abc",
                "/{slug}/v1/x",
                false
            ),
            "2026 WARN x: slow store request_id=abc route=/{slug}/v1/x\n"
        );
    }

    #[test]
    fn json_lines_get_two_keys_and_stay_json() {
        let line = tag(
            "{\"level\":\"WARN\",\"fields\":{\"message\":\"m\"}}\n".into(),
            "a\"b",
            "/r",
            true,
        );
        let parsed: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(parsed["request_id"], "a\"b");
        assert_eq!(parsed["route"], "/r");
        assert_eq!(parsed["fields"]["message"], "m");
        assert!(line.ends_with("}\n"));
    }
}
