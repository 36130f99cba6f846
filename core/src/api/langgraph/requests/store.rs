//! The bodies of `/langgraph/store`.

use serde_json::{Map, Value};

use super::super::unprocessable;
use super::{Body, FromBody, Page};
use crate::api::ApiError;
use crate::model::ThreadTtl;

/// A namespace: labels that are not empty, and hold no period (the dotted form of `GET` uses
/// them) nor the separators our sort keys use.
pub(in crate::api::langgraph) fn labels(
    value: Option<&Value>,
    field: &str,
    may_be_empty: bool,
) -> Result<Vec<String>, ApiError> {
    let items = match value {
        None | Some(Value::Null) if may_be_empty => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        _ => return Err(unprocessable(format!("'{field}' must be a list of strings"))),
    };
    let labels: Vec<String> = items.iter().filter_map(|label| label.as_str().map(str::to_string)).collect();
    if labels.len() != items.len() {
        return Err(unprocessable(format!("'{field}' must be a list of strings")));
    }
    if !may_be_empty && labels.is_empty() {
        return Err(unprocessable(format!("'{field}' cannot be empty")));
    }
    for label in &labels {
        if label.is_empty() || label.contains(['.', '\u{1e}', '\u{1f}']) {
            return Err(unprocessable(format!(
                "Namespace labels cannot be empty or contain periods ('.'): {label:?} in '{field}'"
            )));
        }
    }
    Ok(labels)
}

/// `PUT /store/items`.
pub(in crate::api::langgraph) struct ItemPut {
    pub namespace: Vec<String>,
    pub key: String,
    pub value: Map<String, Value>,
    /// The item's lifetime in minutes; none given, the configured one.
    pub ttl_minutes: Option<f64>,
    /// The fields (dotted paths) the item is embedded by, none for its whole value; `None` when
    /// it is not to be embedded (`index: false`).
    pub index: Option<Vec<String>>,
}

impl FromBody for ItemPut {
    fn from_body(body: &Body) -> Result<Self, ApiError> {
        let namespace = labels(body.raw("namespace"), "namespace", false)?;
        let key = body.required_string("key")?;
        if key.contains(['\u{1e}', '\u{1f}']) {
            return Err(unprocessable("'key' cannot hold control characters"));
        }
        let value = match body.raw("value") {
            Some(Value::Object(value)) => value.clone(),
            _ => return Err(unprocessable("'value' must be a JSON object")),
        };
        // Absent or null (the SDKs leave out a `None`): the configured lifetime, if any.
        let ttl_minutes = match body.raw("ttl") {
            None => None,
            Some(minutes) => Some(
                minutes.as_f64().filter(|minutes| *minutes > 0.0 && *minutes <= ThreadTtl::MAX_MINUTES).ok_or_else(
                    || unprocessable("'ttl' is the item's lifetime in minutes: a positive number, or null"),
                )?,
            ),
        };
        let index = match body.raw("index") {
            Some(Value::Bool(false)) => None,
            Some(Value::Array(fields)) => {
                let fields: Vec<String> = fields.iter().filter_map(Value::as_str).map(str::to_string).collect();
                Some(if fields.iter().any(|field| field == "$") { Vec::new() } else { fields })
            }
            _ => Some(Vec::new()),
        };
        Ok(ItemPut { namespace, key, value, ttl_minutes, index })
    }
}

/// `DELETE /store/items`: the item's namespace and key.
pub(in crate::api::langgraph) struct ItemKey {
    pub namespace: Vec<String>,
    pub key: String,
}

impl FromBody for ItemKey {
    fn from_body(body: &Body) -> Result<Self, ApiError> {
        Ok(ItemKey { namespace: labels(body.raw("namespace"), "namespace", false)?, key: body.required_string("key")? })
    }
}

/// `POST /store/items/search`.
pub(in crate::api::langgraph) struct ItemSearch {
    pub prefix: Vec<String>,
    pub filter: Map<String, Value>,
    pub page: Page,
    /// Ranks the items by meaning when given.
    pub query: Option<String>,
    /// Whether the items found start their lifetimes again; none given, as configured.
    pub refresh_ttl: Option<bool>,
}

impl FromBody for ItemSearch {
    fn from_body(body: &Body) -> Result<Self, ApiError> {
        Ok(ItemSearch {
            prefix: labels(body.raw("namespace_prefix"), "namespace_prefix", true)?,
            filter: body.object("filter")?,
            page: Page::read(body, 10)?,
            query: body.string("query")?,
            refresh_ttl: body.raw("refresh_ttl").map(|_| body.boolean("refresh_ttl")).transpose()?,
        })
    }
}

/// `POST /store/namespaces`.
pub(in crate::api::langgraph) struct NamespaceSearch {
    pub prefix: Vec<String>,
    pub suffix: Vec<String>,
    pub max_depth: Option<usize>,
    pub page: Page,
}

impl FromBody for NamespaceSearch {
    fn from_body(body: &Body) -> Result<Self, ApiError> {
        Ok(NamespaceSearch {
            prefix: labels(body.raw("prefix"), "prefix", true)?,
            suffix: labels(body.raw("suffix"), "suffix", true)?,
            max_depth: body.raw("max_depth").map(|_| body.count("max_depth", 0)).transpose()?,
            page: Page::read(body, 100)?,
        })
    }
}
