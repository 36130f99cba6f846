//! A request's body read to its end, whatever its handler read of it. A handler that answers
//! without reading the body (an unknown id, a route that takes none) leaves its bytes unread on
//! the connection, and the server then closes that connection under a client that reuses it
//! (every SDK's pool does), whose next request fails. So the rest of such a body is read and
//! dropped before the answer goes, up to the size any handler accepts; past that, or if the client
//! is too slow to send it, the answer says `connection: close`.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use futures::{Stream, StreamExt};

/// As much as a handler that reads a body takes (axum's default limit): a client may send that
/// much to any route.
const DRAINED_BYTES: usize = 2 << 20;
/// How long the rest of a body may take to arrive.
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// The body a handler left unread, handed back when the handler drops it.
type Unread = Arc<Mutex<Option<BodyDataStream>>>;

/// The request's body as the handler sees it; dropped before its end, it hands itself back.
struct Watched {
    body: Option<BodyDataStream>,
    unread: Unread,
}

impl Stream for Watched {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(body) = self.body.as_mut() else { return Poll::Ready(None) };
        let next = body.poll_next_unpin(context);
        if let Poll::Ready(None) = next {
            // Read to its end: nothing to hand back.
            self.body = None;
        }
        next
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Some(body) = self.body.take() {
            *self.unread.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(body);
        }
    }
}

/// Reads and drops what is left of a body, within the limits; whether it all came.
async fn drained(mut body: BodyDataStream) -> bool {
    let mut read = 0;
    let rest = async {
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(bytes) if read + bytes.len() <= DRAINED_BYTES => read += bytes.len(),
                _ => return false,
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_TIME, rest).await.unwrap_or(false)
}

pub(super) async fn drain_unread(request: Request, next: Next) -> Response {
    let unread = Unread::default();
    let request =
        request.map(|body| Body::from_stream(Watched { body: Some(body.into_data_stream()), unread: unread.clone() }));
    let mut response = next.run(request).await;
    let left = unread.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
    if let Some(body) = left {
        if !drained(body).await {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    response
}
