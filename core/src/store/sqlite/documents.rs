//! Files in SQLite: a namespace's index and chunks, added whole under the quotas, and deleted.

use async_trait::async_trait;

use super::*;
use crate::store::rules::check_document;
use crate::store::DocumentStore;

pub(super) fn delete_documents(tx: &Transaction<'_>, namespace: Uuid) -> StoreResult<()> {
    let id = namespace.to_string();
    tx.execute("DELETE FROM document_chunks WHERE namespace = ?1", params![id])?;
    tx.execute("DELETE FROM document_indexes WHERE namespace = ?1", params![id])?;
    Ok(())
}

#[async_trait]
impl DocumentStore for SqliteStore {
    async fn add_document(
        &self,
        namespace: Uuid,
        owner: &UserId,
        embedder: &EmbedderId,
        chunks: &[DocumentChunk],
        quota: DocumentQuota,
    ) -> StoreResult<()> {
        let (owner, embedder, chunks) = (owner.to_string(), embedder.clone(), chunks.to_vec());
        self.write(move |tx| {
            let id = namespace.to_string();
            let adding = stored_bytes(&chunks);
            let held_bytes: i64 = tx.query_row(
                "SELECT COALESCE(SUM(bytes), 0) FROM document_indexes WHERE owner = ?1",
                params![owner],
                |row| row.get(0),
            )?;
            let recorded: Option<String> = tx
                .query_row("SELECT embedder FROM document_indexes WHERE namespace = ?1", params![id], |row| row.get(0))
                .optional()?;
            let recorded = recorded.map(|text| from_json::<EmbedderId>(&text)).transpose()?;
            let (next, held): (i64, i64) = tx.query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1, COUNT(*) FROM document_chunks WHERE namespace = ?1",
                params![id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            let would_hold = held as u64 + chunks.len() as u64;
            check_document(recorded.as_ref(), &embedder, would_hold, held_bytes as u64 + adding, quota)?;
            if recorded.is_none() {
                let sql = "INSERT INTO document_indexes (namespace, embedder, owner) VALUES (?1, ?2, ?3)";
                tx.execute(sql, params![id, to_json(&embedder)?, owner])?;
            }
            tx.execute(
                "UPDATE document_indexes SET bytes = bytes + ?2, owner = ?3 WHERE namespace = ?1",
                params![id, adding as i64, owner],
            )?;
            let mut insert =
                tx.prepare("INSERT INTO document_chunks (namespace, seq, body, vector) VALUES (?1, ?2, ?3, ?4)")?;
            for (offset, chunk) in chunks.iter().enumerate() {
                let vector: Vec<u8> = chunk.vector.iter().flat_map(|value| value.to_le_bytes()).collect();
                let body = DocumentChunk { vector: Vec::new(), ..chunk.clone() };
                insert.execute(params![id, next + offset as i64, to_json(&body)?, vector])?;
            }
            Ok(())
        })
        .await
    }

    async fn documents(&self, namespace: Uuid) -> StoreResult<DocumentIndex> {
        self.call(move |connection| {
            let tx = connection.transaction()?;
            let id = namespace.to_string();
            let embedder: Option<String> = tx
                .query_row("SELECT embedder FROM document_indexes WHERE namespace = ?1", params![id], |row| row.get(0))
                .optional()?;
            let mut select =
                tx.prepare("SELECT body, vector FROM document_chunks WHERE namespace = ?1 ORDER BY seq")?;
            let rows =
                select.query_map(params![id], |row| Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?)))?;
            let mut chunks = Vec::new();
            for row in rows {
                let (body, vector) = row?;
                let mut chunk: DocumentChunk = from_json(&body)?;
                chunk.vector = vector
                    .chunks_exact(4)
                    .map(|bytes| f32::from_le_bytes(bytes.try_into().expect("4 bytes")))
                    .collect();
                chunks.push(chunk);
            }
            Ok(DocumentIndex { embedder: embedder.map(|text| from_json(&text)).transpose()?, chunks })
        })
        .await
    }
}
