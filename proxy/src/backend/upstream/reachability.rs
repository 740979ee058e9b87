//! Whether the upstream answers at all, for `/healthz`: one cheap request without the key,
//! remembered for a while so that health checks cannot be used to flood the upstream.

use std::time::Duration;

use reqwest::{Client, Url};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::backend::Reachability;

/// How long a finding is reused.
const CACHE_FOR: Duration = Duration::from_secs(30);
/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Prober {
    url: Url,
    /// The last finding and when it was made; the lock also makes concurrent checks share
    /// one probe.
    last: Mutex<Option<(Instant, bool, Option<String>)>>,
}

impl Prober {
    pub fn new(url: Url) -> Prober {
        Prober {
            url,
            last: Mutex::new(None),
        }
    }

    pub async fn check(&self, client: &Client) -> Reachability {
        let mut last = self.last.lock().await;
        let fresh = last
            .as_ref()
            .is_some_and(|(at, _, _)| at.elapsed() < CACHE_FOR);
        if !fresh {
            // Any HTTP answer (even 404 or 401) means the host is there.
            let finding = match client
                .get(self.url.clone())
                .timeout(PROBE_TIMEOUT)
                .send()
                .await
            {
                Ok(_) => (true, None),
                Err(e) if e.is_timeout() => (
                    false,
                    Some(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
                ),
                Err(e) if e.is_connect() => (false, Some("cannot connect".to_owned())),
                Err(e) => (false, Some(e.without_url().to_string())),
            };
            *last = Some((Instant::now(), finding.0, finding.1));
        }
        let (at, reachable, detail) = last.clone().unwrap_or((Instant::now(), false, None));
        Reachability {
            url: self.url.to_string(),
            reachable,
            detail,
            checked_secs_ago: at.elapsed().as_secs(),
        }
    }
}
