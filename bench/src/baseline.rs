//! This commit beside the commit before it, in one run (scripts/bench.sh builds both, each as a
//! user builds it): the figures a change must not make worse. Each is measured on both builds in
//! turn, a few rounds, and the median of the rounds is shown, so that the machine's drift during
//! the run falls on both sides alike.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::lambda_init;
use crate::server::Server;
use crate::stats::{self, Summary};
use crate::{crud, reference, streaming, TOKENS};

/// One build's figures.
#[derive(Default)]
struct Figures {
    cpu_per_token_us: Vec<f64>,
    rss_after_mib: Vec<f64>,
    idle_rss_mib: Vec<f64>,
    crud_rps: Vec<f64>,
    /// Per function: its cold start's init, in milliseconds.
    init_ms: Vec<(&'static str, Vec<f64>)>,
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// One round of every figure of the build whose binaries are in `binaries`.
async fn round(binaries: &Path, figures: &mut Figures, smoke: bool, lambda_env: Option<&[(&str, String)]>) {
    let binary = binaries.join("api");
    let upstream = streaming::upstream(TOKENS, Duration::ZERO).await;
    let served = reference::ours(
        &binary,
        &format!("{}/v1", upstream.base_url),
        reference::Protocol::Classic,
        if smoke { 3 } else { 20 },
        TOKENS,
    )
    .await;
    figures.cpu_per_token_us.push(served.cpu_per_token.as_secs_f64() * 1e6);
    figures.rss_after_mib.push(served.rss_mib);

    let server = Server::start(&binary, &[("STORE", "memory".to_string())]).await;
    figures.idle_rss_mib.push(server.rss_mib());
    let (assistant_id, thread_id) = crud::seed(&reqwest::Client::new(), &server.base).await;
    let endpoint = "GET /threads/{id}/messages";
    let requests = if smoke { 50 } else { 4000 };
    let crud = crud::measure(&server.base, endpoint, 16, requests, &assistant_id, &thread_id).await;
    figures.crud_rps.push(crud.requests_per_second);
    drop(server);

    if let Some(env) = lambda_env {
        for (index, case) in lambda_init::cases().iter().enumerate() {
            let mut inits = Vec::new();
            for _ in 0..if smoke { 2 } else { 5 } {
                inits.push(lambda_init::measure(binaries, case, env).await.init);
            }
            let init: Summary = stats::summarize(&mut inits);
            match figures.init_ms.get_mut(index) {
                Some((_, values)) => values.push(init.p50_ms),
                None => figures.init_ms.push((case.function, vec![init.p50_ms])),
            }
        }
    }
}

/// Measures both builds (the current one's binaries in `current`, the one before's in
/// `baseline`), prints the table, and returns the figures.
pub async fn compare(current: &Path, baseline: &Path, smoke: bool, lambda_env: Option<&[(&str, String)]>) -> Value {
    let (mut ours, mut before) = (Figures::default(), Figures::default());
    let rounds = if smoke { 1 } else { 3 };
    for _ in 0..rounds {
        round(current, &mut ours, smoke, lambda_env).await;
        round(baseline, &mut before, smoke, lambda_env).await;
    }
    println!(
        "\nThis commit beside the one before it ({rounds} rounds each, alternating; medians)\n\n\
         | figure | this commit | the commit before | change |\n|---|---|---|---|"
    );
    let mut rows = Vec::new();
    let mut row = |figure: String, now: f64, then: f64| {
        println!("| {figure} | {now:.1} | {then:.1} | {:+.1}% |", (now / then - 1.0) * 100.0);
        rows.push(json!({"figure": figure, "this_commit": now, "commit_before": then}));
    };
    row(
        "server CPU per token, µs (LangGraph chatbot, messages-tuple)".into(),
        median(&ours.cpu_per_token_us),
        median(&before.cpu_per_token_us),
    );
    row("RSS after that load, MiB".into(), median(&ours.rss_after_mib), median(&before.rss_after_mib));
    row("RSS idle, MiB (memory store)".into(), median(&ours.idle_rss_mib), median(&before.idle_rss_mib));
    row("GET /threads/{id}/messages at concurrency 16, req/s".into(), median(&ours.crud_rps), median(&before.crud_rps));
    for ((function, now), (_, then)) in ours.init_ms.iter().zip(&before.init_ms) {
        row(format!("Lambda init of {function}, p50 ms"), median(now), median(then));
    }
    json!({"rounds": rounds, "rows": rows})
}
