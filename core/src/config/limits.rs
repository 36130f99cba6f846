//! The bounds on what users send and store, each named by the variable that sets it.

/// What one request may carry, beyond the body size: each breach is a clear 413 or 422.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_messages_per_request: usize,
    pub max_message_bytes: usize,
    pub max_config_bytes: usize,
    pub max_name_chars: usize,
    /// A thread this full takes no more input: every run reads it whole.
    pub max_thread_messages: usize,
    pub max_thread_bytes: usize,
    pub max_tools_per_assistant: usize,
    /// Streams one user may have open at once in one process.
    pub max_streams_per_user: usize,
}

impl Limits {
    /// A name cut to `MAX_NAME_CHARS`, with an ellipsis where it was cut.
    pub fn shorten_name(&self, name: String) -> String {
        if name.chars().count() <= self.max_name_chars {
            return name;
        }
        let mut short: String = name.chars().take(self.max_name_chars.saturating_sub(1)).collect();
        short.push('…');
        short
    }
}

/// What reading one uploaded file may cost, and what a user may store. Each breach is refused
/// with the variable named, so an operator knows what to raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestLimits {
    /// The most characters of text one file may yield (`MAX_INGEST_TEXT_CHARS`).
    pub max_text_chars: usize,
    /// The most bytes one entry of a zip container (.docx) may inflate to (`MAX_ZIP_ENTRY_BYTES`).
    pub max_zip_entry_bytes: u64,
    /// The most chunks one file may be split into (`MAX_CHUNKS_PER_FILE`).
    pub max_chunks_per_file: usize,
    /// How long reading one upload's files may take, in CPU and in wall time: each file gets
    /// what the ones before it left (`INGEST_FILE_SECONDS`).
    pub file_seconds: u64,
    /// How much memory reading one file may take beyond its bytes (`INGEST_FILE_MEMORY_MB`).
    pub file_memory_mb: u64,
    /// The most chunks an assistant's or a thread's files may hold together
    /// (`MAX_CHUNKS_PER_NAMESPACE`).
    pub max_chunks_per_namespace: u64,
    /// The most bytes of chunks one user may store across every upload (`MAX_STORED_BYTES_PER_USER`).
    pub max_stored_bytes_per_user: u64,
}

impl Default for IngestLimits {
    /// A 4 MiB upload (`MAX_INGEST_BYTES`) of plain prose passes whole; a file that inflates or
    /// nests to cost more is refused.
    fn default() -> Self {
        IngestLimits {
            max_text_chars: 4 << 20,
            max_zip_entry_bytes: 64 << 20,
            max_chunks_per_file: 6_000,
            file_seconds: 10,
            file_memory_mb: 192,
            max_chunks_per_namespace: 20_000,
            max_stored_bytes_per_user: 200 << 20,
        }
    }
}
