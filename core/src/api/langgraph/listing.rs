//! Lean listings, as the reference's searches take them: `select` (only these fields),
//! `extract` (values picked by a path such as `values.messages[-1]`, under `extracted`), and
//! `sort_by` with `sort_order`. A sidebar asks for a title and a last message, not every
//! thread's whole state.

use serde_json::{Map, Value};

use super::{unprocessable, Body};
use crate::api::ApiError;

/// The most `extract` paths one search may name, as the reference allows.
const MAX_EXTRACT_PATHS: usize = 10;
/// The fields whose insides `extract` paths may reach.
const EXTRACTABLE: [&str; 4] = ["values", "metadata", "config", "interrupts"];

/// What one kind of record's listing allows.
pub(super) struct Fields {
    pub selectable: &'static [&'static str],
    pub sortable: &'static [&'static str],
    pub extractable: bool,
}

pub(super) struct Listing {
    select: Option<Vec<String>>,
    extract: Vec<(String, String)>,
    /// The field, and whether the largest comes first.
    sort: Option<(String, bool)>,
}

impl Listing {
    pub(super) fn read(body: &Body, fields: &Fields) -> Result<Self, ApiError> {
        let select = match body.raw("select") {
            None | Some(Value::Null) => None,
            Some(Value::Array(names)) if names.is_empty() => None,
            Some(Value::Array(names)) => {
                let names: Vec<String> = names.iter().filter_map(|name| name.as_str().map(str::to_string)).collect();
                let invalid: Vec<&String> =
                    names.iter().filter(|name| !fields.selectable.contains(&name.as_str())).collect();
                if !invalid.is_empty() {
                    return Err(unprocessable(format!(
                        "Invalid select columns: {invalid:?}. Expected: {:?}",
                        fields.selectable
                    )));
                }
                Some(names)
            }
            Some(_) => return Err(unprocessable("'select' must be a list of field names")),
        };
        let extract = match body.raw("extract") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(paths)) if fields.extractable => extract_paths(paths, fields)?,
            Some(Value::Object(_)) => return Err(unprocessable("'extract' is not taken by this search")),
            Some(_) => return Err(unprocessable("'extract' must map aliases to paths")),
        };
        let sort_by = body.string("sort_by")?;
        if let Some(field) = sort_by.as_deref().filter(|field| !fields.sortable.contains(field)) {
            return Err(unprocessable(format!("Invalid sort_by '{field}'. Expected one of: {:?}", fields.sortable)));
        }
        let descending = body.choice("sort_order", &["asc", "desc"])? != Some("asc");
        Ok(Listing { select, extract, sort: sort_by.map(|field| (field, descending)) })
    }

    /// The field `sort_by` names, if any.
    pub(super) fn sort_field(&self) -> Option<&str> {
        self.sort.as_ref().map(|(field, _)| field.as_str())
    }

    /// Sorts whole records by `sort_by` (stable: equal ones keep their order).
    pub(super) fn sort(&self, records: &mut [Value]) {
        if let Some((field, descending)) = &self.sort {
            records.sort_by(|a, b| ordered(&a[field.as_str()], &b[field.as_str()], *descending));
        }
    }

    /// Sorts items as their records would sort, by the value of the field that `value_of` gives
    /// for each, so that only the page need be read whole. Leaves them as they are when it gives
    /// none (the field is known only from the whole record).
    pub(super) fn sort_with<T>(&self, items: &mut Vec<T>, value_of: impl Fn(&T, &str) -> Option<Value>) {
        let Some((field, descending)) = &self.sort else { return };
        let Some(keys) = items.iter().map(|item| value_of(item, field)).collect::<Option<Vec<Value>>>() else {
            return;
        };
        let mut keyed: Vec<(Value, T)> = keys.into_iter().zip(items.drain(..)).collect();
        keyed.sort_by(|(a, _), (b, _)| ordered(a, b, *descending));
        items.extend(keyed.into_iter().map(|(_, item)| item));
    }

    /// A whole record as the listing shows it: the selected fields, and what `extract` picks.
    pub(super) fn shape(&self, record: Value) -> Value {
        let extracted: Option<Map<String, Value>> = (!self.extract.is_empty()).then(|| {
            self.extract
                .iter()
                .map(|(alias, path)| (alias.clone(), pick(&record, path).unwrap_or(Value::Null)))
                .collect()
        });
        let Value::Object(mut fields) = record else { return record };
        if let Some(select) = &self.select {
            fields.retain(|name, _| select.contains(name));
        }
        if let Some(extracted) = extracted {
            fields.insert("extracted".into(), Value::Object(extracted));
        }
        Value::Object(fields)
    }
}

fn extract_paths(paths: &Map<String, Value>, fields: &Fields) -> Result<Vec<(String, String)>, ApiError> {
    if paths.len() > MAX_EXTRACT_PATHS {
        return Err(unprocessable(format!(
            "Maximum of {MAX_EXTRACT_PATHS} extract paths allowed, got {}",
            paths.len()
        )));
    }
    let mut extract = Vec::with_capacity(paths.len());
    for (alias, path) in paths {
        if fields.selectable.contains(&alias.as_str()) {
            return Err(unprocessable(format!("Extract keys cannot use reserved field names: ['{alias}']")));
        }
        let identifier = alias.chars().next().is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
            && alias.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !identifier {
            return Err(unprocessable(format!(
                "Extract key '{alias}' must be a valid identifier (letters, digits, underscores)"
            )));
        }
        let path = path
            .as_str()
            .filter(|path| !path.is_empty())
            .ok_or_else(|| unprocessable(format!("Extract path for '{alias}' must be a non-empty string")))?;
        let root = path.split(['.', '[']).next().unwrap_or_default();
        if !EXTRACTABLE.contains(&root) {
            return Err(unprocessable(format!(
                "Extract path '{path}' must start with one of: {}",
                EXTRACTABLE.join(", ")
            )));
        }
        extract.push((alias.clone(), path.to_string()));
    }
    Ok(extract)
}

/// The value at a path of keys and list positions (`values.messages[-1].content`; a negative
/// position counts from the end); none where it does not lead anywhere.
fn pick(record: &Value, path: &str) -> Option<Value> {
    let mut at = record;
    for part in path.split(['.', '[']).filter(|part| !part.is_empty()) {
        at = match part.strip_suffix(']') {
            Some(position) => {
                let list = at.as_array()?;
                let position: i64 = position.parse().ok()?;
                let index = if position < 0 {
                    list.len().checked_sub(position.unsigned_abs() as usize)?
                } else {
                    position as usize
                };
                list.get(index)?
            }
            None if part.starts_with('_') => return None,
            None => at.get(part)?,
        };
    }
    Some(at.clone())
}

fn ordered(a: &Value, b: &Value, descending: bool) -> std::cmp::Ordering {
    let order = compare(a, b);
    if descending {
        order.reverse()
    } else {
        order
    }
}

/// Orders JSON values of one field: numbers and strings by value, nulls first.
fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().unwrap_or(0.0).total_cmp(&b.as_f64().unwrap_or(0.0)),
        (Value::String(a), Value::String(b)) => a.cmp(b),
        (Value::Null, Value::Null) => std::cmp::Ordering::Equal,
        (Value::Null, _) => std::cmp::Ordering::Less,
        (_, Value::Null) => std::cmp::Ordering::Greater,
        _ => a.to_string().cmp(&b.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_reach_keys_and_positions_from_either_end() {
        let thread = json!({"values": {"messages": [{"content": "first"}, {"content": "last"}]}, "metadata": {"a": 1}});
        assert_eq!(pick(&thread, "values.messages[-1].content"), Some(json!("last")));
        assert_eq!(pick(&thread, "values.messages[0]"), Some(json!({"content": "first"})));
        assert_eq!(pick(&thread, "values.messages[5]"), None);
        assert_eq!(pick(&thread, "values.messages[-3]"), None);
        assert_eq!(pick(&thread, "metadata.a"), Some(json!(1)));
        assert_eq!(pick(&thread, "metadata.__class__"), None);
    }
}
