//! The upload bucket, through S3's REST API signed with SigV4: the five requests uploads make
//! (a presigned PUT, GET, PUT, DELETE of an object, and the bucket's creation on an emulator).
//! The AWS SDK's S3 client would add about a megabyte to the functions that read files, most of
//! it checksum tables for algorithms these requests never use.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningInstructions, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::{HeaderMap, Method};

use crate::config::UploadSettings;

/// An object as read back: its bytes and its `x-amz-meta-*` metadata.
pub struct StoredObject {
    pub bytes: Bytes,
    pub headers: HeaderMap,
}

impl StoredObject {
    pub fn metadata(&self, name: &str) -> Option<&str> {
        self.headers.get(format!("x-amz-meta-{name}")).and_then(|value| value.to_str().ok())
    }
}

/// What a presigned request needs: its URL and the headers it must carry as signed.
pub struct Presigned {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

pub struct Bucket {
    http: reqwest::Client,
    name: String,
    /// `https://<bucket>.s3.<region>.amazonaws.com`, or `<emulator>/<bucket>` (path style).
    base: url::Url,
    region: String,
    credentials: SharedCredentialsProvider,
}

/// The bucket could not be used; the text says how.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct BucketError(pub String);

fn failed(reason: impl std::fmt::Display) -> BucketError {
    BucketError(reason.to_string())
}

impl Bucket {
    pub async fn connect(settings: &UploadSettings) -> Result<Bucket, BucketError> {
        let (region, credentials) = crate::config::signing_context().await.map_err(failed)?;
        let base = match &settings.endpoint_url {
            // Emulators serve buckets under the path, not as host names.
            Some(endpoint) => format!("{}/{}/", endpoint.trim_end_matches('/'), settings.bucket),
            None => format!("https://{}.s3.{region}.amazonaws.com/", settings.bucket),
        };
        let base = url::Url::parse(&base).map_err(|error| failed(format!("the bucket's URL {base}: {error}")))?;
        let http = crate::config::http_client().connect_timeout(Duration::from_secs(10)).build().map_err(failed)?;
        let bucket = Bucket { http, name: settings.bucket.clone(), base, region, credentials };
        if settings.create_bucket && !matches!(bucket.send(Method::HEAD, "", Bytes::new()).await, Ok(Ok(_))) {
            bucket.send(Method::PUT, "", Bytes::new()).await?.map_err(failed)?;
        }
        Ok(bucket)
    }

    fn url(&self, key: &str) -> url::Url {
        let mut url = self.base.clone();
        if !key.is_empty() {
            url.path_segments_mut().expect("an http URL has a path").pop_if_empty().extend(key.split('/'));
        }
        url
    }

    async fn identity(&self) -> Result<Identity, BucketError> {
        Ok(self.credentials.provide_credentials().await.map_err(failed)?.into())
    }

    /// A URL that accepts one PUT of `key`, with `headers` (signed: the client must send them).
    pub async fn presign_put(
        &self,
        key: &str,
        headers: &[(String, String)],
        lifetime: Duration,
    ) -> Result<Presigned, BucketError> {
        let mut url = self.url(key);
        let signature = Signature { identity: &self.identity().await?, region: &self.region, time: SystemTime::now() };
        let parameters = signature.query("PUT", url.as_str(), headers, lifetime)?;
        url.query_pairs_mut().extend_pairs(parameters.iter().map(|(name, value)| (*name, value.as_ref())));
        Ok(Presigned { url: url.to_string(), headers: headers.to_vec() })
    }

    /// The object at `key`, or `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<StoredObject>, BucketError> {
        match self.send(Method::GET, key, Bytes::new()).await? {
            Ok((headers, bytes)) => Ok(Some(StoredObject { bytes, headers })),
            Err(refused) if refused.code == "NoSuchKey" => Ok(None),
            Err(refused) => Err(failed(refused)),
        }
    }

    pub async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), BucketError> {
        self.send(Method::PUT, key, Bytes::from(body)).await?.map(drop).map_err(failed)
    }

    pub async fn delete(&self, key: &str) -> Result<(), BucketError> {
        self.send(Method::DELETE, key, Bytes::new()).await?.map(drop).map_err(failed)
    }

    /// One request signed in its headers: S3's answer, or its refusal; or why there was none.
    async fn send(
        &self,
        method: Method,
        key: &str,
        body: Bytes,
    ) -> Result<Result<(HeaderMap, Bytes), Refused>, BucketError> {
        let url = self.url(key);
        let mut settings = s3_settings();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let request =
            SignableRequest::new(method.as_str(), url.as_str(), std::iter::empty(), SignableBody::Bytes(&body))
                .map_err(failed)?;
        let signature = Signature { identity: &self.identity().await?, region: &self.region, time: SystemTime::now() };
        let instructions = signature.instructions(settings, request)?;
        let mut request = http::Request::builder().method(method).uri(url.as_str()).body(body).map_err(failed)?;
        instructions.apply_to_request_http1x(&mut request);
        let request = reqwest::Request::try_from(request).map_err(failed)?;
        let response = self.http.execute(request).await.map_err(|error| failed(format!("S3: {error}")))?;
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = response.bytes().await.map_err(|error| failed(format!("S3: {error}")))?;
        if status.is_success() {
            return Ok(Ok((headers, bytes)));
        }
        // S3's error document: `<Error><Code>NoSuchKey</Code><Message>...</Message>...`.
        let text = String::from_utf8_lossy(&bytes);
        let field = |tag: &str| {
            let start = text.find(&format!("<{tag}>"))? + tag.len() + 2;
            Some(text[start..].split('<').next().unwrap_or_default().to_string())
        };
        let code = field("Code").unwrap_or_else(|| status.to_string());
        let message = field("Message").unwrap_or_default();
        Ok(Err(Refused { status: status.as_u16(), bucket: self.name.clone(), code, message }))
    }
}

/// S3 signs the path as sent (no second encoding, no normalisation).
fn s3_settings() -> SigningSettings {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings
}

/// Who signs, where and when.
struct Signature<'a> {
    identity: &'a Identity,
    region: &'a str,
    time: SystemTime,
}

impl Signature<'_> {
    fn instructions(
        &self,
        settings: SigningSettings,
        request: SignableRequest<'_>,
    ) -> Result<SigningInstructions, BucketError> {
        let params = v4::SigningParams::builder()
            .identity(self.identity)
            .region(self.region)
            .name("s3")
            .time(self.time)
            .settings(settings)
            .build()
            .map_err(failed)?
            .into();
        Ok(sign(request, &params).map_err(failed)?.into_parts().0)
    }

    /// The query parameters that let `method url` be sent with `headers` for `lifetime`.
    fn query(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        lifetime: Duration,
    ) -> Result<Vec<(&'static str, std::borrow::Cow<'static, str>)>, BucketError> {
        let mut settings = s3_settings();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(lifetime);
        let signed_headers = headers.iter().map(|(name, value)| (name.as_str(), value.as_str()));
        let request =
            SignableRequest::new(method, url, signed_headers, SignableBody::UnsignedPayload).map_err(failed)?;
        Ok(self.instructions(settings, request)?.into_parts().1)
    }
}

/// S3 answered with an error.
struct Refused {
    status: u16,
    bucket: String,
    code: String,
    message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3 answered {} for bucket {}: {} {}", self.status, self.bucket, self.code, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The presigned GET of S3's documentation ("Authenticating Requests: Using Query
    /// Parameters"), signed with its example keys at its time: the same signature.
    #[test]
    fn a_presigned_url_is_signed_as_s3_documents() {
        let credentials = aws_credential_types::Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "example",
        );
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600); // 2013-05-24T00:00:00Z
        let signature = Signature { identity: &credentials.into(), region: "us-east-1", time };
        let url = "https://examplebucket.s3.amazonaws.com/test.txt";
        let query = signature.query("GET", url, &[], Duration::from_secs(86_400)).unwrap();
        let value = |name: &str| query.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_string());
        assert_eq!(
            value("X-Amz-Credential").as_deref(),
            Some("AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request")
        );
        assert_eq!(value("X-Amz-SignedHeaders").as_deref(), Some("host"));
        assert_eq!(
            value("X-Amz-Signature").as_deref(),
            Some("aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
        );
    }
}
