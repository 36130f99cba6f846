//! The store contract: what every `Store` backend must do, run against each of them by
//! [`store_contract!`](crate::store_contract).

use std::sync::Arc;
use std::time::Duration;

use opengpts::model::{
    Archive, Assistant, AssistantProfile, Cron, DocumentChunk, EmbedderId, FeedbackInput, Forked, MemoryItem, Message,
    MessageType, Run, RunProfile, RunStatus, Thread, ThreadEvent, Timestamp, UserId,
};
use opengpts::store::{
    stored_bytes, DocumentQuota, Entity, EventBatch, Fork, KeptEvent, Revision, RunStart, Store, StoreError,
    ThreadEventBatch,
};
use serde_json::{json, Map};
use uuid::Uuid;

pub use crate::contract_lifecycle::*;

pub type SharedStore = Arc<dyn Store>;

pub fn user(name: &str) -> UserId {
    UserId::new(name).expect("a non-empty id")
}

/// Distinct, increasing times, so ordering does not hang on clock resolution.
pub fn at(second: i64) -> Timestamp {
    Timestamp::from_datetime(chrono_at(second))
}

fn chrono_at(second: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_800_000_000 + second, 123_456_000).expect("a valid time")
}

pub fn assistant(owner: &str, public: bool, second: i64) -> Assistant {
    Assistant {
        assistant_id: Uuid::new_v4(),
        name: format!("assistant {second}"),
        config: json!({"configurable": {"type": "chatbot", "nested": {"b": 1, "a": [1, 2]}}})
            .as_object()
            .cloned()
            .unwrap(),
        updated_at: at(second),
        public,
        user_id: user(owner),
        // A LangGraph profile on every other one: both shapes round-trip.
        profile: (second % 2 == 0).then(|| AssistantProfile {
            metadata: Map::from_iter([("team".to_string(), json!("red"))]),
            description: Some("described".into()),
            version: 3,
            created_at: at(second),
            versions: Vec::new(),
        }),
    }
}

pub fn thread(owner: &str, assistant_id: Uuid, second: i64) -> Thread {
    Thread {
        thread_id: Uuid::new_v4(),
        assistant_id,
        name: format!("thread {second}"),
        updated_at: at(second),
        user_id: user(owner),
        metadata: Some(Map::from_iter([("assistant_type".to_string(), json!("chatbot"))])),
        created_at: (second % 2 == 0).then(|| at(second)),
        ttl: None,
    }
}

pub fn human(text: &str) -> Message {
    let mut message = Message::new(MessageType::Human, text);
    message.id = Some(Uuid::new_v4().to_string());
    message
}

pub fn run(owner: &str, thread: &Thread) -> Run {
    Run {
        run_id: Uuid::new_v4(),
        thread_id: thread.thread_id,
        assistant_id: thread.assistant_id,
        user_id: user(owner),
        status: RunStatus::Pending,
        error: None,
        created_at: Timestamp::now(),
        updated_at: Timestamp::now(),
        profile: None,
    }
}

pub fn contents(messages: &[Message]) -> Vec<String> {
    messages.iter().map(|m| m.content.text()).collect()
}

pub async fn new_thread(store: &SharedStore, owner: &str) -> Thread {
    let assistant = assistant(owner, false, 1);
    store.put_assistant(&assistant).await.unwrap();
    let thread = thread(owner, assistant.assistant_id, 1);
    store.put_thread(&thread).await.unwrap();
    thread
}

pub async fn assistants_are_owned_and_listed_newest_first(store: SharedStore) {
    let (old, new) = (assistant("ann", false, 1), assistant("ann", false, 2));
    store.put_assistant(&old).await.unwrap();
    store.put_assistant(&new).await.unwrap();
    store.put_assistant(&assistant("bob", false, 3)).await.unwrap();
    assert_eq!(store.list_assistants(&user("ann")).await.unwrap(), vec![new.clone(), old.clone()]);
    assert_eq!(store.get_assistant(&user("ann"), old.assistant_id).await.unwrap(), old);

    let mut renamed = old.clone();
    renamed.name = "renamed".into();
    renamed.updated_at = at(5);
    store.put_assistant(&renamed).await.unwrap();
    assert_eq!(store.list_assistants(&user("ann")).await.unwrap(), vec![renamed.clone(), new.clone()]);

    let mut takeover = renamed.clone();
    takeover.user_id = user("bob");
    assert!(matches!(store.put_assistant(&takeover).await, Err(StoreError::NotFound(Entity::Assistant))));
    assert!(matches!(store.get_assistant(&user("bob"), renamed.assistant_id).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.delete_assistant(&user("bob"), renamed.assistant_id).await, Err(StoreError::NotFound(_))));
    assert_eq!(store.get_assistant(&user("ann"), renamed.assistant_id).await.unwrap(), renamed);

    store.delete_assistant(&user("ann"), renamed.assistant_id).await.unwrap();
    assert!(matches!(store.get_assistant(&user("ann"), renamed.assistant_id).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.delete_assistant(&user("ann"), renamed.assistant_id).await, Err(StoreError::NotFound(_))));
    assert_eq!(store.list_assistants(&user("ann")).await.unwrap(), vec![new]);
}

pub async fn public_assistants_are_readable_by_all_and_listed(store: SharedStore) {
    let shared = assistant("ann", true, 1);
    let private = assistant("ann", false, 2);
    let other = assistant("bob", true, 3);
    for a in [&shared, &private, &other] {
        store.put_assistant(a).await.unwrap();
    }
    assert_eq!(store.get_assistant(&user("bob"), shared.assistant_id).await.unwrap(), shared);
    assert_eq!(store.list_public_assistants().await.unwrap(), vec![other.clone(), shared.clone()]);
    let mut hidden = shared.clone();
    hidden.public = false;
    hidden.updated_at = at(4);
    store.put_assistant(&hidden).await.unwrap();
    assert_eq!(store.list_public_assistants().await.unwrap(), vec![other]);
    assert!(store.get_assistant(&user("bob"), shared.assistant_id).await.is_err());
}

pub async fn threads_are_owned_and_deleted_with_messages_and_runs(store: SharedStore) {
    let thread = new_thread(&store, "ann").await;
    let later = self::thread("ann", thread.assistant_id, 2);
    store.put_thread(&later).await.unwrap();
    assert_eq!(store.list_threads(&user("ann")).await.unwrap(), vec![later.clone(), thread.clone()]);
    assert_eq!(store.get_thread(&user("ann"), thread.thread_id).await.unwrap(), thread);
    assert!(store.list_threads(&user("bob")).await.unwrap().is_empty());

    let mut takeover = thread.clone();
    takeover.user_id = user("bob");
    assert!(matches!(store.put_thread(&takeover).await, Err(StoreError::NotFound(Entity::Thread))));
    for result in [
        store.get_thread(&user("bob"), thread.thread_id).await.map(|_| ()),
        store.messages(&user("bob"), thread.thread_id).await.map(|_| ()),
        store.append_messages(&user("bob"), thread.thread_id, &[human("x")], None).await.map(|_| ()),
        store.upsert_messages(&user("bob"), thread.thread_id, &[human("x")]).await,
        store.delete_thread(&user("bob"), thread.thread_id).await,
    ] {
        assert!(matches!(result, Err(StoreError::NotFound(Entity::Thread))), "{result:?}");
    }

    store.append_messages(&user("ann"), thread.thread_id, &[human("kept until delete")], None).await.unwrap();
    let mut renamed = thread.clone();
    renamed.name = "renamed".into();
    store.put_thread(&renamed).await.unwrap();
    assert_eq!(store.messages(&user("ann"), thread.thread_id).await.unwrap().len(), 1, "a rename keeps messages");
    let finished = run("ann", &thread);
    store.start_run(RunStart::new(&finished, Duration::from_secs(60))).await.unwrap();

    store.delete_thread(&user("ann"), thread.thread_id).await.unwrap();
    assert!(matches!(store.get_thread(&user("ann"), thread.thread_id).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.messages(&user("ann"), thread.thread_id).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.get_run(&user("ann"), finished.run_id).await, Err(StoreError::NotFound(Entity::Run))));
    // A thread re-created under the same id starts empty.
    store.put_thread(&thread).await.unwrap();
    assert!(store.messages(&user("ann"), thread.thread_id).await.unwrap().is_empty());
    assert_eq!(store.list_threads(&user("ann")).await.unwrap().len(), 2);
}

pub async fn messages_keep_order_and_upsert_by_id(store: SharedStore) {
    let thread = new_thread(&store, "ann").await;
    let (first, second) = (human("first"), human("second"));
    store.append_messages(&user("ann"), thread.thread_id, &[first.clone(), second.clone()], None).await.unwrap();
    let mut ai = Message::new(MessageType::Ai, "answer");
    ai.response_metadata.insert("finish_reason".into(), json!("stop"));
    ai.tool_calls = vec![json!({"name": "search", "args": {"q": "x"}, "id": "call_1", "type": "tool_call"})];
    store.append_messages(&user("ann"), thread.thread_id, std::slice::from_ref(&ai), None).await.unwrap();
    let stored = store.messages(&user("ann"), thread.thread_id).await.unwrap();
    assert_eq!(stored, vec![first.clone(), second.clone(), ai.clone()], "every field round-trips");

    let mut edited = first.clone();
    edited.content = opengpts::model::Content::Text("edited".into());
    store.upsert_messages(&user("ann"), thread.thread_id, &[edited, human("third")]).await.unwrap();
    let stored = store.messages(&user("ann"), thread.thread_id).await.unwrap();
    assert_eq!(contents(&stored), ["edited", "second", "answer", "third"]);
}

pub async fn parallel_appends_lose_nothing_and_keep_each_batch_in_order(store: SharedStore) {
    let thread = new_thread(&store, "ann").await;
    let writers = (0..8).map(|writer| {
        let store = store.clone();
        async move {
            for batch in 0..3 {
                let messages: Vec<Message> = (0..3).map(|i| human(&format!("w{writer} b{batch} m{i}"))).collect();
                store.append_messages(&user("ann"), thread.thread_id, &messages, None).await.unwrap();
            }
        }
    });
    futures::future::join_all(writers).await;
    let stored = contents(&store.messages(&user("ann"), thread.thread_id).await.unwrap());
    assert_eq!(stored.len(), 8 * 3 * 3);
    for chunk in stored.chunks(3) {
        let prefix = chunk[0].trim_end_matches("m0");
        assert_eq!(chunk, [format!("{prefix}m0"), format!("{prefix}m1"), format!("{prefix}m2")], "{stored:?}");
    }
    for writer in 0..8 {
        let own: Vec<&String> = stored.iter().filter(|m| m.starts_with(&format!("w{writer} "))).collect();
        let mut sorted = own.clone();
        sorted.sort();
        assert_eq!(own, sorted, "one writer's batches keep their order");
    }
}

/// Ends `run` as `status`, with its last messages.
pub async fn end(store: &SharedStore, run: &Run, status: RunStatus, messages: &[Message]) {
    let mut ended = run.clone();
    ended.status = status;
    store.finish_run(&ended, messages, None).await.unwrap();
}

async fn revision(store: &SharedStore, thread: &Thread) -> Revision {
    store.thread_view(&user("ann"), thread.thread_id).await.unwrap().revision
}

pub async fn a_run_starts_with_its_input_and_ends_with_its_answer(store: SharedStore) {
    let thread = new_thread(&store, "ann").await;
    let empty = revision(&store, &thread).await;
    let after_a = store.append_messages(&user("ann"), thread.thread_id, &[human("a")], None).await.unwrap();
    assert_ne!(after_a, empty, "an append moves the revision");
    assert_eq!(revision(&store, &thread).await, after_a, "and says where it moved to");

    let mut first = run("ann", &thread);
    first.status = RunStatus::Running;
    let lease = Duration::from_secs(60);
    let input = [human("b")];
    let started =
        store.start_run(RunStart { input: &input, seen: Some(after_a), ..RunStart::new(&first, lease) }).await.unwrap();
    assert!(started.unchanged);
    assert_eq!(started.revision, revision(&store, &thread).await);
    assert_eq!(contents(&store.messages(&user("ann"), thread.thread_id).await.unwrap()), ["a", "b"]);
    assert_eq!(store.get_run(&user("ann"), first.run_id).await.unwrap(), first, "recorded as given");

    // A refused start leaves no input behind.
    let refused = run("ann", &thread);
    let result = store.start_run(RunStart { input: &[human("x")], ..RunStart::new(&refused, lease) }).await;
    assert!(matches!(result, Err(StoreError::ThreadBusy { .. })), "{result:?}");

    // Someone adds a message while the run answers: the answer goes after it all the same.
    store.append_messages(&user("ann"), thread.thread_id, &[human("c")], None).await.unwrap();
    let answer = Message::new(MessageType::Ai, "answer");
    first.status = RunStatus::Success;
    store.finish_run(&first, std::slice::from_ref(&answer), Some(started.revision)).await.unwrap();
    let view = store.thread_view(&user("ann"), thread.thread_id).await.unwrap();
    assert_eq!(contents(&view.messages), ["a", "b", "c", "answer"]);
    assert_eq!((view.running, view.last_outcome), (false, Some(RunStatus::Success)));
    assert_eq!(store.get_run(&user("ann"), first.run_id).await.unwrap(), first);

    // A start from an old reading is told that the thread moved on.
    let second = run("ann", &thread);
    let started = store.start_run(RunStart { seen: Some(after_a), ..RunStart::new(&second, lease) }).await.unwrap();
    assert!(!started.unchanged);
    assert_eq!(started.revision, view.revision, "no input: where the thread was");
    end(&store, &second, RunStatus::Success, &[]).await;

    // Replacing a message moves the revision too.
    let mut edited = view.messages[0].clone();
    edited.content = opengpts::model::Content::Text("a, edited".into());
    store.upsert_messages(&user("ann"), thread.thread_id, &[edited]).await.unwrap();
    let third = run("ann", &thread);
    let started =
        store.start_run(RunStart { seen: Some(view.revision), ..RunStart::new(&third, lease) }).await.unwrap();
    assert!(!started.unchanged, "a replaced message is a change");
    assert_eq!(revision(&store, &thread).await, started.revision);
    // An append that knows the revision, and one whose knowledge is old, both land in order.
    let known = store.append_messages(&user("ann"), thread.thread_id, &[human("d")], Some(started.revision)).await;
    let stale = store.append_messages(&user("ann"), thread.thread_id, &[human("e")], Some(started.revision)).await;
    assert!(stale.unwrap() > known.unwrap());
    let stored = contents(&store.messages(&user("ann"), thread.thread_id).await.unwrap());
    assert_eq!(stored, ["a, edited", "b", "c", "answer", "d", "e"]);
    end(&store, &third, RunStatus::Success, &[]).await;
}

pub async fn a_large_input_starts_whole_or_not_at_all(store: SharedStore) {
    let thread = new_thread(&store, "ann").await;
    // More messages than one DynamoDB transaction holds, and one in parts.
    let mut input: Vec<Message> = (0..120).map(|i| human(&format!("{i:03}"))).collect();
    input.push(human(&"long ".repeat(70_000)));
    let (holder, waiting) = (run("ann", &thread), run("ann", &thread));
    let lease = Duration::from_secs(60);
    store.start_run(RunStart::new(&holder, lease)).await.unwrap();
    let refused = store.start_run(RunStart { input: &input, ..RunStart::new(&waiting, lease) }).await;
    assert!(matches!(refused, Err(StoreError::ThreadBusy { .. })), "{refused:?}");
    assert!(store.messages(&user("ann"), thread.thread_id).await.unwrap().is_empty());
    end(&store, &holder, RunStatus::Success, &[]).await;
    let started = store.start_run(RunStart { input: &input, ..RunStart::new(&waiting, lease) }).await.unwrap();
    assert_eq!(store.messages(&user("ann"), thread.thread_id).await.unwrap(), input);
    assert_eq!(started.revision, revision(&store, &thread).await);
}

pub async fn a_run_keeps_its_answer_whatever_became_of_its_thread(store: SharedStore) {
    // Its lease ran out and another run holds the thread: the answer is kept, the lease is not its.
    let thread = new_thread(&store, "ann").await;
    let (slow, next) = (run("ann", &thread), run("ann", &thread));
    store.start_run(RunStart::new(&slow, Duration::from_millis(200))).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.start_run(RunStart::new(&next, Duration::from_secs(60))).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "the expired lease was never given up");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    end(&store, &slow, RunStatus::Success, &[Message::new(MessageType::Ai, "late answer")]).await;
    let view = store.thread_view(&user("ann"), thread.thread_id).await.unwrap();
    assert_eq!(contents(&view.messages), ["late answer"]);
    assert!(view.running, "the thread is still the next run's");
    assert_eq!(store.get_run(&user("ann"), slow.run_id).await.unwrap().status, RunStatus::Success);

    // Its thread was deleted: nothing comes back.
    let gone = new_thread(&store, "ann").await;
    let orphan = run("ann", &gone);
    let started = store.start_run(RunStart::new(&orphan, Duration::from_secs(60))).await.unwrap();
    store.delete_thread(&user("ann"), gone.thread_id).await.unwrap();
    let mut ended = orphan.clone();
    ended.status = RunStatus::Success;
    store.finish_run(&ended, &[Message::new(MessageType::Ai, "nobody")], Some(started.revision)).await.unwrap();
    assert!(matches!(store.messages(&user("ann"), gone.thread_id).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.get_run(&user("ann"), orphan.run_id).await, Err(StoreError::NotFound(_))));
}

pub async fn a_thread_has_one_lease_at_a_time(store: SharedStore) {
    let thread = new_thread(&store, "ann").await;
    let (first, second) = (run("ann", &thread), run("ann", &thread));
    let lease = Duration::from_secs(60);
    store.start_run(RunStart::new(&first, lease)).await.unwrap();
    match store.start_run(RunStart::new(&second, lease)).await {
        Err(StoreError::ThreadBusy { run_id }) => assert_eq!(run_id, first.run_id),
        other => panic!("expected ThreadBusy, got {other:?}"),
    }
    assert!(matches!(store.get_run(&user("ann"), second.run_id).await, Err(StoreError::NotFound(_))), "no trace");
    store.renew_lease(thread.thread_id, first.run_id, lease).await.unwrap();
    end(&store, &second, RunStatus::Success, &[]).await;
    assert!(store.start_run(RunStart::new(&second, lease)).await.is_err(), "only the holder releases");
    end(&store, &first, RunStatus::Success, &[]).await;
    store.start_run(RunStart::new(&second, lease)).await.unwrap();

    // Runs of other threads are not affected, and the race for a free thread has one winner.
    let other = new_thread(&store, "ann").await;
    let contenders: Vec<Run> = (0..6).map(|_| run("ann", &other)).collect();
    let results = futures::future::join_all(contenders.iter().map(|r| store.start_run(RunStart::new(r, lease)))).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
}

pub async fn a_run_that_lost_its_thread_writes_nothing_among_another_runs_messages(store: SharedStore) {
    let thread = new_thread(&store, "ann").await;
    let (slow, next) = (run("ann", &thread), run("ann", &thread));
    let started = store.start_run(RunStart::new(&slow, Duration::from_millis(200))).await.unwrap();
    // While it holds the lease, a step goes in even after someone else added messages.
    store.append_messages(&user("ann"), thread.thread_id, &[human("meanwhile")], None).await.unwrap();
    let step = store.keep_run_step(&slow, &[Message::new(MessageType::Ai, "step")], Some(started.revision)).await;
    let after_step = step.unwrap();
    assert_eq!(after_step, revision(&store, &thread).await);
    // Its lease runs out and the next run takes the thread with its own input.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let input = [human("next input")];
    while store.start_run(RunStart { input: &input, ..RunStart::new(&next, Duration::from_secs(60)) }).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "the expired lease was never given up");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let late_step = store.keep_run_step(&slow, &[Message::new(MessageType::Ai, "late step")], Some(after_step)).await;
    assert!(matches!(late_step, Err(StoreError::LeaseLost { .. })), "{late_step:?}");
    let mut ended = slow.clone();
    ended.status = RunStatus::Success;
    let late = store.finish_run(&ended, &[Message::new(MessageType::Ai, "late answer")], Some(after_step)).await;
    assert!(matches!(late, Err(StoreError::LeaseLost { .. })), "{late:?}");
    let view = store.thread_view(&user("ann"), thread.thread_id).await.unwrap();
    assert_eq!(contents(&view.messages), ["meanwhile", "step", "next input"]);
    assert!(view.running, "the thread is still the next run's");
}

pub async fn an_expired_lease_can_be_taken_and_its_old_holder_knows(store: SharedStore) {
    let thread = new_thread(&store, "ann").await;
    let (crashed, next) = (run("ann", &thread), run("ann", &thread));
    let (lease, started) = (Duration::from_secs(1), tokio::time::Instant::now());
    store.start_run(RunStart::new(&crashed, lease)).await.unwrap();
    let view = store.thread_view(&user("ann"), thread.thread_id).await.unwrap();
    // Told only while the lease surely held: a store slowed by a loaded machine (the emulator
    // answers one request at a time) may take longer than the lease to answer. (A held lease
    // refusing a run is `a_thread_has_one_lease_at_a_time`.)
    if started.elapsed() < lease {
        assert!(view.running && view.abandoned_by.is_none(), "{view:?}");
    }
    // Once the lease has run out, the view names the run that let it (the next run records it
    // failed), and the next run takes the thread.
    tokio::time::sleep_until(started + lease + Duration::from_millis(100)).await;
    let view = store.thread_view(&user("ann"), thread.thread_id).await.unwrap();
    assert_eq!((view.running, view.abandoned_by), (false, Some(crashed.run_id)), "an expired lease");
    store.start_run(RunStart::new(&next, Duration::from_secs(60))).await.unwrap();
    let view = store.thread_view(&user("ann"), thread.thread_id).await.unwrap();
    assert_eq!((view.running, view.abandoned_by), (true, None), "the lease is the next run's");
    assert!(matches!(
        store.renew_lease(thread.thread_id, crashed.run_id, Duration::from_secs(60)).await,
        Err(StoreError::LeaseLost { .. })
    ));
}

pub async fn feedback_is_kept_per_run_in_order_and_goes_with_the_thread(store: SharedStore) {
    let thread = new_thread(&store, "ann").await;
    let (judged, other) = (run("ann", &thread), run("ann", &thread));
    store.start_run(RunStart::new(&judged, Duration::from_secs(60))).await.unwrap();
    end(&store, &judged, RunStatus::Success, &[]).await;
    store.start_run(RunStart::new(&other, Duration::from_secs(60))).await.unwrap();
    let mut given = Vec::new();
    for (score, comment) in [(json!(1), None), (json!(0), Some("changed my mind"))] {
        let input = FeedbackInput {
            run_id: judged.run_id,
            key: "user_score".into(),
            score: Some(score),
            value: None,
            comment: comment.map(String::from),
        };
        let feedback = input.into_feedback();
        store.add_feedback(&judged, &feedback).await.unwrap();
        given.push(feedback);
    }
    assert_eq!(store.feedback(&judged).await.unwrap(), given);
    assert!(store.feedback(&other).await.unwrap().is_empty(), "feedback belongs to its own run");
    store.delete_thread(&user("ann"), thread.thread_id).await.unwrap();
    assert!(store.feedback(&judged).await.unwrap().is_empty(), "deleted with the thread");
}

pub async fn the_view_tells_whether_a_run_answers_and_how_the_last_ended(store: SharedStore) {
    let thread = new_thread(&store, "ann").await;
    let view = store.thread_view(&user("ann"), thread.thread_id).await.unwrap();
    assert_eq!((view.thread, view.running, view.last_outcome), (thread.clone(), false, None));
    assert!(matches!(
        store.thread_view(&user("bob"), thread.thread_id).await,
        Err(StoreError::NotFound(Entity::Thread))
    ));

    let cancelled = run("ann", &thread);
    store.start_run(RunStart::new(&cancelled, Duration::from_secs(60))).await.unwrap();
    store.append_messages(&user("ann"), thread.thread_id, &[human("stop me")], None).await.unwrap();
    let view = store.thread_view(&user("ann"), thread.thread_id).await.unwrap();
    assert!(view.running);
    assert_eq!(contents(&view.messages), ["stop me"]);
    end(&store, &run("ann", &thread), RunStatus::Success, &[]).await;
    assert!(store.thread_view(&user("ann"), thread.thread_id).await.unwrap().running, "only the holder releases");
    end(&store, &cancelled, RunStatus::Cancelled, &[]).await;
    let view = store.thread_view(&user("ann"), thread.thread_id).await.unwrap();
    assert_eq!((view.running, view.last_outcome), (false, Some(RunStatus::Cancelled)));

    // New words make the last outcome old news.
    store.append_messages(&user("ann"), thread.thread_id, &[human("go on")], None).await.unwrap();
    assert_eq!(store.thread_view(&user("ann"), thread.thread_id).await.unwrap().last_outcome, None);
}

pub async fn a_user_has_at_most_the_allowed_runs_going(store: SharedStore) {
    let limit = Some(2);
    let mut threads = Vec::new();
    for _ in 0..4 {
        threads.push(new_thread(&store, "ann").await);
    }
    let runs: Vec<Run> = threads.iter().map(|thread| run("ann", thread)).collect();
    // Long enough to hold through the next three calls on a loaded machine's emulator, which
    // answers one request at a time.
    store
        .start_run(RunStart { max_user_runs: limit, ..RunStart::new(&runs[0], Duration::from_secs(3)) })
        .await
        .unwrap();
    store
        .start_run(RunStart { max_user_runs: limit, ..RunStart::new(&runs[1], Duration::from_secs(60)) })
        .await
        .unwrap();
    assert!(matches!(
        store.start_run(RunStart { max_user_runs: limit, ..RunStart::new(&runs[2], Duration::from_secs(60)) }).await,
        Err(StoreError::TooManyRuns { limit: 2 })
    ));
    let bob = new_thread(&store, "bob").await;
    store
        .start_run(RunStart { max_user_runs: limit, ..RunStart::new(&run("bob", &bob), Duration::from_secs(60)) })
        .await
        .unwrap();

    // A run that stopped renewing (its process died) gives its place back when its lease runs out.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while let Err(error) =
        store.start_run(RunStart { max_user_runs: limit, ..RunStart::new(&runs[2], Duration::from_secs(60)) }).await
    {
        assert!(matches!(error, StoreError::TooManyRuns { .. }), "{error}");
        assert!(std::time::Instant::now() < deadline, "the expired run kept its place");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // A finished run gives its place back at once.
    assert!(store
        .start_run(RunStart { max_user_runs: limit, ..RunStart::new(&runs[3], Duration::from_secs(60)) })
        .await
        .is_err());
    end(&store, &runs[1], RunStatus::Success, &[]).await;
    store
        .start_run(RunStart { max_user_runs: limit, ..RunStart::new(&runs[3], Duration::from_secs(60)) })
        .await
        .unwrap();

    // Simultaneous starts on free threads: exactly as many as allowed go through.
    let mut racing = Vec::new();
    for _ in 0..6 {
        racing.push(new_thread(&store, "cyd").await);
    }
    let racers: Vec<Run> = racing.iter().map(|thread| run("cyd", thread)).collect();
    let results =
        futures::future::join_all(racers.iter().map(|r| {
            store.start_run(RunStart { max_user_runs: Some(3), ..RunStart::new(r, Duration::from_secs(60)) })
        }))
        .await;
    assert_eq!(results.iter().filter(|result| result.is_ok()).count(), 3, "{results:?}");
}

pub async fn runs_are_owned_and_updated(store: SharedStore) {
    let thread = new_thread(&store, "ann").await;
    let mut started = run("ann", &thread);
    store.start_run(RunStart::new(&started, Duration::from_secs(60))).await.unwrap();
    assert_eq!(store.get_run(&user("ann"), started.run_id).await.unwrap(), started);
    assert!(matches!(store.get_run(&user("bob"), started.run_id).await, Err(StoreError::NotFound(Entity::Run))));
    started.status = RunStatus::Error;
    started.error = Some("openai answered HTTP 429".into());
    started.profile = Some(RunProfile {
        metadata: Map::from_iter([("source".to_string(), json!("sdk"))]),
        kwargs: json!({"stream_mode": ["values"]}),
        multitask_strategy: "enqueue".into(),
    });
    store.update_run(&started).await.unwrap();
    assert_eq!(store.get_run(&user("ann"), started.run_id).await.unwrap(), started);
}

pub async fn a_threads_runs_are_listed_newest_first_to_its_owner_alone(store: SharedStore) {
    let thread = new_thread(&store, "ann").await;
    let other = new_thread(&store, "ann").await;
    let mut ids = Vec::new();
    for second in 0..3 {
        let mut started = run("ann", &thread);
        started.created_at = at(100 + second);
        store.start_run(RunStart::new(&started, Duration::from_secs(60))).await.unwrap();
        end(&store, &started, RunStatus::Success, &[]).await;
        ids.push(started.run_id);
    }
    let elsewhere = run("ann", &other);
    store.start_run(RunStart::new(&elsewhere, Duration::from_secs(60))).await.unwrap();
    let listed: Vec<Uuid> =
        store.list_runs(&user("ann"), thread.thread_id).await.unwrap().iter().map(|run| run.run_id).collect();
    ids.reverse();
    assert_eq!(listed, ids);
    assert_eq!(store.list_runs(&user("ann"), other.thread_id).await.unwrap()[0].run_id, elsewhere.run_id);
    let refused = store.list_runs(&user("bob"), thread.thread_id).await;
    assert!(matches!(refused, Err(StoreError::NotFound(Entity::Thread))), "{refused:?}");
    // A run deleted goes with what it kept; another user's is not theirs to delete.
    let doomed = store.get_run(&user("ann"), ids[1]).await.unwrap();
    let batch =
        EventBatch { number: 0, events: Vec::new(), expires_at: Timestamp::now().plus(Duration::from_secs(60)) };
    store.add_run_events(&doomed, &batch).await.unwrap();
    assert!(matches!(store.delete_run(&user("bob"), ids[1]).await, Err(StoreError::NotFound(Entity::Run))));
    store.delete_run(&user("ann"), ids[1]).await.unwrap();
    assert!(matches!(store.get_run(&user("ann"), ids[1]).await, Err(StoreError::NotFound(Entity::Run))));
    assert_eq!(store.run_events(&doomed, 0).await.unwrap().1, 0, "its events went with it");
    let left: Vec<Uuid> =
        store.list_runs(&user("ann"), thread.thread_id).await.unwrap().iter().map(|run| run.run_id).collect();
    assert_eq!(left, [ids[0], ids[2]]);
    store.delete_thread(&user("ann"), thread.thread_id).await.unwrap();
    assert!(store.list_runs(&user("ann"), thread.thread_id).await.is_err());
}

pub async fn a_runs_stream_events_are_kept_in_batches_until_they_expire(store: SharedStore) {
    let thread = new_thread(&store, "ann").await;
    let started = run("ann", &thread);
    store.start_run(RunStart::new(&started, Duration::from_secs(60))).await.unwrap();
    let event = |n: usize, data: String| KeptEvent { id: format!("1700000000000-{n}"), event: "values".into(), data };
    let later = Timestamp::now().plus(Duration::from_secs(3600));
    let (none, next) = store.run_events(&started, 0).await.unwrap();
    assert_eq!((none.len(), next), (0, 0));
    let first = vec![event(0, "{}".into()), event(1, "[1]".into())];
    store.add_run_events(&started, &EventBatch { number: 0, events: first.clone(), expires_at: later }).await.unwrap();
    // A batch larger than a DynamoDB item.
    let large = vec![event(2, format!("\"{}\"", "é".repeat(300_000)))];
    store.add_run_events(&started, &EventBatch { number: 1, events: large.clone(), expires_at: later }).await.unwrap();
    let expired = Timestamp::from_datetime(chrono::DateTime::from_timestamp(1, 0).unwrap());
    store
        .add_run_events(&started, &EventBatch { number: 2, events: vec![event(3, "{}".into())], expires_at: expired })
        .await
        .unwrap();
    store
        .add_run_events(&started, &EventBatch { number: 3, events: vec![event(4, "{}".into())], expires_at: later })
        .await
        .unwrap();
    let (all, next) = store.run_events(&started, 0).await.unwrap();
    assert_eq!(next, 4);
    let ids: Vec<&str> = all.iter().map(|kept| kept.id.as_str()).collect();
    assert_eq!(ids, ["1700000000000-0", "1700000000000-1", "1700000000000-2", "1700000000000-4"]);
    assert_eq!(all[2], large[0]);
    let (rest, next) = store.run_events(&started, 3).await.unwrap();
    assert_eq!((rest.len(), next), (1, 4));
    store.delete_thread(&user("ann"), thread.thread_id).await.unwrap();
    let (gone, _) = store.run_events(&started, 0).await.unwrap();
    assert!(gone.is_empty(), "{gone:?}");
}

pub async fn a_threads_event_log_is_read_after_any_seq_in_bounded_reads(store: SharedStore) {
    let thread = new_thread(&store, "ann").await;
    let event = |seq: u64, size: usize| ThreadEvent {
        seq,
        method: "values".into(),
        namespace: if seq.is_multiple_of(2) { vec!["tools:1".into()] } else { Vec::new() },
        envelope: format!(r#"{{"seq":{seq},"pad":"{}"}}"#, "é".repeat(size)),
        ends_run: (seq == 3).then(|| Uuid::from_u128(3)),
    };
    let later = Timestamp::now().plus(Duration::from_secs(3600));
    let expired = Timestamp::from_datetime(chrono::DateTime::from_timestamp(1, 0).unwrap());
    assert_eq!(store.last_thread_event(thread.thread_id).await.unwrap(), 0);
    assert!(store.thread_events(thread.thread_id, 0, 100).await.unwrap().is_empty());
    let batches = [
        (vec![event(1, 0), event(2, 0), event(3, 0)], later),
        // Larger than a DynamoDB item.
        (vec![event(4, 150_000), event(5, 150_000)], later),
        (vec![event(6, 0)], expired),
        ((7..=60).map(|seq| event(seq, 10)).collect(), later),
    ];
    for (events, expires_at) in batches {
        let events = events.into_iter().map(Arc::new).collect();
        store.add_thread_events(thread.thread_id, &ThreadEventBatch { events, expires_at }).await.unwrap();
    }
    assert_eq!(store.last_thread_event(thread.thread_id).await.unwrap(), 60, "expired events still count");
    let seqs = |events: Vec<ThreadEvent>| events.iter().map(|event| event.seq).collect::<Vec<_>>();
    let all = store.thread_events(thread.thread_id, 0, 1000).await.unwrap();
    assert_eq!((&all[2], &all[3]), (&event(3, 0), &event(4, 150_000)), "an event round-trips whole");
    let expected: Vec<u64> = (1..=60).filter(|seq| *seq != 6).collect();
    assert_eq!(seqs(all), expected);
    assert_eq!(seqs(store.thread_events(thread.thread_id, 2, 2).await.unwrap()), [3, 4], "at most the limit");
    assert_eq!(seqs(store.thread_events(thread.thread_id, 4, 2).await.unwrap()), [5, 7], "from the middle of a batch");
    assert_eq!(seqs(store.thread_events(thread.thread_id, 58, 10).await.unwrap()), [59, 60]);
    assert!(store.thread_events(thread.thread_id, 60, 10).await.unwrap().is_empty());
    // A reader far behind reads again from the last event it got, and misses none.
    let (mut since, mut read) = (0, Vec::new());
    loop {
        let page = store.thread_events(thread.thread_id, since, 7).await.unwrap();
        let Some(last) = page.last() else { break };
        since = last.seq;
        read.extend(seqs(page));
    }
    assert_eq!(read, expected);
    let other = new_thread(&store, "ann").await;
    assert!(store.thread_events(other.thread_id, 0, 10).await.unwrap().is_empty(), "each thread its own log");
    store.delete_thread(&user("ann"), thread.thread_id).await.unwrap();
    assert!(store.thread_events(thread.thread_id, 0, 10).await.unwrap().is_empty(), "the log goes with its thread");
    assert_eq!(store.last_thread_event(thread.thread_id).await.unwrap(), 0);
}

pub fn memory(namespace: &[&str], key: &str, value: serde_json::Value) -> MemoryItem {
    MemoryItem {
        namespace: namespace.iter().map(|label| label.to_string()).collect(),
        key: key.into(),
        value: value.as_object().cloned().unwrap(),
        created_at: at(1),
        updated_at: at(2),
        expires_at: None,
        ttl_minutes: None,
        vector: Vec::new(),
    }
}

pub async fn memory_items_are_their_owners_by_namespace_and_key(store: SharedStore) {
    let ann = user("ann");
    let labels = |labels: &[&str]| labels.iter().map(|label| label.to_string()).collect::<Vec<_>>();
    let mut profile = memory(&["users", "ann"], "profile", json!({"likes": "tea"}));
    profile.vector = vec![0.5, -0.25];
    let items = [
        profile.clone(),
        memory(&["users", "ann", "notes"], "n1", json!({"text": "one"})),
        memory(&["users", "annex"], "other", json!({"text": "not under users/ann"})),
        memory(&["users"], "top", json!({"text": "above"})),
    ];
    for item in &items {
        store.put_memory(&ann, item).await.unwrap();
    }
    assert_eq!(store.get_memory(&ann, &labels(&["users", "ann"]), "profile").await.unwrap(), Some(profile.clone()));
    assert_eq!(store.get_memory(&user("bob"), &labels(&["users", "ann"]), "profile").await.unwrap(), None);
    assert!(store.memories(&user("bob"), &[]).await.unwrap().is_empty());
    let keys = |found: Vec<MemoryItem>| found.into_iter().map(|item| item.key).collect::<Vec<_>>();
    // A namespace's own items come before those of the namespaces under it.
    assert_eq!(keys(store.memories(&ann, &labels(&["users", "ann"])).await.unwrap()), ["profile", "n1"]);
    assert_eq!(keys(store.memories(&ann, &labels(&["users"])).await.unwrap()), ["top", "profile", "n1", "other"]);
    assert_eq!(store.memories(&ann, &[]).await.unwrap().len(), 4);
    let mut replaced = profile.clone();
    replaced.value = json!({"likes": "coffee"}).as_object().cloned().unwrap();
    store.put_memory(&ann, &replaced).await.unwrap();
    assert_eq!(store.get_memory(&ann, &labels(&["users", "ann"]), "profile").await.unwrap(), Some(replaced));
    let mut fading = memory(&["users", "ann"], "fading", json!({}));
    fading.expires_at = Some(Timestamp::from_datetime(chrono::DateTime::from_timestamp(1, 0).unwrap()));
    store.put_memory(&ann, &fading).await.unwrap();
    assert_eq!(store.get_memory(&ann, &labels(&["users", "ann"]), "fading").await.unwrap(), None);
    assert_eq!(keys(store.memories(&ann, &labels(&["users", "ann"])).await.unwrap()), ["profile", "n1"]);
    store.delete_memory(&ann, &labels(&["users", "ann"]), "profile").await.unwrap();
    store.delete_memory(&ann, &labels(&["users", "ann"]), "never there").await.unwrap();
    assert_eq!(store.get_memory(&ann, &labels(&["users", "ann"]), "profile").await.unwrap(), None);
}

fn not_found<T>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::NotFound(Entity::Cron)))
}

pub fn cron(owner: &str, second: i64, thread_id: Option<Uuid>) -> Cron {
    Cron {
        cron_id: Uuid::new_v4(),
        user_id: user(owner),
        assistant_id: Uuid::new_v4(),
        thread_id,
        schedule: "0 9 * * MON-FRI".into(),
        timezone: Some("Europe/Paris".into()),
        payload: json!({"input": {"messages": [{"role": "user", "content": "hi"}]}}).as_object().cloned().unwrap(),
        metadata: Map::new(),
        end_time: None,
        enabled: true,
        keep_threads: false,
        run: None,
        created_at: at(second),
        updated_at: at(second),
    }
}

pub async fn crons_are_their_owners_and_fire_once_per_slot(store: SharedStore) {
    let (first, second) = (cron("ann", 2, Some(Uuid::new_v4())), cron("ann", 1, None));
    let bobs = cron("bob", 3, None);
    for cron in [&first, &second, &bobs] {
        store.put_cron(cron).await.unwrap();
    }
    assert_eq!(store.get_cron(&user("ann"), first.cron_id).await.unwrap(), first);
    assert!(not_found(store.get_cron(&user("bob"), first.cron_id).await));
    assert_eq!(store.list_crons(&user("ann")).await.unwrap(), [second.clone(), first.clone()], "oldest first");
    assert_eq!(store.all_crons().await.unwrap(), [second.clone(), first.clone(), bobs.clone()]);
    let mut taken = bobs.clone();
    taken.cron_id = first.cron_id;
    assert!(not_found(store.put_cron(&taken).await), "no takeover of another's cron");

    // A slot is claimed once, and never an earlier one after a later; replacing the cron keeps that.
    assert!(store.claim_cron_slot(first.cron_id, at(100)).await.unwrap());
    assert!(!store.claim_cron_slot(first.cron_id, at(100)).await.unwrap());
    let mut changed = first.clone();
    changed.enabled = false;
    changed.updated_at = at(50);
    store.put_cron(&changed).await.unwrap();
    assert_eq!(store.get_cron(&user("ann"), first.cron_id).await.unwrap(), changed);
    assert!(!store.claim_cron_slot(first.cron_id, at(90)).await.unwrap());
    assert!(store.claim_cron_slot(first.cron_id, at(160)).await.unwrap());
    let claims = futures::future::join_all((0..8).map(|_| store.claim_cron_slot(first.cron_id, at(220)))).await;
    assert_eq!(claims.into_iter().filter(|claimed| *claimed.as_ref().unwrap()).count(), 1, "one of racing claims");

    assert!(not_found(store.delete_cron(&user("bob"), first.cron_id).await));
    store.delete_cron(&user("ann"), first.cron_id).await.unwrap();
    assert!(not_found(store.get_cron(&user("ann"), first.cron_id).await));
    assert!(not_found(store.claim_cron_slot(first.cron_id, at(300)).await));
    assert_eq!(store.list_crons(&user("ann")).await.unwrap(), [second]);
}

pub async fn lists_span_many_pages(store: SharedStore) {
    let thread = new_thread(&store, "ann").await;
    let assistants: Vec<Assistant> = (10..70).map(|i| assistant("ann", i % 2 == 0, i)).collect();
    for a in &assistants {
        store.put_assistant(a).await.unwrap();
    }
    let listed = store.list_assistants(&user("ann")).await.unwrap();
    assert_eq!(listed.len(), 61);
    assert_eq!(listed[0], assistants[59]);
    assert!(listed.windows(2).all(|pair| pair[0].updated_at >= pair[1].updated_at));
    assert_eq!(store.list_public_assistants().await.unwrap().len(), 30);
    let messages: Vec<Message> = (0..230).map(|i| human(&format!("{i:03}"))).collect();
    for batch in messages.chunks(40) {
        store.append_messages(&user("ann"), thread.thread_id, batch, None).await.unwrap();
    }
    assert_eq!(store.messages(&user("ann"), thread.thread_id).await.unwrap(), messages);
}

pub async fn a_message_larger_than_an_item_round_trips(store: SharedStore) {
    let thread = new_thread(&store, "ann").await;
    let big = human(&"large answer ".repeat(60_000));
    store
        .append_messages(&user("ann"), thread.thread_id, &[human("before"), big.clone(), human("after")], None)
        .await
        .unwrap();
    let stored = store.messages(&user("ann"), thread.thread_id).await.unwrap();
    assert_eq!(contents(&stored)[0], "before");
    assert_eq!(stored[1], big);
    assert_eq!(contents(&stored)[2], "after");
    let mut edited = big.clone();
    edited.content = opengpts::model::Content::Text("small now".into());
    store.upsert_messages(&user("ann"), thread.thread_id, &[edited.clone()]).await.unwrap();
    assert_eq!(store.messages(&user("ann"), thread.thread_id).await.unwrap()[1], edited);
}

pub fn file_chunks(namespace: Uuid, source: &str, count: usize, dimensions: usize) -> Vec<DocumentChunk> {
    let file_id = Uuid::new_v4();
    (0..count)
        .map(|position| DocumentChunk {
            id: Uuid::new_v4(),
            namespace,
            file_id,
            source: source.to_string(),
            position: position as u32,
            text: format!("{source} part {position}: {}", "words ".repeat(150)),
            // Unit-length vectors with one strong dimension each, as embedders make them.
            vector: (0..dimensions)
                .map(|d| if d == position % dimensions { 0.96 } else { 0.28 / (dimensions as f32).sqrt() })
                .collect(),
        })
        .collect()
}

pub async fn files_are_indexed_whole_with_their_embedder_and_go_with_their_owner(store: SharedStore) {
    let embedder = EmbedderId { name: "test-embedder".into(), dimensions: 8 };
    let ann = user("ann");
    let roomy = |max_chunks: u64| DocumentQuota { max_chunks, max_user_bytes: 1 << 40 };
    let owner = assistant("ann", false, 1);
    store.put_assistant(&owner).await.unwrap();
    let chat = thread("ann", owner.assistant_id, 2);
    store.put_thread(&chat).await.unwrap();
    assert!(store.documents(owner.assistant_id).await.unwrap().chunks.is_empty());

    // Enough chunks to need several write batches and read pages.
    let notes = file_chunks(owner.assistant_id, "notes.txt", 60, 8);
    store.add_document(owner.assistant_id, &ann, &embedder, &notes, roomy(62)).await.unwrap();
    // A file past the namespace's quota is refused whole, naming what it would hold.
    let over = file_chunks(owner.assistant_id, "over.txt", 3, 8);
    let refused = store.add_document(owner.assistant_id, &ann, &embedder, &over, roomy(62)).await;
    assert!(matches!(refused, Err(StoreError::ChunkQuota { would_hold: 63, limit: 62 })), "{refused:?}");
    assert_eq!(store.documents(owner.assistant_id).await.unwrap().chunks.len(), 60, "nothing of it was kept");
    let memo = file_chunks(owner.assistant_id, "memo.pdf", 2, 8);
    store.add_document(owner.assistant_id, &ann, &embedder, &memo, roomy(62)).await.unwrap();
    let index = store.documents(owner.assistant_id).await.unwrap();
    assert_eq!(index.embedder.as_ref(), Some(&embedder));
    assert_eq!(index.chunks.len(), 62);
    let read = index.chunks.iter().find(|chunk| chunk.id == notes[7].id).expect("every chunk comes back");
    assert_eq!((read.text.as_str(), read.source.as_str(), read.position), (notes[7].text.as_str(), "notes.txt", 7));
    // Stores may keep vectors more compactly; their direction survives.
    let cosine: f32 = read.vector.iter().zip(&notes[7].vector).map(|(a, b)| a * b).sum::<f32>()
        / (read.vector.iter().map(|v| v * v).sum::<f32>().sqrt()
            * notes[7].vector.iter().map(|v| v * v).sum::<f32>().sqrt());
    assert!(cosine > 0.999, "{cosine}");

    // Another embedder cannot add to this index.
    let other = EmbedderId { name: "another".into(), dimensions: 8 };
    let stray = file_chunks(owner.assistant_id, "x.txt", 1, 8);
    let refused = store.add_document(owner.assistant_id, &ann, &other, &stray, roomy(1000)).await;
    assert!(
        matches!(&refused, Err(StoreError::IndexMismatch { recorded, .. }) if *recorded == embedder),
        "{refused:?}"
    );
    assert_eq!(store.documents(owner.assistant_id).await.unwrap().chunks.len(), 62, "nothing of it was kept");

    // Namespaces are apart, and files go with their assistant or thread.
    let talk = file_chunks(chat.thread_id, "chat.md", 3, 8);
    store.add_document(chat.thread_id, &ann, &other, &talk, roomy(3)).await.unwrap();
    assert_eq!(store.documents(chat.thread_id).await.unwrap().chunks.len(), 3);

    // A user's bytes count across namespaces; deleting one gives its bytes back.
    let held = stored_bytes(&notes) + stored_bytes(&memo) + stored_bytes(&talk);
    let late = file_chunks(owner.assistant_id, "late.txt", 1, 8);
    let tight = DocumentQuota { max_chunks: 1000, max_user_bytes: held + stored_bytes(&late) - 1 };
    let refused = store.add_document(owner.assistant_id, &ann, &embedder, &late, tight).await;
    let expected = held + stored_bytes(&late);
    assert!(matches!(refused, Err(StoreError::ByteQuota { would_hold, .. }) if would_hold == expected), "{refused:?}");
    assert_eq!(store.documents(owner.assistant_id).await.unwrap().chunks.len(), 62, "nothing of it was kept");
    store.delete_thread(&ann, chat.thread_id).await.unwrap();
    assert!(store.documents(chat.thread_id).await.unwrap().chunks.is_empty());
    assert_eq!(store.documents(chat.thread_id).await.unwrap().embedder, None);
    store.add_document(owner.assistant_id, &ann, &embedder, &late, tight).await.unwrap();
    store.delete_assistant(&ann, owner.assistant_id).await.unwrap();
    assert!(store.documents(owner.assistant_id).await.unwrap().chunks.is_empty());
}

pub async fn a_pending_run_is_claimed_once(store: SharedStore) {
    let thread = new_thread(&store, "ann").await;
    let pending = run("ann", &thread);
    store.start_run(RunStart::new(&pending, Duration::from_secs(60))).await.unwrap();
    // Delivered many times at once: one claim wins.
    let ann = user("ann");
    let claims = futures::future::join_all((0..8).map(|_| store.claim_run(&ann, pending.run_id))).await;
    assert_eq!(claims.iter().filter(|claim| matches!(claim, Ok(true))).count(), 1, "{claims:?}");
    assert!(claims.iter().all(|claim| claim.is_ok()), "{claims:?}");
    assert!(!store.claim_run(&user("ann"), pending.run_id).await.unwrap(), "and no later one");
    assert!(matches!(store.claim_run(&user("bob"), pending.run_id).await, Err(StoreError::NotFound(Entity::Run))));
    assert!(matches!(store.claim_run(&user("ann"), Uuid::new_v4()).await, Err(StoreError::NotFound(Entity::Run))));

    // A run cancelled (or started) before its executor came is not claimed.
    let other = new_thread(&store, "ann").await;
    let mut cancelled = run("ann", &other);
    store.start_run(RunStart::new(&cancelled, Duration::from_secs(60))).await.unwrap();
    cancelled.status = RunStatus::Cancelled;
    store.update_run(&cancelled).await.unwrap();
    assert!(!store.claim_run(&user("ann"), cancelled.run_id).await.unwrap());
    let third = new_thread(&store, "ann").await;
    let mut streamed = run("ann", &third);
    streamed.status = RunStatus::Running;
    store.start_run(RunStart::new(&streamed, Duration::from_secs(60))).await.unwrap();
    assert!(!store.claim_run(&user("ann"), streamed.run_id).await.unwrap());
}

pub async fn an_ended_run_is_not_ended_again(store: SharedStore) {
    let thread = new_thread(&store, "ann").await;
    let mut going = run("ann", &thread);
    store.start_run(RunStart::new(&going, Duration::from_secs(60))).await.unwrap();
    // A heartbeat while the run goes is recorded.
    let mut beat = going.clone();
    beat.status = RunStatus::Running;
    assert!(store.update_run_if_going(&beat).await.unwrap());
    assert_eq!(store.get_run(&user("ann"), going.run_id).await.unwrap().status, RunStatus::Running);
    // A cancel while the run goes is recorded, and a heartbeat after it does not bring it back.
    going.status = RunStatus::Cancelled;
    assert!(store.update_run_if_going(&going).await.unwrap());
    assert!(!store.update_run_if_going(&beat).await.unwrap());
    assert_eq!(store.get_run(&user("ann"), going.run_id).await.unwrap().status, RunStatus::Cancelled);
    // A run's own end stands: a late reader's "failed", or a late cancel, does not replace it.
    let other = new_thread(&store, "ann").await;
    let answered = run("ann", &other);
    store.start_run(RunStart::new(&answered, Duration::from_secs(60))).await.unwrap();
    end(&store, &answered, RunStatus::Success, &[human("the answer")]).await;
    let mut late = answered.clone();
    late.status = RunStatus::Error;
    assert!(!store.update_run_if_going(&late).await.unwrap());
    assert_eq!(store.get_run(&user("ann"), answered.run_id).await.unwrap().status, RunStatus::Success);
    let missing = run("ann", &other);
    assert!(matches!(store.update_run_if_going(&missing).await, Err(StoreError::NotFound(Entity::Run))));
}

fn fork_of<'a>(user: &'a UserId, thread: &Thread, forked: &'a Forked, seen: Revision) -> Fork<'a> {
    Fork { user, thread_id: thread.thread_id, keep: forked.keep, tail: &forked.tail, archive: &forked.archive, seen }
}

pub async fn a_fork_moves_the_thread_to_another_branch_at_once(store: SharedStore) {
    let thread = new_thread(&store, "ann").await;
    let ann = user("ann");
    let first = [human("h1"), human("a1"), human("h2"), human("old answer")];
    let seen = store.append_messages(&ann, thread.thread_id, &first, None).await.unwrap();
    assert_eq!(store.archive(&ann, thread.thread_id).await.unwrap(), Archive::default());

    // Regenerating the last answer: the thread keeps three messages, the old answer is archived.
    let forked = Archive::default().fork(&first, &first[..3]);
    let fork = |seen, forked| fork_of(&ann, &thread, forked, seen);
    let moved = store.fork_thread(fork(seen, &forked)).await.unwrap();
    assert!(moved > seen, "the revision moves on, even with no tail");
    let view = store.thread_view(&ann, thread.thread_id).await.unwrap();
    assert_eq!((contents(&view.messages), view.revision), (contents(&first[..3]), moved));
    assert_eq!(store.archive(&ann, thread.thread_id).await.unwrap(), forked.archive);
    // Appends after a fork follow the kept messages.
    let answer = human("new answer");
    let after = store.append_messages(&ann, thread.thread_id, &[answer.clone()], Some(moved)).await.unwrap();
    let thread_now = store.messages(&ann, thread.thread_id).await.unwrap();
    assert_eq!(contents(&thread_now), ["h1", "a1", "h2", "new answer"]);

    // A stale fork writes nothing: the thread moved on since it was read.
    let stale = Archive::default().fork(&first, &first[..1]);
    let refused = store.fork_thread(fork(seen, &stale)).await;
    assert!(matches!(refused, Err(StoreError::ThreadChanged)), "{refused:?}");

    // Back to the archived branch: its messages return (the large one whole), the other is archived.
    let target = forked.archive.path_to(&thread_now, first[3].id.as_deref().unwrap()).unwrap();
    let back = forked.archive.fork(&thread_now, &target);
    store.fork_thread(fork(after, &back)).await.unwrap();
    assert_eq!(store.messages(&ann, thread.thread_id).await.unwrap(), first);
    let archive = store.archive(&ann, thread.thread_id).await.unwrap();
    assert_eq!(archive.states(&first), [vec![first[0].clone(), first[1].clone(), first[2].clone(), answer]]);

    // A message larger than an item (kept in parts by some backends) leaves whole: too large
    // for the archive, it is dropped from it, and what was archived stays.
    let seen = store.append_messages(&ann, thread.thread_id, &[human(&"huge ".repeat(80_000))], None).await.unwrap();
    let with_huge = store.messages(&ann, thread.thread_id).await.unwrap();
    let dropped = archive.fork(&with_huge, &first);
    assert_eq!(dropped.archive, archive);
    store.fork_thread(fork(seen, &dropped)).await.unwrap();
    assert_eq!(store.messages(&ann, thread.thread_id).await.unwrap(), first);

    // Not while a run holds the thread; and not another user's thread.
    let holder = run("ann", &thread);
    store.start_run(RunStart::new(&holder, Duration::from_secs(60))).await.unwrap();
    let current = store.thread_view(&ann, thread.thread_id).await.unwrap();
    let shorter = Archive::default().fork(&first, &first[..2]);
    let busy = store.fork_thread(fork(current.revision, &shorter)).await;
    assert!(matches!(busy, Err(StoreError::ThreadBusy { run_id }) if run_id == holder.run_id), "{busy:?}");
    let bob = user("bob");
    let stranger = Fork { user: &bob, ..fork(current.revision, &stale) };
    assert!(matches!(store.fork_thread(stranger).await, Err(StoreError::NotFound(Entity::Thread))));
    assert!(matches!(store.archive(&bob, thread.thread_id).await, Err(StoreError::NotFound(Entity::Thread))));
    assert_eq!(store.messages(&ann, thread.thread_id).await.unwrap(), first, "nothing was written");

    // The archive goes with its thread.
    store.delete_thread(&ann, thread.thread_id).await.unwrap();
    assert!(matches!(store.archive(&ann, thread.thread_id).await, Err(StoreError::NotFound(Entity::Thread))));
}

/// Expands to one test per contract case; `$make` is an async expression giving a fresh store.
#[macro_export]
macro_rules! store_contract {
    ($make:expr) => {
        $crate::store_contract!(@cases $make;
            assistants_are_owned_and_listed_newest_first,
            public_assistants_are_readable_by_all_and_listed,
            threads_are_owned_and_deleted_with_messages_and_runs,
            messages_keep_order_and_upsert_by_id,
            parallel_appends_lose_nothing_and_keep_each_batch_in_order,
            a_thread_has_one_lease_at_a_time,
            a_run_starts_with_its_input_and_ends_with_its_answer,
            a_large_input_starts_whole_or_not_at_all,
            a_run_keeps_its_answer_whatever_became_of_its_thread,
            an_expired_lease_can_be_taken_and_its_old_holder_knows,
            a_run_that_lost_its_thread_writes_nothing_among_another_runs_messages,
            runs_are_owned_and_updated,
            a_threads_runs_are_listed_newest_first_to_its_owner_alone,
            a_runs_stream_events_are_kept_in_batches_until_they_expire,
            a_threads_event_log_is_read_after_any_seq_in_bounded_reads,
            memory_items_are_their_owners_by_namespace_and_key,
            crons_are_their_owners_and_fire_once_per_slot,
            a_user_has_at_most_the_allowed_runs_going,
            the_view_tells_whether_a_run_answers_and_how_the_last_ended,
            feedback_is_kept_per_run_in_order_and_goes_with_the_thread,
            lists_span_many_pages,
            a_message_larger_than_an_item_round_trips,
            a_fork_moves_the_thread_to_another_branch_at_once,
            a_pending_run_is_claimed_once,
            an_ended_run_is_not_ended_again,
            files_are_indexed_whole_with_their_embedder_and_go_with_their_owner,
            an_expired_thread_goes_with_everything_it_holds_and_gives_its_bytes_back,
            a_thread_a_run_holds_is_not_deleted_under_it,
            a_thread_given_a_new_lifetime_is_not_deleted_on_a_stale_read,
            keep_latest_drops_the_history_and_keeps_the_state,
            the_sweep_applies_each_threads_strategy,
            a_users_data_is_removed_whole_and_nobody_elses,
            expired_single_items_are_purged_and_the_logs_numbering_kept,
        );
    };
    (@cases $make:expr; $($case:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::contract::$case($make.await).await;
            }
        )*
    };
}
