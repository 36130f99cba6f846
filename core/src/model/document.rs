//! Ingested files as retrieval reads them: chunks of text with their embeddings, kept per
//! namespace (the assistant or thread they were uploaded to).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A piece of an ingested file and its embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentChunk {
    pub id: Uuid,
    /// The assistant or thread the file was uploaded to.
    pub namespace: Uuid,
    /// One upload of one file: its chunks are stored, and deleted, together.
    pub file_id: Uuid,
    /// The file's name.
    pub source: String,
    /// Where in the file: 0 for its first chunk.
    pub position: u32,
    pub text: String,
    pub vector: Vec<f32>,
}

/// Which embedder made an index's vectors. An index keeps its first file's embedder, so a later
/// change of provider is a clear error, not a search through vectors of another space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedderId {
    pub name: String,
    pub dimensions: usize,
}

impl std::fmt::Display for EmbedderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} dimensions)", self.name, self.dimensions)
    }
}

/// A namespace's searchable files.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DocumentIndex {
    pub embedder: Option<EmbedderId>,
    pub chunks: Vec<DocumentChunk>,
}
