//! The one error type of the library. Every failure that can reach a user (JS, the proxy, the
//! CLI) is an `Error` with a stable machine-readable [`ErrorCode`] and a human message.

use serde::{Deserialize, Serialize};

/// Stable error codes (a contract: JS code switches on them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The task token is not one of the known tasks.
    UnknownTask,
    /// The task needs text (free text or a region) and none was given.
    TextRequired,
    /// The task takes no text but some was given.
    TextNotAllowed,
    /// The text is not acceptable (too long, an <img> tag, control characters).
    TextInvalid,
    /// A region is malformed, empty, inverted or outside the image.
    BadRegion,
    /// The bytes are not an image we can decode (empty, truncated, another format).
    ImageDecode,
    /// The image is larger than the configured pixel limit.
    ImageTooLarge,
    /// The image cannot be made to fit the inline budget.
    ImageBudget,
    /// The bytes are not a ZIP archive, or a damaged one.
    ZipInvalid,
    /// The archive exceeds the entry-count, size or compression-ratio limits.
    ZipTooLarge,
    /// The archive's `.response` is missing, not JSON, or has the wrong shape.
    ResponseInvalid,
    /// The generated text could not be post-processed (e.g. the image size is zero).
    PostProcess,
    /// An invalid option was passed (e.g. a negative budget).
    BadOption,
    /// The upstream answered with an error (4xx/5xx, RFC 7807 problem).
    Upstream,
    /// The API key was missing or refused (401/403).
    Unauthorized,
    /// Too many requests, even after the allowed retries.
    RateLimited,
    /// The request could not be sent or the connection failed.
    Network,
    /// No answer within the time limit.
    Timeout,
    /// The caller aborted (AbortSignal).
    Aborted,
    /// A local model's file could not be fetched (404, network, CORS).
    ModelFetch,
    /// A local model's folder is unusable: a file missing, a bad config, a tensor missing,
    /// misshapen or not finite, a truncated checkpoint.
    ModelInvalid,
    /// The WebGPU backend was asked for and the browser has no adapter.
    WebgpuUnavailable,
    /// The browser has no WebAssembly SIMD, which the local runtime is built with.
    WasmSimdUnavailable,
    /// The device or the wasm memory ran out.
    OutOfMemory,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 24] = [
        ErrorCode::UnknownTask,
        ErrorCode::TextRequired,
        ErrorCode::TextNotAllowed,
        ErrorCode::TextInvalid,
        ErrorCode::BadRegion,
        ErrorCode::ImageDecode,
        ErrorCode::ImageTooLarge,
        ErrorCode::ImageBudget,
        ErrorCode::ZipInvalid,
        ErrorCode::ZipTooLarge,
        ErrorCode::ResponseInvalid,
        ErrorCode::PostProcess,
        ErrorCode::BadOption,
        ErrorCode::Upstream,
        ErrorCode::Unauthorized,
        ErrorCode::RateLimited,
        ErrorCode::Network,
        ErrorCode::Timeout,
        ErrorCode::Aborted,
        ErrorCode::ModelFetch,
        ErrorCode::ModelInvalid,
        ErrorCode::WebgpuUnavailable,
        ErrorCode::WasmSimdUnavailable,
        ErrorCode::OutOfMemory,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnknownTask => "UNKNOWN_TASK",
            ErrorCode::TextRequired => "TEXT_REQUIRED",
            ErrorCode::TextNotAllowed => "TEXT_NOT_ALLOWED",
            ErrorCode::TextInvalid => "TEXT_INVALID",
            ErrorCode::BadRegion => "BAD_REGION",
            ErrorCode::ImageDecode => "IMAGE_DECODE",
            ErrorCode::ImageTooLarge => "IMAGE_TOO_LARGE",
            ErrorCode::ImageBudget => "IMAGE_BUDGET",
            ErrorCode::ZipInvalid => "ZIP_INVALID",
            ErrorCode::ZipTooLarge => "ZIP_TOO_LARGE",
            ErrorCode::ResponseInvalid => "RESPONSE_INVALID",
            ErrorCode::PostProcess => "POST_PROCESS",
            ErrorCode::BadOption => "BAD_OPTION",
            ErrorCode::Upstream => "UPSTREAM",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::Network => "NETWORK",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::Aborted => "ABORTED",
            ErrorCode::ModelFetch => "MODEL_FETCH",
            ErrorCode::ModelInvalid => "MODEL_INVALID",
            ErrorCode::WebgpuUnavailable => "WEBGPU_UNAVAILABLE",
            ErrorCode::WasmSimdUnavailable => "WASM_SIMD_UNAVAILABLE",
            ErrorCode::OutOfMemory => "OUT_OF_MEMORY",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure with its stable code, a message for people, and optional details that callers
/// may act on (the HTTP status of an upstream error, the wait of a rate limit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    /// HTTP status of an upstream answer, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Seconds to wait before trying again (rate limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<f64>,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            status: None,
            retry_after_secs: None,
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_retry_after(mut self, secs: Option<f64>) -> Self {
        self.retry_after_secs = secs;
        self
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

/// The JSON body of an error answer of our proxy: `{"error": {"code", "message", "status"?,
/// "retryAfterSecs"?}}` (a contract between the proxy and the JS client).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: Error,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What an error message quotes of someone's input: its first 60 characters, and `…` when
/// there was more (a whole data URL or answer would drown the message).
pub fn excerpt(s: &str) -> String {
    const MAX_CHARS: usize = 60;
    match s.char_indices().nth(MAX_CHARS) {
        None => s.to_owned(),
        Some((cut, _)) => format!("{}…", &s[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_cut_at_characters_and_say_so() {
        assert_eq!(excerpt("short"), "short");
        let exact = "é".repeat(60);
        assert_eq!(excerpt(&exact), exact);
        assert_eq!(excerpt(&"é".repeat(61)), format!("{}…", "é".repeat(60)));
    }

    #[test]
    fn codes_serialize_as_their_strings() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn error_bodies_round_trip() {
        let body = ErrorBody {
            error: Error::new(ErrorCode::RateLimited, "slow down")
                .with_status(429)
                .with_retry_after(Some(2.5)),
        };
        let json = serde_json::to_string(&body).unwrap();
        assert_eq!(
            json,
            r#"{"error":{"code":"RATE_LIMITED","message":"slow down","status":429,"retryAfterSecs":2.5}}"#
        );
        assert_eq!(serde_json::from_str::<ErrorBody>(&json).unwrap(), body);
    }
}
