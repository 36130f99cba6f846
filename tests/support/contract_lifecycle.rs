//! The store contract's cases for data that ends: threads whose `ttl` ran out, prune, the sweep,
//! and a user's data removed on request (`opengpts::schedules::retention`).

use std::sync::Arc;
use std::time::Duration;

use opengpts::config::Config;
use opengpts::model::{
    Archive, EmbedderId, FeedbackInput, Run, RunStatus, Thread, ThreadEvent, ThreadTtl, Timestamp, TtlStrategy, UserId,
};
use opengpts::schedules::retention::{self, Removed, Swept};
use opengpts::schedules::InProcessSchedules;
use opengpts::store::{
    stored_bytes, DocumentQuota, Entity, EventBatch, KeptEvent, RunStart, StoreError, ThreadEventBatch,
};

use crate::contract::{assistant, cron, end, file_chunks, human, memory, new_thread, run, thread, user, SharedStore};

const EMBEDDER: fn() -> EmbedderId = || EmbedderId { name: "test-embedder".into(), dimensions: 8 };

/// A lifetime that ran out a minute ago.
fn expired(strategy: TtlStrategy) -> ThreadTtl {
    let minute_ago = Timestamp::from_datetime(Timestamp::now().datetime() - chrono::Duration::seconds(60));
    ThreadTtl { strategy, minutes: 1.0, expires_at: minute_ago }
}

/// A run of `owner` on `thread` that took a question, answered it, and was given feedback.
pub async fn answered_with_feedback(store: &SharedStore, owner: &str, thread: &Thread) -> Run {
    let ran = run(owner, thread);
    let input = [human("a question")];
    store.start_run(RunStart { input: &input, ..RunStart::new(&ran, Duration::from_secs(60)) }).await.unwrap();
    end(store, &ran, RunStatus::Success, &[human("answer")]).await;
    let feedback = FeedbackInput { run_id: ran.run_id, key: "score".into(), score: None, value: None, comment: None };
    store.add_feedback(&ran, &feedback.into_feedback()).await.unwrap();
    ran
}

async fn thread_with_ttl(store: &SharedStore, owner: &str, ttl: Option<ThreadTtl>) -> Thread {
    let mut thread = new_thread(store, owner).await;
    thread.ttl = ttl;
    store.put_thread(&thread).await.unwrap();
    thread
}

async fn expired_ids(store: &SharedStore) -> Vec<uuid::Uuid> {
    let found = store.expired_threads(Timestamp::now(), 1000).await.unwrap();
    found.iter().map(|thread| thread.thread_id).collect()
}

pub async fn an_expired_thread_goes_with_everything_it_holds_and_gives_its_bytes_back(store: SharedStore) {
    let ann = user("ann");
    let gone = thread_with_ttl(&store, "ann", Some(expired(TtlStrategy::Delete))).await;
    let later = ThreadTtl::starting(TtlStrategy::Delete, 60.0, Timestamp::now());
    let living = thread_with_ttl(&store, "ann", Some(later)).await;
    let forever = thread_with_ttl(&store, "ann", None).await;
    let found = expired_ids(&store).await;
    assert!(found.contains(&gone.thread_id), "the expired thread is found");
    assert!(!found.contains(&living.thread_id) && !found.contains(&forever.thread_id), "and only it");
    assert_eq!(store.get_thread(&ann, gone.thread_id).await.unwrap().ttl, gone.ttl, "the ttl round-trips");

    // What hangs off it: messages, a run with feedback and kept events, files.
    let ran = answered_with_feedback(&store, "ann", &gone).await;
    let event = KeptEvent { id: "1".into(), event: "values".into(), data: "{}".into() };
    let kept =
        EventBatch { number: 0, events: vec![event], expires_at: Timestamp::now().plus(Duration::from_secs(600)) };
    store.add_run_events(&ran, &kept).await.unwrap();
    let files = file_chunks(gone.thread_id, "notes.txt", 3, 8);
    let quota = DocumentQuota { max_chunks: 100, max_user_bytes: stored_bytes(&files) };
    store.add_document(gone.thread_id, &ann, &EMBEDDER(), &files, quota).await.unwrap();
    // The user's bytes are all taken: another file is refused until the thread goes.
    let elsewhere = file_chunks(living.thread_id, "notes.txt", 3, 8);
    let refused = store.add_document(living.thread_id, &ann, &EMBEDDER(), &elsewhere, quota).await;
    assert!(matches!(refused, Err(StoreError::ByteQuota { .. })), "{refused:?}");

    store.delete_idle_thread(&gone).await.unwrap();
    assert!(matches!(store.get_thread(&ann, gone.thread_id).await, Err(StoreError::NotFound(Entity::Thread))));
    assert!(matches!(store.get_run(&ann, ran.run_id).await, Err(StoreError::NotFound(_))));
    assert!(store.feedback(&ran).await.unwrap().is_empty());
    assert!(store.run_events(&ran, 0).await.unwrap().0.is_empty());
    assert!(store.documents(gone.thread_id).await.unwrap().chunks.is_empty());
    assert!(!expired_ids(&store).await.contains(&gone.thread_id));
    // Its bytes were given back with it.
    store.add_document(living.thread_id, &ann, &EMBEDDER(), &elsewhere, quota).await.unwrap();
    // Deleting it again finds nothing; the others are untouched.
    assert!(matches!(store.delete_idle_thread(&gone).await, Err(StoreError::NotFound(Entity::Thread))));
    let mut others = vec![living.thread_id, forever.thread_id];
    others.sort();
    assert_eq!(threads_of(&store, &ann).await, others);
}

pub async fn a_thread_a_run_holds_is_not_deleted_under_it(store: SharedStore) {
    let ann = user("ann");
    let thread = thread_with_ttl(&store, "ann", Some(expired(TtlStrategy::Delete))).await;
    let going = run("ann", &thread);
    store
        .start_run(RunStart { input: &[human("hi")], ..RunStart::new(&going, Duration::from_secs(60)) })
        .await
        .unwrap();
    let busy = store.delete_idle_thread(&thread).await;
    assert!(matches!(busy, Err(StoreError::ThreadBusy { run_id }) if run_id == going.run_id), "{busy:?}");
    let schedules = InProcessSchedules;
    assert!(!retention::prune(store.as_ref(), &schedules, &thread, TtlStrategy::Delete).await.unwrap());
    // The run goes on and ends with its answer.
    end(&store, &going, RunStatus::Success, &[human("answer")]).await;
    assert_eq!(store.messages(&ann, thread.thread_id).await.unwrap().len(), 2);
    // Then the thread goes. Another user cannot make it go.
    let stranger = Thread { user_id: user("bob"), ..thread.clone() };
    assert!(matches!(store.delete_idle_thread(&stranger).await, Err(StoreError::NotFound(Entity::Thread))));
    assert!(retention::prune(store.as_ref(), &schedules, &thread, TtlStrategy::Delete).await.unwrap());
    assert!(matches!(store.get_thread(&ann, thread.thread_id).await, Err(StoreError::NotFound(_))));
}

pub async fn a_thread_given_a_new_lifetime_is_not_deleted_on_a_stale_read(store: SharedStore) {
    let ann = user("ann");
    let read = thread_with_ttl(&store, "ann", Some(expired(TtlStrategy::Delete))).await;
    let mut renewed = read.clone();
    renewed.ttl = Some(ThreadTtl::starting(TtlStrategy::Delete, 30.0, Timestamp::now()));
    store.put_thread(&renewed).await.unwrap();
    let refused = store.delete_idle_thread(&read).await;
    assert!(matches!(refused, Err(StoreError::ThreadChanged)), "{refused:?}");
    assert!(!expired_ids(&store).await.contains(&read.thread_id), "no longer expired");
    assert_eq!(store.get_thread(&ann, read.thread_id).await.unwrap().ttl, renewed.ttl);
    // A lifetime taken away takes the thread out of the expiring ones, and deleting it as read
    // (no lifetime) goes through.
    renewed.ttl = None;
    store.put_thread(&renewed).await.unwrap();
    store.delete_idle_thread(&renewed).await.unwrap();
}

pub async fn keep_latest_drops_the_history_and_keeps_the_state(store: SharedStore) {
    let ann = user("ann");
    let thread = thread_with_ttl(&store, "ann", Some(expired(TtlStrategy::KeepLatest))).await;
    let first = [human("h1"), human("a1"), human("h2"), human("old answer")];
    let seen = store.append_messages(&ann, thread.thread_id, &first, None).await.unwrap();
    let forked = Archive::default().fork(&first, &first[..3]);
    let fork = opengpts::store::Fork {
        user: &ann,
        thread_id: thread.thread_id,
        keep: forked.keep,
        tail: &forked.tail,
        archive: &forked.archive,
        seen,
    };
    store.fork_thread(fork).await.unwrap();
    store.append_messages(&ann, thread.thread_id, &[human("new answer")], None).await.unwrap();
    let before = store.messages(&ann, thread.thread_id).await.unwrap();
    assert!(!store.archive(&ann, thread.thread_id).await.unwrap().is_empty());

    let schedules = InProcessSchedules;
    assert!(retention::prune(store.as_ref(), &schedules, &thread, TtlStrategy::KeepLatest).await.unwrap());
    assert_eq!(store.messages(&ann, thread.thread_id).await.unwrap(), before, "the latest state stays");
    assert!(store.archive(&ann, thread.thread_id).await.unwrap().is_empty(), "the other branches go");
    let kept = store.get_thread(&ann, thread.thread_id).await.unwrap();
    let ttl = kept.ttl.expect("it keeps its lifetime");
    assert!(ttl.expires_at > Timestamp::now(), "which starts again");
    assert_eq!((ttl.strategy, ttl.minutes), (TtlStrategy::KeepLatest, 1.0));
    assert!(!expired_ids(&store).await.contains(&thread.thread_id));
}

pub async fn the_sweep_applies_each_threads_strategy(store: SharedStore) {
    let ann = user("ann");
    let deleted = thread_with_ttl(&store, "ann", Some(expired(TtlStrategy::Delete))).await;
    let pruned = thread_with_ttl(&store, "ann", Some(expired(TtlStrategy::KeepLatest))).await;
    let held = thread_with_ttl(&store, "ann", Some(expired(TtlStrategy::Delete))).await;
    let living =
        thread_with_ttl(&store, "ann", Some(ThreadTtl::starting(TtlStrategy::Delete, 60.0, Timestamp::now()))).await;
    // A cron on the deleted thread goes with it.
    let on_deleted = cron("ann", 1, Some(deleted.thread_id));
    store.put_cron(&on_deleted).await.unwrap();
    let going = run("ann", &held);
    store.start_run(RunStart::new(&going, Duration::from_secs(60))).await.unwrap();

    let settings = Config::defaults().retention;
    let swept = retention::sweep(store.as_ref(), &InProcessSchedules, &settings).await.unwrap();
    assert_eq!(swept, Swept { deleted: 1, kept_latest: 1, left: 1, purged: 0 });
    assert!(matches!(store.get_thread(&ann, deleted.thread_id).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.get_cron(&ann, on_deleted.cron_id).await, Err(StoreError::NotFound(Entity::Cron))));
    assert!(store.get_thread(&ann, pruned.thread_id).await.is_ok());
    assert!(store.get_thread(&ann, held.thread_id).await.is_ok(), "a thread a run holds waits");
    assert!(store.get_thread(&ann, living.thread_id).await.is_ok());
    // Once the run lets go, the next sweep takes it.
    end(&store, &going, RunStatus::Success, &[]).await;
    let swept = retention::sweep(store.as_ref(), &InProcessSchedules, &settings).await.unwrap();
    assert_eq!(swept, Swept { deleted: 1, kept_latest: 0, left: 0, purged: 0 });
    assert!(matches!(store.get_thread(&ann, held.thread_id).await, Err(StoreError::NotFound(_))));
}

pub async fn a_users_data_is_removed_whole_and_nobody_elses(store: SharedStore) {
    let (ann, bob) = (user("ann"), user("bob"));
    let mut owned = Vec::new();
    for owner in ["ann", "bob"] {
        let helper = assistant(owner, true, 2);
        store.put_assistant(&helper).await.unwrap();
        let files = file_chunks(helper.assistant_id, "a.txt", 2, 8);
        let roomy = DocumentQuota { max_chunks: 100, max_user_bytes: 1 << 30 };
        store.add_document(helper.assistant_id, &user(owner), &EMBEDDER(), &files, roomy).await.unwrap();
        let chat = thread(owner, helper.assistant_id, 3);
        store.put_thread(&chat).await.unwrap();
        let ran = answered_with_feedback(&store, owner, &chat).await;
        let thread_files = file_chunks(chat.thread_id, "t.txt", 1, 8);
        store.add_document(chat.thread_id, &user(owner), &EMBEDDER(), &thread_files, roomy).await.unwrap();
        store.put_memory(&user(owner), &memory(&["prefs"], "color", serde_json::json!({"v": owner}))).await.unwrap();
        store.put_cron(&cron(owner, 4, Some(chat.thread_id))).await.unwrap();
        owned.push((helper, chat, ran));
    }
    let removed = retention::remove_user_data(store.as_ref(), &InProcessSchedules, &ann).await.unwrap();
    assert_eq!(removed, Removed { assistants: 1, threads: 1, files: 2, memories: 1, crons: 1, feedback: 1 });
    let (helper, chat, ran) = &owned[0];
    assert!(store.list_assistants(&ann).await.unwrap().is_empty());
    assert!(store.list_threads(&ann).await.unwrap().is_empty());
    assert!(store.list_crons(&ann).await.unwrap().is_empty());
    assert!(store.memories(&ann, &[]).await.unwrap().is_empty());
    assert!(matches!(store.get_run(&ann, ran.run_id).await, Err(StoreError::NotFound(_))));
    assert!(store.documents(helper.assistant_id).await.unwrap().chunks.is_empty());
    assert!(store.documents(chat.thread_id).await.unwrap().chunks.is_empty());
    assert!(store.list_public_assistants().await.unwrap().iter().all(|public| public.user_id != ann));
    // Again: nothing more to remove, and no error.
    let again = retention::remove_user_data(store.as_ref(), &InProcessSchedules, &ann).await.unwrap();
    assert_eq!(again, Removed::default());
    // Bob's data is all there.
    let (helper, chat, ran) = &owned[1];
    assert_eq!(store.list_assistants(&bob).await.unwrap().len(), 1);
    assert_eq!(store.messages(&bob, chat.thread_id).await.unwrap().len(), 2);
    assert_eq!(store.feedback(ran).await.unwrap().len(), 1);
    assert_eq!(store.documents(helper.assistant_id).await.unwrap().chunks.len(), 2);
    assert_eq!(store.list_crons(&bob).await.unwrap().len(), 1);
    assert_eq!(store.memories(&bob, &[]).await.unwrap().len(), 1);
}

pub async fn expired_single_items_are_purged_and_the_logs_numbering_kept(store: SharedStore) {
    let ann = user("ann");
    let thread = new_thread(&store, "ann").await;
    let past = Timestamp::from_datetime(Timestamp::now().datetime() - chrono::Duration::seconds(60));
    let later = Timestamp::now().plus(Duration::from_secs(3600));
    let mut old = memory(&["notes"], "old", serde_json::json!({"v": 1}));
    old.expires_at = Some(past);
    store.put_memory(&ann, &old).await.unwrap();
    store.put_memory(&ann, &memory(&["notes"], "kept", serde_json::json!({"v": 2}))).await.unwrap();
    // One run's first batch expired and its second not (a reader stops at a missing batch, so
    // both stay); another run's one batch expired.
    let (ran, done) = (run("ann", &thread), run("ann", &thread));
    let event = |id: &str| KeptEvent { id: id.into(), event: "values".into(), data: "{}".into() };
    // (The later batch first: a store may purge expired runs as a run's first batch is written.)
    store.add_run_events(&ran, &EventBatch { number: 1, events: vec![event("1")], expires_at: later }).await.unwrap();
    store.add_run_events(&ran, &EventBatch { number: 0, events: vec![event("0")], expires_at: past }).await.unwrap();
    store.add_run_events(&done, &EventBatch { number: 0, events: vec![event("d")], expires_at: past }).await.unwrap();
    let logged = |seq: u64| {
        let envelope = format!(r#"{{"seq":{seq}}}"#);
        Arc::new(ThreadEvent { seq, method: "values".into(), namespace: Vec::new(), envelope, ends_run: None })
    };
    for (seq, expires_at) in [(1, past), (2, past)] {
        store
            .add_thread_events(thread.thread_id, &ThreadEventBatch { events: vec![logged(seq)], expires_at })
            .await
            .unwrap();
    }

    let purged = store.purge_expired(Timestamp::now()).await.unwrap();
    // DynamoDB's TTL attribute removes its own: it purges none.
    assert!(purged <= 3, "{purged}");
    assert_eq!(store.purge_expired(Timestamp::now()).await.unwrap(), 0, "purged once");
    assert_eq!(store.get_memory(&ann, &["notes".to_string()], "old").await.unwrap(), None);
    assert_eq!(store.memories(&ann, &[]).await.unwrap().len(), 1, "the live item stays");
    let (events, next) = store.run_events(&ran, 0).await.unwrap();
    assert_eq!((events, next), (vec![event("1")], 2), "the live batch stays, and the one before it");
    assert!(store.run_events(&done, 0).await.unwrap().0.is_empty());
    assert!(store.thread_events(thread.thread_id, 0, 10).await.unwrap().is_empty());
    assert_eq!(store.last_thread_event(thread.thread_id).await.unwrap(), 2, "the log's numbering goes on");
}

/// The ids of a user's threads, sorted.
async fn threads_of(store: &SharedStore, user: &UserId) -> Vec<uuid::Uuid> {
    let mut ids: Vec<uuid::Uuid> = store.list_threads(user).await.unwrap().iter().map(|t| t.thread_id).collect();
    ids.sort();
    ids
}
