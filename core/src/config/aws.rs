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

/// What a request signed by hand (SigV4 over a service's REST API) needs: the region, and
/// where its credentials come from.
pub async fn signing_context() -> Result<(String, aws_credential_types::provider::SharedCredentialsProvider), String> {
    let shared = aws_sdk_config(None).await;
    let region = shared.region().map(|region| region.to_string()).ok_or("no AWS region is set")?;
    let credentials = shared.credentials_provider().ok_or("no AWS credentials are available")?;
    Ok((region, credentials))
}
