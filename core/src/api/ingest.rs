//! `POST /ingest`: files uploaded to an assistant (the bot form) or a thread (the chat box), as
//! `multipart/form-data` with one or more `files` parts and a `config` part holding
//! `{"configurable": {"assistant_id": …}}` or `{"configurable": {"thread_id": …}}`. Only the
//! owner may upload. The answer lists each file's stored chunk ids.

use axum::extract::Path;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::routing::{get, post};
use axum::Json;
use serde_json::{json, Value};
use uuid::Uuid;

use super::auth::User;
use super::extract::{path_id, JsonBody};
use super::{ApiError, AppState, Routes};
use crate::documents::uploads::{UploadError, UploadOutcome, Uploads};
use crate::documents::{DocumentError, ParseError, UploadedFile};
use crate::model::validate::{FieldError, Loc};
use crate::model::validate::{FieldErrors, FromJson, ObjectReader};
use crate::model::UserId;
use crate::store::{Entity, StoreError};

pub fn routes() -> Routes {
    Routes::default()
        // The body is read under MAX_INGEST_BYTES below, not axum's default limit.
        .route("/ingest", post(ingest).layer(DefaultBodyLimit::disable()))
        .route("/ingest/uploads", post(start_upload))
        .route("/ingest/uploads/{upload_id}", get(upload_status))
}

fn invalid(loc: Loc, kind: &'static str, message: impl Into<String>, input: Value) -> ApiError {
    ApiError::Validation(vec![FieldError::new(kind, &loc, message.into(), &input)])
}

/// The namespace named by `config` (JSON text, as multipart carries it).
async fn namespace(state: &AppState, user: &UserId, config: Option<String>) -> Result<Uuid, ApiError> {
    let loc = Loc::body().key("config");
    let text = config.ok_or_else(|| invalid(loc.clone(), "missing", "Field required", Value::Null))?;
    let parsed: Value = serde_json::from_str(&text)
        .map_err(|error| invalid(loc.clone(), "json_invalid", format!("Invalid JSON: {error}"), json!(text)))?;
    owned_namespace(state, user, &parsed).await
}

/// An assistant or a thread the user owns, named by `config.configurable`.
async fn owned_namespace(state: &AppState, user: &UserId, parsed: &Value) -> Result<Uuid, ApiError> {
    let loc = Loc::body().key("config");
    let configurable = parsed.get("configurable").and_then(Value::as_object).ok_or_else(|| {
        invalid(
            loc.key("configurable"),
            "missing",
            "Field required: an object with assistant_id or thread_id",
            parsed.clone(),
        )
    })?;
    let loc = loc.key("configurable");
    let id =
        |key: &str| -> Result<Option<Uuid>, ApiError> {
            match configurable.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(value) => value.as_str().and_then(|text| Uuid::parse_str(text).ok()).map(Some).ok_or_else(|| {
                    invalid(loc.key(key), "uuid_parsing", "Input should be a valid UUID", value.clone())
                }),
            }
        };
    match (id("assistant_id")?, id("thread_id")?) {
        (Some(assistant_id), None) => {
            let assistant = assistant_when_saved(state, user, assistant_id).await?;
            // A public assistant may be read by all, but only its owner adds files to it.
            if &assistant.user_id != user {
                return Err(StoreError::NotFound(Entity::Assistant).into());
            }
            Ok(assistant_id)
        }
        (None, Some(thread_id)) => Ok(state.store.get_thread(user, thread_id).await?.thread_id),
        _ => Err(invalid(
            loc,
            "value_error",
            "Exactly one of assistant_id or thread_id must be given",
            Value::Object(configurable.clone()),
        )),
    }
}

/// How long an upload waits for its assistant to be saved.
const ASSISTANT_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The assistant, waiting a little for it to appear: the seed UI saves a new assistant (a PUT to
/// an id it made) and uploads its files at the same moment, so the upload may come first.
async fn assistant_when_saved(
    state: &AppState,
    user: &UserId,
    assistant_id: Uuid,
) -> Result<crate::model::Assistant, StoreError> {
    let deadline = tokio::time::Instant::now() + ASSISTANT_WAIT;
    loop {
        match state.store.get_assistant(user, assistant_id).await {
            Err(StoreError::NotFound(_)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            found => return found,
        }
    }
}

async fn ingest(State(state): State<AppState>, User(user): User, request: Request) -> Result<Json<Value>, ApiError> {
    let limit = state.config.max_ingest_bytes;
    let (parts, body) = request.into_parts();
    let content_type = parts.headers.get(axum::http::header::CONTENT_TYPE).and_then(|value| value.to_str().ok());
    if !content_type.is_some_and(|value| value.starts_with("multipart/form-data")) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "POST /ingest takes multipart/form-data (the parts 'files' and 'config'); this body is {}",
            content_type.unwrap_or("without a Content-Type")
        )));
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::TooLarge(format!(
            "The upload is larger than {limit} bytes (MAX_INGEST_BYTES); send fewer or smaller files"
        ))
    })?;
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    let mut multipart = Multipart::from_request(request, &state).await.map_err(|rejection| {
        ApiError::BadRequest(format!("The body must be multipart/form-data: {}", rejection.body_text()))
    })?;
    let (mut files, mut config) = (Vec::new(), None);
    let unreadable = |error: axum::extract::multipart::MultipartError| {
        ApiError::BadRequest(format!("The multipart body could not be read: {}", error.body_text()))
    };
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        match field.name() {
            Some("files") => {
                let name = field.file_name().unwrap_or("upload").to_string();
                files.push(UploadedFile { name, bytes: field.bytes().await.map_err(unreadable)? });
            }
            Some("config") => config = Some(field.text().await.map_err(unreadable)?),
            _ => {}
        }
    }
    if files.is_empty() {
        return Err(invalid(Loc::body().key("files"), "missing", "Field required", Value::Null));
    }
    let namespace = namespace(&state, &user, config).await?;
    let ids = state.library.ingest(namespace, &user, files).await?;
    Ok(Json(json!(ids)))
}

impl From<DocumentError> for ApiError {
    fn from(error: DocumentError) -> Self {
        match error {
            DocumentError::Parse(error @ ParseError::Unsupported { .. }) => {
                ApiError::UnsupportedMediaType(error.to_string())
            }
            DocumentError::Parse(
                error @ (ParseError::TooMuchText { .. }
                | ParseError::InflatesTooMuch { .. }
                | ParseError::TooManyChunks { .. }
                | ParseError::TooLarge { .. }),
            ) => ApiError::TooLarge(error.to_string()),
            DocumentError::Parse(error) => {
                invalid(Loc::body().key("files"), "value_error", error.to_string(), Value::Null)
            }
            DocumentError::Embeddings(error) => ApiError::BadGateway(error.to_string()),
            DocumentError::Store(error) => error.into(),
        }
    }
}

/// The body of `POST /ingest/uploads`: which file, how large, and for whom.
pub struct UploadRequest {
    config: Value,
    file_name: String,
    size: u64,
}

impl FromJson for UploadRequest {
    fn from_json(value: &Value, loc: &Loc) -> Result<Self, FieldErrors> {
        let mut fields = ObjectReader::new(value, loc)?;
        let config = fields.required::<serde_json::Map<String, Value>>("config").map(Value::Object);
        let file_name = fields.required::<String>("file_name");
        let size = fields.required::<u64>("size");
        fields.finish(|| Some(UploadRequest { config: config?, file_name: file_name?, size: size? }))
    }
}

/// The upload bucket; without one a valid request asks for what this server does not do (501).
fn uploads(state: &AppState) -> Result<&Uploads, ApiError> {
    state.uploads.as_deref().ok_or_else(|| ApiError::Detail {
        status: axum::http::StatusCode::NOT_IMPLEMENTED,
        detail: "This server takes no uploads through S3 (UPLOAD_BUCKET is not set): send files to POST /ingest".into(),
    })
}

/// A presigned URL for one file too large for `/ingest`; its ingestion runs once S3 has it.
async fn start_upload(
    State(state): State<AppState>,
    User(user): User,
    JsonBody(request): JsonBody<UploadRequest>,
) -> Result<Json<Value>, ApiError> {
    let uploads = uploads(&state)?;
    // A type that cannot be read is refused now, not after the upload.
    if let Err(error @ ParseError::Unsupported { .. }) = crate::documents::detect(&request.file_name, b"?") {
        return Err(ApiError::UnsupportedMediaType(error.to_string()));
    }
    let namespace = owned_namespace(&state, &user, &request.config).await?;
    let upload = uploads.presign(namespace, &user, &request.file_name, request.size).await?;
    Ok(Json(json!(upload)))
}

async fn upload_status(
    State(state): State<AppState>,
    User(user): User,
    Path(upload_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let upload_id = path_id(&upload_id, "upload_id")?;
    let outcome = uploads(&state)?.outcome(upload_id).await?;
    // A finished upload is shown to the owner of its assistant or thread only.
    if let UploadOutcome::Done { namespace, .. } | UploadOutcome::Failed { namespace, .. } = &outcome {
        let owns_assistant = matches!(state.store.get_assistant(&user, *namespace).await, Ok(a) if a.user_id == user);
        if !owns_assistant && state.store.get_thread(&user, *namespace).await.is_err() {
            return Err(ApiError::NotFound(Entity::Upload));
        }
    }
    Ok(Json(json!(outcome)))
}

impl From<UploadError> for ApiError {
    fn from(error: UploadError) -> Self {
        match error {
            UploadError::TooLarge { .. } => ApiError::TooLarge(error.to_string()),
            UploadError::ForeignKey(_) => ApiError::BadRequest(error.to_string()),
            UploadError::S3(reason) => {
                tracing::error!(%reason, "the upload bucket failed");
                ApiError::BadGateway("The upload bucket could not be reached; try again".into())
            }
        }
    }
}
