//! A thread's messages: one item each (in parts when large), in order of sequence numbers that
//! the thread item gives out, written all or nothing.
//!
//! The thread item's `next_seq` is the last sequence number given out, and so the thread's
//! [`Revision`]: every write of messages moves it. A writer that knows it (it read the thread,
//! or wrote last) writes messages and moves it in one transaction, on condition that it has not
//! moved; one that does not, or finds it moved, first reserves numbers with an UpdateItem.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    Delete, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use uuid::Uuid;

use super::errors::{backend, conditional, sdk_error};
use super::table::{
    body, from_json, has, key, message_sk, millis, n, number, order_key, owned, s, text, thread_pk, to_json, Item,
    DELETING,
};
use super::DynamoStore;
use crate::model::{Archive, Message, RunStatus, Thread, Timestamp, UserId};
use crate::store::{Entity, Fork, Revision, StoreError, StoreResult, ThreadStore, ThreadView};

/// Largest slice of a message's JSON kept in one item, well under DynamoDB's 400 KB item limit.
const PART_BYTES: usize = 300 * 1024;
/// TransactWriteItems takes at most 100 actions.
const TRANSACTION_ITEMS: usize = 100;
/// ...and at most 4 MB in all; this leaves room for the actions' other parts.
const TRANSACTION_BYTES: usize = 3_500_000;

/// Splits text into parts of at most `PART_BYTES`, never inside a character.
pub(super) fn split_parts(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text;
    while rest.len() > PART_BYTES {
        let mut cut = PART_BYTES;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (part, tail) = rest.split_at(cut);
        parts.push(part);
        rest = tail;
    }
    parts.push(rest);
    parts
}

/// The revision a thread item records.
pub(super) fn revision(thread: &Item) -> Revision {
    Revision(number(thread, "next_seq").unwrap_or(0) as u64)
}

/// Whether items and `others` more actions fit one transaction.
pub(super) fn fit_one_transaction(items: &[Item], others: usize) -> bool {
    let bytes: usize =
        items.iter().flat_map(|item| item.values()).map(|value| value.as_s().map(String::len).unwrap_or(64)).sum();
    items.len() + others <= TRANSACTION_ITEMS && bytes <= TRANSACTION_BYTES
}

/// Why a transaction on a thread did not go through.
pub(super) enum Refusal {
    /// The thread item's condition failed; the item as it was (`None`: there is none).
    Thread(Option<Item>),
    /// The condition of the action at this position failed.
    Action(usize),
    /// Another transaction touched the same items at the same moment; trying again may pass.
    Conflict,
    Failed(StoreError),
}

impl DynamoStore {
    /// The thread's item and its messages (rejoined from their parts), in one Query.
    pub(super) async fn thread_and_messages(
        &self,
        user: &UserId,
        thread_id: Uuid,
    ) -> StoreResult<(Item, Vec<(u64, Message)>)> {
        let values = vec![(":pk", s(thread_pk(thread_id))), (":m", s("M"))];
        let mut items = self.query_all(None, "pk = :pk AND begins_with(sk, :m)", values, false).await?.into_iter();
        let thread = owned(items.next().filter(|item| has(item, "sk", "M")), user, Entity::Thread)?;
        let mut messages: Vec<(u64, Message)> = Vec::new();
        let mut pending: Option<(u64, String)> = None;
        for item in items {
            let sk = text(&item, "sk")?;
            let seq: u64 = sk
                .get(2..14)
                .and_then(|digits| digits.parse().ok())
                .ok_or_else(|| backend(format!("bad sort key {sk}")))?;
            match &mut pending {
                Some((current, json)) if *current == seq => json.push_str(text(&item, "body")?),
                _ => {
                    if let Some((done, json)) = pending.take() {
                        messages.push((done, from_json(&json)?));
                    }
                    pending = Some((seq, text(&item, "body")?.to_string()));
                }
            }
        }
        if let Some((done, json)) = pending {
            messages.push((done, from_json(&json)?));
        }
        Ok((thread, messages))
    }

    /// The items holding one message: one, or several parts when it is large.
    fn message_items(&self, thread_id: Uuid, seq: u64, message: &Message) -> StoreResult<Vec<Item>> {
        let json = to_json(message)?;
        Ok(split_parts(&json)
            .into_iter()
            .enumerate()
            .map(|(part, slice)| {
                let mut item = key(thread_pk(thread_id), &message_sk(seq, part));
                item.insert("body".into(), s(slice));
                if let Some(id) = &message.id {
                    item.insert("message_id".into(), s(id));
                }
                item
            })
            .collect())
    }

    /// The items of messages numbered from just after `after`.
    pub(super) fn items_after(&self, thread_id: Uuid, after: Revision, messages: &[Message]) -> StoreResult<Vec<Item>> {
        let mut items = Vec::with_capacity(messages.len());
        for (offset, message) in messages.iter().enumerate() {
            items.extend(self.message_items(thread_id, after.0 + 1 + offset as u64, message)?);
        }
        Ok(items)
    }

    /// Reserves `count` sequence numbers on a thread the user owns; returns the first.
    async fn reserve(&self, user: &UserId, thread_id: Uuid, count: usize) -> StoreResult<u64> {
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(thread_pk(thread_id), "M")))
            // New messages: the last run's outcome no longer describes the thread's end.
            .update_expression("ADD next_seq :count REMOVE last_outcome")
            .condition_expression("user_id = :user")
            .expression_attribute_values(":count", n(count))
            .expression_attribute_values(":user", s(user.as_str()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        let output = match output {
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                return Err(StoreError::NotFound(Entity::Thread))
            }
            other => other.map_err(sdk_error)?,
        };
        let last = output
            .attributes
            .as_ref()
            .and_then(|item| number(item, "next_seq"))
            .ok_or_else(|| backend("no next_seq"))?;
        Ok(last as u64 - count as u64 + 1)
    }

    /// One transaction: `thread` (the update of the thread item, whose old item comes back if
    /// its condition fails), then `actions`, then puts of `items`.
    pub(super) async fn transact(
        &self,
        thread: Update,
        actions: Vec<TransactWriteItem>,
        items: Vec<Item>,
    ) -> Result<(), Refusal> {
        let mut transaction = self.transaction().transact_items(TransactWriteItem::builder().update(thread).build());
        for action in actions {
            transaction = transaction.transact_items(action);
        }
        for item in items {
            transaction = transaction.transact_items(self.put(item).map_err(Refusal::Failed)?);
        }
        let Err(error) = transaction.send().await else { return Ok(()) };
        let reasons = match error.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => cancelled.cancellation_reasons(),
            _ => return Err(Refusal::Failed(sdk_error(error))),
        };
        let failed = |code: &str| reasons.iter().position(|reason| reason.code() == Some(code));
        match failed("ConditionalCheckFailed") {
            Some(0) => Err(Refusal::Thread(reasons[0].item().cloned())),
            Some(index) => Err(Refusal::Action(index)),
            None if failed("TransactionConflict").is_some() => Err(Refusal::Conflict),
            None => Err(Refusal::Failed(sdk_error(error))),
        }
    }

    /// The update of a thread item that gives out the numbers of `count` new messages after
    /// `seen`, on `condition` and that it is still at `seen`. `set` and `remove` are more of
    /// the update's clauses, comma-separated.
    pub(super) fn thread_update(
        &self,
        thread_id: Uuid,
        condition: &str,
        seen: Revision,
        count: usize,
        set: &[&str],
        remove: &[&str],
    ) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        let mut set = set.to_vec();
        let mut remove = remove.to_vec();
        if count > 0 {
            set.push("next_seq = :next");
            // New messages: the last run's outcome no longer describes the thread's end.
            if !set.iter().any(|clause| clause.starts_with("last_outcome")) {
                remove.push("last_outcome");
            }
        }
        let mut expression = Vec::new();
        if !set.is_empty() {
            expression.push(format!("SET {}", set.join(", ")));
        }
        if !remove.is_empty() {
            expression.push(format!("REMOVE {}", remove.join(", ")));
        }
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(thread_pk(thread_id), "M")))
            .update_expression(expression.join(" "))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if count > 0 {
            update = update.expression_attribute_values(":next", n(seen.0 + count as u64));
        }
        // Before the first message the counter is absent, not zero.
        match seen.0 {
            0 => update.condition_expression(format!("{condition} AND attribute_not_exists(next_seq)")),
            last => update
                .condition_expression(format!("{condition} AND next_seq = :seen"))
                .expression_attribute_values(":seen", n(last)),
        }
    }

    /// A put of `item`, as one action of a transaction.
    pub(super) fn put(&self, item: Item) -> StoreResult<TransactWriteItem> {
        let put = Put::builder().table_name(&self.table).set_item(Some(item)).build().map_err(backend)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Writes items all or nothing (in as few transactions as the limits allow).
    pub(super) async fn put_all(&self, items: Vec<Item>, with_first: Option<Update>) -> StoreResult<()> {
        let mut with_first = with_first.map(|update| TransactWriteItem::builder().update(update).build());
        for chunk in items.chunks(TRANSACTION_ITEMS - 1) {
            let mut transaction = self.transaction().set_transact_items(with_first.take().map(|first| vec![first]));
            for item in chunk {
                transaction = transaction.transact_items(self.put(item.clone())?);
            }
            transaction.send().await.map_err(sdk_error)?;
        }
        Ok(())
    }

    pub(super) async fn append(
        &self,
        user: &UserId,
        thread_id: Uuid,
        messages: &[Message],
        seen: Option<Revision>,
    ) -> StoreResult<Revision> {
        if messages.is_empty() {
            let thread = owned(self.get(thread_pk(thread_id), "M").await?, user, Entity::Thread)?;
            return Ok(revision(&thread));
        }
        if let Some(seen) = seen {
            let items = self.items_after(thread_id, seen, messages)?;
            if fit_one_transaction(&items, 1) {
                let update = self
                    .thread_update(thread_id, "user_id = :user", seen, messages.len(), &[], &[])
                    .expression_attribute_values(":user", s(user.as_str()))
                    .build()
                    .map_err(backend)?;
                match self.transact(update, Vec::new(), items).await {
                    Ok(()) => return Ok(Revision(seen.0 + messages.len() as u64)),
                    Err(Refusal::Failed(error)) => return Err(error),
                    // Moved on, or not the user's: the plain way finds out which.
                    Err(_) => {}
                }
            }
        }
        let first = self.reserve(user, thread_id, messages.len()).await?;
        let items = self.items_after(thread_id, Revision(first - 1), messages)?;
        self.put_all(items, None).await?;
        Ok(Revision(first - 1 + messages.len() as u64))
    }
}

/// The `sk` of a thread's archived branches (see [`Archive`]).
const ARCHIVE_SK: &str = "L";

#[async_trait]
impl ThreadStore for DynamoStore {
    async fn put_thread(&self, thread: &Thread) -> StoreResult<()> {
        // An update, not a put: the item also carries the message counter and the run lease.
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(thread_pk(thread.thread_id), "M")))
            .condition_expression("attribute_not_exists(pk) OR user_id = :user")
            .expression_attribute_values(":user", s(thread.user_id.as_str()))
            .expression_attribute_values(":body", s(to_json(thread)?))
            .expression_attribute_values(":gsi1pk", s(format!("USER#{}#THREADS", thread.user_id)))
            .expression_attribute_values(":gsi1sk", s(order_key(thread.updated_at, thread.thread_id)));
        // A thread with a `ttl` is in the sparse index the sweep reads (see `expiry.rs`).
        let set = "SET user_id = :user, body = :body, gsi1pk = :gsi1pk, gsi1sk = :gsi1sk";
        let updated = match thread.ttl {
            Some(ttl) => updated
                .update_expression(format!("{set}, gsi2pk = :expiring, gsi2sk = :expiry, ttl_ms = :ttl_ms"))
                .expression_attribute_values(":expiring", s(super::expiry::EXPIRING_THREADS))
                .expression_attribute_values(":expiry", s(order_key(ttl.expires_at, thread.thread_id)))
                .expression_attribute_values(":ttl_ms", n(millis(ttl.expires_at))),
            None => updated.update_expression(format!("{set} REMOVE gsi2pk, gsi2sk, ttl_ms")),
        };
        let updated = updated.send().await;
        conditional(updated, Err(StoreError::NotFound(Entity::Thread)))
    }

    async fn get_thread(&self, user: &UserId, thread_id: Uuid) -> StoreResult<Thread> {
        body(&owned(self.get(thread_pk(thread_id), "M").await?, user, Entity::Thread)?)
    }

    async fn list_threads(&self, user: &UserId) -> StoreResult<Vec<Thread>> {
        let values = vec![(":pk", s(format!("USER#{user}#THREADS")))];
        let items = self.query_all(Some("gsi1"), "gsi1pk = :pk", values, true).await?;
        items.iter().filter(|item| !item.contains_key(DELETING)).map(body).collect()
    }

    async fn delete_thread(&self, user: &UserId, thread_id: Uuid) -> StoreResult<()> {
        self.remove_thread(user, thread_id).await
    }

    async fn messages(&self, user: &UserId, thread_id: Uuid) -> StoreResult<Vec<Message>> {
        let (_, messages) = self.thread_and_messages(user, thread_id).await?;
        Ok(messages.into_iter().map(|(_, message)| message).collect())
    }

    async fn thread_view(&self, user: &UserId, thread_id: Uuid) -> StoreResult<ThreadView> {
        let (thread, messages) = self.thread_and_messages(user, thread_id).await?;
        let lease_expires = number(&thread, "lease_expires");
        let now = millis(crate::model::Timestamp::now());
        let holder = text(&thread, "lease_run_id").ok().and_then(|holder| Uuid::parse_str(holder).ok());
        Ok(ThreadView {
            running: holder.is_some() && lease_expires.is_some_and(|expires| expires > now),
            abandoned_by: holder.filter(|_| lease_expires.is_some_and(|expires| expires <= now)),
            last_outcome: text(&thread, "last_outcome").ok().and_then(RunStatus::from_name),
            thread: body(&thread)?,
            messages: messages.into_iter().map(|(_, message)| message).collect(),
            revision: revision(&thread),
        })
    }

    async fn append_messages(
        &self,
        user: &UserId,
        thread_id: Uuid,
        messages: &[Message],
        seen: Option<Revision>,
    ) -> StoreResult<Revision> {
        self.append(user, thread_id, messages, seen).await
    }

    async fn upsert_messages(&self, user: &UserId, thread_id: Uuid, messages: &[Message]) -> StoreResult<()> {
        let (_, stored) = self.thread_and_messages(user, thread_id).await?;
        let seq_of: HashMap<&str, (u64, usize)> = stored
            .iter()
            .filter_map(|(seq, message)| {
                let parts = split_parts(&to_json(message).ok()?).len();
                Some((message.id.as_deref()?, (*seq, parts)))
            })
            .collect();
        let mut replacements = Vec::new();
        let mut stale_parts = Vec::new();
        let mut appended = Vec::new();
        for message in messages {
            match message.id.as_deref().and_then(|id| seq_of.get(id)) {
                Some(&(seq, old_parts)) => {
                    let items = self.message_items(thread_id, seq, message)?;
                    stale_parts
                        .extend((items.len()..old_parts).map(|part| key(thread_pk(thread_id), &message_sk(seq, part))));
                    replacements.extend(items);
                }
                None => appended.push(message.clone()),
            }
        }
        if !replacements.is_empty() {
            // A replaced message moves the revision too: a run that read the old one must not
            // take it for the thread. The number it takes is left unused.
            let moved = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(thread_pk(thread_id), "M")))
                .update_expression("ADD next_seq :one")
                .condition_expression("user_id = :user")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":user", s(user.as_str()))
                .build()
                .map_err(backend)?;
            self.put_all(replacements, Some(moved)).await?;
        }
        self.delete_all(stale_parts).await?;
        if !appended.is_empty() {
            self.append(user, thread_id, &appended, None).await?;
        }
        Ok(())
    }

    async fn archive(&self, user: &UserId, thread_id: Uuid) -> StoreResult<Archive> {
        // The archive's `sk` sorts just before the thread item's, with nothing between them.
        let values = vec![(":pk", s(thread_pk(thread_id))), (":archive", s(ARCHIVE_SK)), (":thread", s("M"))];
        let items = self.query_all(None, "pk = :pk AND sk BETWEEN :archive AND :thread", values, false).await?;
        let thread = items.iter().find(|item| has(item, "sk", "M")).cloned();
        owned(thread, user, Entity::Thread)?;
        match items.iter().find(|item| has(item, "sk", ARCHIVE_SK)) {
            Some(archive) => body(archive),
            None => Ok(Archive::default()),
        }
    }

    /// One transaction: the thread item moved past `seen` (if no run holds it), the messages
    /// after the first `keep` deleted, the tail and the archive written.
    async fn fork_thread(&self, fork: Fork<'_>) -> StoreResult<Revision> {
        let Fork { user, thread_id, keep, tail, archive, seen } = fork;
        let (_, stored) = self.thread_and_messages(user, thread_id).await?;
        let mut actions = Vec::new();
        for (seq, message) in stored.iter().skip(keep) {
            for part in 0..split_parts(&to_json(message)?).len() {
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(thread_pk(thread_id), &message_sk(*seq, part))))
                    .build()
                    .map_err(backend)?;
                actions.push(TransactWriteItem::builder().delete(delete).build());
            }
        }
        let mut kept = key(thread_pk(thread_id), ARCHIVE_SK);
        kept.insert("body".into(), s(to_json(archive)?));
        actions.push(self.put(kept)?);
        // One number more than the tail takes: the revision moves even when nothing is added.
        let moved = Revision(seen.0 + 1);
        let items = self.items_after(thread_id, moved, tail)?;
        if !fit_one_transaction(&items, actions.len() + 1) {
            return Err(backend("a fork moving this many messages does not fit one DynamoDB transaction"));
        }
        let now = Timestamp::now();
        let update = self
            .thread_update(
                thread_id,
                "user_id = :user AND (attribute_not_exists(lease_run_id) OR lease_expires <= :now)",
                seen,
                tail.len() + 1,
                &[],
                &[],
            )
            .expression_attribute_values(":user", s(user.as_str()))
            .expression_attribute_values(":now", n(millis(now)))
            .build()
            .map_err(backend)?;
        match self.transact(update, actions, items).await {
            Ok(()) => Ok(Revision(moved.0 + tail.len() as u64)),
            Err(Refusal::Thread(old)) => {
                let thread = owned(old, user, Entity::Thread)?;
                let holder = text(&thread, "lease_run_id").ok().and_then(|id| Uuid::parse_str(id).ok());
                match holder {
                    Some(run_id) if number(&thread, "lease_expires").is_some_and(|expires| expires > millis(now)) => {
                        Err(StoreError::ThreadBusy { run_id })
                    }
                    _ => Err(StoreError::ThreadChanged),
                }
            }
            Err(Refusal::Action(_)) | Err(Refusal::Conflict) => Err(StoreError::ThreadChanged),
            Err(Refusal::Failed(error)) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_rejoin_and_never_split_a_character() {
        let text = "é".repeat(PART_BYTES);
        let parts = split_parts(&text);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|part| part.len() <= PART_BYTES));
        assert_eq!(parts.concat(), text);
    }
}
