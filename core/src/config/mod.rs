//! Everything read from the environment, in one place, with defaults that work offline.
//! docs/operations.md's configuration table lists the same variables (a test checks it).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

mod auth;
mod aws;
mod http;
mod limits;
mod retention;
mod schedules;
mod tools;
pub use auth::{AuthConfig, JwtSettings};
pub use aws::{aws_sdk_config, signing_context, Answer, SignedRest};
pub use http::{http_client, install_tls_provider};
pub use limits::{IngestLimits, Limits};
pub use retention::RetentionSettings;
pub use schedules::{CronSettings, EventBridgeSettings, WebhookSettings};
pub use tools::{McpSettings, ToolSettings, MCP_TOKEN_VARIABLE_PREFIX};

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {name}={value:?}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
    pub reason: String,
}

/// A credential. Its `Debug` and `Display` print `***`, so no log line or error message can
/// carry it by accident; `expose` is the one way to the value, where it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T = String>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<T> std::fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Which backend holds the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    Memory,
    Sqlite { path: PathBuf },
    DynamoDb(DynamoSettings),
}

/// Where the DynamoDB table is and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoSettings {
    pub table: String,
    /// An emulator's URL (moto, LocalStack); `None` for AWS itself.
    pub endpoint_url: Option<String>,
    /// Create the table when it is missing: the default against an emulator.
    pub create_table: bool,
    /// Items per Query page; unset lets DynamoDB fill 1 MB pages. Small pages exercise paging.
    pub page_size: Option<i32>,
    /// How long one attempt of a request may take before the client tries again.
    pub attempt_timeout: Duration,
}

impl DynamoSettings {
    /// DynamoDB answers in milliseconds; an attempt this slow has stalled and is tried again.
    pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
}

/// In `CORS_ALLOW_ORIGINS`: every page served from this machine (`http://localhost:<port>` ...).
pub const LOOPBACK_ORIGINS: &str = "loopback";

#[derive(Debug, Clone)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    pub store: StoreKind,
    /// Largest accepted request body; larger ones get 413.
    pub max_body_bytes: usize,
    pub limits: Limits,
    pub auth: AuthConfig,
    /// Browser origins allowed to call the API (`*` for any); none: no CORS headers.
    pub cors_allow_origins: Vec<String>,
    /// The API's address as its clients reach it (`PUBLIC_API_URL`), which an A2A agent card
    /// names; unset: read from each request's host.
    pub public_api_url: Option<String>,
    /// How long a run holds its thread before another run may take it, should it stop renewing.
    pub run_lease: Duration,
    /// How long a resumable run's stream events are kept for clients that join it later.
    pub run_events_ttl: Duration,
    /// How long each event of a thread's log is kept (the LangGraph event protocol's replay).
    pub thread_events_ttl: Duration,
    /// How long a thread's event stream stays open with nothing to send and no run going on the
    /// thread, where it ends at all: a Lambda function never learns that its client has gone,
    /// and would otherwise hold (and bill) an instance for its whole time limit.
    pub event_stream_idle: Option<Duration>,
    /// Whether this process may hold WebSockets: not a Lambda function, which answers one
    /// request at a time and cannot keep a socket.
    pub websockets: bool,
    /// How many runs one user may have going at once, across every process; `None`: no limit.
    pub max_runs_per_user: Option<u32>,
    /// The most tokens one answer may have: a cap on what a run costs.
    pub max_output_tokens: u32,
    /// How long a run waits for a busy thread under the `enqueue` and `interrupt` strategies.
    pub run_queue_wait: Duration,
    /// Silence after which a stream sends a `: ping` comment.
    pub sse_ping_interval: Duration,
    /// Silence after which the local server closes a connection (slow or stalled clients).
    pub idle_timeout: Duration,
    /// How often the local server logs how many tasks it holds (a leak shows as growth);
    /// `None`: never.
    pub runtime_stats: Option<Duration>,
    /// Pause between the offline model's tokens, so streaming is visible.
    pub offline_token_delay: Duration,
    pub providers: ProviderConfig,
    pub tools: ToolSettings,
    pub retention: RetentionSettings,
    pub embeddings: EmbeddingSettings,
    /// The largest `/ingest` body: its files together, as uploaded.
    pub max_ingest_bytes: usize,
    pub ingest: IngestLimits,
    /// Where files too large for a request go, through presigned URLs (`/ingest/uploads`).
    pub uploads: Option<UploadSettings>,
    /// The most steps (model calls and tool rounds) an agent run may take (`config.recursion_limit`
    /// overrides it per run).
    pub recursion_limit: u32,
    /// How long a run may take before it stops cleanly between steps: set below a Lambda
    /// function's timeout, so the function is not killed mid-step. `None`: no limit.
    pub run_time_limit: Option<Duration>,
    /// The `run-worker` Lambda function that executes background runs; unset: run them in-process.
    pub run_worker_function: Option<String>,
    /// Where to reach the Lambda Invoke API (the `cargo lambda watch` emulator); unset: AWS.
    pub lambda_endpoint_url: Option<String>,
    pub crons: CronSettings,
    pub webhooks: WebhookSettings,
}

/// Model provider credentials and endpoints. A provider is used only when configured.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub openai_api_key: Option<Secret>,
    pub openai_base_url: String,
    pub azure_openai_api_key: Option<Secret>,
    pub azure_openai_base_url: Option<String>,
    pub azure_openai_deployment: Option<String>,
    pub azure_openai_api_version: String,
    pub anthropic_api_key: Option<Secret>,
    pub anthropic_base_url: String,
    pub ollama_base_url: Option<String>,
    pub groq_api_key: Option<Secret>,
    pub gemini_api_key: Option<Secret>,
    pub gemini_base_url: String,
    pub groq_base_url: String,
    /// Amazon Bedrock is used when a region is known (`AWS_REGION`, as on Lambda): it needs no
    /// key, only the function's IAM role.
    pub bedrock_region: Option<String>,
    /// `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`: a local Bedrock stand-in; unset: AWS.
    pub bedrock_endpoint_url: Option<String>,
    /// When an assistant names a model whose provider has no credentials here, the offline model
    /// answers instead of the run failing (so the API works out of the box).
    pub offline_fallback: bool,
    /// Model ids, overridable per OpenGPTs model name.
    pub model_ids: ModelIds,
    pub request_timeout: Duration,
}

/// The S3 bucket for large uploads (`UPLOAD_BUCKET`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSettings {
    pub bucket: String,
    /// An emulator's URL (moto, LocalStack); `None` for AWS itself.
    pub endpoint_url: Option<String>,
    /// Create the bucket when it is missing: the default against an emulator.
    pub create_bucket: bool,
    /// The largest file one presigned URL accepts.
    pub max_bytes: u64,
}

/// How ingested files and questions are embedded (`EMBEDDINGS_PROVIDER`).
#[derive(Debug, Clone)]
pub struct EmbeddingSettings {
    /// `offline` (lexical, no network), `openai` (any OpenAI-compatible `/embeddings`) or
    /// `bedrock` (Amazon Titan Text Embeddings through the AWS SDK).
    pub provider: String,
    /// Unset: `text-embedding-3-small` (openai), `amazon.titan-embed-text-v2:0` (bedrock).
    pub model: Option<String>,
    /// Bedrock's Titan v2 embeds in 256, 512 or 1,024 dimensions.
    pub dimensions: u32,
    /// `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`: a local Bedrock stand-in; unset: AWS.
    pub bedrock_endpoint_url: Option<String>,
    /// Defaults to `OPENAI_BASE_URL` and `OPENAI_API_KEY`.
    pub base_url: Option<String>,
    pub api_key: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct ModelIds {
    pub gpt_35_turbo: String,
    pub gpt_4: String,
    pub gpt_4o: String,
    pub claude: String,
    pub ollama: String,
    pub mixtral: String,
    pub gemini: String,
    pub bedrock: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
    }

    /// Builds the configuration from any variable source, so tests need not touch the process env.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        Ok(Config {
            host: env.parse("HOST", "127.0.0.1".parse().expect("a valid address literal"))?,
            port: env.parse("PORT", 8100)?,
            store: match env.text("STORE").as_deref().unwrap_or("sqlite") {
                "memory" => StoreKind::Memory,
                "sqlite" => StoreKind::Sqlite {
                    path: env.text("SQLITE_PATH").unwrap_or_else(|| ".data/opengpts.sqlite3".into()).into(),
                },
                "dynamodb" => {
                    let default_attempt_ms = DynamoSettings::DEFAULT_ATTEMPT_TIMEOUT.as_millis() as u64;
                    let endpoint_url = env.text("AWS_ENDPOINT_URL_DYNAMODB").or_else(|| env.text("AWS_ENDPOINT_URL"));
                    StoreKind::DynamoDb(DynamoSettings {
                        table: env.text("TABLE_NAME").unwrap_or_else(|| "opengpts".into()),
                        create_table: env.parse("DYNAMODB_CREATE_TABLE", endpoint_url.is_some())?,
                        endpoint_url,
                        page_size: env
                            .text("DYNAMODB_PAGE_SIZE")
                            .map(|_| env.parse("DYNAMODB_PAGE_SIZE", 0))
                            .transpose()?,
                        attempt_timeout: Duration::from_millis(
                            env.parse("DYNAMODB_ATTEMPT_TIMEOUT_MS", default_attempt_ms)?,
                        ),
                    })
                }
                other => {
                    return Err(ConfigError {
                        name: "STORE",
                        value: other.into(),
                        reason: "expected one of: memory, sqlite, dynamodb".into(),
                    })
                }
            },
            max_body_bytes: env.parse("MAX_BODY_BYTES", 1 << 20)?,
            auth: auth::auth_config(&env)?,
            public_api_url: env.text("PUBLIC_API_URL").map(|url| url.trim_end_matches('/').to_string()),
            cors_allow_origins: match env.text("CORS_ALLOW_ORIGINS") {
                Some(origins) => origins.split(',').map(|o| o.trim().to_string()).filter(|o| !o.is_empty()).collect(),
                // A local server's pages on other ports of this machine need nothing set either.
                None if auth::local_server(&env)? => vec![LOOPBACK_ORIGINS.to_string()],
                None => Vec::new(),
            },
            limits: Limits {
                max_messages_per_request: env.parse("MAX_MESSAGES_PER_REQUEST", 100)?,
                max_message_bytes: env.parse("MAX_MESSAGE_BYTES", 256 * 1024)?,
                max_config_bytes: env.parse("MAX_CONFIG_BYTES", 64 * 1024)?,
                max_name_chars: env.parse("MAX_NAME_CHARS", 256)?,
                max_thread_messages: env.parse("MAX_THREAD_MESSAGES", 2_000)?,
                max_thread_bytes: env.parse("MAX_THREAD_BYTES", 8 << 20)?,
                max_tools_per_assistant: env.parse("MAX_TOOLS_PER_ASSISTANT", 32)?,
                max_streams_per_user: env.parse("MAX_STREAMS_PER_USER", 10)?,
            },
            run_lease: Duration::from_secs(env.parse("RUN_LEASE_SECONDS", 60)?),
            run_events_ttl: Duration::from_secs(env.parse("RUN_EVENTS_TTL_SECONDS", 3600)?),
            thread_events_ttl: Duration::from_secs(env.parse("THREAD_EVENTS_TTL_SECONDS", 86_400)?),
            websockets: env.text("AWS_LAMBDA_RUNTIME_API").is_none(),
            event_stream_idle: {
                let under_lambda = env.text("AWS_LAMBDA_RUNTIME_API").is_some();
                let seconds: u64 = env.parse("EVENT_STREAM_IDLE_SECONDS", if under_lambda { 5 } else { 0 })?;
                (seconds > 0).then(|| Duration::from_secs(seconds))
            },
            run_queue_wait: Duration::from_secs(env.parse("RUN_QUEUE_WAIT_SECONDS", 25)?),
            max_output_tokens: env.parse("MAX_OUTPUT_TOKENS", 4096)?,
            max_runs_per_user: Some(env.parse("MAX_RUNS_PER_USER", 0)?).filter(|limit| *limit > 0),
            sse_ping_interval: Duration::from_millis(env.parse("SSE_PING_MS", 15_000)?),
            idle_timeout: Duration::from_secs(env.parse("IDLE_TIMEOUT_SECONDS", 60)?),
            runtime_stats: Some(env.parse("RUNTIME_STATS_SECONDS", 0)?)
                .filter(|seconds| *seconds > 0)
                .map(Duration::from_secs),
            offline_token_delay: Duration::from_millis(env.parse("OFFLINE_TOKEN_DELAY_MS", 20)?),
            recursion_limit: env.parse("RECURSION_LIMIT", 25)?,
            max_ingest_bytes: env.parse("MAX_INGEST_BYTES", 4 << 20)?,
            ingest: {
                let default = IngestLimits::default();
                IngestLimits {
                    max_text_chars: env.parse("MAX_INGEST_TEXT_CHARS", default.max_text_chars)?,
                    max_zip_entry_bytes: env.parse("MAX_ZIP_ENTRY_BYTES", default.max_zip_entry_bytes)?,
                    max_chunks_per_file: env.parse("MAX_CHUNKS_PER_FILE", default.max_chunks_per_file)?,
                    file_seconds: env.parse("INGEST_FILE_SECONDS", default.file_seconds)?,
                    file_memory_mb: env.parse("INGEST_FILE_MEMORY_MB", default.file_memory_mb)?,
                    max_chunks_per_namespace: env
                        .parse("MAX_CHUNKS_PER_NAMESPACE", default.max_chunks_per_namespace)?,
                    max_stored_bytes_per_user: env
                        .parse("MAX_STORED_BYTES_PER_USER", default.max_stored_bytes_per_user)?,
                }
            },
            uploads: match env.text("UPLOAD_BUCKET") {
                None => None,
                Some(bucket) => {
                    let endpoint_url = env.text("AWS_ENDPOINT_URL_S3").or_else(|| env.text("AWS_ENDPOINT_URL"));
                    Some(UploadSettings {
                        bucket,
                        create_bucket: env.parse("UPLOAD_BUCKET_CREATE", endpoint_url.is_some())?,
                        endpoint_url,
                        max_bytes: env.parse("MAX_UPLOAD_BYTES", 100 << 20)?,
                    })
                }
            },
            embeddings: EmbeddingSettings {
                provider: match env.text("EMBEDDINGS_PROVIDER").as_deref().unwrap_or("offline") {
                    provider @ ("offline" | "openai" | "bedrock") => provider.to_string(),
                    other => {
                        return Err(ConfigError {
                            name: "EMBEDDINGS_PROVIDER",
                            value: other.into(),
                            reason: "expected offline, openai or bedrock".into(),
                        })
                    }
                },
                model: env.text("EMBEDDINGS_MODEL"),
                dimensions: env.parse("EMBEDDINGS_DIMENSIONS", 1024)?,
                bedrock_endpoint_url: env
                    .text("AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
                    .or_else(|| env.text("AWS_ENDPOINT_URL")),
                base_url: env.text("EMBEDDINGS_BASE_URL"),
                api_key: env.secret("EMBEDDINGS_API_KEY"),
            },
            run_time_limit: env
                .text("RUN_TIME_LIMIT_SECONDS")
                .map(|_| env.parse("RUN_TIME_LIMIT_SECONDS", 0))
                .transpose()?
                .map(Duration::from_secs),
            tools: tools::read(&env)?,
            retention: retention::read(&env)?,
            run_worker_function: env.text("RUN_WORKER_FUNCTION"),
            lambda_endpoint_url: env.text("AWS_ENDPOINT_URL_LAMBDA").or_else(|| env.text("AWS_ENDPOINT_URL")),
            crons: CronSettings {
                max_per_user: env.parse("MAX_CRONS_PER_USER", 100)?,
                min_interval: Duration::from_secs(env.parse("CRON_MIN_INTERVAL_SECONDS", 300)?),
                poll: Duration::from_secs(env.parse("CRON_POLL_SECONDS", 5)?.max(1)),
                eventbridge: match env.text("SCHEDULE_GROUP") {
                    None => None,
                    Some(group) => Some(EventBridgeSettings {
                        group,
                        target_arn: env.required("RUN_WORKER_ARN", "SCHEDULE_GROUP")?,
                        role_arn: env.required("SCHEDULER_ROLE_ARN", "SCHEDULE_GROUP")?,
                        endpoint_url: env.text("AWS_ENDPOINT_URL_SCHEDULER").or_else(|| env.text("AWS_ENDPOINT_URL")),
                    }),
                },
            },
            webhooks: WebhookSettings {
                secret: env.secret("WEBHOOK_SECRET"),
                timeout: Duration::from_secs(env.parse("WEBHOOK_TIMEOUT_SECONDS", 10)?),
            },
            providers: ProviderConfig {
                openai_api_key: env.secret("OPENAI_API_KEY"),
                openai_base_url: env.text("OPENAI_BASE_URL").unwrap_or_else(|| "https://api.openai.com/v1".into()),
                azure_openai_api_key: env.secret("AZURE_OPENAI_API_KEY"),
                azure_openai_base_url: env.text("AZURE_OPENAI_API_BASE"),
                azure_openai_deployment: env.text("AZURE_OPENAI_DEPLOYMENT_NAME"),
                azure_openai_api_version: env.text("AZURE_OPENAI_API_VERSION").unwrap_or_else(|| "2024-06-01".into()),
                anthropic_api_key: env.secret("ANTHROPIC_API_KEY"),
                anthropic_base_url: env
                    .text("ANTHROPIC_BASE_URL")
                    .unwrap_or_else(|| "https://api.anthropic.com".into()),
                ollama_base_url: env.text("OLLAMA_BASE_URL"),
                groq_api_key: env.secret("GROQ_API_KEY"),
                groq_base_url: env.text("GROQ_BASE_URL").unwrap_or_else(|| "https://api.groq.com/openai/v1".into()),
                gemini_api_key: env.secret("GEMINI_API_KEY").or_else(|| env.secret("GOOGLE_API_KEY")),
                gemini_base_url: env
                    .text("GEMINI_BASE_URL")
                    .unwrap_or_else(|| "https://generativelanguage.googleapis.com".into()),
                bedrock_region: env.text("AWS_REGION").or_else(|| env.text("AWS_DEFAULT_REGION")),
                bedrock_endpoint_url: env
                    .text("AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
                    .or_else(|| env.text("AWS_ENDPOINT_URL")),
                offline_fallback: env.parse("OFFLINE_FALLBACK", true)?,
                model_ids: ModelIds {
                    gpt_35_turbo: env.text("OPENAI_MODEL_GPT_35_TURBO").unwrap_or_else(|| "gpt-3.5-turbo".into()),
                    gpt_4: env.text("OPENAI_MODEL_GPT_4").unwrap_or_else(|| "gpt-4-turbo".into()),
                    gpt_4o: env.text("OPENAI_MODEL_GPT_4O").unwrap_or_else(|| "gpt-4o".into()),
                    claude: env.text("ANTHROPIC_MODEL").unwrap_or_else(|| "claude-3-5-sonnet-latest".into()),
                    ollama: env.text("OLLAMA_MODEL").unwrap_or_else(|| "llama3".into()),
                    mixtral: env.text("GROQ_MODEL").unwrap_or_else(|| "mixtral-8x7b-32768".into()),
                    gemini: env.text("GEMINI_MODEL").unwrap_or_else(|| "gemini-2.0-flash".into()),
                    bedrock: env
                        .text("BEDROCK_MODEL")
                        .unwrap_or_else(|| "anthropic.claude-3-haiku-20240307-v1:0".into()),
                },
                request_timeout: Duration::from_secs(env.parse("LLM_TIMEOUT_SECONDS", 60)?),
            },
        })
    }

    /// Defaults only: what a test or a fresh checkout gets.
    pub fn defaults() -> Self {
        Self::from_lookup(|_| None).expect("defaults are valid")
    }
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn text(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }

    /// A variable that `because` (another one being set) makes necessary.
    fn required(&self, name: &'static str, because: &str) -> Result<String, ConfigError> {
        self.text(name).ok_or_else(|| ConfigError {
            name,
            value: String::new(),
            reason: format!("must be set when {because} is"),
        })
    }

    fn secret(&self, name: &str) -> Option<Secret> {
        self.text(name).map(Secret::new)
    }

    fn parse<T: std::str::FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.text(name) {
            None => Ok(default),
            Some(value) => {
                value.parse().map_err(|error: T::Err| ConfigError { name, reason: error.to_string(), value })
            }
        }
    }
}
