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

use integration_tests::process::{spawn_api, KilledAtEnd};
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

/// The injector in front of the DynamoDB emulator, injecting nothing until told a rate. Held
/// answers come after the clients' attempt timeout (500 ms in these tests), so they try again.
fn dynamodb_fault_injector() -> (std::process::Child, String) {
    let emulator = std::env::var("DYNAMODB_TEST_ENDPOINT")
        .expect("DYNAMODB_TEST_ENDPOINT is not set: run `make test`, which starts the DynamoDB emulator (moto)");
    start_tool(
        "proxy.py",
        &["--upstream".into(), emulator, "--rate".into(), "0".into(), "--late-seconds".into(), "0.8".into()],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_dynamodb_faults_no_answer_is_lost_doubled_or_interleaved() {
    let (proxy, faults) = dynamodb_fault_injector();
    let env = vec![
        ("STORE", "dynamodb".to_string()),
        ("AWS_ENDPOINT_URL_DYNAMODB", faults.clone()),
        ("TABLE_NAME", format!("faults-{}", uuid::Uuid::new_v4())),
        ("DYNAMODB_ATTEMPT_TIMEOUT_MS", "500".into()),
    ];
    run_workload(env, &faults, "offline", (100, "0.2"), vec![KilledAtEnd(proxy)]).await;
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
    run_workload(env, &faults, "openai", (100, "0.2"), vec![KilledAtEnd(proxy), KilledAtEnd(model)]).await;
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
    run_workload(env, &faults, "offline", (40, "0.4"), vec![KilledAtEnd(proxy)]).await;
}

/// Runs the server with `env` and the workload (so many runs, faults at that rate) with the
/// injector at `faults`, and asserts its checks passed and every kind of fault happened.
async fn run_workload(
    mut env: Vec<(&str, String)>,
    faults: &str,
    model: &str,
    (runs, rate): (usize, &str),
    tools: Vec<KilledAtEnd>,
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
    let _stopped_at_the_end = (KilledAtEnd(server), tools);
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

/// "Delete my data" (`DELETE /me/data`) with 30% of DynamoDB's requests failing (60% for the
/// first three tries) in every way the injector knows: sent again until it answers, it leaves
/// nothing of its user, and every item of another user is still there, their stored bytes
/// counted as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_dynamodb_faults_deleting_a_users_data_is_finished_by_retries_and_touches_no_one_else() {
    use std::sync::Arc;

    use integration_tests::contract::{self, SharedStore};
    use opengpts::model::{EmbedderId, UserId};
    use opengpts::store::{stored_bytes, DocumentQuota, DynamoStore, StoreError};
    use serde_json::json;

    let (proxy, faults) = dynamodb_fault_injector();
    let _stop = KilledAtEnd(proxy);
    let mut direct_settings = integration_tests::dynamodb_settings(Some(7));
    let direct: SharedStore = Arc::new(DynamoStore::connect(direct_settings.clone()).await.unwrap());
    direct_settings.endpoint_url = Some(faults.clone());
    direct_settings.attempt_timeout = Duration::from_millis(500);
    let faulty: SharedStore = Arc::new(DynamoStore::connect(direct_settings).await.unwrap());
    let app = integration_tests::spawn_app_with(integration_tests::test_config(|_| None), faulty).await;

    // Two users with the same data: assistants and threads with files, runs with feedback,
    // memory items and crons.
    let embedder = EmbedderId { name: "faults".into(), dimensions: 8 };
    let roomy = DocumentQuota { max_chunks: 1000, max_user_bytes: 1 << 30 };
    let mut bytes = 0;
    for owner in ["leaving", "staying"] {
        let user = UserId::new(owner).unwrap();
        for second in 0..3 {
            let helper = contract::assistant(owner, false, second);
            direct.put_assistant(&helper).await.unwrap();
            let files = contract::file_chunks(helper.assistant_id, "a.txt", 10, 8);
            direct.add_document(helper.assistant_id, &user, &embedder, &files, roomy).await.unwrap();
            bytes += stored_bytes(&files);
            for _ in 0..2 {
                let chat = contract::thread(owner, helper.assistant_id, second);
                direct.put_thread(&chat).await.unwrap();
                contract::answered_with_feedback(&direct, owner, &chat).await;
                let files = contract::file_chunks(chat.thread_id, "t.txt", 2, 8);
                direct.add_document(chat.thread_id, &user, &embedder, &files, roomy).await.unwrap();
                bytes += stored_bytes(&files);
                direct.put_cron(&contract::cron(owner, second, Some(chat.thread_id))).await.unwrap();
            }
        }
        for key in 0..5 {
            direct.put_memory(&user, &contract::memory(&["notes"], &key.to_string(), json!({"k": key}))).await.unwrap();
        }
    }
    let snapshot = |user: UserId| {
        let direct = direct.clone();
        async move {
            let mut items = Vec::new();
            for helper in direct.list_assistants(&user).await.unwrap() {
                items.push(format!("{helper:?}"));
                items.push(format!("{:?}", direct.documents(helper.assistant_id).await.unwrap()));
            }
            for chat in direct.list_threads(&user).await.unwrap() {
                items.push(format!("{:?}", direct.thread_view(&user, chat.thread_id).await.unwrap().messages));
                for run in direct.list_runs(&user, chat.thread_id).await.unwrap() {
                    items.push(format!("{run:?} {:?}", direct.feedback(&run).await.unwrap()));
                }
                items.push(format!("{:?}", direct.documents(chat.thread_id).await.unwrap()));
            }
            items.push(format!("{:?}", direct.list_crons(&user).await.unwrap()));
            items.push(format!("{:?}", direct.memories(&user, &[]).await.unwrap()));
            items
        }
    };
    let (leaving, staying) = (UserId::new("leaving").unwrap(), UserId::new("staying").unwrap());
    let before = snapshot(staying.clone()).await;
    assert_eq!(before.len(), 3 * 2 + 6 * 3 + 2, "the other user's data is all there to compare");

    let client = reqwest::Client::new();
    let set_rate = |rate: f64| client.post(format!("{faults}/__faults")).json(&json!({"rate": rate})).send();
    let mut tries = 0;
    loop {
        tries += 1;
        // The first tries under more faults than the SDK's retries absorb, so that a request is
        // cut short part-way and the next one must finish it.
        set_rate(if tries <= 3 { 0.6 } else { 0.3 }).await.unwrap();
        let (status, body) = app.delete("/me/data", "leaving").await;
        if status == reqwest::StatusCode::OK {
            break;
        }
        assert!(status.is_server_error(), "a fault is a 5xx naming it: {status} {body}");
        assert!(body["detail"].as_str().is_some_and(|detail| !detail.is_empty()), "{body}");
        assert!(tries < 200, "still failing after {tries} tries: {status} {body}");
    }
    let report: serde_json::Value = set_rate(0.0).await.unwrap().json().await.unwrap();
    let injected: u64 = report["injected"].as_object().unwrap().values().filter_map(|count| count.as_u64()).sum();
    assert!(injected > 0, "faults were injected: {report}");
    println!("deleting a user's data under faults: answered after {tries} tries, {report}");

    let (status, again) = app.delete("/me/data", "leaving").await;
    assert_eq!(status, reqwest::StatusCode::OK, "{again}");
    assert!(again["removed"].as_object().unwrap().values().all(|count| count == 0), "nothing was left: {again}");
    assert!(snapshot(leaving.clone()).await.iter().all(|item| item == "[]"), "nothing of the user is left");
    assert_eq!(snapshot(staying.clone()).await, before, "the other user's data is untouched");
    // The leaving user's stored bytes are back to none: a file that takes all they may store fits.
    let holder = contract::thread("leaving", uuid::Uuid::new_v4(), 9);
    direct.put_thread(&holder).await.unwrap();
    let file = contract::file_chunks(holder.thread_id, "new.txt", 3, 8);
    let exact = DocumentQuota { max_chunks: 1000, max_user_bytes: stored_bytes(&file) };
    direct.add_document(holder.thread_id, &leaving, &embedder, &file, exact).await.unwrap();
    // The staying user's are as they were: one byte more than they hold is refused.
    let held = bytes / 2;
    let one_more = contract::file_chunks(holder.thread_id, "x.txt", 1, 8);
    let tight = DocumentQuota { max_chunks: 1000, max_user_bytes: held + stored_bytes(&one_more) - 1 };
    let refused = direct.add_document(holder.thread_id, &staying, &embedder, &one_more, tight).await;
    assert!(
        matches!(refused, Err(StoreError::ByteQuota { would_hold, .. }) if would_hold == held + stored_bytes(&one_more)),
        "{refused:?}"
    );
}
