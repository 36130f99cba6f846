//! Files larger than a request can carry. The client asks for a presigned S3 URL (`POST
//! /ingest/uploads`), PUTs the file there, and the bucket's object-created event runs the same
//! ingestion in the `ingest-worker` function, which writes the outcome for `GET
//! /ingest/uploads/{id}` to read.
//!
//! Keys: `uploads/<namespace>/<upload_id>/<file name>`, then `results/<upload_id>.json`. The
//! bucket is private and only URLs this server signs can write to it, each for one key whose
//! namespace was checked to be the caller's when the URL was made, and for one size.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::bucket::{Bucket, BucketError};
use super::{DocumentError, Library, ParseError, UploadedFile};
use crate::config::UploadSettings;
use crate::model::UserId;

/// How long a presigned URL may be used.
pub const URL_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// The object metadata that names the user an upload is for (`x-amz-meta-owner`).
const OWNER_METADATA: &str = "owner";

#[derive(Debug, Clone, thiserror::Error)]
pub enum UploadError {
    #[error("the upload bucket failed: {0}")]
    S3(String),
    #[error("the file is {size} bytes; a presigned upload takes at most {limit} (MAX_UPLOAD_BYTES)")]
    TooLarge { size: u64, limit: u64 },
    #[error("{0} is not an upload this server made")]
    ForeignKey(String),
}

impl From<BucketError> for UploadError {
    fn from(error: BucketError) -> Self {
        UploadError::S3(error.0)
    }
}

/// Where the client sends the file.
#[derive(Debug, Clone, Serialize)]
pub struct PresignedUpload {
    pub upload_id: Uuid,
    pub method: &'static str,
    pub url: String,
    /// Headers the PUT must carry, as signed.
    pub headers: serde_json::Map<String, Value>,
    pub expires_in: u64,
}

/// What became of an upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum UploadOutcome {
    /// Not read yet (or never sent).
    Pending,
    Done {
        namespace: Uuid,
        ids: Vec<Uuid>,
    },
    Failed {
        namespace: Uuid,
        detail: String,
    },
}

pub struct Uploads {
    settings: UploadSettings,
    bucket: tokio::sync::OnceCell<Bucket>,
}

fn s3_error(error: impl std::fmt::Display) -> UploadError {
    UploadError::S3(error.to_string())
}

/// A file name as a key part: letters, digits, `.`, `_`, `-` and spaces, at most 200.
fn key_name(name: &str) -> String {
    let kept: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || ".-_ ".contains(c) { c } else { '_' }).take(200).collect();
    if kept.trim().is_empty() {
        "upload".into()
    } else {
        kept
    }
}

/// An S3 event's key, as S3 writes it: `+` for a space, `%XX` for other bytes.
fn event_key(raw: &str) -> String {
    let bytes = raw.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes.get(index + 1..index + 3).and_then(|hex| std::str::from_utf8(hex).ok());
        match (bytes[index], hex.and_then(|hex| u8::from_str_radix(hex, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                index += 3;
            }
            (byte, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Uploads {
    pub fn new(settings: UploadSettings) -> Self {
        Uploads { settings, bucket: tokio::sync::OnceCell::new() }
    }

    async fn bucket(&self) -> Result<&Bucket, UploadError> {
        Ok(self.bucket.get_or_try_init(|| Bucket::connect(&self.settings)).await?)
    }

    /// A URL that accepts one PUT of `size` bytes, for a file of `namespace` (checked by the caller).
    pub async fn presign(
        &self,
        namespace: Uuid,
        owner: &UserId,
        file_name: &str,
        size: u64,
    ) -> Result<PresignedUpload, UploadError> {
        if size > self.settings.max_bytes {
            return Err(UploadError::TooLarge { size, limit: self.settings.max_bytes });
        }
        let upload_id = Uuid::new_v4();
        let key = format!("uploads/{namespace}/{upload_id}/{}", key_name(file_name));
        // Signed, so the worker knows whose quota the file counts against.
        let headers = [
            ("content-length".to_string(), size.to_string()),
            (format!("x-amz-meta-{OWNER_METADATA}"), owner.as_str().to_string()),
        ];
        let request = self.bucket().await?.presign_put(&key, &headers, URL_LIFETIME).await?;
        let headers = request.headers.into_iter().map(|(name, value)| (name, Value::from(value))).collect();
        Ok(PresignedUpload { upload_id, method: "PUT", url: request.url, headers, expires_in: URL_LIFETIME.as_secs() })
    }

    /// What became of an upload: its outcome once the worker wrote it, else pending.
    pub async fn outcome(&self, upload_id: Uuid) -> Result<UploadOutcome, UploadError> {
        match self.bucket().await?.get(&format!("results/{upload_id}.json")).await? {
            Some(object) => serde_json::from_slice(&object.bytes).map_err(s3_error),
            None => Ok(UploadOutcome::Pending),
        }
    }

    /// Runs the ingestion for each object an S3 event names (the `ingest-worker` function).
    pub async fn handle_event(&self, library: &Library, event: &Value) -> Result<(), UploadError> {
        let records = event.get("Records").and_then(Value::as_array).into_iter().flatten();
        for record in records {
            let key = record.pointer("/s3/object/key").and_then(Value::as_str).map(event_key).unwrap_or_default();
            self.ingest_object(library, &key).await?;
        }
        Ok(())
    }

    /// Reads one uploaded object into its namespace's files and writes the outcome. A file that
    /// cannot be read is a failed outcome, not an error: the event is not retried for it.
    pub async fn ingest_object(&self, library: &Library, key: &str) -> Result<UploadOutcome, UploadError> {
        let parts: Vec<&str> = key.splitn(4, '/').collect();
        let (namespace, upload_id, name) = match parts.as_slice() {
            ["uploads", namespace, upload_id, name] => (
                Uuid::parse_str(namespace).map_err(|_| UploadError::ForeignKey(key.into()))?,
                Uuid::parse_str(upload_id).map_err(|_| UploadError::ForeignKey(key.into()))?,
                name.to_string(),
            ),
            _ => return Err(UploadError::ForeignKey(key.into())),
        };
        let bucket = self.bucket().await?;
        let object = bucket.get(key).await?.ok_or_else(|| UploadError::S3(format!("{key} is not in the bucket")))?;
        let owner = object.metadata(OWNER_METADATA).and_then(UserId::new);
        let bytes = object.bytes;
        let ingested = match &owner {
            Some(owner) => library.ingest(namespace, owner, vec![UploadedFile { name, bytes }]).await,
            None => Err(DocumentError::Parse(ParseError::Unreadable {
                file: name,
                kind: "an upload".into(),
                reason: "it was not sent with the headers its presigned URL gave".into(),
            })),
        };
        let outcome = match ingested {
            Ok(mut ids) => UploadOutcome::Done { namespace, ids: ids.pop().unwrap_or_default() },
            Err(DocumentError::Store(error)) => return Err(UploadError::S3(format!("the store failed: {error}"))),
            Err(error) => UploadOutcome::Failed { namespace, detail: error.to_string() },
        };
        let body = serde_json::to_vec(&outcome).map_err(s3_error)?;
        let result_key = format!("results/{upload_id}.json");
        bucket.put(&result_key, body).await?;
        bucket.delete(key).await?;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_keys_survive_the_trip() {
        assert_eq!(key_name("My Report (final).pdf"), "My Report _final_.pdf");
        assert_eq!(key_name("../../etc/passwd"), ".._.._etc_passwd");
        assert_eq!(event_key("uploads/a/b/My+Report+_final_.pdf"), "uploads/a/b/My Report _final_.pdf");
        assert_eq!(event_key("x%2By%zz"), "x+y%zz");
    }
}
