//! Who may use the API (`--client-tokens FILE`): callers present `Authorization: Bearer <token>`
//! with a token from the file — exactly where NIM clients put their NVIDIA key, so they change
//! only the host and the key's value. The file holds one token per line (blank lines and `#`
//! comments ignored); only SHA-256 digests are kept in memory, compared in constant time, and
//! the file is read again on SIGHUP, so a token taken out of it stops working. Tokens never
//! reach a log line, an answer or the upstream: `Authorization` from a client is never
//! forwarded (the NVIDIA key is the proxy's own, or the caller's `X-Api-Key`).
//!
//! With tokens on, the per-client rate limit is kept per token instead of per address (the
//! address limit is switched off in `app`), and refused attempts are paced per address so that
//! tokens cannot be guessed at speed.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use florence2::{Error, ErrorCode};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::rate_limit::ClientRateLimit;
use crate::error::ApiError;
use crate::wire::{ClientAddr, Tenant};

/// A token's SHA-256 digest: how a token is held, and who owns an asset.
pub type TokenId = [u8; 32];

/// Shortest token accepted: anything shorter could be guessed.
pub const MIN_TOKEN_CHARS: usize = 16;
/// Longest token accepted (it travels in a header).
pub const MAX_TOKEN_CHARS: usize = 512;
/// Largest token file read.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Above this many tracked tokens, buckets that are full again are forgotten.
const MAX_TRACKED_TOKENS: usize = 10_000;

/// Who is calling, as the API routes see it: the digest of the caller's client token, or
/// `None` when the proxy runs without `--client-tokens` (then every caller is the same).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caller(pub Option<TokenId>);

impl Caller {
    /// Who this request counts against for shares: the token, else the client's address key.
    pub fn tenant(self, client: IpAddr) -> Tenant {
        match self.0 {
            Some(id) => Tenant::Token(id),
            None => Tenant::Address(super::client::client_key(client)),
        }
    }
}

/// The tokens from `--client-tokens`, re-read on demand.
pub struct ClientTokens {
    path: PathBuf,
    digests: RwLock<Arc<[TokenId]>>,
}

impl ClientTokens {
    /// Reads `path`. The error names the file and a line number, never a line's content.
    pub fn load(path: &Path) -> Result<ClientTokens, String> {
        let digests = read(path)?;
        Ok(ClientTokens {
            path: path.to_owned(),
            digests: RwLock::new(digests.into()),
        })
    }

    /// How many tokens are in force.
    pub fn len(&self) -> usize {
        self.current().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads the file again; on an error the tokens in force stay (an edit half saved must not
    /// lock everyone out, nor let anyone in). Answers how many tokens are now in force.
    pub fn reload(&self) -> Result<usize, String> {
        let digests: Arc<[TokenId]> = read(&self.path)?.into();
        let count = digests.len();
        *self.digests.write().unwrap_or_else(|e| e.into_inner()) = digests;
        Ok(count)
    }

    /// The token's digest if the file holds it. Every held digest is compared, in constant
    /// time, whichever matches.
    pub fn check(&self, presented: &str) -> Option<TokenId> {
        let digest = digest(presented.as_bytes());
        let mut found = subtle::Choice::from(0);
        for held in self.current().iter() {
            found |= held[..].ct_eq(&digest[..]);
        }
        bool::from(found).then_some(digest)
    }

    fn current(&self) -> Arc<[TokenId]> {
        self.digests
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn digest(bytes: &[u8]) -> TokenId {
    Sha256::digest(bytes).into()
}

/// A short, non-reversible name for a token in logs: the first 4 bytes of its digest.
pub fn fingerprint(id: &TokenId) -> String {
    id[..4].iter().map(|b| format!("{b:02x}")).collect()
}

fn read(path: &Path) -> Result<Vec<TokenId>, String> {
    let shown = path.display();
    let size = std::fs::metadata(path)
        .map_err(|e| format!("--client-tokens {shown}: {e}"))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(format!(
            "--client-tokens {shown}: the file is over {} MB",
            MAX_FILE_BYTES / (1024 * 1024)
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => format!("--client-tokens {shown}: not UTF-8 text"),
        _ => format!("--client-tokens {shown}: {e}"),
    })?;
    parse(&text).map_err(|why| format!("--client-tokens {shown}: {why}"))
}

/// One token per line; blank lines and `#` comments are skipped. Errors never quote a line.
fn parse(text: &str) -> Result<Vec<TokenId>, String> {
    let mut digests = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let token = line.trim();
        if token.is_empty() || token.starts_with('#') {
            continue;
        }
        let chars = token.chars().count();
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "line {}: a token must be visible ASCII characters without spaces (it travels in an Authorization header)",
                number + 1
            ));
        }
        if !(MIN_TOKEN_CHARS..=MAX_TOKEN_CHARS).contains(&chars) {
            return Err(format!(
                "line {}: a token must be {MIN_TOKEN_CHARS} to {MAX_TOKEN_CHARS} characters long (try `openssl rand -hex 32`)",
                number + 1
            ));
        }
        digests.push(digest(token.as_bytes()));
    }
    Ok(digests)
}

/// SIGHUP, listened for from the moment this is made (the process's start: before the model
/// loads), so that a hang-up never takes the default action, which ends the process. Handled
/// once serving: the client tokens are reread, or, without `--client-tokens`, it is logged
/// and ignored.
pub struct Hangups {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Hangups {
    #[cfg(unix)]
    pub fn listen() -> std::io::Result<Hangups> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Hangups {
            signal: signal(SignalKind::hangup())?,
        })
    }

    #[cfg(not(unix))]
    pub fn listen() -> std::io::Result<Hangups> {
        Ok(Hangups {})
    }

    /// From now on, each SIGHUP rereads `tokens` (or is logged, without any).
    #[cfg(unix)]
    pub fn handle(self, tokens: Option<Arc<ClientTokens>>) {
        let mut hangups = self.signal;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                let Some(tokens) = &tokens else {
                    tracing::info!("SIGHUP: no --client-tokens to reread; ignored");
                    continue;
                };
                match tokens.reload() {
                    Ok(count) => tracing::info!(tokens = count, "SIGHUP: client tokens reloaded"),
                    Err(why) => tracing::warn!(
                        tokens = tokens.len(),
                        "SIGHUP: client tokens not reloaded, the previous ones stay in force: {why}"
                    ),
                }
            }
        });
    }

    #[cfg(not(unix))]
    pub fn handle(self, _tokens: Option<Arc<ClientTokens>>) {}
}

/// What the token check needs: the tokens (if any) and the two rate limits used with them.
pub struct Access {
    tokens: Option<Arc<ClientTokens>>,
    per_token: TokenRateLimit,
    /// Refused attempts, per address.
    refusals: ClientRateLimit,
}

/// The most refused tokens an address may present: a burst, then a minute's worth; tighter
/// when `--rate-limit` / `--rate-burst` are, and in force even with `--rate-limit 0` (which
/// only lifts the limit on accepted callers), so that tokens cannot be guessed at speed.
const REFUSALS_PER_MINUTE: u32 = 60;
const REFUSAL_BURST: u32 = 20;

impl Access {
    pub fn new(tokens: Option<Arc<ClientTokens>>, per_minute: u32, burst: u32) -> Access {
        let refusals_per_minute = match per_minute {
            0 => REFUSALS_PER_MINUTE,
            n => n.min(REFUSALS_PER_MINUTE),
        };
        Access {
            tokens,
            per_token: TokenRateLimit::new(per_minute, burst),
            refusals: ClientRateLimit::new(refusals_per_minute, burst.min(REFUSAL_BURST)),
        }
    }

    pub fn required(&self) -> bool {
        self.tokens.is_some()
    }

    /// The caller behind `authorization`, or why not; an admitted caller spends one request
    /// of its rate limit.
    fn admit(
        &self,
        authorization: Option<&HeaderValue>,
        client: IpAddr,
    ) -> Result<Caller, ApiError> {
        let caller = self.identify(authorization, client)?;
        if let Some(id) = &caller.0 {
            self.per_token.check(id)?;
            tracing::debug!(token = %fingerprint(id), "client token accepted");
        }
        Ok(caller)
    }

    /// The caller behind `authorization`, or why not, without spending its rate limit
    /// (`/healthz?detail`); refusals are paced as on the API routes.
    pub fn identify(
        &self,
        authorization: Option<&HeaderValue>,
        client: IpAddr,
    ) -> Result<Caller, ApiError> {
        let Some(tokens) = &self.tokens else {
            return Ok(Caller(None));
        };
        let presented = authorization
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty());
        let refused = |kind: &'static str, why: &str| -> ApiError {
            if let Err(e) = self.refusals.check(client) {
                return e.into();
            }
            ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, why).with_kind(kind)
        };
        let Some(presented) = presented else {
            return Err(refused(
                "client-token-required",
                "this proxy requires a client token: send `Authorization: Bearer <token>` (a token from the proxy's --client-tokens file)",
            ));
        };
        let Some(id) = tokens.check(presented) else {
            return Err(refused(
                "client-token-refused",
                "the client token in Authorization is not one this proxy accepts (unknown or revoked)",
            ));
        };
        Ok(Caller(Some(id)))
    }
}

/// The middleware on API routes: every request gets its [`Caller`]; with tokens on, a request
/// without a valid one is answered 401 here.
pub async fn require(
    State(access): State<Arc<Access>>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = request
        .extensions()
        .get::<ClientAddr>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0);
    match access.admit(request.headers().get(header::AUTHORIZATION), client) {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(refusal) => refusal_response(refusal),
    }
}

/// A refused caller's answer: a 401 says how to authenticate (`WWW-Authenticate`).
pub fn refusal_response(refusal: ApiError) -> Response {
    let unauthorized = refusal.status == StatusCode::UNAUTHORIZED;
    let mut response = refusal.into_response();
    if unauthorized {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"florence2-proxy\""),
        );
    }
    response
}

/// The per-client rate limit, kept per token.
struct TokenRateLimit {
    limiter: Option<DefaultKeyedRateLimiter<TokenId>>,
    per_minute: u32,
    burst: u32,
}

impl TokenRateLimit {
    /// `per_minute` 0 turns the limit off.
    fn new(per_minute: u32, burst: u32) -> TokenRateLimit {
        let limiter = NonZeroU32::new(per_minute).map(|rate| {
            RateLimiter::keyed(
                Quota::per_minute(rate)
                    .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN)),
            )
        });
        TokenRateLimit {
            limiter,
            per_minute,
            burst,
        }
    }

    fn check(&self, id: &TokenId) -> Result<(), Error> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if limiter.len() > MAX_TRACKED_TOKENS {
            limiter.retain_recent();
        }
        limiter.check_key(id).map_err(|not_until| {
            let wait = not_until.wait_time_from(limiter.clock().now()).as_secs_f64();
            Error::new(
                ErrorCode::RateLimited,
                format!(
                    "too many requests with your client token: at most {} a minute and {} at once (--rate-limit); try again in {wait:.1} s",
                    self.per_minute, self.burst
                ),
            )
            .with_retry_after(Some(wait))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "token-aaaaaaaaaaaaaaaa";
    const B: &str = "token-bbbbbbbbbbbbbbbb";

    fn tokens(text: &str) -> ClientTokens {
        ClientTokens {
            path: PathBuf::new(),
            digests: RwLock::new(parse(text).unwrap().into()),
        }
    }

    /// Issue 33, item 10: `--rate-limit 0` turned off the pacing of refused tokens too.
    #[test]
    fn refused_tokens_are_paced_even_with_the_rate_limit_off() {
        let access = Access::new(Some(Arc::new(tokens(A))), 0, 20);
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        let wrong = HeaderValue::from_static("Bearer token-guessed-0123456789");
        let statuses: Vec<u16> = (0..25)
            .map(|_| {
                access
                    .admit(Some(&wrong), client)
                    .unwrap_err()
                    .status
                    .as_u16()
            })
            .collect();
        assert_eq!(&statuses[..REFUSAL_BURST as usize], &[401; 20]);
        assert_eq!(statuses[24], 429, "{statuses:?}");
        // The right token is not paced by them, nor limited (--rate-limit 0).
        let right = HeaderValue::from_str(&format!("Bearer {A}")).unwrap();
        for _ in 0..50 {
            assert!(access.admit(Some(&right), client).is_ok());
        }
    }

    #[test]
    fn comments_and_blank_lines_are_skipped_and_only_listed_tokens_pass() {
        let t = tokens(&format!("# team a\n\n  {A}  \n#{B}\n"));
        assert_eq!(t.len(), 1);
        assert_eq!(t.check(A), Some(digest(A.as_bytes())));
        assert_eq!(t.check(B), None, "a commented-out token");
        assert_eq!(t.check(""), None);
        assert_eq!(t.check(&A[..A.len() - 1]), None);
    }

    #[test]
    fn bad_lines_are_named_by_number_never_quoted() {
        for (text, line) in [
            ("ok-token-0123456789\nshort\n", "line 2"),
            ("has a space in it 0123456789", "line 1"),
            ("# c\ntoken-\u{e9}0123456789abcdef", "line 2"),
        ] {
            let why = parse(text).unwrap_err();
            assert!(why.contains(line), "{why}");
            assert!(
                !why.contains("short") && !why.contains("space in") && !why.contains("0123"),
                "{why}"
            );
        }
    }

    #[test]
    fn the_caller_is_found_from_the_bearer_header() {
        // A burst of 20: room for the refusals below before they are paced.
        let access = Access::new(Some(Arc::new(tokens(A))), 0, 20);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let header = |v: &str| HeaderValue::from_str(v).unwrap();
        assert_eq!(
            access
                .admit(Some(&header(&format!("Bearer {A}"))), ip)
                .unwrap(),
            Caller(Some(digest(A.as_bytes())))
        );
        assert!(
            access
                .admit(Some(&header(&format!("bearer  {A} "))), ip)
                .is_ok()
        );
        for bad in [format!("Bearer {B}"), A.to_owned(), format!("Basic {A}")] {
            let refusal = access.admit(Some(&header(&bad)), ip).unwrap_err();
            assert_eq!(refusal.status, StatusCode::UNAUTHORIZED, "{bad}");
            assert!(!refusal.error.message.contains(A) && !refusal.error.message.contains(B));
        }
        assert_eq!(
            access.admit(None, ip).unwrap_err().error.code,
            ErrorCode::Unauthorized
        );
        let open = Access::new(None, 0, 1);
        assert_eq!(open.admit(None, ip).unwrap(), Caller(None));
    }

    #[test]
    fn refusals_are_paced_per_address_and_callers_per_token() {
        let access = Access::new(Some(Arc::new(tokens(&format!("{A}\n{B}")))), 60, 2);
        let ip: IpAddr = "192.0.2.8".parse().unwrap();
        let wrong = HeaderValue::from_static("Bearer not-a-token-at-all-000");
        let statuses: Vec<u16> = (0..3)
            .map(|_| access.admit(Some(&wrong), ip).unwrap_err().status.as_u16())
            .collect();
        assert_eq!(statuses, [401, 401, 429]);
        let a = HeaderValue::from_str(&format!("Bearer {A}")).unwrap();
        let b = HeaderValue::from_str(&format!("Bearer {B}")).unwrap();
        assert!(access.admit(Some(&a), ip).is_ok() && access.admit(Some(&a), ip).is_ok());
        assert_eq!(
            access.admit(Some(&a), ip).unwrap_err().error.code,
            ErrorCode::RateLimited
        );
        assert!(
            access.admit(Some(&b), ip).is_ok(),
            "another token, its own bucket"
        );
    }
}
