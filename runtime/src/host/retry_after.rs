//! A remote's `Retry-After`, seen by the host on a plugin's outgoing requests.
//!
//! A remote that answers `429 Too Many Requests` or `503 Service Unavailable` with `Retry-After`
//! says when to come back. A plugin may pass that on itself (`plugin-error.retry-after`, which the
//! SDKs fill from the header), but a plugin built against the 0.1.0 contract cannot, and one that
//! reports a plain `retryable` forgets to. So the host reads the header on every response it hands
//! a plugin, keeps the longest delay of the invocation, and an invocation that then fails
//! retryably carries at least that delay (see `invoke.rs`): the flow's retry waits it out instead
//! of hammering a remote that asked for quiet, as it must with a rate-limited connection.
//!
//! Both forms of RFC 9110 §10.2.3 are read: delay-seconds and an HTTP-date. A delay past
//! [`MAX_RETRY_AFTER`] is cut to it; the retry policy's `max_backoff_ms` caps it again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The longest delay a remote's `Retry-After` is taken at.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3_600);

/// The longest `Retry-After` of one invocation's `429` and `503` answers, shared by its requests.
#[derive(Debug, Clone, Default)]
pub(crate) struct RetryAfterSeen(Arc<AtomicU64>);

impl RetryAfterSeen {
    /// Notes the delay a response with `status` and `headers` asks for, if any.
    pub(crate) fn observe(&self, status: u16, headers: &http::HeaderMap) {
        if status != 429 && status != 503 {
            return;
        }
        let delay = headers
            .get(http::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse(value, chrono::Utc::now()));
        // Zero (or a date already past) asks for no wait: nothing to hold the retry back for.
        if let Some(delay) = delay.filter(|delay| !delay.is_zero()) {
            let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX).max(1);
            self.0.fetch_max(millis, Ordering::Relaxed);
        }
    }

    /// The longest delay seen, if any.
    pub(crate) fn longest(&self) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            millis => Some(Duration::from_millis(millis)),
        }
    }
}

/// The delay a `Retry-After` value asks for at `now`: delay-seconds or an HTTP-date (a date in the
/// past asks for none); `None` when it is neither.
pub fn parse(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let ahead = date.with_timezone(&chrono::Utc).signed_duration_since(now);
    Some(ahead.to_std().unwrap_or(Duration::ZERO).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_seconds_and_dates_and_caps_them() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z").map(|d| d.to_utc()).ok();
        let now = now.unwrap_or_default();
        assert_eq!(parse("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse("99999999999999999999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse("Wed, 21 Oct 2015 07:28:30 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(parse("Wed, 21 Oct 2015 07:27:00 GMT", now), Some(Duration::ZERO));
        for junk in ["", "-5", "1.5", "soon", "Wed, 99 Oct 2015"] {
            assert_eq!(parse(junk, now), None, "{junk:?}");
        }
    }

    #[test]
    fn keeps_the_longest_delay_of_429_and_503_only() {
        let seen = RetryAfterSeen::default();
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("7"));
        seen.observe(500, &headers);
        assert_eq!(seen.longest(), None);
        seen.observe(429, &headers);
        headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("2"));
        seen.observe(503, &headers);
        assert_eq!(seen.longest(), Some(Duration::from_secs(7)));
        let zero = RetryAfterSeen::default();
        headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("0"));
        zero.observe(429, &headers);
        assert_eq!(zero.longest(), None, "zero asks for no wait");
    }
}
