//! Ingested files: a namespace's chunks in a partition of their own, with its index item.
//!
//! | item | `pk` | `sk` | attributes |
//! |---|---|---|---|
//! | index | `DOCS#<namespace>` | `I` | `embedder` (JSON), `files` (the complete files' ids, a string set), `chunks` and `bytes` (reserved), `owner` |
//! | usage | `USAGE#<user>` | `U` | `bytes`: what the user's files hold, all namespaces together |
//! | chunk | `DOCS#<namespace>` | `C#<file_id>#<position, 6 digits>` | `body` (JSON, no vector), `vector` (binary, int8), `scale` |
//!
//! A file first reserves its chunks in the index and charges its bytes to its owner, in one
//! transaction whose conditions are the embedder and both quotas (given back if the file is not
//! stored; deleting the namespace gives its bytes back), then its chunks are written
//! in batches, then its id joins `files` in one update: readers
//! (one Query of the partition) keep only chunks of files in `files`, so a file is searchable
//! whole or not at all. Vectors are quantised to one byte a dimension (each with its scale):
//! a 1,536-dimension chunk of 1,000 characters is about 2.7 KB, under one 4 KB read unit.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, PutRequest, TransactWriteItem, Update, WriteRequest};
use uuid::Uuid;

use super::errors::{backend, sdk_error};
use super::table::{body, key, s, text, to_json, Item};
use super::DynamoStore;
use crate::model::{DocumentChunk, DocumentIndex, EmbedderId, UserId};
use crate::store::rules::check_document;
use crate::store::{stored_bytes, DocumentQuota, DocumentStore, Entity, StoreError, StoreResult};

fn docs_pk(namespace: Uuid) -> String {
    format!("DOCS#{namespace}")
}

/// A user's stored bytes, across all their files.
fn usage_pk(owner: impl std::fmt::Display) -> String {
    format!("USAGE#{owner}")
}

/// int8 values and the scale that turns them back into floats.
fn quantise(vector: &[f32]) -> (Vec<u8>, f32) {
    let largest = vector.iter().fold(0f32, |max, value| max.max(value.abs()));
    let scale = if largest > 0.0 { largest / 127.0 } else { 1.0 };
    let bytes = vector.iter().map(|value| (value / scale).round().clamp(-127.0, 127.0) as i8 as u8).collect();
    (bytes, scale)
}

fn dequantise(bytes: &[u8], scale: f32) -> Vec<f32> {
    bytes.iter().map(|byte| f32::from(*byte as i8) * scale).collect()
}

impl DynamoStore {
    /// Why the index refused a file: another embedder, or its quota of chunks.
    async fn refusal_of_index(
        &self,
        pk: &str,
        embedder: &EmbedderId,
        adding: u64,
        max_chunks: u64,
    ) -> StoreResult<StoreError> {
        let index = self.get(pk.to_string(), "I").await?.ok_or_else(|| backend("the document index vanished"))?;
        let recorded: EmbedderId = super::table::from_json(text(&index, "embedder")?)?;
        if &recorded != embedder {
            return Ok(StoreError::IndexMismatch { recorded, offered: embedder.clone() });
        }
        let held = super::table::number(&index, "chunks").unwrap_or(0) as u64;
        Ok(StoreError::ChunkQuota { would_hold: held + adding, limit: max_chunks })
    }

    /// Takes back what a file reserved (chunks in its index) or charged (bytes to its owner).
    async fn give_back(&self, pk: &str, owner: &UserId, chunks: u64, bytes: u64) {
        let minus = |value: u64| AttributeValue::N(format!("-{value}"));
        let mut transaction = self.transaction();
        let updates = [
            (key(pk.to_string(), "I"), "ADD chunks :chunks, bytes :bytes", Some(minus(chunks))),
            (key(usage_pk(owner), "U"), "ADD bytes :bytes", None),
        ];
        for (item, expression, chunks) in updates {
            let mut update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(item))
                .update_expression(expression)
                .expression_attribute_values(":bytes", minus(bytes));
            if let Some(chunks) = chunks {
                update = update.expression_attribute_values(":chunks", chunks);
            }
            if let Ok(update) = update.build() {
                transaction = transaction.transact_items(TransactWriteItem::builder().update(update).build());
            }
        }
        if let Err(error) = transaction.send().await {
            tracing::error!(error = %sdk_error(error), "could not give back a failed upload's quota");
        }
    }

    /// Writes a file's chunks, then commits it: from then on readers see it whole.
    async fn write_chunks(&self, pk: &str, chunks: &[DocumentChunk]) -> StoreResult<()> {
        let pk = pk.to_string();
        let mut writes = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            let mut item = key(pk.clone(), &format!("C#{}#{:06}", chunk.file_id, chunk.position));
            let (bytes, scale) = quantise(&chunk.vector);
            item.insert("body".into(), s(to_json(&DocumentChunk { vector: Vec::new(), ..chunk.clone() })?));
            item.insert("vector".into(), AttributeValue::B(Blob::new(bytes)));
            item.insert("scale".into(), AttributeValue::N(scale.to_string()));
            let put = PutRequest::builder().set_item(Some(item)).build().map_err(backend)?;
            writes.push(WriteRequest::builder().put_request(put).build());
        }
        self.write_all(writes).await?;
        let Some(file_id) = chunks.first().map(|chunk| chunk.file_id) else {
            return Ok(());
        };
        // The commit: from here on, readers see the file.
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, "I")))
            .update_expression("ADD files :file")
            .expression_attribute_values(":file", AttributeValue::Ss(vec![file_id.to_string()]))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    /// Deletes a namespace's files, and gives their bytes back to their owner, who must be
    /// `user` (`NotFound` as `entity` otherwise). The chunks go first, then the index item and
    /// the bytes together in one transaction: a deletion cut short leaves the index to be
    /// deleted again, and the bytes are given back once.
    pub(super) async fn delete_documents(&self, namespace: Uuid, user: &UserId, entity: Entity) -> StoreResult<()> {
        let pk = docs_pk(namespace);
        let items = self.query_all(None, "pk = :pk", vec![(":pk", s(pk.clone()))], false).await?;
        let index = items.iter().find(|item| text(item, "sk").is_ok_and(|sk| sk == "I"));
        let owner = index.and_then(|index| text(index, "owner").ok());
        if owner.is_some_and(|owner| owner != user.as_str()) {
            return Err(StoreError::NotFound(entity));
        }
        let chunks = items.iter().filter(|item| text(item, "sk").is_ok_and(|sk| sk != "I"));
        let keys: Vec<Item> = chunks.map(|item| Ok(key(pk.clone(), text(item, "sk")?))).collect::<StoreResult<_>>()?;
        self.delete_all(keys).await?;
        let Some(index) = index else { return Ok(()) };
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), "I")))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(backend)?;
        let mut transaction = self.transaction().transact_items(TransactWriteItem::builder().delete(delete).build());
        let bytes = super::table::number(index, "bytes").unwrap_or(0);
        if let Some(owner) = owner.filter(|_| bytes > 0) {
            let give_back = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(usage_pk(owner), "U")))
                .update_expression("ADD bytes :bytes")
                .expression_attribute_values(":bytes", AttributeValue::N(format!("-{bytes}")))
                .build()
                .map_err(backend)?;
            transaction = transaction.transact_items(TransactWriteItem::builder().update(give_back).build());
        }
        match transaction.send().await {
            Ok(_) => Ok(()),
            Err(error) => match error.as_service_error() {
                // Deleted meanwhile, by another deletion that gave the bytes back.
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled))
                    if cancelled.cancellation_reasons().first().and_then(|reason| reason.code())
                        == Some("ConditionalCheckFailed") =>
                {
                    Ok(())
                }
                _ => Err(sdk_error(error)),
            },
        }
    }
}

#[async_trait]
impl DocumentStore for DynamoStore {
    async fn add_document(
        &self,
        namespace: Uuid,
        owner: &UserId,
        embedder: &EmbedderId,
        chunks: &[DocumentChunk],
        quota: DocumentQuota,
    ) -> StoreResult<()> {
        let pk = docs_pk(namespace);
        let (adding, bytes) = (chunks.len() as u64, stored_bytes(chunks));
        // A file over a quota on its own is refused before anything is reserved; the rest of the
        // rule is the reservation's condition.
        check_document(None, embedder, adding, bytes, quota)?;
        let number = |value: u64| AttributeValue::N(value.to_string());
        let reserve = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), "I")))
            .update_expression("SET embedder = if_not_exists(embedder, :embedder), #owner = :owner ADD chunks :adding, bytes :bytes")
            .condition_expression(
                "(attribute_not_exists(embedder) OR embedder = :embedder) AND (attribute_not_exists(chunks) OR chunks <= :room)",
            )
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":embedder", s(to_json(embedder)?))
            .expression_attribute_values(":owner", s(owner.to_string()))
            .expression_attribute_values(":adding", number(adding))
            .expression_attribute_values(":bytes", number(bytes))
            .expression_attribute_values(":room", number(quota.max_chunks - adding))
            .build()
            .map_err(backend)?;
        let charge = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(usage_pk(owner), "U")))
            .update_expression("ADD bytes :bytes")
            .condition_expression("attribute_not_exists(bytes) OR bytes <= :room")
            .expression_attribute_values(":bytes", number(bytes))
            .expression_attribute_values(":room", number(quota.max_user_bytes - bytes))
            .build()
            .map_err(backend)?;
        let reserved = self
            .transaction()
            .transact_items(TransactWriteItem::builder().update(reserve).build())
            .transact_items(TransactWriteItem::builder().update(charge).build())
            .send()
            .await;
        if let Err(error) = reserved {
            let refused = match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => cancelled
                    .cancellation_reasons()
                    .iter()
                    .position(|reason| reason.code() == Some("ConditionalCheckFailed")),
                _ => None,
            };
            return Err(match refused {
                Some(0) => self.refusal_of_index(&pk, embedder, adding, quota.max_chunks).await?,
                Some(_) => {
                    let usage = self.get(usage_pk(owner), "U").await?.unwrap_or_default();
                    let held = super::table::number(&usage, "bytes").unwrap_or(0) as u64;
                    StoreError::ByteQuota { would_hold: held + bytes, limit: quota.max_user_bytes }
                }
                None => sdk_error(error),
            });
        }
        let stored = self.write_chunks(&pk, chunks).await;
        if stored.is_err() {
            // The reservation is given back; the chunks written are never read (not in `files`).
            self.give_back(&pk, owner, adding, bytes).await;
        }
        stored
    }

    async fn documents(&self, namespace: Uuid) -> StoreResult<DocumentIndex> {
        let items = self.query_all(None, "pk = :pk", vec![(":pk", s(docs_pk(namespace)))], false).await?;
        let Some(index) = items.iter().find(|item| text(item, "sk").is_ok_and(|sk| sk == "I")) else {
            return Ok(DocumentIndex::default());
        };
        let files: Vec<String> = match index.get("files") {
            Some(AttributeValue::Ss(files)) => files.clone(),
            _ => Vec::new(),
        };
        let mut chunks = Vec::new();
        for item in items.iter().filter(|item| text(item, "sk").is_ok_and(|sk| sk.starts_with("C#"))) {
            let mut chunk: DocumentChunk = body(item)?;
            if !files.contains(&chunk.file_id.to_string()) {
                continue;
            }
            let scale: f32 = match item.get("scale") {
                Some(AttributeValue::N(number)) => number.parse().map_err(backend)?,
                _ => return Err(backend("a chunk has no scale")),
            };
            chunk.vector = match item.get("vector") {
                Some(AttributeValue::B(bytes)) => dequantise(bytes.as_ref(), scale),
                _ => return Err(backend("a chunk has no vector")),
            };
            chunks.push(chunk);
        }
        let embedder = index.get("embedder").map(|_| super::table::from_json(text(index, "embedder")?)).transpose()?;
        Ok(DocumentIndex { embedder, chunks })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantised_vectors_keep_their_direction() {
        let vector = [0.5, -0.25, 0.0, 0.125];
        let (bytes, scale) = quantise(&vector);
        let back = dequantise(&bytes, scale);
        for (a, b) in vector.iter().zip(&back) {
            assert!((a - b).abs() < 0.5 / 127.0, "{vector:?} became {back:?}");
        }
    }
}
