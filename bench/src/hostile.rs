//! Hostile and large files: what reading each accepted 4 MB file costs (the reader's wall and
//! CPU time, and the memory it adds beyond the process's own), what its whole ingest takes
//! (read, split, embed, store in memory), and what it would store on DynamoDB. Prints the worst
//! case by time and by memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_tests::hostile::{corpus, prose_pdf, Expect};
use opengpts::config::IngestLimits;
use opengpts::documents::{detect, read_text_measured, Library, OfflineEmbedder, UploadedFile};
use opengpts::model::UserId;
use opengpts::store::{stored_bytes, DocumentStore, MemoryStore};
use serde_json::{json, Value};
use uuid::Uuid;

/// A file of 4 MB or less that the server accepts, with what its ingest cost.
struct Measured {
    name: String,
    bytes: usize,
    read: Duration,
    cpu: Duration,
    peak_mib: f64,
    ingest: Duration,
    chunks: usize,
    stored_mib: f64,
}

/// Plain prose of about `bytes` bytes, as a text file and as the text of a one-page PDF.
fn prose_files(bytes: usize) -> Vec<(String, Vec<u8>)> {
    let text = crate::retrieval::text(bytes, 7);
    let pdf = prose_pdf(&text, bytes);
    vec![("prose.txt".into(), text.into_bytes()), ("prose.pdf".into(), pdf)]
}

pub async fn run() -> Value {
    let limits = IngestLimits::default();
    let mut files: Vec<(String, Vec<u8>)> = prose_files(4_000_000);
    files.extend(
        corpus()
            .into_iter()
            .filter(|file| matches!(file.expect, Expect::Accepted(_)))
            .map(|file| (file.name.to_string(), file.bytes)),
    );
    let owner = UserId::new("bench").expect("a user id");
    let mut measured = Vec::new();
    println!("\n| accepted file | bytes | read ms | reader CPU ms | reader peak MiB | ingest ms | chunks | stored MiB |\n|---|---|---|---|---|---|---|---|");
    for (name, bytes) in files {
        let kind = detect(&name, &bytes).expect("a readable type");
        let (text, cost) = read_text_measured(&name, kind, &bytes, &limits);
        text.unwrap_or_else(|error| panic!("{name} is accepted: {error}"));
        let store = Arc::new(MemoryStore::new());
        let library = Library::new(store.clone(), Arc::new(OfflineEmbedder));
        let namespace = Uuid::new_v4();
        let started = Instant::now();
        let ids = library
            .ingest(namespace, &owner, vec![UploadedFile { name: name.clone(), bytes: bytes.clone().into() }])
            .await
            .unwrap_or_else(|error| panic!("{name} is ingested: {error}"));
        let ingest = started.elapsed();
        let chunks = store.documents(namespace).await.expect("its chunks").chunks;
        let row = Measured {
            name,
            bytes: bytes.len(),
            read: cost.wall,
            cpu: cost.cpu,
            peak_mib: cost.peak_bytes as f64 / (1 << 20) as f64,
            ingest,
            chunks: ids[0].len(),
            stored_mib: stored_bytes(&chunks) as f64 / (1 << 20) as f64,
        };
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.1} | {:.0} | {} | {:.1} |",
            row.name,
            row.bytes,
            ms(row.read),
            ms(row.cpu),
            row.peak_mib,
            ms(row.ingest),
            row.chunks,
            row.stored_mib
        );
        measured.push(row);
    }
    let slowest = measured.iter().max_by_key(|row| row.ingest).expect("files");
    let hungriest = measured.iter().max_by(|a, b| a.peak_mib.total_cmp(&b.peak_mib)).expect("files");
    println!(
        "\nworst accepted file by time: {} ({} bytes), ingest {:.0} ms (reading {:.0} ms)",
        slowest.name,
        slowest.bytes,
        ms(slowest.ingest),
        ms(slowest.read)
    );
    println!(
        "worst accepted file by memory: {} ({} bytes), its reader added {:.1} MiB at its peak",
        hungriest.name, hungriest.bytes, hungriest.peak_mib
    );
    json!({
        "files": measured.iter().map(|row| json!({"name": row.name, "bytes": row.bytes, "read_ms": ms(row.read),
            "reader_cpu_ms": ms(row.cpu), "reader_peak_mib": row.peak_mib, "ingest_ms": ms(row.ingest), "chunks": row.chunks, "stored_mib": row.stored_mib})).collect::<Vec<_>>(),
        "slowest": slowest.name, "hungriest": hungriest.name,
    })
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
