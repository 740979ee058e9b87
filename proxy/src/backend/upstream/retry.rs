//! How long to wait before retrying a 429: the upstream's `Retry-After` (read by florence2);
//! without one, florence2's `http_error::backoff`, the rule the browser client follows too.

use std::time::{Duration, SystemTime};

use florence2::http_error::parse_retry_after;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Longest wait taken from a `Retry-After` (beyond any --timeout anyway; this keeps absurd
/// values finite).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The wait a `Retry-After` header asks for, if it has a readable one.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let secs = parse_retry_after(headers.get(RETRY_AFTER)?.to_str().ok()?, now)?;
    Some(
        Duration::try_from_secs_f64(secs)
            .unwrap_or(MAX_RETRY_AFTER)
            .min(MAX_RETRY_AFTER),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn waits_are_read_and_bounded() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            retry_after(&headers("3"), now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&headers("0.5"), now),
            Some(Duration::from_millis(500))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(
            retry_after(&headers(&later), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&headers("1e30"), now), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
