//! Faults injected under load (`tests/faults/`): the fault injector between the server and a
//! dependency breaks a fifth of its requests while 100 streamed and background runs of a
//! chatbot and an agent go on 20 threads. On DynamoDB: throttles, 500s, 503s, connections
//! dropped before and after the write, answers held past the client's timeout. On SQLite, with
//! the chatbots on OpenAI's API (a stand-in): 429s, 500s, streams cut or stalled half-way.
//! The workload then checks what was acknowledged against what was stored: nothing lost or
//! doubled or interleaved, every failure a clear error, every thread free again once the faults
//! stop. `make chaos` runs the long version and prints its figures.

use std::process::{Command, Stdio};
use std::time::Duration;

use integration_tests::process::spawn_api;
use integration_tests::{mock_services, temp_path};

/// Starts a Python tool of `tests/faults/` that writes its address to a file once it listens.
fn start_tool(script: &str, args: &[String]) -> (std::process::Child, String) {
    let address_file = temp_path("fault-proxy.address");
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/faults/");
    let child = Command::new("python")
        .arg(format!("{folder}{script}"))
        .args(args)
        .arg("--address-file")
        .arg(&address_file)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python runs (make test puts its virtualenv first on PATH)");
    for _ in 0..300 {
        if let Ok(address) = std::fs::read_to_string(&address_file) {
            if !address.is_empty() {
                return (child, address);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{script} did not start");
}

/// A process killed when the test ends, however it ends.
struct Stop(std::process::Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_dynamodb_faults_no_answer_is_lost_doubled_or_interleaved() {
    let emulator = std::env::var("DYNAMODB_TEST_ENDPOINT")
        .expect("DYNAMODB_TEST_ENDPOINT is not set: run `make test`, which starts the DynamoDB emulator (moto)");
    // Held answers come after the client's attempt timeout (below), so it tries again.
    let (proxy, faults) = start_tool(
        "proxy.py",
        &["--upstream".into(), emulator, "--rate".into(), "0".into(), "--late-seconds".into(), "0.8".into()],
    );
    let env = vec![
        ("STORE", "dynamodb".to_string()),
        ("AWS_ENDPOINT_URL_DYNAMODB", faults.clone()),
        ("TABLE_NAME", format!("faults-{}", uuid::Uuid::new_v4())),
        ("DYNAMODB_ATTEMPT_TIMEOUT_MS", "500".into()),
    ];
    run_workload(env, &faults, "offline", (100, "0.2"), vec![Stop(proxy)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_model_faults_runs_fail_clearly_and_threads_stay_consistent() {
    let (model, upstream) = start_tool("openai_mock.py", &[]);
    // A stalled stream outlasts the server's model timeout (below).
    let (proxy, faults) = start_tool(
        "proxy.py",
        &["--flavor", "openai", "--upstream", &upstream, "--rate", "0", "--stall-seconds", "2"].map(str::to_string),
    );
    let env = vec![
        ("STORE", "sqlite".to_string()),
        ("SQLITE_PATH", temp_path("faults.sqlite3").display().to_string()),
        ("OPENAI_API_KEY", "sk-faults".into()),
        ("OPENAI_BASE_URL", format!("{faults}/v1")),
        ("LLM_TIMEOUT_SECONDS", "1".into()),
    ];
    run_workload(env, &faults, "openai", (100, "0.2"), vec![Stop(proxy), Stop(model)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_worker_invoke_faults_background_runs_run_once_or_fail_clearly() {
    let (Ok(functions), Ok(database)) = (std::env::var("LAMBDA_EMULATOR_URL"), std::env::var("LAMBDA_SQLITE_PATH"))
    else {
        panic!("LAMBDA_EMULATOR_URL and LAMBDA_SQLITE_PATH are not set: run `make test`, which starts `cargo lambda watch`")
    };
    // The server hands its background runs to `run-worker` under `cargo lambda watch`, through
    // the injector: invokes throttled, failing, lost before or after they land, delivered twice.
    let (proxy, faults) =
        start_tool("proxy.py", &["--flavor", "lambda", "--upstream", &functions, "--rate", "0"].map(str::to_string));
    let env = vec![
        ("STORE", "sqlite".to_string()),
        ("SQLITE_PATH", database),
        ("RUN_WORKER_FUNCTION", "run-worker".into()),
        ("AWS_ENDPOINT_URL_LAMBDA", faults.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
    ];
    // Fewer runs (the functions run one invocation at a time, and an invoke waits for its run),
    // so more of their invokes broken: every kind still happens.
    run_workload(env, &faults, "offline", (40, "0.4"), vec![Stop(proxy)]).await;
}

/// Runs the server with `env` and the workload (so many runs, faults at that rate) with the
/// injector at `faults`, and asserts its checks passed and every kind of fault happened.
async fn run_workload(
    mut env: Vec<(&str, String)>,
    faults: &str,
    model: &str,
    (runs, rate): (usize, &str),
    tools: Vec<Stop>,
) {
    let services = mock_services::start().await;
    env.extend([
        ("RUN_LEASE_SECONDS", "3".into()),
        ("OFFLINE_TOKEN_DELAY_MS", "1".into()),
        ("WIKIPEDIA_API_URL", format!("{}/w/api.php", services.base_url)),
        ("RUST_LOG", "info".into()),
        ("RUNTIME_STATS_SECONDS", "1".into()),
        // Each thread's cache of freed blocks counts as heap in use, and SQLite's calls run on
        // threads that come and go: without it, the heap the server logs is what it holds.
        ("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0".into()),
    ]);
    let log = temp_path("faults-api.log");
    let (server, app) = spawn_api(&log, &env).await;
    let pid = server.id().to_string();
    let _stopped_at_the_end = (Stop(server), tools);
    let runs = runs.to_string();
    let server_log = log.display().to_string();
    let args = [
        "--server",
        &app.base,
        "--faults",
        faults,
        "--pid",
        &pid,
        "--model",
        model,
        "--runs",
        &runs,
        "--rate",
        rate,
        "--server-log",
        &server_log,
    ]
    .map(str::to_string);
    let workload = tokio::task::spawn_blocking(move || {
        Command::new("python")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/faults/workload.py"))
            .args(args)
            .args(["--threads", "20", "--concurrency", "16", "--lease-seconds", "3"])
            .output()
            .expect("the workload runs")
    })
    .await
    .unwrap();
    let printed = String::from_utf8_lossy(&workload.stdout);
    // The workload's connections closed; the server logs its tasks each second.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!logged.contains("panicked"), "the server panicked:\n{logged}");
    let problems: Vec<&str> =
        logged.lines().filter(|line| line.contains("WARN") || line.contains("ERROR")).take(30).collect();
    assert!(
        workload.status.success(),
        "{printed}\n{}\nthe server's warnings and errors:\n{}",
        String::from_utf8_lossy(&workload.stderr),
        problems.join("\n")
    );
    // The faults really happened, of every kind.
    let figures: serde_json::Value = serde_json::from_str(printed.lines().last().unwrap_or("{}")).unwrap();
    let injected = figures["faults injected"].as_object().expect("faults by kind");
    assert!(injected.values().all(|count| count.as_u64() > Some(0)), "{figures}");
    // No task left behind: what the server holds once idle again is what it held at its start,
    // but for the connections its clients keep pooled (up to one per request at once, per client).
    let tasks: Vec<u64> = logged
        .lines()
        .filter_map(|line| line.split("tasks_alive=").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect();
    let (Some(start), Some(idle)) = (tasks.first(), tasks.last()) else { panic!("no runtime line in the log") };
    println!("{printed}tasks alive: {start} at the start, {idle} once idle after the load");
    assert!(*idle <= start + 40, "tasks left behind: {start} at the start, {idle} once idle after the load");
}
