//! The benchmark: what users pay for, measured on this machine, on loopback only, in bounded
//! loops. Prints a table and one JSON line.
//!
//!   make bench                 # full run (release build)
//!   cargo run -p bench -- --smoke   # tiny counts: checks the benchmark itself works
//!   make bench ARGS="--reference --reference-only"   # the reference LangGraph server side by side, alone

mod agents;
mod baseline;
mod crud;
mod hostile;
mod lambda_init;
mod langgraph;
mod reference;
mod retrieval;
mod server;
mod stats;
mod streaming;

use std::path::PathBuf;
use std::time::Duration;

use integration_tests::mcp_server::McpToolServer;
use serde_json::json;

use server::Server;
use stats::ms;
use streaming::Api;

pub const TOKENS: usize = 200;

/// The run whose thread the event protocol's replay row reads back: some 10,000 events.
const REPLAY_TOKENS: usize = 10_000;

fn api_binary() -> PathBuf {
    // The `api` binary built beside this one (same profile, same target dir).
    let me = std::env::current_exe().expect("own path");
    me.with_file_name("api")
}

#[tokio::main]
async fn main() {
    let smoke = std::env::args().any(|arg| arg == "--smoke");
    // --lambda is for scripts/bench.sh, which builds and lists the function zips after this.
    let (crud_requests, stream_repeats_fast, stream_repeats_slow) = if smoke { (50, 2, 1) } else { (4000, 40, 5) };
    let agent_repeats = if smoke { 3 } else { 200 };
    let (ingest_mb, chunk_counts, searches) = if smoke { (1, [200, 1000], 5) } else { (5, [1_000, 10_000], 100) };
    let binary = api_binary();
    assert!(binary.exists(), "build the api binary first: cargo build --release -p api");
    // `--reference-only`: that comparison alone (scripts/bench.sh --reference --reference-only).
    if std::env::args().any(|arg| arg == "--reference-only") {
        let figures = compare_with_reference(&binary, smoke).await.expect("LANGGRAPH_REFERENCE_VENV is set");
        println!("\n{}", serde_json::to_string(&figures).unwrap());
        return;
    }
    let data = std::env::temp_dir().join(format!("opengpts-bench-{}", std::process::id()));
    let mut report = serde_json::Map::new();
    println!("OpenGPTs Serverless benchmark ({})", if smoke { "smoke run, tiny counts" } else { "full run" });
    let (found, listed) = server::hot_code_found(&binary);
    println!(
        "binary: {} ({found} of the {listed} functions of functions/api/hot-code.txt found in it)\n",
        binary.display()
    );
    report.insert("hot_code_names".into(), json!({"found": found, "listed": listed}));

    // Start-up, memory and CRUD, per local store.
    println!("| store | endpoint | concurrency | req/s | p50 ms | p99 ms |\n|---|---|---|---|---|---|");
    for store in ["memory", "sqlite"] {
        let env = vec![
            ("STORE", store.to_string()),
            ("SQLITE_PATH", data.join(format!("{store}.sqlite3")).display().to_string()),
        ];
        let server = Server::start(&binary, &env).await;
        let idle_rss = server.rss_mib();
        let client = reqwest::Client::new();
        let (assistant_id, thread_id) = crud::seed(&client, &server.base).await;
        let mut rows = Vec::new();
        for endpoint in ["GET /threads/{id}/messages", "GET /assistants", "POST /threads"] {
            for concurrency in [1, 16] {
                let result =
                    crud::measure(&server.base, endpoint, concurrency, crud_requests, &assistant_id, &thread_id).await;
                println!(
                    "| {store} | {endpoint} | {concurrency} | {:.0} | {:.3} | {:.3} |",
                    result.requests_per_second, result.latency.p50_ms, result.latency.p99_ms
                );
                rows.push(json!({"endpoint": endpoint, "concurrency": concurrency, "rps": result.requests_per_second,
                    "p50_ms": result.latency.p50_ms, "p99_ms": result.latency.p99_ms}));
            }
        }
        report.insert(
            store.to_string(),
            json!({"startup_ms": ms(server.startup), "idle_rss_mib": idle_rss, "loaded_rss_mib": server.rss_mib(), "crud": rows}),
        );
    }
    println!();
    for store in ["memory", "sqlite"] {
        let r = &report[store];
        println!(
            "{store}: spawn to first 200: {:.1} ms; RSS idle {:.1} MiB, after load {:.1} MiB",
            r["startup_ms"].as_f64().unwrap(),
            r["idle_rss_mib"].as_f64().unwrap(),
            r["loaded_rss_mib"].as_f64().unwrap()
        );
    }

    // Streaming overhead against the same upstream, direct and through /runs/stream.
    println!("\n| token gap | path | first token p50 ms | p99 ms | total p50 ms | p99 ms |\n|---|---|---|---|---|---|");
    let mut streams = Vec::new();
    for (gap, repeats) in [(Duration::ZERO, stream_repeats_fast), (Duration::from_millis(20), stream_repeats_slow)] {
        let upstream = streaming::upstream(TOKENS, gap).await;
        let env = vec![
            ("STORE", "memory".to_string()),
            ("OPENAI_API_KEY", "bench".to_string()),
            ("OPENAI_BASE_URL", format!("{}/v1", upstream.base_url)),
        ];
        let server = Server::start(&binary, &env).await;
        let apis = [Api::OpenGpts, Api::LangGraph { resumable: false }, Api::LangGraph { resumable: true }];
        for api in apis {
            let (paired, cpu_per_token) = streaming::paired(&server, &upstream, repeats, TOKENS, api).await;
            for (path, times) in [("direct", &paired.direct), (api.label(), &paired.through)] {
                println!(
                    "| {} ms | {path} | {:.3} | {:.3} | {:.1} | {:.1} |",
                    gap.as_millis(),
                    times.first_token.p50_ms,
                    times.first_token.p99_ms,
                    times.total.p50_ms,
                    times.total.p99_ms
                );
            }
            let added = &paired.added;
            println!(
                "|   | added by the server (per pair) | {:.3} | {:.3} | {:.1} | {:.1} |",
                added.first_token.p50_ms, added.first_token.p99_ms, added.total.p50_ms, added.total.p99_ms
            );
            println!(
                "|   | server CPU per token: {:.1} µs, of which user space {:.1} µs | | | | |",
                cpu_per_token.total.as_secs_f64() * 1e6,
                cpu_per_token.user.as_secs_f64() * 1e6
            );
            streams.push(json!({"api": api.label(), "gap_ms": gap.as_millis() as u64, "tokens": TOKENS, "repeats": repeats,
                "added_first_token_p50_ms": added.first_token.p50_ms, "added_first_token_p99_ms": added.first_token.p99_ms,
                "added_total_p50_ms": added.total.p50_ms, "added_total_p99_ms": added.total.p99_ms,
                "cpu_per_token_us": cpu_per_token.total.as_secs_f64() * 1e6,
                "user_cpu_per_token_us": cpu_per_token.user.as_secs_f64() * 1e6}));
        }
    }
    report.insert("streaming".into(), json!(streams));

    // The LangGraph API's resumable streams: a join's replay, and the store writes they cost.
    // 10,000 events even in a smoke run: the figure the target names, and a run of a second.
    let (events, replayed) = langgraph::replay(&binary, 10_000, if smoke { 3 } else { 10 }).await;
    println!(
        "\nLangGraph join replaying a finished resumable run from its first event ({events} events, memory store): \
         p50 {:.1} ms, p99 {:.1} ms",
        replayed.p50_ms, replayed.p99_ms
    );
    let mut resumable =
        json!({"replay_events": events, "replay_p50_ms": replayed.p50_ms, "replay_p99_ms": replayed.p99_ms});
    if let Ok(endpoint) = std::env::var("DYNAMODB_BENCH_ENDPOINT") {
        let (writes, events, took) =
            langgraph::writes_per_second(&binary, &endpoint, TOKENS, Duration::from_millis(20)).await;
        let per_second = writes as f64 / took.as_secs_f64();
        println!(
            "LangGraph resumable stream on DynamoDB ({TOKENS} tokens 20 ms apart): {events} events kept in {writes} \
             writes over {:.1} s of streaming = {per_second:.1} writes per second",
            took.as_secs_f64()
        );
        resumable["dynamodb_writes"] = json!(writes);
        resumable["dynamodb_writes_per_second"] = json!(per_second);
    }
    report.insert("langgraph_resumable".into(), resumable);
    // The event protocol's replay; beside the reference's when it is measured too (below).
    if std::env::var_os("LANGGRAPH_REFERENCE_VENV").is_none() {
        report.insert("event_protocol_replay".into(), our_event_replay(&binary, smoke).await);
    }
    // Side by side with the reference LangGraph server, when scripts/bench.sh installed it.
    if let Some(figures) = compare_with_reference(&binary, smoke).await {
        report.insert("langgraph_reference".into(), figures);
    }

    // The agent loop: what each step costs beyond the model and the tool, per local store, with
    // an HTTP service's tool and with an MCP server's.
    let services = agents::services().await;
    let mcp_server = McpToolServer::start();
    let tools = [("HTTP", agents::wikipedia(&services)), ("MCP", agents::mcp(&mcp_server).await)];
    println!("\n| store | agent run | added per step p50 ms | p99 ms |\n|---|---|---|---|");
    let mut agent_rows = Vec::new();
    for (kind, tool) in &tools {
        let llm = agents::upstream(tool.name, tool.args).await;
        for store in ["memory", "sqlite"] {
            let mut env = agents::env(&llm, &services);
            env.push(("STORE", store.to_string()));
            env.push(("SQLITE_PATH", data.join(format!("agents-{store}-{kind}.sqlite3")).display().to_string()));
            let server = Server::start(&binary, &env).await;
            let added = agents::added_per_step(&server, &llm, tool, agent_repeats).await;
            println!(
                "| {store} | model, {kind} tool round, model ({agent_repeats} runs) | {:.3} | {:.3} |",
                added.p50_ms, added.p99_ms
            );
            agent_rows.push(json!({"store": store, "tool": kind, "steps": agents::STEPS, "runs": agent_repeats,
                "added_per_step_p50_ms": added.p50_ms, "added_per_step_p99_ms": added.p99_ms}));
        }
    }
    report.insert("agent_steps".into(), json!(agent_rows));

    // Files: reading, splitting, embedding (offline) and storing; searching per local store.
    println!(
        "\n| store | ingest MB/s (offline embedder) | search, {} chunks: p50 / p99 ms | search, {} chunks: p50 / p99 ms |\n|---|---|---|---|",
        chunk_counts[0], chunk_counts[1]
    );
    let _ = std::fs::create_dir_all(&data);
    let mut file_rows = Vec::new();
    for (store_name, store) in retrieval::stores(&data) {
        let ingested = retrieval::ingest(store.clone(), ingest_mb).await;
        let small = retrieval::search(store.clone(), chunk_counts[0], searches).await;
        let large = retrieval::search(store, chunk_counts[1], searches).await;
        println!(
            "| {store_name} | {:.1} | {:.2} / {:.2} | {:.2} / {:.2} |",
            ingested.mb_per_second, small.p50_ms, small.p99_ms, large.p50_ms, large.p99_ms
        );
        file_rows.push(json!({"store": store_name, "ingest_mb_per_s": ingested.mb_per_second,
            "search_chunks": chunk_counts, "search_p50_ms": [small.p50_ms, large.p50_ms], "search_p99_ms": [small.p99_ms, large.p99_ms]}));
    }
    let units = |chunks: usize, dimensions: usize| retrieval::dynamodb_read_units(chunks, dimensions);
    println!(
        "DynamoDB, one search (a strongly consistent Query of the namespace): {} read units over 1,000 chunks and {} over \
         10,000 with the offline embedder (1,024 dimensions); {} and {} with 1,536-dimension vectors",
        units(1_000, 1024), units(10_000, 1024), units(1_000, 1536), units(10_000, 1536)
    );
    report.insert("files".into(), json!({"stores": file_rows,
        "dynamodb_read_units_per_search": {"1000_chunks_1024_dims": units(1_000, 1024), "10000_chunks_1024_dims": units(10_000, 1024),
            "1000_chunks_1536_dims": units(1_000, 1536), "10000_chunks_1536_dims": units(10_000, 1536)}}));
    report.insert("hostile_files".into(), hostile::run().await);
    // A cold start as Lambda gives it, against a Runtime API stub and the DynamoDB emulator.
    match std::env::var("DYNAMODB_BENCH_ENDPOINT") {
        Ok(endpoint) => {
            let env = lambda_env(&endpoint);
            let mut creating = env.clone();
            creating.retain(|(name, _)| *name != "DYNAMODB_CREATE_TABLE");
            let binaries = binary.parent().expect("the binaries' folder");
            let starts = if smoke { 2 } else { 10 };
            println!(
                "\nLambda cold starts ({starts} each, DynamoDB emulator): exec to the first `next` request, and the first \
                 invocation\n\n| function | init p50 ms | init p99 ms | first invocation | p50 ms | p99 ms |\n|---|---|---|---|---|---|"
            );
            let mut rows = serde_json::Map::new();
            for (index, case) in lambda_init::cases().iter().enumerate() {
                if index == 0 {
                    // The first start creates the table; the measured ones find it.
                    lambda_init::measure(binaries, case, &creating).await;
                }
                let (mut inits, mut firsts) = (Vec::new(), Vec::new());
                for _ in 0..starts {
                    let cold = lambda_init::measure(binaries, case, &env).await;
                    inits.push(cold.init);
                    firsts.push(cold.first_invocation);
                }
                let (init, first) = (stats::summarize(&mut inits), stats::summarize(&mut firsts));
                println!(
                    "| {} | {:.1} | {:.1} | {} | {:.1} | {:.1} |",
                    case.function, init.p50_ms, init.p99_ms, case.first, first.p50_ms, first.p99_ms
                );
                rows.insert(
                    case.function.into(),
                    json!({"init_p50_ms": init.p50_ms, "init_p99_ms": init.p99_ms, "first_invocation": case.first,
                    "first_invocation_p50_ms": first.p50_ms, "first_invocation_p99_ms": first.p99_ms}),
                );
            }
            report.insert("cold_start".into(), json!({"starts": starts, "functions": rows}));
        }
        Err(_) => println!(
            "\nLambda cold start: not measured (DYNAMODB_BENCH_ENDPOINT is unset; `make bench` starts the emulator)"
        ),
    }
    // The commit before, built by scripts/bench.sh into BENCH_BASELINE_BINARIES.
    if let Ok(baseline) = std::env::var("BENCH_BASELINE_BINARIES") {
        let env = std::env::var("DYNAMODB_BENCH_ENDPOINT").ok().map(|endpoint| lambda_env(&endpoint));
        let binaries = binary.parent().expect("the binaries' folder");
        let figures = baseline::compare(binaries, std::path::Path::new(&baseline), smoke, env.as_deref()).await;
        report.insert("commit_before".into(), figures);
    }
    let _ = std::fs::remove_dir_all(&data);
    println!("\n{}", serde_json::Value::Object(report));
}

/// The Lambda functions' environment as the template configures them, the emulator at
/// `endpoint` standing in for every AWS service.
fn lambda_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("STORE", "dynamodb".to_string()),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.to_string()),
        ("AWS_ENDPOINT_URL_S3", endpoint.to_string()),
        ("AWS_ENDPOINT_URL_LAMBDA", endpoint.to_string()),
        ("TABLE_NAME", "bench-cold-start".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("UPLOAD_BUCKET", "bench-uploads".into()),
        ("RUN_WORKER_FUNCTION", "run-worker".into()),
        // As deployed: the template makes the table, so no function describes it at init.
        ("DYNAMODB_CREATE_TABLE", "false".into()),
    ]
}

/// A new event protocol connection replaying a finished thread of some 10,000 events from `since`
/// 0, on our server (memory store).
async fn our_event_replay(binary: &std::path::Path, smoke: bool) -> serde_json::Value {
    let upstream = streaming::upstream(REPLAY_TOKENS, Duration::ZERO).await;
    let (ours, assistant) = reference::our_server(binary, &format!("{}/v1", upstream.base_url)).await;
    let base = format!("{}/langgraph", ours.base);
    let (events, replayed) = reference::replay(&base, &assistant, REPLAY_TOKENS, if smoke { 3 } else { 10 }).await;
    println!(
        "Event protocol replay of a finished thread from since 0 ({events} messages and lifecycle events), this one \
         (memory store): p50 {:.1} ms, p99 {:.1} ms",
        replayed.p50_ms, replayed.p99_ms
    );
    json!({"events": events, "p50_ms": replayed.p50_ms, "p99_ms": replayed.p99_ms})
}

/// Our server and the reference LangGraph server, on the same graph and mock upstream: CPU per
/// token and memory for each protocol, and the event protocol's replay from `since`, printed as
/// tables; `None` without the reference's virtualenv.
async fn compare_with_reference(binary: &std::path::Path, smoke: bool) -> Option<serde_json::Value> {
    use reference::Protocol;
    let venv = std::env::var("LANGGRAPH_REFERENCE_VENV").ok()?;
    let venv = std::path::Path::new(&venv);
    let repeats = if smoke { 3 } else { 20 };
    println!(
        "\n| LangGraph server ({repeats} chatbot runs of {TOKENS} tokens) | protocol | server CPU per token µs | RSS after, MiB |\n|---|---|---|---|"
    );
    let mut figures = serde_json::Map::new();
    let mut ours_code_rss = 0.0;
    for (protocol, label) in
        [(Protocol::Classic, "runs/stream, messages-tuple"), (Protocol::Events, "run.start + stream/events")]
    {
        let (ours, theirs) = reference::compare(binary, venv, protocol, repeats, TOKENS).await;
        for (name, figures) in [("this one (memory store)", &ours), ("langgraph dev (inmem), reference", &theirs)] {
            println!(
                "| {name} | {label} | {:.1} | {:.1} |",
                figures.cpu_per_token.as_secs_f64() * 1e6,
                figures.rss_mib
            );
        }
        let cpu_ratio = theirs.cpu_per_token.as_secs_f64() / ours.cpu_per_token.as_secs_f64();
        let memory_ratio = theirs.rss_mib / ours.rss_mib;
        println!("| ({label}: the reference uses {cpu_ratio:.0}× the CPU per token and {memory_ratio:.1}× the memory) | | | |");
        ours_code_rss = ours.code_rss_mib;
        figures.insert(
            format!("{protocol:?}").to_lowercase(),
            json!({"runs": repeats, "tokens": TOKENS,
            "ours_cpu_per_token_us": ours.cpu_per_token.as_secs_f64() * 1e6, "ours_rss_mib": ours.rss_mib,
            "ours_code_rss_mib": ours.code_rss_mib,
            "reference_cpu_per_token_us": theirs.cpu_per_token.as_secs_f64() * 1e6, "reference_rss_mib": theirs.rss_mib,
            "cpu_ratio": cpu_ratio, "memory_ratio": memory_ratio}),
        );
    }
    // The reference runs Python: its own binary is the interpreter's, so only ours is shown.
    let (found, listed) = server::hot_code_found(binary);
    println!(
        "Of ours, {ours_code_rss:.1} MiB are its binary's code (bench/hot_code keeps the code the server runs together: \
         {found} of the {listed} functions it lists are in this binary)."
    );
    // The event protocol's replay of a long thread from `since` 0, on both.
    figures.insert("replay".into(), our_event_replay(binary, smoke).await);
    let upstream = streaming::upstream(REPLAY_TOKENS, Duration::ZERO).await;
    let openai = format!("{}/v1", upstream.base_url);
    let reference = reference::reference_server(venv, &openai).await;
    let (events, theirs) =
        reference::replay(&reference.base.clone(), "chatbot", REPLAY_TOKENS, if smoke { 3 } else { 10 }).await;
    println!(
        "Event protocol replay of a finished thread from since 0 ({events} messages and lifecycle events), \
         langgraph dev (inmem), reference: p50 {:.1} ms, p99 {:.1} ms",
        theirs.p50_ms, theirs.p99_ms
    );
    figures
        .insert("reference_replay".into(), json!({"events": events, "p50_ms": theirs.p50_ms, "p99_ms": theirs.p99_ms}));
    Some(serde_json::Value::Object(figures))
}
