//! Files users upload to an assistant or a thread, made searchable: read to text (`parse`),
//! split into overlapping chunks (`split`), embedded (`embed`), stored through the [`Store`],
//! and searched (`search`).

#[cfg(feature = "files")]
mod bucket;
mod embed;
mod kind;
#[cfg(feature = "files")]
mod parse;
#[cfg(feature = "files")]
mod sandbox;
mod search;
mod split;
#[cfg(feature = "files")]
pub mod uploads;

use std::sync::Arc;

use uuid::Uuid;

pub use embed::{embedder_from_config, offline_vector, Embedder, EmbeddingsError, OfflineEmbedder};
pub use kind::{detect, FileKind, ParseError};
#[cfg(feature = "files")]
pub use parse::extract_text;
#[cfg(feature = "files")]
pub use sandbox::{read_text, read_text_measured, ReadCost};
pub use split::{split_text, CHUNK_OVERLAP, CHUNK_SIZE};

#[cfg(feature = "files")]
use crate::config::IngestLimits;
#[cfg(feature = "files")]
use crate::model::UserId;
use crate::model::{DocumentChunk, EmbedderId};
#[cfg(feature = "files")]
use crate::store::DocumentQuota;
use crate::store::{Store, StoreError};

/// How many chunks a search returns, as OpenGPTs' retriever does.
pub const TOP_K: usize = 4;

/// One uploaded file.
#[derive(Debug, Clone)]
pub struct UploadedFile {
    pub name: String,
    pub bytes: bytes::Bytes,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum DocumentError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Embeddings(#[from] EmbeddingsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The files of every assistant and thread, through one embedder.
#[derive(Clone)]
pub struct Library {
    store: Arc<dyn Store>,
    embedder: Arc<dyn Embedder>,
    #[cfg(feature = "files")]
    limits: Arc<IngestLimits>,
}

impl Library {
    pub fn new(store: Arc<dyn Store>, embedder: Arc<dyn Embedder>) -> Self {
        #[cfg(feature = "files")]
        let limits = Arc::new(IngestLimits::default());
        Library {
            store,
            embedder,
            #[cfg(feature = "files")]
            limits,
        }
    }

    /// What embeds the files' text, and anything else searched by meaning.
    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    /// The same library, reading files within `limits`.
    #[cfg(feature = "files")]
    pub fn with_limits(self, limits: IngestLimits) -> Self {
        Library { limits: Arc::new(limits), ..self }
    }

    /// Reads, splits and embeds every file, then stores each whole: one list of chunk ids per
    /// file. A file that cannot be read, or an embedder that fails, fails the request before
    /// anything is stored.
    #[cfg(feature = "files")]
    pub async fn ingest(
        &self,
        namespace: Uuid,
        owner: &UserId,
        files: Vec<UploadedFile>,
    ) -> Result<Vec<Vec<Uuid>>, DocumentError> {
        let mut prepared = Vec::with_capacity(files.len());
        // The reading time is the upload's: each file gets what the ones before it left.
        let budget = std::time::Duration::from_secs(self.limits.file_seconds.max(1));
        let started = std::time::Instant::now();
        for file in files {
            let left = budget.saturating_sub(started.elapsed());
            if left < std::time::Duration::from_millis(500) {
                let seconds = budget.as_secs();
                return Err(ParseError::TooSlow { file: file.name, seconds }.into());
            }
            // Whole seconds, as the kernel's CPU limit counts them.
            let limits =
                IngestLimits { file_seconds: left.as_secs_f64().round().max(1.0) as u64, ..(*self.limits).clone() };
            // Parsing is CPU work; it leaves the async threads free.
            let texts = tokio::task::spawn_blocking(move || -> Result<(String, Vec<String>), ParseError> {
                let kind = detect(&file.name, &file.bytes)?;
                let text = read_text(&file.name, kind, &file.bytes, &limits)?;
                let chunks = split_text(&text);
                if chunks.len() > limits.max_chunks_per_file {
                    let (chunks, limit) = (chunks.len(), limits.max_chunks_per_file);
                    return Err(ParseError::TooManyChunks { file: file.name, chunks, limit });
                }
                Ok((file.name, chunks))
            })
            .await
            .map_err(|error| StoreError::Backend(format!("the file reader stopped: {error}")))??;
            prepared.push(texts);
        }
        // Every file is embedded before any is stored: a failing embedder stores nothing.
        let mut files = Vec::with_capacity(prepared.len());
        for (source, texts) in prepared {
            let vectors = self.embedder.embed(&texts).await?;
            let file_id = Uuid::new_v4();
            let chunks: Vec<DocumentChunk> = texts
                .into_iter()
                .zip(vectors)
                .enumerate()
                .map(|(position, (text, vector))| DocumentChunk {
                    id: Uuid::new_v4(),
                    namespace,
                    file_id,
                    source: source.clone(),
                    position: position as u32,
                    text,
                    vector,
                })
                .collect();
            files.push(chunks);
        }
        let mut answers = Vec::with_capacity(files.len());
        let quota = DocumentQuota {
            max_chunks: self.limits.max_chunks_per_namespace,
            max_user_bytes: self.limits.max_stored_bytes_per_user,
        };
        for chunks in files {
            let embedder = EmbedderId { name: self.embedder.name(), dimensions: chunks[0].vector.len() };
            self.store.add_document(namespace, owner, &embedder, &chunks, quota).await?;
            answers.push(chunks.iter().map(|chunk| chunk.id).collect());
        }
        Ok(answers)
    }

    /// The chunks of these namespaces most like `query`, best first.
    pub async fn search(
        &self,
        namespaces: &[Uuid],
        query: &str,
        k: usize,
    ) -> Result<Vec<DocumentChunk>, DocumentError> {
        let mut chunks = Vec::new();
        let query_vector = self.embedder.embed(&[query.to_string()]).await?.pop().unwrap_or_default();
        let current = EmbedderId { name: self.embedder.name(), dimensions: query_vector.len() };
        for namespace in namespaces {
            let index = self.store.documents(*namespace).await?;
            match index.embedder {
                Some(recorded) if recorded != current => {
                    return Err(StoreError::IndexMismatch { recorded, offered: current }.into())
                }
                _ => chunks.extend(index.chunks),
            }
        }
        let found = search::top_k(&query_vector, &chunks, k, self.embedder.lexical());
        Ok(found.into_iter().map(|(_, chunk)| chunk.clone()).collect())
    }
}
