//! A thread's messages: one item each (in parts when large), sequence numbers reserved on the
//! thread item, writes all or nothing.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{Put, ReturnValue, TransactWriteItem};
use uuid::Uuid;

use super::errors::{backend, sdk_error};
use super::table::{from_json, has, key, message_sk, n, number, owned, s, text, thread_pk, to_json, Item};
use super::DynamoStore;
use crate::model::{Message, UserId};
use crate::store::{Entity, Store, StoreError, StoreResult};

/// Largest slice of a message's JSON kept in one item, well under DynamoDB's 400 KB item limit.
const PART_BYTES: usize = 300 * 1024;
/// TransactWriteItems takes at most 100 actions; one is the counter or lease update.
const TRANSACTION_ITEMS: usize = 99;

/// Splits text into parts of at most `PART_BYTES`, never inside a character.
fn split_parts(text: &str) -> Vec<&str> {
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

    /// Writes items all or nothing (in as few transactions as the limits allow).
    pub(super) async fn put_all(&self, items: Vec<Item>) -> StoreResult<()> {
        for chunk in items.chunks(TRANSACTION_ITEMS) {
            let mut transaction = self.client.transact_write_items();
            for item in chunk {
                let put =
                    Put::builder().table_name(&self.table).set_item(Some(item.clone())).build().map_err(backend)?;
                transaction = transaction.transact_items(TransactWriteItem::builder().put(put).build());
            }
            transaction.send().await.map_err(sdk_error)?;
        }
        Ok(())
    }

    pub(super) async fn append(&self, user: &UserId, thread_id: Uuid, messages: &[Message]) -> StoreResult<()> {
        if messages.is_empty() {
            return self.get_thread(user, thread_id).await.map(|_| ());
        }
        let first = self.reserve(user, thread_id, messages.len()).await?;
        let mut items = Vec::with_capacity(messages.len());
        for (offset, message) in messages.iter().enumerate() {
            items.extend(self.message_items(thread_id, first + offset as u64, message)?);
        }
        self.put_all(items).await
    }

    pub(super) async fn upsert(&self, user: &UserId, thread_id: Uuid, messages: &[Message]) -> StoreResult<()> {
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
        self.put_all(replacements).await?;
        self.delete_all(stale_parts).await?;
        self.append(user, thread_id, &appended).await
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
