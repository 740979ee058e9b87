//! NVIDIA's hosted endpoint, spoken to in NVCF's protocol: the key as a bearer token, 429s
//! retried after `Retry-After`, 202s polled, 302s followed (without the key), and asset uploads
//! in two steps.

mod archive;
mod assets;
mod failure;
mod handoff;
mod invoke;
mod reachability;
mod retry;

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use florence2::request::Invocation;
use florence2::{Error, ErrorCode, Result};
use reqwest::{Client, RequestBuilder, Response, StatusCode, Url};
use tokio::time::Instant;

use self::handoff::HandoffPolicy;
use self::reachability::Prober;
use super::{AssetUpload, Backend, BoxFuture, CallContext, Health};
use crate::api_key::ApiKey;
use crate::config::Config;

/// How long connecting to an upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct UpstreamBackend {
    client: Client,
    key: Option<ApiKey>,
    /// `<upstream>/v1/vlm/microsoft/florence-2`
    invoke_url: Url,
    /// `<assets-upstream>/`: assets and pexec status.
    nvcf: Url,
    handoff: HandoffPolicy,
    poll_seconds: u16,
    max_retries: u32,
    prober: Prober,
}

impl UpstreamBackend {
    pub fn new(config: &Config) -> Result<UpstreamBackend, String> {
        crate::tls::install_crypto_provider();
        let client = Client::builder()
            // 302s are NVCF's protocol, followed by hand (and checked, and without the key).
            .redirect(reqwest::redirect::Policy::none())
            // Only the configured upstreams are contacted, never through an environment proxy.
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("florence2-proxy/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let invoke_url = config
            .upstream
            .join("v1/vlm/microsoft/florence-2")
            .map_err(|e| format!("--upstream: {e}"))?;
        Ok(UpstreamBackend {
            prober: Prober::new(config.upstream.clone()),
            client,
            key: config.api_key.clone(),
            invoke_url,
            nvcf: config.assets_upstream.clone(),
            handoff: HandoffPolicy::new(
                vec![config.upstream.clone(), config.assets_upstream.clone()],
                &config.handoff_hosts,
            ),
            poll_seconds: config.poll_seconds,
            max_retries: config.max_retries,
        })
    }

    /// The configured key, else the caller's.
    fn key<'a>(&'a self, context: &'a CallContext) -> Result<&'a ApiKey> {
        self.key.as_ref().or(context.caller_key.as_ref()).ok_or_else(|| {
            Error::new(
                ErrorCode::Unauthorized,
                "no NVIDIA API key: start the proxy with NVIDIA_API_KEY=nvapi-… in its environment (keys come from build.nvidia.com), \
                 or send your own key in the X-Api-Key header",
            )
        })
    }

    /// Sends one request within the deadline; no HTTP answer is a NETWORK or TIMEOUT error.
    async fn send(
        &self,
        request: RequestBuilder,
        context: &CallContext,
        what: &str,
    ) -> Result<Response> {
        let remaining = context.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Error::new(
                ErrorCode::Timeout,
                format!("no time left for {what} (--timeout)"),
            ));
        }
        let request = request
            .timeout(remaining)
            .build()
            .map_err(|e| failure::transport(e, what, "the upstream"))?;
        let host = request
            .url()
            .host_str()
            .unwrap_or("the upstream")
            .to_owned();
        tracing::debug!(host, path = request.url().path(), method = %request.method(), "upstream request");
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| failure::transport(e, what, &host))?;
        tracing::debug!(host, status = response.status().as_u16(), "upstream answer");
        Ok(response)
    }

    /// Sends, and retries a 429 after its `Retry-After` (or a back-off) while retries and
    /// time remain; then a RATE_LIMITED error carrying the wait.
    async fn send_retrying(
        &self,
        context: &CallContext,
        what: &str,
        key: &ApiKey,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response> {
        let mut attempt = 0;
        loop {
            let response = self.send(build(), context, what).await?;
            if response.status() != StatusCode::TOO_MANY_REQUESTS {
                return Ok(response);
            }
            let wait = retry::retry_after(response.headers(), SystemTime::now())
                .unwrap_or_else(|| retry::backoff(attempt));
            let fits = Instant::now() + wait < context.deadline;
            if attempt >= self.max_retries || !fits {
                let error = failure::from_response(response, what, Some(key)).await;
                let why = if fits {
                    format!("after {attempt} retries")
                } else {
                    "and the wait would pass --timeout".to_owned()
                };
                return Err(Error::new(
                    ErrorCode::RateLimited,
                    format!(
                        "{} {why}; try again in {:.0} s",
                        error.message,
                        wait.as_secs_f64().ceil()
                    ),
                )
                .with_status(429)
                .with_retry_after(Some(wait.as_secs_f64())));
            }
            tracing::info!(
                attempt,
                wait_ms = wait.as_millis() as u64,
                "upstream 429; retrying"
            );
            drop(response);
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

impl Backend for UpstreamBackend {
    fn invoke(&self, invocation: Invocation, context: CallContext) -> BoxFuture<'_, Result<Bytes>> {
        Box::pin(async move { invoke::invoke(self, invocation, &context).await })
    }

    fn upload_asset(
        &self,
        upload: AssetUpload,
        context: CallContext,
    ) -> BoxFuture<'_, Result<String>> {
        Box::pin(async move { assets::upload(self, upload, &context).await })
    }

    fn health(&self) -> BoxFuture<'_, Health> {
        Box::pin(async move {
            Health {
                backend: "nvidia",
                key_configured: self.key.is_some(),
                request_keys_accepted: self.key.is_none(),
                upstream: Some(self.prober.check(&self.client).await),
                model: None,
                queue: None,
            }
        })
    }
}
