//! API tokens at rest and at the door: how they are hashed, and how strong a configured admin
//! token must be.
//!
//! A token is stored only as `hmac-sha256:HEX`, keyed by a key derived from the secrets key
//! (`store::sealed::SecretsKey::token_hash_key`), which lives apart from the database: a stolen
//! database (a backup, a support bundle) then allows no offline guessing, even of a weak token.
//! Records written before keyed hashes (plain hex SHA-256) still authenticate, so an upgrade
//! locks nobody out; new and replaced tokens are keyed.
//!
//! Generated tokens carry 256 random bits. A token the operator configures (`admin_token`,
//! `PLUGBOARD_ADMIN_TOKEN`) must carry at least [`MIN_ADMIN_TOKEN_BITS`] by a conservative
//! estimate, or the server refuses to start and says how to make one.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The least estimated entropy of a configured admin token.
pub const MIN_ADMIN_TOKEN_BITS: f64 = 128.0;

/// The prefix of a keyed token hash.
const KEYED: &str = "hmac-sha256:";

/// The prefix of a scoped token's hash, before [`KEYED`]: a Plugboard that predates scopes reads
/// it as a legacy hash that matches nothing, so a scoped token fails closed on an older node
/// (a cluster mid-upgrade, a rolled-back binary) instead of acting unscoped.
const SCOPED: &str = "scoped:";

/// Hashes and checks tokens under the server's token hash key.
#[derive(Clone)]
pub struct TokenHasher {
    key: [u8; 32],
}

impl std::fmt::Debug for TokenHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHasher(…)")
    }
}

impl TokenHasher {
    /// Under `key` (see `SecretsKey::token_hash_key`).
    pub fn new(key: [u8; 32]) -> TokenHasher {
        TokenHasher { key }
    }

    /// What is stored for `token`.
    pub fn hash(&self, token: &str) -> String {
        format!("{KEYED}{}", hex::encode(self.mac(token)))
    }

    /// What is stored for a scoped `token` (see [`SCOPED`]).
    pub fn hash_scoped(&self, token: &str) -> String {
        format!("{SCOPED}{}", self.hash(token))
    }

    /// A token presented at the door, hashed once for comparing with every stored record.
    pub fn presented(&self, token: &str) -> Presented {
        Presented { keyed: self.mac(token), legacy: Sha256::digest(token.as_bytes()).into() }
    }

    fn mac(&self, token: &str) -> [u8; 32] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
        mac.update(token.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// A presented token's hashes.
pub struct Presented {
    keyed: [u8; 32],
    legacy: [u8; 32],
}

impl Presented {
    /// Whether `stored` (a record's hash, keyed or legacy) is this token's, in constant time.
    pub fn matches(&self, stored: &str) -> bool {
        let stored = stored.strip_prefix(SCOPED).unwrap_or(stored);
        let (expected, hex_digits) = match stored.strip_prefix(KEYED) {
            Some(keyed) => (&self.keyed, keyed),
            None => (&self.legacy, stored),
        };
        let stored = hex::decode(hex_digits).unwrap_or_default();
        bool::from(stored.ct_eq(expected.as_slice()))
    }
}

/// An estimate of the entropy of `token`, in bits, meant to refuse what is plainly weak: its
/// length (counting at most four characters per distinct character, so repetition earns little)
/// times the bits a character carries — 4 for hex, 6 for base64 and similar, otherwise
/// log2 of the alphabet its character classes span (lower case 26, upper case 26, digits 10,
/// anything else 33). Passphrases of words score higher than their real entropy: generate tokens.
pub fn estimated_bits(token: &str) -> f64 {
    let chars: Vec<char> = token.chars().collect();
    let mut distinct = chars.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let has = |class: fn(&char) -> bool| chars.iter().any(class);
    let alphabet = [
        (has(char::is_ascii_lowercase), 26.0),
        (has(char::is_ascii_uppercase), 26.0),
        (has(char::is_ascii_digit), 10.0),
        (has(|c| !c.is_ascii_alphanumeric()), 33.0),
    ]
    .iter()
    .filter(|(present, _)| *present)
    .map(|(_, size)| size)
    .sum::<f64>();
    // A token drawn from a known encoding carries that encoding's bits per character, however
    // few classes a particular draw happened to use: hex 4, base64 (URL-safe or not) 6.
    let bits_per_char = if !chars.is_empty() && chars.iter().all(char::is_ascii_hexdigit) {
        4.0
    } else if !chars.is_empty() && chars.iter().all(|c| c.is_ascii_alphanumeric() || "-_+/=".contains(*c)) {
        6.0
    } else if alphabet > 1.0 {
        alphabet.log2()
    } else {
        return 0.0;
    };
    chars.len().min(4 * distinct.len()) as f64 * bits_per_char
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_tokens_are_estimated_weak_and_random_ones_strong() {
        for weak in [
            "",
            "test-admin-token",
            "password1234",
            &"a".repeat(200),
            "abcabcabcabcabcabcabcabcabcabc",
            "3f9a1c7e5b2d4f6a8c0e1b3d5", // 25 hex characters: 100 bits
        ] {
            assert!(estimated_bits(weak) < MIN_ADMIN_TOKEN_BITS, "{weak:?}: {}", estimated_bits(weak));
        }
        for strong in
            ["pb_8f14e45fceea167a5a36dedd4bea2543", "3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e", "Zx8#qL2!vR7@pN4$wT6%"]
        {
            assert!(estimated_bits(strong) >= MIN_ADMIN_TOKEN_BITS, "{strong:?}: {}", estimated_bits(strong));
        }
    }

    #[test]
    fn keyed_hashes_match_only_under_their_key_and_legacy_ones_still_do() {
        let hasher = TokenHasher::new([7; 32]);
        let stored = hasher.hash("pb_token");
        assert!(stored.starts_with(KEYED));
        assert!(hasher.presented("pb_token").matches(&stored));
        assert!(!hasher.presented("pb_other").matches(&stored));
        assert!(!TokenHasher::new([8; 32]).presented("pb_token").matches(&stored), "another server's key");
        let legacy = hex::encode(Sha256::digest(b"pb_token"));
        assert!(hasher.presented("pb_token").matches(&legacy));
        assert!(!hasher.presented("pb_token").matches("not hex"));
        let scoped = hasher.hash_scoped("pb_token");
        assert!(hasher.presented("pb_token").matches(&scoped));
        // What a Plugboard before scopes does with it: a legacy hash that matches nothing.
        let before_scopes = |stored: &str| match stored.strip_prefix(KEYED) {
            Some(_) => true,
            None => hex::decode(stored).is_ok(),
        };
        assert!(!before_scopes(&scoped), "an older node never accepts a scoped token");
    }
}
