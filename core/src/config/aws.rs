//! The AWS SDK's clients share one configuration, read once per client from the environment.

/// The AWS SDK's shared configuration (credentials, region) from the environment, aimed at
/// `endpoint_url` when a service is emulated locally.
pub async fn aws_sdk_config(endpoint_url: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(endpoint) = endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}
