//! A kept-alive connection stays usable whatever a route answers: a request with a body the
//! route does not read (an unknown id, a route that takes none, a method it does not allow) is
//! followed on the same connection by another, as every client's pool does.

use std::time::Duration;

use integration_tests::spawn_app;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

/// Larger than any socket buffer that would hide unread bytes.
const BODY_BYTES: usize = 60 * 1024;

/// Reads one response from `stream`: its head, and its body by its length or its chunks.
async fn response(stream: &mut TcpStream) -> String {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 8192];
    let complete = |bytes: &[u8]| -> bool {
        let text = String::from_utf8_lossy(bytes);
        let Some(end) = text.find("\r\n\r\n") else { return false };
        let head = text[..end].to_ascii_lowercase();
        let body = &bytes[end + 4..];
        match head.lines().find_map(|line| line.strip_prefix("content-length:")) {
            Some(length) => body.len() >= length.trim().parse::<usize>().unwrap_or(0),
            None if head.contains("transfer-encoding: chunked") => body.ends_with(b"0\r\n\r\n"),
            None => true,
        }
    };
    while !complete(&bytes) {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await;
        match read {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(count)) => bytes.extend_from_slice(&buffer[..count]),
            Ok(Err(error)) => return format!("(read failed: {error})"),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn a_large_unread_body_leaves_the_connection_usable_on_every_route() {
    let app = spawn_app().await;
    let address = app.base.trim_start_matches("http://").to_string();
    let body = format!("{{\"padding\": \"{}\"}}", "x".repeat(BODY_BYTES));
    let mut checked = 0;
    for path in opengpts::api::routes().paths() {
        let path: String = path
            .split('/')
            .map(|part| if part.starts_with('{') { Uuid::new_v4().to_string() } else { part.to_string() })
            .collect::<Vec<_>>()
            .join("/");
        for method in ["POST", "PUT", "PATCH"] {
            let mut stream = TcpStream::connect(&address).await.unwrap();
            let request = format!(
                "{method} {path} HTTP/1.1\r\nhost: {address}\r\ncookie: opengpts_user_id=connections\r\n\
                 content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(request.as_bytes()).await.unwrap();
            let first = response(&mut stream).await;
            assert!(first.starts_with("HTTP/1.1 "), "{method} {path}: {first}");
            let head = first[..first.find("\r\n\r\n").unwrap_or(first.len())].to_ascii_lowercase();
            if head.contains("connection: close") {
                // The client is told to open a new connection: it will.
                continue;
            }
            stream.write_all(format!("GET /ok HTTP/1.1\r\nhost: {address}\r\n\r\n").as_bytes()).await.unwrap();
            let second = response(&mut stream).await;
            assert!(
                second.starts_with("HTTP/1.1 200"),
                "after {method} {path} ({}): {second}",
                &head[..12.min(head.len())]
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} requests were followed on their connection");
}
