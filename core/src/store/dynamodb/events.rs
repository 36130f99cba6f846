//! A run's kept stream events: one item per batch in the run's partition (a batch larger than
//! an item in parts, its last part marked), with an `expires_at` that DynamoDB's TTL removes
//! them by (readers skip what has expired and not yet been removed).

use async_trait::async_trait;

use super::errors::sdk_error;
use super::table::{from_json, has, key, n, number, run_pk, s, text, to_json};
use super::threads::split_parts;
use super::DynamoStore;
use crate::model::{Run, Timestamp};
use crate::store::{EventBatch, EventStore, KeptEvent, StoreResult};

fn event_sk(batch: u64, part: usize) -> String {
    format!("E#{batch:010}#{part:03}")
}

impl DynamoStore {
    /// Writes `body` as items of partition `pk`, in parts if it is larger than an item (`sk_of`
    /// names each part), one PutItem each, the last part marked: a reader that finds it finds
    /// them all. DynamoDB's TTL removes them after `expires_at`.
    pub(super) async fn put_in_parts(
        &self,
        pk: String,
        sk_of: impl Fn(usize) -> String,
        body: &str,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let parts = split_parts(body);
        let expires = expires_at.datetime().timestamp();
        for (index, part) in parts.iter().enumerate() {
            let mut item = key(pk.clone(), &sk_of(index));
            item.insert("body".into(), s(*part));
            item.insert("expires_at".into(), n(expires));
            if index + 1 == parts.len() {
                item.insert("last".into(), s("1"));
            }
            self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(sdk_error)?;
        }
        Ok(())
    }
}

#[async_trait]
impl EventStore for DynamoStore {
    /// One PutItem per batch: the parts of a batch too large for an item go one after the
    /// other, so a reader that finds the last part finds them all.
    async fn add_run_events(&self, run: &Run, batch: &EventBatch) -> StoreResult<()> {
        let body = to_json(&batch.events)?;
        self.put_in_parts(run_pk(run.run_id), |part| event_sk(batch.number, part), &body, batch.expires_at).await
    }

    async fn run_events(&self, run: &Run, from: u64) -> StoreResult<(Vec<KeptEvent>, u64)> {
        let values = vec![(":pk", s(run_pk(run.run_id))), (":from", s(event_sk(from, 0))), (":to", s("E#~"))];
        let items = self.query_all(None, "pk = :pk AND sk BETWEEN :from AND :to", values, false).await?;
        let now = Timestamp::now().datetime().timestamp();
        let (mut events, mut next, mut body) = (Vec::new(), from, String::new());
        for item in &items {
            let sk = text(item, "sk")?;
            let batch: u64 = sk.get(2..12).and_then(|digits| digits.parse().ok()).unwrap_or(u64::MAX);
            if batch != next {
                break;
            }
            body.push_str(text(item, "body")?);
            if has(item, "last", "1") {
                if number(item, "expires_at").is_none_or(|expires| expires > now) {
                    events.extend(from_json::<Vec<KeptEvent>>(&body)?);
                }
                body.clear();
                next += 1;
            }
        }
        Ok((events, next))
    }
}
