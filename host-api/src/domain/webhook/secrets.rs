//! A flow's webhook secrets: the current one and, during a rotation, the previous one until a
//! deadline — as Stripe and Standard Webhooks senders expect when an operator rolls a secret.
//!
//! Both are kept in the one sealed value the store holds for the flow (`Op::PutWebhookSecret`),
//! written as `plugboard-secrets/v1:` and JSON; a value without that prefix is a secret set
//! before rotation existed, read as the current one.

use serde::{Deserialize, Serialize};

const FORMAT: &str = "plugboard-secrets/v1:";

/// The secrets a delivery may be signed with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSecrets {
    current: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<String>,
    /// Until when (Unix seconds) `previous` is accepted.
    #[serde(default)]
    previous_until: u64,
}

impl WebhookSecrets {
    /// One secret, no rotation.
    pub fn single(secret: &str) -> WebhookSecrets {
        WebhookSecrets { current: secret.into(), previous: None, previous_until: 0 }
    }

    /// Reads the stored value.
    pub fn decode(stored: &str) -> WebhookSecrets {
        stored
            .strip_prefix(FORMAT)
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_else(|| WebhookSecrets::single(stored))
    }

    /// The stored value.
    pub fn encode(&self) -> String {
        format!("{FORMAT}{}", serde_json::to_string(self).unwrap_or_default())
    }

    /// `secret` becomes the current one; the current one stays accepted for `keep_previous_secs`
    /// more seconds (none: it is forgotten now).
    pub fn rotate(&self, secret: &str, keep_previous_secs: u64, now: u64) -> WebhookSecrets {
        if keep_previous_secs == 0 {
            return WebhookSecrets::single(secret);
        }
        WebhookSecrets {
            current: secret.into(),
            previous: Some(self.current.clone()),
            previous_until: now.saturating_add(keep_previous_secs),
        }
    }

    /// The secrets accepted at `now`: the current one first.
    pub fn candidates(&self, now: u64) -> Vec<&str> {
        let previous = self.previous.as_deref().filter(|_| now <= self.previous_until);
        std::iter::once(self.current.as_str()).chain(previous).collect()
    }

    /// The current secret.
    pub fn current(&self) -> &str {
        &self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_keeps_the_previous_secret_until_its_deadline() {
        let old = WebhookSecrets::decode("a-secret-set-before-rotation");
        assert_eq!(old.candidates(0), vec!["a-secret-set-before-rotation"]);
        let rotated = WebhookSecrets::decode(&old.rotate("the-new-secret-value", 60, 1000).encode());
        assert_eq!(rotated.candidates(1060), vec!["the-new-secret-value", "a-secret-set-before-rotation"]);
        assert_eq!(rotated.candidates(1061), vec!["the-new-secret-value"]);
        assert_eq!(rotated.rotate("third-secret-value", 0, 1000).candidates(1000), vec!["third-secret-value"]);
    }
}
