//! Tool-call arguments arrive as JSON text in pieces. While they stream, OpenGPTs shows the
//! arguments parsed so far (`{"query":"secre` reads as `{"query":"secre"}`, `{"query"` as `{}`),
//! as LangChain's `parse_partial_json` does; this is that reading.

use serde_json::Value;

/// The value the complete text would start with, or `None` when the text cannot begin any JSON
/// (a closing bracket that closes nothing, for instance).
pub fn parse_partial(text: &str) -> Option<Value> {
    if let Ok(value) = serde_json::from_str(text) {
        return Some(value);
    }
    let mut repaired = String::with_capacity(text.len() + 8);
    let mut closers = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            match c {
                '"' if !escaped => in_string = false,
                '\n' if !escaped => {
                    repaired.push_str("\\n");
                    continue;
                }
                '\\' => {
                    escaped = !escaped;
                    repaired.push(c);
                    continue;
                }
                _ => {}
            }
            escaped = false;
        } else {
            match c {
                '"' => in_string = true,
                '{' => closers.push('}'),
                '[' => closers.push(']'),
                '}' | ']' if closers.pop() != Some(c) => return None,
                _ => {}
            }
        }
        repaired.push(c);
    }
    if in_string {
        if escaped {
            repaired.pop();
        }
        repaired.push('"');
    }
    let suffix: String = closers.iter().rev().collect();
    // Drop characters from the end until what is left, closed, parses: a key without its value
    // (`{"query"`) goes, and so does a half-written literal (`tr`).
    while !repaired.is_empty() {
        if let Ok(value) = serde_json::from_str(&format!("{repaired}{suffix}")) {
            return Some(value);
        }
        repaired.pop();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_arguments_as_they_grow() {
        assert_eq!(parse_partial(""), None);
        assert_eq!(parse_partial("{"), Some(json!({})));
        assert_eq!(parse_partial(r#"{"query""#), Some(json!({})));
        assert_eq!(parse_partial(r#"{"query":"secre"#), Some(json!({"query": "secre"})));
        assert_eq!(parse_partial(r#"{"a":[1,{"b":tr"#), Some(json!({"a": [1, {}]})));
        assert_eq!(parse_partial(r#"{"q":"x\"#), Some(json!({"q": "x"})));
        assert_eq!(
            parse_partial(
                r#"{"q":"line
next"}"#
            ),
            Some(json!({"q": "line\nnext"}))
        );
    }

    #[test]
    fn text_that_cannot_start_json_is_none() {
        assert_eq!(parse_partial("}{"), None);
        assert_eq!(parse_partial("not json"), None);
    }
}
