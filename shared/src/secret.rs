//! Secrets: the Salted CX shared token(s) and NATS credentials. Never printed, compared in
//! constant time; URLs that may carry credentials are redacted before they are shown.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A secret string whose `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the few places that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret::new(s))
    }
}

/// Shown in place of a secret part of a URL.
const REDACTED: &str = "***";

/// `url` as it may be shown in an error or a log: the password (or a token standing alone as
/// the user, as in `nats://TOKEN@host`), every query value and the fragment are replaced by
/// `***`; the scheme, user name, host, port, path and query names stay, so the message still
/// says which server is meant. Works on text that is not a valid URL too (the error about an
/// unusable URL is where it is shown whole otherwise).
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(authority_end);
    let (rest, fragment) = match rest.find('#') {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let (path, query) = match rest.find('?') {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let mut shown = String::with_capacity(url.len());
    shown.push_str(scheme);
    match authority.rfind('@') {
        Some(at) => {
            if let Some((user, _password)) = authority[..at].split_once(':') {
                shown.push_str(user);
                shown.push(':');
            }
            shown.push_str(REDACTED);
            shown.push_str(&authority[at..]);
        }
        None => shown.push_str(authority),
    }
    shown.push_str(path);
    if let Some(query) = query {
        shown.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _value)) => format!("{name}={REDACTED}"),
                None if pair.is_empty() => String::new(),
                None => REDACTED.to_string(),
            })
            .collect();
        shown.push_str(&pairs.join("&"));
    }
    if fragment.is_some_and(|f| !f.is_empty()) {
        shown.push('#');
        shown.push_str(REDACTED);
    }
    shown
}

/// [`redact_url`] for each entry of a comma-separated list (`NATS_URL`).
pub fn redact_urls(urls: &str) -> String {
    urls.split(',')
        .map(|url| redact_url(url.trim()))
        .collect::<Vec<_>>()
        .join(",")
}

/// The shared Salted CX secret(s): every token verifies inbound requests (so a new token can be
/// rolled out before the old one is retired); the first one signs callbacks.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSet {
    tokens: Vec<Secret>,
    /// SHA-256 of each token: what presented tokens are compared with.
    digests: Vec<[u8; 32]>,
}

/// SHA-256 of `bytes`: comparing digests (always 32 bytes) instead of the tokens themselves
/// keeps the comparison's time independent of the tokens' lengths.
fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl TokenSet {
    /// The token used to sign callbacks.
    pub fn signing(&self) -> &Secret {
        &self.tokens[0]
    }

    /// Every token, the signing one first.
    pub fn all(&self) -> &[Secret] {
        &self.tokens
    }

    /// How many tokens are accepted.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Never true: a token set has at least one token.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Whether `presented` equals one of the tokens. Both sides are hashed first, so the
    /// constant-time comparison always sees 32 bytes (a plain comparison returns at once when
    /// the lengths differ, which tells the token's length); every token is compared, and the
    /// time does not depend on where the digests differ. Hashing the presented token takes
    /// time that depends only on its own length, which its sender knows anyway.
    pub fn verify(&self, presented: &str) -> bool {
        let presented = digest(presented.as_bytes());
        let mut matched = subtle::Choice::from(0);
        for token in &self.digests {
            matched |= token.ct_eq(&presented);
        }
        matched.into()
    }

    /// Checks an `Authorization` header value of the form `Bearer <token>`.
    pub fn verify_bearer(&self, header: &str) -> bool {
        let mut parts = header.trim().splitn(2, ' ');
        let scheme = parts.next().unwrap_or_default();
        let token = parts.next().unwrap_or_default().trim();
        scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && self.verify(token)
    }
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenSet({} token(s), ***)", self.tokens.len())
    }
}

impl FromStr for TokenSet {
    type Err = String;

    /// Parses a comma-separated list; empty entries are an error, not silently dropped.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let tokens: Vec<&str> = s.split(',').map(str::trim).collect();
        if tokens.iter().any(|t| t.is_empty()) {
            return Err(
                "SALTEDCX_TOKEN must be one token or a comma-separated list of \
                        non-empty tokens"
                    .into(),
            );
        }
        Ok(TokenSet {
            digests: tokens.iter().map(|t| digest(t.as_bytes())).collect(),
            tokens: tokens.into_iter().map(Secret::new).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_of_a_rotation_set_verifies_and_the_first_signs() {
        let set: TokenSet = "new-token, old-token".parse().expect("parses");
        assert!(set.verify("new-token"));
        assert!(set.verify("old-token"));
        assert!(!set.verify("other"));
        assert!(!set.verify(""));
        assert_eq!(set.signing().expose(), "new-token");
    }

    #[test]
    fn bearer_header_needs_the_scheme_and_a_known_token() {
        let set: TokenSet = "s3cret".parse().expect("parses");
        assert!(set.verify_bearer("Bearer s3cret"));
        assert!(set.verify_bearer("bearer s3cret"));
        assert!(!set.verify_bearer("s3cret"));
        assert!(!set.verify_bearer("Basic s3cret"));
        assert!(!set.verify_bearer("Bearer "));
    }

    #[test]
    fn empty_entries_in_the_token_list_are_rejected() {
        assert!("a,,b".parse::<TokenSet>().is_err());
        assert!("".parse::<TokenSet>().is_err());
    }

    #[test]
    fn urls_are_shown_without_passwords_tokens_query_values_or_fragments() {
        for (url, shown) in [
            ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
            (
                "nats://admin:pa55@nats-0.nats:4222",
                "nats://admin:***@nats-0.nats:4222",
            ),
            ("nats://t0ken@nats:4222", "nats://***@nats:4222"),
            (
                "https://u:p@llm.internal/v1?key=k3y&api-version=1#frag",
                "https://u:***@llm.internal/v1?key=***&api-version=***#***",
            ),
            ("http://[::1", "http://[::1"),
            ("user:pw@host:4222", "user:***@host:4222"),
            ("http://host/p?sk-abc", "http://host/p?***"),
            ("http://a@b@host/", "http://***@host/"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        assert_eq!(
            redact_urls("nats://a:b@n1:4222, nats://n2:4222"),
            "nats://a:***@n1:4222,nats://n2:4222"
        );
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let set: TokenSet = "hunter2".parse().expect("parses");
        assert!(!format!("{set:?}").contains("hunter2"));
        assert!(!format!("{:?}", Secret::new("hunter2")).contains("hunter2"));
    }
}
