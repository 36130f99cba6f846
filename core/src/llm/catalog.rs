//! From an assistant's `config.configurable` to a provider and a model id.
//!
//! OpenGPTs named models by display name ("GPT 3.5 Turbo", "Claude 2" …) under different keys in
//! its two generations: `agent_type` / `llm_type` (seed), `type==<kind>/agent_type` and
//! `type==<kind>/llm_type` (latest). Every such key is read and checked here.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{
    AnthropicModel, BedrockModel, ChatModel, GeminiModel, KeyedEndpoint, OfflineModel, OpenAiEndpoint, OpenAiModel,
};
use crate::config::{Config, Secret};
use crate::model::validate::{FieldError, Loc};

/// Every model name an assistant may use, in the order the config schema lists them.
pub const MODEL_NAMES: &[&str] = &[
    "GPT 3.5 Turbo",
    "GPT 4",
    "GPT 4 Turbo",
    "GPT 4o",
    "GPT 4 (Azure OpenAI)",
    "Claude 2",
    "Claude 2 (Amazon Bedrock)",
    "GEMINI",
    "Ollama",
    "Mixtral",
    "Offline",
];

/// The name used when an assistant names none: OpenGPTs' default.
pub const DEFAULT_MODEL_NAME: &str = "GPT 3.5 Turbo";

/// The instructions OpenGPTs' forms start from.
pub const DEFAULT_SYSTEM_MESSAGE: &str = "You are a helpful assistant.";

const MODEL_KEYS: &[&str] = &["agent_type", "llm_type"];

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelConfigError {
    #[error("Unknown model {value} under '{key}'; accepted: {}", accepted())]
    Unknown { key: String, value: Value },
    #[error("Model '{name}' needs {needs}; set it, or choose 'Offline'")]
    Unconfigured { key: String, name: String, needs: &'static str },
}

fn accepted() -> String {
    MODEL_NAMES.iter().map(|name| format!("'{name}'")).collect::<Vec<_>>().join(", ")
}

impl ModelConfigError {
    pub fn into_field_error(self) -> FieldError {
        let (key, input) = match &self {
            ModelConfigError::Unknown { key, value } => (key.clone(), value.clone()),
            ModelConfigError::Unconfigured { key, name, .. } => (key.clone(), Value::from(name.as_str())),
        };
        let loc = Loc::body().key("config").key("configurable").key(&key);
        let mut error = FieldError::new("enum", &loc, self.to_string(), &input);
        error.ctx = Some(serde_json::json!({ "expected": accepted() }));
        error
    }
}

/// A model ready to be called for one run.
#[derive(Clone)]
pub struct ResolvedModel {
    pub model: Arc<dyn ChatModel>,
    /// The id sent to the provider, also reported as `response_metadata.model_name`.
    pub model_id: String,
    pub system_message: Option<String>,
}

/// The providers configured in this process, built once and shared by every run.
pub struct ModelCatalog {
    offline: Arc<dyn ChatModel>,
    openai: Option<Arc<dyn ChatModel>>,
    azure: Option<Arc<dyn ChatModel>>,
    anthropic: Option<Arc<dyn ChatModel>>,
    ollama: Option<Arc<dyn ChatModel>>,
    groq: Option<Arc<dyn ChatModel>>,
    gemini: Option<Arc<dyn ChatModel>>,
    bedrock: Option<Arc<dyn ChatModel>>,
    config: crate::config::ProviderConfig,
}

impl ModelCatalog {
    pub fn new(config: &Config) -> Self {
        let providers = &config.providers;
        let client = crate::config::http_client()
            .connect_timeout(std::time::Duration::from_secs(10))
            .pool_idle_timeout(std::time::Duration::from_secs(90))
            .build()
            .unwrap_or_default();
        let timeout = providers.request_timeout;
        let compatible = |provider: &'static str, base_url: &str, api_key: Option<&Secret>| -> Arc<dyn ChatModel> {
            let endpoint =
                OpenAiEndpoint::Compatible { provider, base_url: base_url.to_string(), api_key: api_key.cloned() };
            Arc::new(OpenAiModel::new(client.clone(), endpoint, timeout))
        };
        let keyed = |base_url: &str, api_key: &Secret| KeyedEndpoint {
            client: client.clone(),
            base_url: base_url.to_string(),
            api_key: api_key.clone(),
            timeout,
        };
        let azure = match (
            &providers.azure_openai_api_key,
            &providers.azure_openai_base_url,
            &providers.azure_openai_deployment,
        ) {
            (Some(api_key), Some(base_url), Some(deployment)) => {
                let endpoint = OpenAiEndpoint::Azure {
                    base_url: base_url.clone(),
                    deployment: deployment.clone(),
                    api_version: providers.azure_openai_api_version.clone(),
                    api_key: api_key.clone(),
                };
                Some(Arc::new(OpenAiModel::new(client.clone(), endpoint, timeout)) as Arc<dyn ChatModel>)
            }
            _ => None,
        };
        ModelCatalog {
            offline: Arc::new(OfflineModel::new(config.offline_token_delay)),
            openai: providers
                .openai_api_key
                .as_ref()
                .map(|key| compatible("openai", &providers.openai_base_url, Some(key))),
            azure,
            anthropic: providers.anthropic_api_key.as_ref().map(|key| {
                Arc::new(AnthropicModel::new(keyed(&providers.anthropic_base_url, key))) as Arc<dyn ChatModel>
            }),
            ollama: providers
                .ollama_base_url
                .as_ref()
                .map(|base| compatible("ollama", &format!("{}/v1", base.trim_end_matches('/')), None)),
            groq: providers.groq_api_key.as_ref().map(|key| compatible("groq", &providers.groq_base_url, Some(key))),
            gemini: providers
                .gemini_api_key
                .as_ref()
                .map(|key| Arc::new(GeminiModel::new(keyed(&providers.gemini_base_url, key))) as Arc<dyn ChatModel>),
            bedrock: providers.bedrock_region.as_ref().map(|_| {
                Arc::new(BedrockModel::new(providers.bedrock_endpoint_url.clone(), timeout)) as Arc<dyn ChatModel>
            }),
            config: providers.clone(),
        }
    }

    /// Checks every model name in an assistant's config; run when the assistant is saved.
    pub fn check_config(config: &Map<String, Value>) -> Result<(), ModelConfigError> {
        let Some(configurable) = config.get("configurable").and_then(Value::as_object) else {
            return Ok(());
        };
        for (key, value) in configurable {
            let names_a_model = MODEL_KEYS.iter().any(|suffix| key == suffix || key.ends_with(&format!("/{suffix}")));
            let known = value.as_str().is_some_and(|name| MODEL_NAMES.contains(&name));
            if names_a_model && !known {
                return Err(ModelConfigError::Unknown { key: key.clone(), value: value.clone() });
            }
        }
        Ok(())
    }

    /// The model and system prompt for a run, from the merged `configurable`.
    pub fn resolve(&self, configurable: &Map<String, Value>) -> Result<ResolvedModel, ModelConfigError> {
        let kind = configurable.get("type").and_then(Value::as_str);
        let lookup = |suffix: &str| -> Option<(String, &Value)> {
            let typed = kind.map(|kind| format!("type=={kind}/{suffix}"));
            typed
                .into_iter()
                .chain(std::iter::once(suffix.to_string()))
                .find_map(|key| configurable.get(&key).map(|value| (key, value)))
        };
        let (key, name) = match MODEL_KEYS.iter().find_map(|suffix| lookup(suffix)) {
            Some((key, Value::String(name))) => (key, name.clone()),
            Some((key, value)) => return Err(ModelConfigError::Unknown { key, value: value.clone() }),
            None => ("agent_type".to_string(), DEFAULT_MODEL_NAME.to_string()),
        };
        let system_message = lookup("system_message").and_then(|(_, value)| value.as_str().map(str::to_string));
        let (model, model_id) = self.provider_for(&key, &name)?;
        Ok(ResolvedModel { model, model_id, system_message })
    }

    fn provider_for(&self, key: &str, name: &str) -> Result<(Arc<dyn ChatModel>, String), ModelConfigError> {
        let ids = &self.config.model_ids;
        let (provider, model_id, needs) = match name {
            "GPT 3.5 Turbo" => (&self.openai, ids.gpt_35_turbo.clone(), "OPENAI_API_KEY"),
            "GPT 4" | "GPT 4 Turbo" => (&self.openai, ids.gpt_4.clone(), "OPENAI_API_KEY"),
            "GPT 4o" => (&self.openai, ids.gpt_4o.clone(), "OPENAI_API_KEY"),
            "GPT 4 (Azure OpenAI)" => (
                &self.azure,
                self.config.azure_openai_deployment.clone().unwrap_or_default(),
                "AZURE_OPENAI_API_KEY, AZURE_OPENAI_API_BASE and AZURE_OPENAI_DEPLOYMENT_NAME",
            ),
            "Claude 2" => (&self.anthropic, ids.claude.clone(), "ANTHROPIC_API_KEY"),
            "Ollama" => (&self.ollama, ids.ollama.clone(), "OLLAMA_BASE_URL"),
            "Mixtral" => (&self.groq, ids.mixtral.clone(), "GROQ_API_KEY"),
            "GEMINI" => (&self.gemini, ids.gemini.clone(), "GEMINI_API_KEY"),
            "Offline" => return Ok((self.offline.clone(), "offline".into())),
            "Claude 2 (Amazon Bedrock)" => {
                (&self.bedrock, ids.bedrock.clone(), "AWS_REGION (and IAM access to the model)")
            }
            other => return Err(ModelConfigError::Unknown { key: key.to_string(), value: Value::from(other) }),
        };
        match provider {
            Some(model) => Ok((model.clone(), model_id)),
            None if self.config.offline_fallback => Ok((self.offline.clone(), "offline".into())),
            None => Err(ModelConfigError::Unconfigured { key: key.to_string(), name: name.to_string(), needs }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn catalog(vars: &[(&str, &str)]) -> ModelCatalog {
        let config =
            Config::from_lookup(|name| vars.iter().find(|(key, _)| *key == name).map(|(_, v)| v.to_string())).unwrap();
        ModelCatalog::new(&config)
    }

    fn configurable(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn reads_both_generations_keys() {
        let models = catalog(&[("OPENAI_API_KEY", "k")]);
        let latest = configurable(json!({"type": "chatbot", "type==chatbot/llm_type": "GPT 4o",
            "type==chatbot/system_message": "Be brief"}));
        let resolved = models.resolve(&latest).unwrap();
        assert_eq!((resolved.model.provider(), resolved.model_id.as_str()), ("openai", "gpt-4o"));
        assert_eq!(resolved.system_message.as_deref(), Some("Be brief"));
        let seed = configurable(json!({"agent_type": "Claude 2"}));
        assert_eq!(models.resolve(&seed).unwrap().model.provider(), "offline");
    }

    #[test]
    fn unconfigured_provider_fails_clearly_without_fallback() {
        let models = catalog(&[("OFFLINE_FALLBACK", "false")]);
        let error = models.resolve(&configurable(json!({"agent_type": "GPT 4"}))).err().unwrap();
        assert!(error.to_string().contains("OPENAI_API_KEY"), "{error}");
    }

    #[test]
    fn unknown_names_are_rejected_with_the_accepted_list() {
        let config = configurable(json!({"configurable": {"type==agent/agent_type": "GPT 5"}}));
        let error = ModelCatalog::check_config(&config).unwrap_err().into_field_error();
        assert!(error.msg.contains("'GPT 4o'"), "{}", error.msg);
        assert_eq!(error.loc.last(), Some(&json!("type==agent/agent_type")));
    }
}
