//! Logs: plain text for people (colour only on a terminal), or Lambda's JSON log format.
//!
//! Under Lambda (`AWS_LAMBDA_LOG_FORMAT=JSON`) each line is one JSON object with Lambda's own
//! keys (`timestamp`, `level`, `message`) and, flattened beside them, the fields of the event and
//! of every span it happened in: the runtime's `requestId` (the Lambda request id), our request
//! span (`method`, `route`) and run span (`run_id`, `thread_id`, `provider`, `model`). So one
//! CloudWatch Logs Insights filter on `run_id` or `requestId` finds a run's whole story.

use std::io::IsTerminal;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the process's logger: `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `info`.
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into())
        .to_lowercase();
    // `level` or `target=level,...` directives (`Targets` reads what a `RUST_LOG` usually
    // holds, without the regular expressions that `EnvFilter` would link into every function).
    let filter = level.parse::<Targets>().unwrap_or_else(|_| Targets::new().with_default(LevelFilter::INFO));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_max_level(LevelFilter::TRACE);
    // A second init (tests start many servers) is harmless: the first subscriber stays.
    let _ = if json {
        builder.fmt_fields(JsonFields::new()).event_format(LambdaJson).finish().with(filter).try_init()
    } else {
        builder.with_target(false).with_ansi(std::io::stdout().is_terminal()).finish().with(filter).try_init()
    };
}

/// One JSON object per event, in Lambda's JSON log format, with span fields flattened into it.
pub struct LambdaJson;

impl<S, N> FormatEvent<S, N> for LambdaJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut line = Map::new();
        line.insert("timestamp".into(), chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true).into());
        line.insert("level".into(), event.metadata().level().as_str().into());
        // Outer spans first, so an inner span's field of the same name wins.
        for span in context.event_scope().into_iter().flat_map(|scope| scope.from_root()) {
            let extensions = span.extensions();
            let Some(fields) = extensions.get::<FormattedFields<N>>() else { continue };
            if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields.as_str()) {
                line.extend(fields);
            }
        }
        let mut visitor = JsonVisitor(Map::new());
        event.record(&mut visitor);
        line.extend(visitor.0);
        line.insert("logger".into(), event.metadata().target().into());
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// An event's fields as JSON values; its `message` under Lambda's key `message`.
struct JsonVisitor(Map<String, Value>);

impl Visit for JsonVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_carry_lambdas_keys_the_request_id_and_span_fields() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(JsonFields::new())
            .event_format(LambdaJson)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            // The span lambda_runtime opens around each invocation.
            let invoke = tracing::info_span!("Lambda runtime invoke", requestId = "8f5c-req", xrayTraceId = "Root=1");
            let _invoke = invoke.enter();
            let run = tracing::info_span!("run", run_id = "r-1", model = tracing::field::Empty);
            run.record("model", "gpt-4o");
            let _run = run.enter();
            tracing::warn!(tokens = 7_u64, "run finished");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).expect("one JSON object");
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "run finished");
        assert_eq!(line["requestId"], "8f5c-req");
        assert_eq!(line["run_id"], "r-1");
        assert_eq!(line["model"], "gpt-4o");
        assert_eq!(line["tokens"], 7);
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
