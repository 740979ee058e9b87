//! The proxy's configuration: flags, each also settable by an environment variable, and the
//! API key, which only the environment (`NVIDIA_API_KEY`) can give.

pub mod cidr;
mod origin;
pub mod public_url;
pub mod upstream_url;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use reqwest::Url;

pub use self::cidr::Cidr;
pub use self::origin::OriginPattern;
use crate::api_key::ApiKey;

const ABOUT: &str = "The florence2-web server: forwards Florence-2 requests to NVIDIA's hosted endpoint with your API key, and serves the demo.";

const LONG_ABOUT: &str = "\
The florence2-web server. It holds the NVIDIA API key so that no browser ever sees it, forwards
Florence-2 requests to NVIDIA's hosted endpoint (resolving NVCF's 202 polling and 302 downloads),
uploads large images through NVCF's two-step asset API, and serves the demo's static files.
With --backend local --model DIR it answers the same routes from a Florence-2 model run here
(no key; requests queue for --model-threads runners, at most --queue waiting).

Routes:
  POST /v1/vlm/microsoft/florence-2   the endpoint's JSON body in, the result ZIP out
  POST /v1/assets                     raw image bytes (Content-Type: image/…) in, {\"assetId\"} out
  POST /v2/nvcf/assets                NVCF's asset creation: {\"contentType\",\"description\"} in,
                                      {\"uploadUrl\",\"assetId\"} out; then PUT the bytes to uploadUrl
  GET  /healthz                       whether a key is configured and the upstream is reachable
  GET  /models/<name>/…               model folders for the in-browser model (--models)
  GET  /…                             the demo (--static)
Every failure is JSON, NVIDIA's problem details with ours beside them:
{\"type\",\"title\",\"status\",\"detail\",\"error\":{\"code\",\"message\",\"status\"?,\"retryAfterSecs\"?}}.

Requests go only to --upstream and --assets-upstream, and to the presigned upload URLs and result
locations those hand back (https only; see --handoff-host).";

const AFTER_HELP: &str = "\
Environment:
  NVIDIA_API_KEY   the key sent upstream as `Authorization: Bearer …` (get one at
                   build.nvidia.com). It is read only from the environment, never logged,
                   never echoed. Without it, each request must bring its own key in the
                   X-Api-Key header (used for that request only, never stored or logged);
                   with it, X-Api-Key headers are ignored.
  RUST_LOG         log filter, e.g. `info` (default) or `florence2_proxy=debug`.
A client's own Authorization header is a client token (--client-tokens), never forwarded.
Logs go to stderr; the first stdout line is `listening on http://IP:PORT`.
SIGHUP rereads the --client-tokens file.
SIGTERM or Ctrl-C stops accepting connections and lets open requests finish within
--shutdown-grace; then they are answered 503 and the process exits. A second signal exits
at once.

Examples:
  NVIDIA_API_KEY=nvapi-… florence2-proxy --listen 127.0.0.1:8080 --static web/dist
  florence2-proxy --backend local --model ./Florence-2-base --static web/dist";

/// Where answers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// NVIDIA's hosted endpoint (needs a key).
    Nvidia,
    /// The Florence-2 model of --model, run in this process (florence2-burn, CPU).
    Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, Parser)]
#[command(name = "florence2-proxy", version, about = ABOUT, long_about = LONG_ABOUT, after_long_help = AFTER_HELP)]
pub struct Config {
    /// Address to listen on. Port 0 picks a free port; either way the first line on stdout is
    /// `listening on http://IP:PORT`.
    #[arg(
        long,
        value_name = "IP:PORT",
        default_value = "127.0.0.1:8080",
        env = "FLORENCE2_LISTEN"
    )]
    pub listen: SocketAddr,

    /// Base URL of NVIDIA's inference API; the proxy POSTs to
    /// <URL>/v1/vlm/microsoft/florence-2. Must be https://, except http:// to a loopback host
    /// (127.0.0.1, ::1, localhost), which exists for tests against the emulator.
    #[arg(long, value_name = "URL", default_value = "https://ai.api.nvidia.com", value_parser = upstream_url::parse, env = "FLORENCE2_UPSTREAM")]
    pub upstream: Url,

    /// Base URL of NVCF's API: asset creation (<URL>/v2/nvcf/assets) and the polling of
    /// pending requests (<URL>/v2/nvcf/pexec/status/<id>). Same https rule as --upstream.
    #[arg(long, value_name = "URL", default_value = "https://api.nvcf.nvidia.com", value_parser = upstream_url::parse, env = "FLORENCE2_ASSETS_UPSTREAM")]
    pub assets_upstream: Url,

    /// Directory of the demo's static build (index.html, .js, .wasm), served at /. Without
    /// it, / answers a page saying how to build the demo.
    #[arg(long = "static", value_name = "DIR", env = "FLORENCE2_STATIC")]
    pub static_dir: Option<PathBuf>,

    /// Directory of model folders, each served at /models/<name>/ (range requests, long cache
    /// headers, the same dotfile and symlink rules as --static), so `Florence2Local` loads a
    /// model from this server without the internet.
    #[arg(long = "models", value_name = "DIR", env = "FLORENCE2_MODELS")]
    pub models_dir: Option<PathBuf>,

    /// An origin whose pages may call the proxy (CORS), as scheme://host[:port]; the port may
    /// be `*`. Repeatable. Default: http://localhost:*, http://127.0.0.1:* and http://[::1]:*.
    /// Pages served by the proxy itself (same origin) never need this.
    #[arg(
        long = "allow-origin",
        value_name = "ORIGIN",
        env = "FLORENCE2_ALLOW_ORIGINS",
        value_delimiter = ','
    )]
    pub allow_origins: Vec<OriginPattern>,

    /// A Host name the proxy answers to (a guard against DNS rebinding). Repeatable; `*`
    /// allows any. Default: loopback names (localhost, 127.0.0.1, [::1], any port), plus, on
    /// a non-loopback --listen address, that address (any address when it is 0.0.0.0 or ::);
    /// never a DNS name unless listed here. Without NVIDIA_API_KEY (no key to spend) a
    /// non-loopback --listen answers any name.
    #[arg(
        long = "allow-host",
        value_name = "HOST",
        env = "FLORENCE2_ALLOW_HOSTS",
        value_delimiter = ','
    )]
    pub allow_hosts: Vec<String>,

    /// Longest time one request may take end to end, in seconds: reading the body, waiting
    /// for a slot, 429 retries and NVCF's 202 polling. Past it the answer is a TIMEOUT error.
    #[arg(long, value_name = "SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600), env = "FLORENCE2_TIMEOUT")]
    pub timeout: u64,

    /// NVCF-POLL-SECONDS sent upstream: how long NVCF may hold each call open before
    /// answering 202 (0-300).
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u16).range(0..=300), env = "FLORENCE2_POLL_SECONDS")]
    pub poll_seconds: u16,

    /// How many times an upstream 429 is retried (after its Retry-After, or 1, 2, 4… seconds)
    /// before the client gets RATE_LIMITED with the wait time.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 3,
        env = "FLORENCE2_MAX_RETRIES"
    )]
    pub max_retries: u32,

    /// Requests per minute one client address may make (inference and uploads; a token
    /// bucket). 0 turns the limit off.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 60,
        env = "FLORENCE2_RATE_LIMIT"
    )]
    pub rate_limit: u32,

    /// How many requests a client may make at once before --rate-limit paces it.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..), env = "FLORENCE2_RATE_BURST")]
    pub rate_burst: u32,

    /// Most requests in flight to the upstream at once, across all clients; more wait (up to
    /// 20 s) and then get RATE_LIMITED.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000), env = "FLORENCE2_MAX_CONCURRENT")]
    pub max_concurrent: u32,

    /// A host (or parent domain: `amazonaws.com` covers `x.s3.amazonaws.com`) that presigned
    /// upload URLs and 302 result locations may point to. Repeatable. Default: any https host
    /// name NVCF hands back, but never an IP address, localhost or plain http (except the
    /// configured upstreams themselves).
    #[arg(
        long = "handoff-host",
        value_name = "HOST",
        env = "FLORENCE2_HANDOFF_HOSTS",
        value_delimiter = ','
    )]
    pub handoff_hosts: Vec<String>,

    /// Most client connections open at once; more wait unaccepted until one closes. One
    /// client address (an IPv6 client: its /64) may hold at most a quarter of them (except a
    /// --trusted-proxy); beyond that its new connections are closed at once.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(4..=1_000_000), env = "FLORENCE2_MAX_CONNECTIONS")]
    pub max_connections: u32,

    /// Seconds a client may take to send a request's head (the request line and headers),
    /// also while a connection waits for its next request; then the connection is closed.
    /// Against connections that send nothing, or their headers a byte at a time.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600), env = "FLORENCE2_HEAD_TIMEOUT")]
    pub head_timeout: u64,

    /// Seconds a client may keep the proxy waiting without progress: an answer it does not
    /// take (a large file, a model, an API answer), a request body that stops arriving. Then
    /// the connection is closed (an answer) or the request refused 408 TIMEOUT (a body), and
    /// what it held (its connection, its share of --memory-budget) is free again.
    #[arg(long, value_name = "SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600), env = "FLORENCE2_STALL_TIMEOUT")]
    pub stall_timeout: u64,

    /// The slowest a client may take an answer or send a body, in KB/s, averaged over
    /// --stall-timeout: each KB moved earns 1/min-rate seconds of waiting, a client below it
    /// runs out of time. 0: only --stall-timeout applies.
    #[arg(long, value_name = "KB_PER_SEC", default_value_t = 16, value_parser = clap::value_parser!(u64).range(0..=1_000_000), env = "FLORENCE2_MIN_RATE")]
    pub min_rate: u64,

    /// Megabytes that request bodies and answers may hold in memory at once, across all
    /// clients. A body's size (its Content-Length, else the largest body accepted) is
    /// reserved before it is read and released once its answer has been sent; requests wait
    /// (up to 20 s) for room, then get RATE_LIMITED. One client address may hold at most a
    /// quarter of it (at least one largest body, 25 MB).
    #[arg(long, value_name = "MB", default_value_t = 256, value_parser = clap::value_parser!(u32).range(32..=1_048_576), env = "FLORENCE2_MEMORY_BUDGET")]
    pub memory_budget: u32,

    /// Seconds that open requests may still run after SIGTERM or Ctrl-C; then they are
    /// answered 503 (RATE_LIMITED, Retry-After 1) and the process exits. A second signal
    /// exits at once.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=3600), env = "FLORENCE2_SHUTDOWN_GRACE")]
    pub shutdown_grace: u64,

    /// A reverse proxy (address or block, e.g. 10.0.0.0/8) in front of this one: for
    /// connections from it the client is read from X-Forwarded-For (its rightmost address
    /// that is not itself a trusted proxy). Repeatable. Default: none; X-Forwarded-For is
    /// ignored.
    #[arg(
        long = "trusted-proxy",
        value_name = "CIDR",
        env = "FLORENCE2_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<Cidr>,

    /// Where answers come from: `nvidia` (the hosted endpoint, with the key) or `local` (the
    /// model folder of --model, run here on the CPU; no key needed, X-Api-Key ignored). Both
    /// answer the same routes with the same body and the same ZIP.
    #[arg(long, value_enum, default_value_t = BackendKind::Nvidia, env = "FLORENCE2_BACKEND")]
    pub backend: BackendKind,

    /// The model folder of --backend local: config.json, model.safetensors (native or
    /// original layout), tokenizer.json [, generation_config.json, processor_config.json |
    /// preprocessor_config.json]. A folder that does not load stops the proxy at start.
    #[arg(long, value_name = "DIR", env = "FLORENCE2_MODEL")]
    pub model: Option<PathBuf>,

    /// How many requests the local model runs at once (each on its own thread).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64), env = "FLORENCE2_MODEL_THREADS")]
    pub model_threads: u32,

    /// Threads the local model's CPU kernels share (one pool for all of --model-threads'
    /// requests). Default: every core (or RAYON_NUM_THREADS). Answers do not depend on it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..), env = "FLORENCE2_THREADS")]
    pub threads: Option<u16>,

    /// How many requests may wait for the local model beyond its free runners; more are
    /// answered 429 RATE_LIMITED with Retry-After. 0: no waiting room (a free runner still
    /// takes a request). A waiting request whose client goes away leaves the queue.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(0..=10_000), env = "FLORENCE2_QUEUE")]
    pub queue: u32,

    /// A file of client tokens, one per line (blank lines and # comments are ignored; each
    /// 16-512 visible ASCII characters). With it, every API request (the invocation,
    /// POST /v1/assets, POST /v2/nvcf/assets) needs `Authorization: Bearer <token>` with one of
    /// them, else 401; upload URLs need none (they are unguessable and single-use), /healthz
    /// stays open. The file is read again on SIGHUP (a removed token stops working at once).
    /// The per-client rate limit then counts per token, not per address. Without it, anyone
    /// who reaches the proxy may use it.
    #[arg(long, value_name = "FILE", env = "FLORENCE2_CLIENT_TOKENS")]
    pub client_tokens: Option<PathBuf>,

    /// The URL clients reach the proxy at (https://florence.example.org, or with a path prefix),
    /// used to build the uploadUrl that POST /v2/nvcf/assets answers. Default: http:// and the
    /// request's Host header (as the Host check accepted it). Set it behind a TLS terminator
    /// or a path prefix.
    #[arg(long, value_name = "URL", value_parser = public_url::parse, env = "FLORENCE2_PUBLIC_URL")]
    pub public_url: Option<Url>,

    /// How long an upload URL from POST /v2/nvcf/assets may be used, in seconds (NVCF: 3600).
    /// Each URL takes one upload.
    #[arg(long, value_name = "SECS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=3600), env = "FLORENCE2_UPLOAD_URL_TTL")]
    pub upload_url_ttl: u64,

    /// How long an uploaded asset may be used, in seconds (NVCF: 86400, 24 hours).
    #[arg(long, value_name = "SECS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..=86_400), env = "FLORENCE2_ASSET_TTL")]
    pub asset_ttl: u64,

    /// Most assets the proxy keeps track of at once, counting upload URLs handed out and not
    /// yet expired; when full, new uploads get 507 until older ones expire.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000), env = "FLORENCE2_MAX_ASSETS")]
    pub max_assets: u32,

    /// Most memory, in MB, for asset bytes the proxy keeps itself (with a backend that runs
    /// the model here; with NVIDIA the bytes go to NVCF and nothing is kept).
    #[arg(long, value_name = "MB", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=65_536), env = "FLORENCE2_ASSET_STORE_MB")]
    pub asset_store_mb: u32,

    /// Log line format (stderr).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "FLORENCE2_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// The key, from NVIDIA_API_KEY (never a flag: flags show in `ps`).
    #[arg(skip)]
    pub api_key: Option<ApiKey>,
}

impl Config {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }

    pub fn head_timeout(&self) -> Duration {
        Duration::from_secs(self.head_timeout)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace)
    }

    /// `--memory-budget` in bytes.
    pub fn memory_budget_bytes(&self) -> u64 {
        u64::from(self.memory_budget) * 1024 * 1024
    }

    /// The asset store's bounds, from the flags.
    pub fn asset_limits(&self) -> crate::asset_store::AssetLimits {
        crate::asset_store::AssetLimits {
            upload_url_ttl: Duration::from_secs(self.upload_url_ttl),
            asset_ttl: Duration::from_secs(self.asset_ttl),
            max_entries: self.max_assets as usize,
            max_kept_bytes: self.asset_store_mb as usize * 1024 * 1024,
        }
    }

    /// Flags that only make sense together: --backend local needs --model.
    pub fn check(&self) -> Result<(), String> {
        match (self.backend, &self.model) {
            (BackendKind::Local, None) => Err(
                "--backend local needs --model DIR (a Florence-2 folder: config.json, model.safetensors, tokenizer.json)"
                    .to_owned(),
            ),
            (BackendKind::Nvidia, Some(_)) => Err(
                "--model is only used with --backend local (add --backend local to run the model here)"
                    .to_owned(),
            ),
            _ => Ok(()),
        }
    }

    /// The CORS origins in force: the flags, or the local-development defaults.
    pub fn origins(&self) -> Vec<OriginPattern> {
        if self.allow_origins.is_empty() {
            OriginPattern::defaults()
        } else {
            self.allow_origins.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_documented_command_line_parses() {
        let c = Config::try_parse_from([
            "florence2-proxy",
            "--listen",
            "127.0.0.1:8080",
            "--upstream",
            "https://ai.api.nvidia.com",
            "--assets-upstream",
            "https://api.nvcf.nvidia.com",
            "--static",
            "web/dist",
        ])
        .unwrap();
        assert_eq!(c.upstream.as_str(), "https://ai.api.nvidia.com/");
        assert_eq!(c.origins(), OriginPattern::defaults());
        assert!(c.api_key.is_none());
        Config::command().debug_assert();
    }

    #[test]
    fn insecure_or_malformed_values_are_refused() {
        let parse = |args: &[&str]| {
            Config::try_parse_from(std::iter::once("florence2-proxy").chain(args.iter().copied()))
        };
        assert!(parse(&["--upstream", "http://ai.api.nvidia.com"]).is_err());
        assert!(parse(&["--assets-upstream", "http://192.168.1.2:80"]).is_err());
        assert!(parse(&["--poll-seconds", "301"]).is_err());
        assert!(parse(&["--timeout", "0"]).is_err());
        assert!(parse(&["--allow-origin", "localhost"]).is_err());
        assert!(parse(&["--trusted-proxy", "10.0.0.0/33"]).is_err());
        assert!(parse(&["--memory-budget", "8"]).is_err());
        assert_eq!(
            parse(&["--trusted-proxy", "10.0.0.0/8,::1"])
                .unwrap()
                .trusted_proxies
                .len(),
            2
        );
        assert!(parse(&["--model-threads", "0"]).is_err());
        assert!(parse(&["--threads", "0"]).is_err());
        assert_eq!(parse(&["--threads", "2"]).unwrap().threads, Some(2));
        assert!(parse(&["--backend", "local"]).unwrap().check().is_err());
        assert!(parse(&["--model", "m"]).unwrap().check().is_err());
        let local = parse(&["--backend", "local", "--model", "m", "--queue", "4"]).unwrap();
        assert!(local.check().is_ok());
        assert_eq!((local.queue, local.model_threads), (4, 1));
        assert_eq!(
            parse(&["--allow-origin", "https://a.org,http://b.org:*"])
                .unwrap()
                .origins()
                .len(),
            2
        );
    }
}
