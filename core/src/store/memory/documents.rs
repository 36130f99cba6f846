//! The memory store's uploaded files' chunks.

use super::*;
use crate::store::rules::check_document;
use crate::store::DocumentStore;

#[async_trait]
impl DocumentStore for MemoryStore {
    async fn add_document(
        &self,
        namespace: Uuid,
        owner: &UserId,
        embedder: &EmbedderId,
        chunks: &[DocumentChunk],
        quota: DocumentQuota,
    ) -> StoreResult<()> {
        let mut inner = self.lock();
        let adding = stored_bytes(chunks);
        let user_bytes = inner.stored_bytes.get(owner).copied().unwrap_or(0) + adding;
        let index = inner.documents.entry(namespace).or_default();
        let would_hold = (index.chunks.len() + chunks.len()) as u64;
        check_document(index.embedder.as_ref(), embedder, would_hold, user_bytes, quota)?;
        index.embedder = Some(embedder.clone());
        index.chunks.extend_from_slice(chunks);
        inner.stored_bytes.insert(owner.clone(), user_bytes);
        Ok(())
    }

    async fn documents(&self, namespace: Uuid) -> StoreResult<DocumentIndex> {
        Ok(self.lock().documents.get(&namespace).cloned().unwrap_or_default())
    }
}
