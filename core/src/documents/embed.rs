//! Embeddings behind one trait, built once per process: an OpenAI-compatible `/embeddings`
//! endpoint that takes a bearer key (OpenAI, Ollama, vLLM …), Amazon Titan Text
//! Embeddings through Bedrock's `InvokeModel` (IAM credentials, no key), or the offline embedder.
//!
//! The offline embedder is lexical, and says so: each word (lower-cased letters and digits) is
//! hashed to one of 1,024 dimensions with a sign, weighted 1 + ln(count), and the vector is
//! normalised. Searches over it weigh each dimension by its inverse document frequency among
//! the chunks searched, so the chunk that shares the question's rarer words comes first. It
//! knows nothing of meaning: "car" does not find "automobile".

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::config::{Config, Secret};

#[derive(Debug, Clone, thiserror::Error)]
#[error("the embeddings service failed: {0}")]
pub struct EmbeddingsError(pub String);

#[async_trait]
pub trait Embedder: Send + Sync + 'static {
    /// The name recorded with an index (provider and model).
    fn name(&self) -> String;
    /// Whether its vectors are word counts, which a search weighs by rarity.
    fn lexical(&self) -> bool {
        false
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbeddingsError>;
}

const OFFLINE_DIMENSIONS: usize = 1024;

pub struct OfflineEmbedder;

/// FNV-1a: stable across processes and versions, unlike the standard library's hasher.
fn fnv1a(word: &str) -> u64 {
    word.bytes().fold(0xcbf29ce484222325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x100000001b3))
}

pub fn offline_vector(text: &str) -> Vec<f32> {
    let mut counts: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()) {
        *counts.entry(word.to_lowercase()).or_default() += 1;
    }
    let mut vector = vec![0f32; OFFLINE_DIMENSIONS];
    for (word, count) in counts {
        let hash = fnv1a(&word);
        let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
        vector[(hash % OFFLINE_DIMENSIONS as u64) as usize] += sign * (1.0 + (count as f32).ln());
    }
    let norm = vector.iter().map(|value| value * value).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|value| *value /= norm);
    }
    vector
}

#[async_trait]
impl Embedder for OfflineEmbedder {
    fn name(&self) -> String {
        "offline-hashed-words-v1".into()
    }

    fn lexical(&self) -> bool {
        true
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbeddingsError> {
        Ok(texts.iter().map(|text| offline_vector(text)).collect())
    }
}

/// OpenAI's `POST /embeddings`, as every compatible server speaks it.
pub struct OpenAiEmbedder {
    client: reqwest::Client,
    base_url: String,
    api_key: Option<Secret>,
    model: String,
}

/// Inputs per request: OpenAI takes up to 2,048.
const BATCH: usize = 256;

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn name(&self) -> String {
        format!("openai-compatible:{}", self.model)
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbeddingsError> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            let mut request = self
                .client
                .post(format!("{}/embeddings", self.base_url.trim_end_matches('/')))
                .json(&json!({"model": self.model, "input": batch, "encoding_format": "float"}));
            if let Some(key) = &self.api_key {
                request = request.bearer_auth(key.expose());
            }
            let response = request.send().await.map_err(|error| EmbeddingsError(error.without_url().to_string()))?;
            let status = response.status();
            let body: Value =
                response.json().await.map_err(|error| EmbeddingsError(error.without_url().to_string()))?;
            if !status.is_success() {
                let message = body.pointer("/error/message").and_then(Value::as_str).unwrap_or("no reason given");
                return Err(EmbeddingsError(format!("HTTP {}: {message}", status.as_u16())));
            }
            let mut data: Vec<&Value> = body.get("data").and_then(Value::as_array).into_iter().flatten().collect();
            data.sort_by_key(|item| item.get("index").and_then(Value::as_u64).unwrap_or(0));
            if data.len() != batch.len() {
                return Err(EmbeddingsError(format!("{} vectors came back for {} texts", data.len(), batch.len())));
            }
            for item in data {
                let vector: Option<Vec<f32>> = item
                    .get("embedding")
                    .and_then(Value::as_array)
                    .map(|values| values.iter().filter_map(Value::as_f64).map(|value| value as f32).collect());
                vectors.push(
                    vector.filter(|v| !v.is_empty()).ok_or_else(|| EmbeddingsError("a vector is missing".into()))?,
                );
            }
        }
        Ok(vectors)
    }
}

/// Amazon Titan Text Embeddings (v2) through Bedrock's `InvokeModel`: one text a request, a
/// few at once. The client is made on first use, with the function's IAM role and region.
pub struct BedrockEmbedder {
    client: crate::llm::BedrockClient,
    model: String,
    dimensions: u32,
}

impl BedrockEmbedder {
    async fn embed_one(&self, text: &str) -> Result<Vec<f32>, EmbeddingsError> {
        let body = json!({"inputText": text, "dimensions": self.dimensions, "normalize": true});
        let output = self
            .client
            .get()
            .await
            .invoke_model()
            .model_id(&self.model)
            .content_type("application/json")
            .accept("application/json")
            .body(aws_sdk_bedrockruntime::primitives::Blob::new(body.to_string()))
            .send()
            .await
            .map_err(|error| {
                let reason = match error.as_service_error() {
                    Some(service) => service.to_string(),
                    None => aws_sdk_bedrockruntime::error::DisplayErrorContext(&error).to_string(),
                };
                EmbeddingsError(format!("Bedrock {}: {reason}", self.model))
            })?;
        let answer: Value = serde_json::from_slice(output.body().as_ref())
            .map_err(|error| EmbeddingsError(format!("Bedrock sent something that is not JSON: {error}")))?;
        let vector: Vec<f32> = answer
            .get("embedding")
            .and_then(Value::as_array)
            .map(|values| values.iter().filter_map(Value::as_f64).map(|value| value as f32).collect())
            .unwrap_or_default();
        if vector.is_empty() {
            return Err(EmbeddingsError("Bedrock answered without an embedding".into()));
        }
        Ok(vector)
    }
}

#[async_trait]
impl Embedder for BedrockEmbedder {
    fn name(&self) -> String {
        format!("bedrock:{}", self.model)
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbeddingsError> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(8) {
            for vector in futures::future::join_all(batch.iter().map(|text| self.embed_one(text))).await {
                vectors.push(vector?);
            }
        }
        Ok(vectors)
    }
}

/// The embedder `EMBEDDINGS_PROVIDER` names: `offline` (the default), `openai` or `bedrock`.
pub fn embedder_from_config(config: &Config) -> std::sync::Arc<dyn Embedder> {
    let settings = &config.embeddings;
    match settings.provider.as_str() {
        "openai" => std::sync::Arc::new(OpenAiEmbedder {
            client: crate::config::http_client()
                .connect_timeout(std::time::Duration::from_secs(10))
                .timeout(std::time::Duration::from_secs(60))
                .build()
                .unwrap_or_default(),
            base_url: settings.base_url.clone().unwrap_or_else(|| config.providers.openai_base_url.clone()),
            api_key: settings.api_key.clone().or_else(|| config.providers.openai_api_key.clone()),
            model: settings.model.clone().unwrap_or_else(|| "text-embedding-3-small".into()),
        }),
        "bedrock" => std::sync::Arc::new(BedrockEmbedder {
            client: crate::llm::BedrockClient::new(settings.bedrock_endpoint_url.clone()),
            model: settings.model.clone().unwrap_or_else(|| "amazon.titan-embed-text-v2:0".into()),
            dimensions: settings.dimensions,
        }),
        _ => std::sync::Arc::new(OfflineEmbedder),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_vectors_are_normalised_and_stable() {
        let vector = offline_vector("The Moon, the moon!");
        let norm: f32 = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        assert_eq!(vector, offline_vector("the moon MOON the"), "case and order do not matter");
        assert_eq!(vector.iter().filter(|v| **v != 0.0).count(), 2);
        assert!(offline_vector("").iter().all(|v| *v == 0.0));
    }
}
