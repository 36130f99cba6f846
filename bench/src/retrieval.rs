//! Files: how fast they are read, split and embedded (the offline embedder), how long a search
//! takes over 1,000 and 10,000 chunks per local store, and what one search reads on DynamoDB.

use std::sync::Arc;
use std::time::{Duration, Instant};

use opengpts::documents::{Library, OfflineEmbedder, UploadedFile};
use opengpts::store::{MemoryStore, SqliteStore, Store};
use uuid::Uuid;

use crate::stats::{summarize, Summary};

/// Varied prose: words drawn from a fixed list, so chunks differ and searches have work to do.
pub fn text(bytes: usize, seed: u64) -> String {
    const WORDS: [&str; 24] = [
        "moon",
        "rover",
        "crater",
        "orbit",
        "signal",
        "bread",
        "yeast",
        "flour",
        "treaty",
        "war",
        "leaf",
        "glucose",
        "transistor",
        "voltage",
        "river",
        "delta",
        "glacier",
        "basalt",
        "comet",
        "nebula",
        "harbor",
        "lantern",
        "meadow",
        "quartz",
    ];
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut out = String::with_capacity(bytes + 16);
    let mut sentence = 0;
    while out.len() < bytes {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        out.push_str(WORDS[(state >> 33) as usize % WORDS.len()]);
        sentence += 1;
        out.push_str(if sentence % 12 == 0 { ".\n" } else { " " });
    }
    out
}

pub struct Ingested {
    pub mb_per_second: f64,
}

/// Reads, splits, embeds and stores `megabytes` of text in files of 100 KB.
pub async fn ingest(store: Arc<dyn Store>, megabytes: usize) -> Ingested {
    let library = Library::new(store, Arc::new(OfflineEmbedder));
    let files: Vec<UploadedFile> = (0..megabytes * 10)
        .map(|index| UploadedFile {
            name: format!("{index}.txt"),
            bytes: text(100_000, index as u64).into_bytes().into(),
        })
        .collect();
    let started = Instant::now();
    library.ingest(Uuid::new_v4(), &owner(), files).await.expect("ingested");
    Ingested { mb_per_second: megabytes as f64 / started.elapsed().as_secs_f64() }
}

/// Search latency over a namespace of `chunks` chunks (about 1,000 characters each).
pub async fn search(store: Arc<dyn Store>, chunks: usize, searches: usize) -> Summary {
    let library = Library::new(store, Arc::new(OfflineEmbedder));
    let namespace = Uuid::new_v4();
    // A 1,000-character text is one chunk; files of 50 chunks with the splitter's overlap.
    let per_file = 50;
    let files: Vec<UploadedFile> = (0..chunks / per_file)
        .map(|index| UploadedFile {
            name: format!("{index}.txt"),
            bytes: text(per_file * 800, index as u64).into_bytes().into(),
        })
        .collect();
    library.ingest(namespace, &owner(), files).await.expect("ingested");
    let mut samples: Vec<Duration> = Vec::with_capacity(searches);
    for index in 0..searches {
        let question = text(60, 10_000 + index as u64);
        let started = Instant::now();
        let found = library.search(&[namespace], &question, 4).await.expect("a search");
        samples.push(started.elapsed());
        assert_eq!(found.len(), 4);
    }
    summarize(&mut samples)
}

pub fn stores(folder: &std::path::Path) -> Vec<(&'static str, Arc<dyn Store>)> {
    let sqlite = SqliteStore::open(&folder.join(format!("retrieval-{}.sqlite3", Uuid::new_v4()))).expect("sqlite");
    vec![("memory", Arc::new(MemoryStore::new()) as Arc<dyn Store>), ("sqlite", Arc::new(sqlite))]
}

/// The read units one search costs on DynamoDB: a strongly consistent Query of the namespace's
/// partition reads every chunk item, rounded up to 4 KB in total. An item's size is its attribute
/// names and values (DynamoDB's rule); `dimensions` one byte each, the text 1,000 characters.
pub fn dynamodb_read_units(chunks: usize, dimensions: usize) -> f64 {
    let body = 1_000 + 250; // the text, and the JSON of its id, namespace, file, source, position
    let keys = "pk".len() + 42 + "sk".len() + 46;
    let item = keys + "body".len() + body + "vector".len() + dimensions + "scale".len() + 8;
    ((chunks * item) as f64 / 4096.0).ceil()
}

fn owner() -> opengpts::model::UserId {
    opengpts::model::UserId::new("bench").expect("a user id")
}
