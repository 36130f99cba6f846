//! `/langgraph/store`: long-term memory, JSON items under namespaces, each user's alone. Items
//! put with an index are embedded (by the server's embedder, the one files use), so a search
//! with a `query` ranks them by meaning.

use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::{post, put};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::requests::{labels, ItemKey, ItemPut, ItemSearch, NamespaceSearch, Page, Parsed};
use super::{json_response, no_content, time};
use crate::api::auth::User;
use crate::api::{ApiError, AppState, Routes};
use crate::model::{MemoryItem, Timestamp, UserId};

pub fn routes() -> Routes {
    Routes::default()
        .route("/langgraph/store/items", put(put_item).get(get_item).delete(delete_item))
        .route("/langgraph/store/items/search", post(search))
        .route("/langgraph/store/namespaces", post(namespaces))
}

/// An item as the API shows it; `score` in searches.
struct Shown<'a> {
    item: &'a MemoryItem,
    score: Option<Option<f32>>,
}

impl Serialize for Shown<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let item = self.item;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("namespace", &item.namespace)?;
        map.serialize_entry("key", &item.key)?;
        map.serialize_entry("value", &item.value)?;
        map.serialize_entry("created_at", &time(item.created_at))?;
        map.serialize_entry("updated_at", &time(item.updated_at))?;
        if let Some(score) = self.score {
            map.serialize_entry("score", &score)?;
        }
        map.end()
    }
}

/// The text an item is embedded by: the fields `index` names (dotted paths), or the whole value.
fn indexed_text(value: &Map<String, Value>, fields: &[String]) -> String {
    if fields.is_empty() {
        return Value::Object(value.clone()).to_string();
    }
    let found = fields.iter().filter_map(|path| {
        let mut at = value.get(path.split('.').next()?)?;
        for part in path.split('.').skip(1) {
            at = at.get(part)?;
        }
        Some(at.as_str().map_or_else(|| at.to_string(), str::to_string))
    });
    found.collect::<Vec<_>>().join("\n")
}

async fn put_item(
    State(state): State<AppState>,
    User(user): User,
    Parsed(request): Parsed<ItemPut>,
) -> Result<Response, ApiError> {
    let ItemPut { namespace, key, value, ttl_minutes, index } = request;
    let now = Timestamp::now();
    let ttl_minutes = ttl_minutes.or(state.config.retention.store_default_minutes);
    let expires_at = ttl_minutes.map(|minutes| now.plus(std::time::Duration::from_secs_f64(minutes * 60.0)));
    let vector = match index {
        None => Vec::new(),
        Some(fields) => {
            let text = indexed_text(&value, &fields);
            let embedded = state.library.embedder().embed(&[text]).await;
            let mut vectors = embedded.map_err(|error| ApiError::BadGateway(error.to_string()))?;
            vectors.pop().unwrap_or_default()
        }
    };
    let created_at = match state.store.get_memory(&user, &namespace, &key).await? {
        Some(existing) => existing.created_at,
        None => now,
    };
    let item = MemoryItem { namespace, key, value, created_at, updated_at: now, expires_at, ttl_minutes, vector };
    state.store.put_memory(&user, &item).await?;
    Ok(no_content())
}

#[derive(serde::Deserialize)]
struct ItemParams {
    key: String,
    namespace: Option<String>,
    refresh_ttl: Option<String>,
}

/// Starts the lifetimes of items just read again, when the read asks to (`refresh_ttl`) or the
/// configuration does (`STORE_TTL_REFRESH_ON_READ`): one write per item that has a lifetime.
async fn refresh(
    state: &AppState,
    user: &UserId,
    items: &mut [MemoryItem],
    asked: Option<bool>,
) -> Result<(), ApiError> {
    if !asked.unwrap_or(state.config.retention.store_refresh_on_read) {
        return Ok(());
    }
    let now = Timestamp::now();
    for item in items.iter_mut() {
        if let Some(refreshed) = item.refreshed(now) {
            state.store.put_memory(user, &refreshed).await?;
            *item = refreshed;
        }
    }
    Ok(())
}

async fn get_item(
    State(state): State<AppState>,
    User(user): User,
    Query(params): Query<ItemParams>,
) -> Result<Response, ApiError> {
    let namespace: Vec<String> = params.namespace.unwrap_or_default().split('.').map(str::to_string).collect();
    let namespace = labels(Some(&Value::from(namespace)), "namespace", false)?;
    let asked = params.refresh_ttl.as_deref().map(|flag| flag.eq_ignore_ascii_case("true"));
    let mut items: Vec<MemoryItem> =
        state.store.get_memory(&user, &namespace, &params.key).await?.into_iter().collect();
    refresh(&state, &user, &mut items, asked).await?;
    Ok(json_response(&items.first().map(|item| Shown { item, score: None })))
}

async fn delete_item(
    State(state): State<AppState>,
    User(user): User,
    Parsed(ItemKey { namespace, key }): Parsed<ItemKey>,
) -> Result<Response, ApiError> {
    state.store.delete_memory(&user, &namespace, &key).await?;
    Ok(no_content())
}

/// Whether `value` passes `filter`: each key equal to its value, or to an operator's bound
/// (`$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte`).
fn passes(value: &Map<String, Value>, filter: &Map<String, Value>) -> bool {
    filter.iter().all(|(key, wanted)| {
        let have = value.get(key);
        match wanted.as_object().filter(|ops| ops.keys().all(|op| op.starts_with('$'))) {
            Some(ops) => ops.iter().all(|(op, bound)| {
                let order = || have.and_then(|have| compare(have, bound));
                match op.as_str() {
                    "$eq" => have == Some(bound),
                    "$ne" => have != Some(bound),
                    "$gt" => order() == Some(std::cmp::Ordering::Greater),
                    "$gte" => order().is_some_and(|order| order.is_ge()),
                    "$lt" => order() == Some(std::cmp::Ordering::Less),
                    "$lte" => order().is_some_and(|order| order.is_le()),
                    _ => false,
                }
            }),
            None => have == Some(wanted),
        }
    })
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

fn cosine(a: &[f32], b: &[f32]) -> Option<f32> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norms = a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt();
    Some(if norms > 0.0 { dot / norms } else { 0.0 })
}

async fn search(
    State(state): State<AppState>,
    User(user): User,
    Parsed(request): Parsed<ItemSearch>,
) -> Result<Response, ApiError> {
    let ItemSearch { prefix, filter, page: Page { limit, offset }, query, refresh_ttl } = request;
    let mut items: Vec<MemoryItem> =
        state.store.memories(&user, &prefix).await?.into_iter().filter(|item| passes(&item.value, &filter)).collect();
    let scores: Vec<Option<f32>> = match query {
        Some(query) => {
            let embedded = state.library.embedder().embed(&[query]).await;
            let query = embedded.map_err(|error| ApiError::BadGateway(error.to_string()))?.pop().unwrap_or_default();
            let mut scored: Vec<(Option<f32>, MemoryItem)> =
                items.drain(..).map(|item| (cosine(&query, &item.vector), item)).collect();
            // Best first; items that were not indexed after every scored one.
            scored.sort_by(|a, b| b.0.unwrap_or(f32::MIN).total_cmp(&a.0.unwrap_or(f32::MIN)));
            let (scores, sorted): (Vec<_>, Vec<_>) = scored.into_iter().unzip();
            items = sorted;
            scores
        }
        None => {
            items.sort_by_key(|item| item.created_at);
            vec![None; items.len()]
        }
    };
    let mut page: Vec<MemoryItem> = items.into_iter().skip(offset).take(limit).collect();
    refresh(&state, &user, &mut page, refresh_ttl).await?;
    let shown: Vec<Shown<'_>> = page
        .iter()
        .zip(scores.into_iter().skip(offset))
        .map(|(item, score)| Shown { item, score: Some(score) })
        .collect();
    Ok(json_response(&serde_json::json!({ "items": shown })))
}

async fn namespaces(
    State(state): State<AppState>,
    User(user): User,
    Parsed(request): Parsed<NamespaceSearch>,
) -> Result<Response, ApiError> {
    let NamespaceSearch { prefix, suffix, max_depth, page: Page { limit, offset } } = request;
    let mut found: Vec<Vec<String>> = state
        .store
        .memories(&user, &prefix)
        .await?
        .into_iter()
        .map(|item| item.namespace)
        .filter(|namespace| namespace.ends_with(&suffix))
        .map(|mut namespace| {
            namespace.truncate(max_depth.unwrap_or(usize::MAX));
            namespace
        })
        .collect();
    found.sort();
    found.dedup();
    let page: Vec<Vec<String>> = found.into_iter().skip(offset).take(limit).collect();
    Ok(json_response(&serde_json::json!({ "namespaces": page })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_compare_values_and_bounds() {
        let value = json!({"color": "dark", "size": 3}).as_object().cloned().unwrap();
        let filter = |filter: Value| passes(&value, filter.as_object().unwrap());
        assert!(filter(json!({"color": "dark"})));
        assert!(!filter(json!({"color": "light"})));
        assert!(filter(json!({"size": {"$gte": 3, "$lt": 4}})));
        assert!(!filter(json!({"size": {"$gt": 3}})));
        assert!(filter(json!({"color": {"$ne": "light"}})));
    }

    #[test]
    fn an_index_names_the_fields_embedded() {
        let value = json!({"text": "tea", "meta": {"note": "green"}, "n": 1}).as_object().cloned().unwrap();
        assert_eq!(indexed_text(&value, &["text".into(), "meta.note".into()]), "tea\ngreen");
        assert_eq!(indexed_text(&value, &[]), Value::Object(value.clone()).to_string());
    }
}
