//! Reads a provider's `text/event-stream` body into events, across arbitrary chunk boundaries,
//! with a deadline for each read so a stalled upstream cannot hang a run.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures::{Stream, StreamExt};

use super::LlmError;

#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamEvent {
    pub event: Option<String>,
    pub data: String,
}

pub fn events(
    provider: &'static str,
    response: reqwest::Response,
    idle_timeout: Duration,
) -> impl Stream<Item = Result<UpstreamEvent, LlmError>> + Send + 'static {
    let body = response.bytes_stream();
    futures::stream::unfold(
        (Box::pin(body), BytesMut::new(), false),
        move |(mut body, mut buffer, mut finished)| async move {
            loop {
                if let Some(event) = take_event(&mut buffer) {
                    return Some((Ok(event), (body, buffer, finished)));
                }
                if finished {
                    return None;
                }
                match tokio::time::timeout(idle_timeout, body.next()).await {
                    Err(_) => {
                        let error = LlmError::Timeout { provider, seconds: idle_timeout.as_secs() };
                        return Some((Err(error), (body, buffer, true)));
                    }
                    Ok(Some(Ok(bytes))) => buffer.extend_from_slice(&bytes),
                    Ok(Some(Err(error))) => {
                        let error = LlmError::Connect { provider, reason: error.to_string() };
                        return Some((Err(error), (body, buffer, true)));
                    }
                    Ok(None) => {
                        // A last event without its blank line still counts.
                        finished = true;
                        if !buffer.is_empty() {
                            buffer.extend_from_slice(b"\n\n");
                        }
                    }
                }
            }
        },
    )
}

/// An event's data parsed as JSON; a transport error or unparsable data ends the stream.
pub fn json_data<T: serde::de::DeserializeOwned>(
    provider: &'static str,
    event: Result<UpstreamEvent, LlmError>,
) -> Result<(UpstreamEvent, T), LlmError> {
    let event = event?;
    let value = serde_json::from_str(&event.data)
        .map_err(|error| LlmError::Malformed { provider, reason: format!("{error} in {:?}", event.data) })?;
    Ok((event, value))
}

/// Removes one complete event (ended by a blank line, LF or CRLF) from the buffer.
pub(crate) fn take_event(buffer: &mut BytesMut) -> Option<UpstreamEvent> {
    loop {
        let (end, separator) = find_blank_line(buffer)?;
        let block = String::from_utf8_lossy(&buffer[..end]).into_owned();
        buffer.advance(end + separator);
        let mut event = UpstreamEvent { event: None, data: String::new() };
        let mut has_data = false;
        for line in block.lines() {
            if let Some(value) = line.strip_prefix("data:") {
                if has_data {
                    event.data.push('\n');
                }
                event.data.push_str(value.strip_prefix(' ').unwrap_or(value));
                has_data = true;
            } else if let Some(value) = line.strip_prefix("event:") {
                event.event = Some(value.trim().to_string());
            }
        }
        // Comment-only blocks (`: ping`) carry nothing.
        if has_data || event.event.is_some() {
            return Some(event);
        }
    }
}

fn find_blank_line(buffer: &[u8]) -> Option<(usize, usize)> {
    (0..buffer.len()).find_map(|i| {
        if buffer[i..].starts_with(b"\r\n\r\n") {
            Some((i, 4))
        } else if buffer[i..].starts_with(b"\n\n") {
            Some((i, 2))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_reads_and_line_endings() {
        let mut buffer = BytesMut::from(&b"event: a\r\ndata: {\"x\":1}\r\n\r\n: ping\n\ndata: [DO"[..]);
        let first = take_event(&mut buffer).unwrap();
        assert_eq!(first, UpstreamEvent { event: Some("a".into()), data: "{\"x\":1}".into() });
        assert_eq!(take_event(&mut buffer), None);
        buffer.extend_from_slice(b"NE]\n\n");
        assert_eq!(take_event(&mut buffer).unwrap().data, "[DONE]");
    }
}
