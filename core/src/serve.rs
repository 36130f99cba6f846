//! Process entry points shared by every binary in `functions/`: build the state from the
//! environment once, then serve routes over HTTP locally or through the Lambda runtime.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

use crate::api::{self, AppState};
use crate::config::{Config, StoreKind};
use crate::runs::{BackgroundDispatch, InProcessDispatch, LambdaDispatch, RunJob};
use crate::store::{DynamoStore, MemoryStore, SqliteStore, Store};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Logs as Lambda expects (`AWS_LAMBDA_LOG_FORMAT=JSON`, `AWS_LAMBDA_LOG_LEVEL`), else `RUST_LOG`.
pub fn init_tracing() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into())
        .to_lowercase();
    let filter = tracing_subscriber::EnvFilter::try_new(&level).unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    // A second init (tests start many servers) is harmless: the first subscriber stays.
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

/// The configured backend, connected once for the life of the process.
pub async fn store(config: &Config) -> Result<Arc<dyn Store>, Error> {
    Ok(match &config.store {
        StoreKind::Memory => Arc::new(MemoryStore::new()),
        StoreKind::Sqlite { path } => Arc::new(SqliteStore::open(path)?),
        StoreKind::DynamoDb(settings) => Arc::new(DynamoStore::connect(settings.clone()).await?),
    })
}

/// Provider settings kept in Secrets Manager (`PROVIDER_SECRET_ARN`): a JSON object of variables.
async fn provider_secrets() -> Result<HashMap<String, String>, Error> {
    let Some(arn) = std::env::var("PROVIDER_SECRET_ARN").ok().filter(|arn| !arn.is_empty()) else {
        return Ok(HashMap::new());
    };
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let secret = aws_sdk_secretsmanager::Client::new(&shared).get_secret_value().secret_id(&arn).send().await?;
    let text = secret.secret_string().ok_or("the provider secret has no string value")?;
    let values: HashMap<String, serde_json::Value> = serde_json::from_str(text)
        .map_err(|error| format!("the provider secret is not a JSON object of settings: {error}"))?;
    Ok(values
        .into_iter()
        .map(|(name, value)| (name, value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string())))
        .collect())
}

/// Everything a process needs, built once at start: config, store client, model clients, and
/// the background dispatcher (the worker function when `RUN_WORKER_FUNCTION` is set).
pub async fn state_from_env() -> Result<AppState, Error> {
    let secrets = provider_secrets().await?;
    let config = Config::from_lookup(|name| {
        std::env::var(name).ok().filter(|value| !value.is_empty()).or_else(|| secrets.get(name).cloned())
    })?;
    let store = store(&config).await?;
    let dispatch: Arc<dyn BackgroundDispatch> = match &config.run_worker_function {
        Some(function) => Arc::new(LambdaDispatch::new(function.clone(), config.lambda_endpoint_url.clone()).await),
        None => Arc::new(InProcessDispatch),
    };
    Ok(AppState::with_dispatch(config, store, dispatch)?)
}

fn under_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

/// Serves `app` on `listener` until the process is told to stop.
pub async fn serve_http(listener: TcpListener, app: Router) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

/// `functions/api`: every route, as one Lambda function or as the local server on HOST:PORT.
pub async fn api() -> Result<(), Error> {
    init_tracing();
    let state = state_from_env().await?;
    if under_lambda() {
        // The run stream answers through response streaming, so this function streams too.
        return lambda_http::run_with_streaming_response(api::app(api::routes(), state)).await;
    }
    let address = (state.config.host, state.config.port);
    let listener = TcpListener::bind(address).await?;
    tracing::info!("OpenGPTs API listening on http://{}", listener.local_addr()?);
    serve_http(listener, api::app(api::routes(), state)).await?;
    Ok(())
}

/// A Lambda function serving some of the routes with buffered responses.
pub async fn lambda(routes: Router<AppState>) -> Result<(), Error> {
    init_tracing();
    let state = state_from_env().await?;
    lambda_http::run(api::app(routes, state)).await
}

/// A Lambda function serving some of the routes with response streaming.
pub async fn lambda_streaming(routes: Router<AppState>) -> Result<(), Error> {
    init_tracing();
    let state = state_from_env().await?;
    lambda_http::run_with_streaming_response(api::app(routes, state)).await
}

/// `functions/run-worker`: executes the background runs that `runs` hands over.
pub async fn run_worker() -> Result<(), Error> {
    init_tracing();
    let engine = state_from_env().await?.runs;
    lambda_http::lambda_runtime::run(lambda_http::service_fn(move |event: lambda_http::LambdaEvent<RunJob>| {
        let engine = engine.clone();
        async move { Ok::<_, Error>(engine.execute(event.payload, None).await) }
    }))
    .await
}
