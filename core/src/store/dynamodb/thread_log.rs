//! A thread's event log: one item per batch in the thread's partition, sorted by the batch's
//! last `seq` (so the batches holding events after `since` are the ones sorted after it), a batch
//! larger than an item in parts, its last part marked, with an `expires_at` for DynamoDB's TTL.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use uuid::Uuid;

use super::errors::sdk_error;
use super::table::{from_json, has, number, s, text, thread_pk, to_json, Item};
use super::DynamoStore;
use crate::model::{ThreadEvent, Timestamp};
use crate::store::{StoreResult, ThreadEventBatch, ThreadLogStore};

/// The items a read of the log takes in one Query: what a `since` far behind costs at most.
const ITEMS_PER_READ: i32 = 16;

fn batch_sk(last_seq: u64, part: usize) -> String {
    format!("V#{last_seq:012}#{part:03}")
}

impl DynamoStore {
    /// One page of the thread's log items after `from` (exclusive), in `seq` order.
    async fn log_page(
        &self,
        thread_id: Uuid,
        from: String,
        forward: bool,
        limit: i32,
    ) -> StoreResult<(Vec<Item>, bool)> {
        let values: [(&str, AttributeValue); 3] =
            [(":pk", s(thread_pk(thread_id))), (":from", s(from)), (":to", s("V#~"))];
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .scan_index_forward(forward)
            .consistent_read(true)
            .limit(limit);
        for (name, value) in values {
            query = query.expression_attribute_values(name, value);
        }
        let page = query.send().await.map_err(sdk_error)?;
        let more = page.last_evaluated_key.is_some_and(|key| !key.is_empty());
        Ok((page.items.unwrap_or_default(), more))
    }
}

#[async_trait]
impl ThreadLogStore for DynamoStore {
    async fn add_thread_events(&self, thread_id: Uuid, batch: &ThreadEventBatch) -> StoreResult<()> {
        let Some(last) = batch.events.last() else { return Ok(()) };
        let body = to_json(&batch.events)?;
        self.put_in_parts(thread_pk(thread_id), |part| batch_sk(last.seq, part), &body, batch.expires_at).await
    }

    /// Reads pages until one holds a whole batch (a batch is a few parts at most).
    async fn thread_events(&self, thread_id: Uuid, since: u64, limit: usize) -> StoreResult<Vec<ThreadEvent>> {
        let now = Timestamp::now().datetime().timestamp();
        let (mut events, mut body) = (Vec::new(), String::new());
        let mut from = format!("V#{since:012}#~");
        loop {
            let (items, more) = self.log_page(thread_id, from.clone(), true, ITEMS_PER_READ).await?;
            for item in &items {
                body.push_str(text(item, "body")?);
                if has(item, "last", "1") {
                    if number(item, "expires_at").is_none_or(|expires| expires > now) {
                        let batch: Vec<ThreadEvent> = from_json(&body)?;
                        events.extend(batch.into_iter().filter(|event| event.seq > since));
                    }
                    body.clear();
                }
            }
            // A page that ends inside a batch reads on from that batch's first part.
            let done = !more || (!events.is_empty() && body.is_empty()) || events.len() >= limit;
            if done {
                events.truncate(limit);
                return Ok(events);
            }
            if let Some(item) = items.last() {
                let sk = text(item, "sk")?;
                from = match body.is_empty() {
                    // Just after the last part read.
                    true => format!("{sk}~"),
                    // The unfinished batch is read again, whole, from its first part.
                    false => format!("{}#", &sk[..sk.len() - 4]),
                };
                body.clear();
            }
        }
    }

    async fn last_thread_event(&self, thread_id: Uuid) -> StoreResult<u64> {
        let (items, _) = self.log_page(thread_id, "V#".into(), false, 1).await?;
        let last = items.first().map(|item| text(item, "sk")).transpose()?;
        Ok(last.and_then(|sk| sk.get(2..14)).and_then(|digits| digits.parse().ok()).unwrap_or(0))
    }
}
