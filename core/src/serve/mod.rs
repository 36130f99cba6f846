//! Process entry points shared by every binary in `functions/`: build the state from the
//! environment once, then serve routes over HTTP locally or through the Lambda runtime.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
#[cfg(feature = "server")]
use tokio::net::TcpListener;

use crate::api::{self, AppState, Routes};
use crate::config::{Config, StoreKind};
#[cfg(feature = "dispatch")]
use crate::runs::LambdaDispatch;
#[cfg(feature = "runs")]
use crate::runs::RunJob;
use crate::schedules::EventBridgeSchedules;
#[cfg(feature = "runs")]
use crate::schedules::FireError;
#[cfg(feature = "sqlite")]
use crate::store::SqliteStore;
use crate::store::{DynamoStore, MemoryStore, Store};

#[cfg(feature = "server")]
mod heap;
#[cfg(feature = "server")]
mod idle;
pub mod logging;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The configured backend, connected once for the life of the process.
pub async fn store(config: &Config) -> Result<Arc<dyn Store>, Error> {
    Ok(match &config.store {
        StoreKind::Memory => Arc::new(MemoryStore::new()),
        #[cfg(feature = "sqlite")]
        StoreKind::Sqlite { path } => Arc::new(SqliteStore::open(path)?),
        #[cfg(not(feature = "sqlite"))]
        StoreKind::Sqlite { .. } => {
            return Err("STORE=sqlite: this build has no SQLite store (the local server's); use dynamodb".into())
        }
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
    let mut state = AppState::new(config, store)?;
    if let Some(settings) = state.config.crons.eventbridge.clone() {
        state = state.with_schedules(Arc::new(EventBridgeSchedules::connect(&settings).await));
    }
    #[cfg(feature = "dispatch")]
    if let Some(function) = state.config.run_worker_function.clone() {
        let endpoint = state.config.lambda_endpoint_url.clone();
        return Ok(state.with_dispatch(Arc::new(LambdaDispatch::new(function, endpoint).await)));
    }
    Ok(state)
}

#[cfg(feature = "server")]
fn under_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

/// Serves every route with `state` on `listener` until the process is told to stop; a
/// connection idle for `IDLE_TIMEOUT_SECONDS` is closed.
#[cfg(feature = "server")]
pub async fn serve_http(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    let listener = idle::IdleListener::new(listener, state.config.idle_timeout);
    // Each connection gets a clone of the app as it is. Served as a `Router`, axum would give each
    // one the router with its state applied again, which rebuilds every route (a tenth of the
    // server's CPU where clients open a connection per stream, as SSE clients do).
    let app = api::app(api::routes(), state).into_service::<axum::body::Body>();
    let per_connection = tower::service_fn(move |_: axum::serve::IncomingStream<'_, idle::IdleListener>| {
        std::future::ready(Ok::<_, std::convert::Infallible>(app.clone()))
    });
    axum::serve(listener, per_connection)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

/// `functions/api`: every route, as one Lambda function or as the local server on HOST:PORT.
#[cfg(feature = "server")]
pub async fn api() -> Result<(), Error> {
    logging::init();
    let state = state_from_env().await?;
    if under_lambda() {
        // The run stream answers through response streaming, so this function streams too.
        state.warm_up().await;
        return lambda_http::run_with_streaming_response(lambda_app(api::routes(), state)).await;
    }
    if state.schedules.fired_here() {
        plan_saved_crons(&state).await;
        tokio::spawn(state.crons().run_local_scheduler(state.config.crons.poll));
    }
    tokio::spawn(sweep_expired_threads(state.clone()));
    if let Some(every) = state.config.runtime_stats {
        tokio::spawn(log_runtime_stats(every));
    }
    tokio::spawn(heap::give_back_after_loads());
    let address = (state.config.host, state.config.port);
    let listener = TcpListener::bind(address).await?;
    tracing::info!("OpenGPTs API listening on http://{}", listener.local_addr()?);
    serve_http(listener, state).await?;
    Ok(())
}

/// The local server's sweep of expired threads, every `TTL_SWEEP_SECONDS` (in the cloud an
/// EventBridge schedule invokes `run-worker` instead).
#[cfg(feature = "server")]
pub async fn sweep_expired_threads(state: AppState) {
    let settings = &state.config.retention;
    let mut ticks = tokio::time::interval(settings.sweep_every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(error) =
            crate::schedules::retention::sweep(state.store.as_ref(), state.schedules.as_ref(), settings).await
        {
            tracing::warn!(%error, "could not look for expired threads");
        }
    }
}

/// Logs the tasks alive in the process and the heap it uses, now and then: either growing while
/// the server is idle, or from one load to the next like it, is a leak (the fault workloads
/// check both).
#[cfg(feature = "server")]
async fn log_runtime_stats(every: std::time::Duration) {
    let metrics = tokio::runtime::Handle::current().metrics();
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        let tasks_alive = metrics.num_alive_tasks();
        match heap::heap() {
            Some(heap) => {
                let sqlite_kib = heap::held_by_sqlite() / 1024;
                tracing::info!(tasks_alive, heap_kib = heap.in_use / 1024, sqlite_kib, "runtime")
            }
            None => tracing::info!(tasks_alive, "runtime"),
        }
    }
}

/// API Gateway puts the stage into the path (`/prod/assistants`) of REST events, and of HTTP API
/// events on a named stage; the routes know nothing of stages. Function URLs and `$default`
/// stages have none. This runs before routing (a `Router::layer` would run after it).
pub fn strip_stage(mut request: lambda_http::Request) -> lambda_http::Request {
    use lambda_http::request::RequestContext;
    use lambda_http::RequestExt;
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.stage.clone(),
        #[cfg(feature = "server")]
        Some(RequestContext::ApiGatewayV2(context)) => context.stage.clone(),
        _ => None,
    };
    let Some(prefix) = stage.filter(|stage| stage != "$default").map(|stage| format!("/{stage}")) else {
        return request;
    };
    let path = request.uri().path();
    let rest = match path.strip_prefix(&prefix) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => return request,
    };
    let rest = if rest.is_empty() { "/" } else { rest };
    let path_and_query = match request.uri().query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_string(),
    };
    let mut parts = request.uri().clone().into_parts();
    if let Ok(stripped) = path_and_query.parse() {
        parts.path_and_query = Some(stripped);
        if let Ok(uri) = axum::http::Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// What a Lambda function serves: the routes, behind the stage stripping.
pub type Lambda = tower::util::MapRequest<Router, fn(lambda_http::Request) -> lambda_http::Request>;

pub fn lambda_app(routes: Routes, state: AppState) -> Lambda {
    tower::ServiceExt::map_request(api::app(routes, state), strip_stage as fn(_) -> _)
}

/// One of the HTTP functions with its routes (`api::function_routes`), answers buffered.
pub async fn lambda(routes: Routes) -> Result<(), Error> {
    lambda_http::run(lambda_app(routes, started().await?)).await
}

/// A route function whose answers are streamed (Lambda response streaming): `runs-stream`.
#[cfg(feature = "runs")]
pub async fn lambda_streaming(routes: Routes) -> Result<(), Error> {
    lambda_http::run_with_streaming_response(lambda_app(routes, started().await?)).await
}

/// A function's state, built and warmed up, with its logs set up first.
async fn started() -> Result<AppState, Error> {
    logging::init();
    let state = state_from_env().await?;
    state.warm_up().await;
    Ok(state)
}

/// `functions/ingest-worker`: reads the files S3 reports uploaded (object-created events).
#[cfg(feature = "files")]
pub async fn ingest_worker() -> Result<(), Error> {
    logging::init();
    let state = state_from_env().await?;
    state.warm_up().await;
    let uploads = state.uploads.clone().ok_or("the ingest worker needs UPLOAD_BUCKET")?;
    let library = state.library.clone();
    lambda_http::lambda_runtime::run(lambda_http::service_fn(
        move |event: lambda_http::LambdaEvent<serde_json::Value>| {
            let (uploads, library) = (uploads.clone(), library.clone());
            async move { uploads.handle_event(&library, &event.payload).await.map_err(Error::from) }
        },
    ))
    .await
}

/// Crons saved before crons kept their run get one, read from their request, so the local
/// scheduler can fire them. One whose request no longer reads is logged and left as it is.
#[cfg(feature = "server")]
async fn plan_saved_crons(state: &AppState) {
    let crons = match state.store.all_crons().await {
        Ok(crons) => crons,
        Err(error) => return tracing::warn!(%error, "could not look for crons to plan"),
    };
    for cron in crons.iter().filter(|cron| cron.run.is_none()) {
        if let Err(error) = api::langgraph::crons::plan_saved(state, &cron.user_id, cron.cron_id).await {
            tracing::warn!(cron_id = %cron.cron_id, %error, "the cron's request does not read as a run");
        }
    }
}

/// What `run-worker` is invoked with: a background run handed over by `runs`, or a cron's
/// firing from its EventBridge schedule.
#[cfg(feature = "runs")]
#[derive(serde::Deserialize)]
#[serde(untagged)]
pub enum WorkerEvent {
    Cron {
        cron_firing: crate::schedules::CronFiring,
    },
    /// The schedule that sweeps expired threads: `{"sweep": "expired_threads"}`.
    Sweep {
        sweep: SweepTarget,
    },
    Run(Box<RunJob>),
}

#[cfg(feature = "runs")]
#[derive(serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepTarget {
    ExpiredThreads,
}

/// `functions/run-worker`: executes the background runs that `runs` hands over, and the runs of
/// crons as their schedules come round.
#[cfg(feature = "runs")]
pub async fn run_worker() -> Result<(), Error> {
    logging::init();
    let state = state_from_env().await?;
    state.warm_up().await;
    lambda_http::lambda_runtime::run(lambda_http::service_fn(move |event: lambda_http::LambdaEvent<WorkerEvent>| {
        let state = state.clone();
        async move { work(&state, event.payload).await }
    }))
    .await
}

/// One invocation of `run-worker`; it answers with the run it executed (`null` for a cron with
/// nothing due, and for a sweep).
#[cfg(feature = "runs")]
pub async fn work(state: &AppState, event: WorkerEvent) -> Result<Option<crate::model::Run>, Error> {
    match event {
        WorkerEvent::Run(job) => Ok(state.runs.execute_delivered(*job).await?),
        WorkerEvent::Sweep { sweep: SweepTarget::ExpiredThreads } => {
            let (store, schedules) = (state.store.as_ref(), state.schedules.as_ref());
            crate::schedules::retention::sweep(store, schedules, &state.config.retention).await?;
            Ok(None)
        }
        WorkerEvent::Cron { cron_firing } => {
            let slot = cron_firing.slot().ok_or_else(|| format!("not a time: {}", cron_firing.scheduled_time))?;
            let (owner, cron_id) = (&cron_firing.user_id, cron_firing.cron_id);
            let crons = state.crons();
            let fired = match crons.fire(owner, cron_id, slot).await {
                Err(FireError::Unplanned(_)) => {
                    api::langgraph::crons::plan_saved(state, owner, cron_id).await?;
                    crons.fire(owner, cron_id, slot).await
                }
                fired => fired,
            };
            Ok(fired?)
        }
    }
}
