//! Secrets: password hashes, random tokens and their digests; throttling of guesses.

use std::net::IpAddr;
use std::num::NonZeroU32;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("could not hash the password: {0}")]
    Hash(argon2::password_hash::Error),
}

/// An argon2id hash in PHC string form. Slow on purpose: call it off the async runtime.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(PasswordError::Hash)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(PasswordError::Hash)
}

/// [`hash_password`] on tokio's blocking pool, for the async handlers.
pub async fn hash_password_blocking(password: String) -> anyhow::Result<String> {
    let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await??;
    Ok(hash)
}

/// Whether `password` matches `hash`. A malformed stored hash matches nothing.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash to verify against when the login does not exist, so that the answer takes as long
/// as for a real account and does not tell which logins exist.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password").unwrap_or_default())
}

/// A 256-bit random secret, URL-safe base64.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The form in which tokens are stored and looked up: a fast digest is right for 256-bit
/// random secrets, which cannot be guessed, and it is checked on every request.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The token every form of a session sends back (CSRF): derived from the session's token,
/// which only the browser holding the cookie knows, so nothing more needs storing. `purpose`
/// keeps the staff's and the visitors' tokens apart.
pub fn form_token(purpose: &str, session_token: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"office-server ");
    hasher.update(purpose.as_bytes());
    hasher.update(b"\0");
    hasher.update(session_token.as_bytes());
    URL_SAFE_NO_PAD.encode(hasher.finalize())
}

/// So many attempts a minute per key; the budget refills evenly over the minute.
pub struct KeyedThrottle<K: std::hash::Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
}

impl<K: std::hash::Hash + Eq + Clone> KeyedThrottle<K> {
    pub fn per_minute(attempts: NonZeroU32) -> Self {
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(attempts)),
        }
    }

    /// Counts an attempt; `false` when the key's budget is used up.
    pub fn attempt(&self, key: &K) -> bool {
        self.limiter.check_key(key).is_ok()
    }

    /// Forgets keys whose budgets have fully refilled, so memory stays bounded.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
    }
}

/// So many attempts a minute per client network: an IPv4 address, or an IPv6 /64 — one
/// subscriber's share, which a client can walk through address by address.
pub struct AddressThrottle(KeyedThrottle<IpAddr>);

impl AddressThrottle {
    pub fn per_minute(attempts: NonZeroU32) -> Self {
        Self(KeyedThrottle::per_minute(attempts))
    }

    /// Counts an attempt from `client`; `false` when its network's budget is used up.
    pub fn attempt(&self, client: IpAddr) -> bool {
        self.0.attempt(&client_network(client))
    }

    pub fn forget_idle(&self) {
        self.0.forget_idle();
    }
}

/// The key a client address is counted under: IPv4 as it is (an IPv4-mapped IPv6 address as
/// its IPv4), IPv6 cut to its /64.
fn client_network(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Throttles guesses: per account (login) and per client address, independently.
pub struct LoginThrottle {
    per_account: KeyedThrottle<String>,
    per_address: AddressThrottle,
}

impl LoginThrottle {
    /// `per_account` attempts a minute for one login, `per_address` for one client address.
    pub fn new(per_account: NonZeroU32, per_address: NonZeroU32) -> Self {
        Self {
            per_account: KeyedThrottle::per_minute(per_account),
            per_address: AddressThrottle::per_minute(per_address),
        }
    }

    /// Counts an attempt; `false` when either limit is exhausted.
    pub fn attempt(&self, login: &str, address: IpAddr) -> bool {
        let address_ok = self.per_address.attempt(address);
        let account_ok = self.per_account.attempt(&login.to_lowercase());
        address_ok && account_ok
    }

    /// Forgets keys whose limits have fully recovered, so memory stays bounded.
    pub fn forget_idle(&self) {
        self.per_account.forget_idle();
        self.per_address.forget_idle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        let throttle = AddressThrottle::per_minute(NonZeroU32::new(2).unwrap());
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(throttle.attempt(a));
        assert!(throttle.attempt(b));
        assert!(!throttle.attempt(a), "the same /64 shares one budget");
        assert!(throttle.attempt(other));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert!(throttle.attempt(v4));
        assert!(throttle.attempt(mapped));
        assert!(!throttle.attempt(v4), "a mapped address is its IPv4");
        assert!(throttle.attempt("192.0.2.8".parse().unwrap()));
    }

    #[test]
    fn password_round_trip() {
        let hash = hash_password("верный пароль").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "верный пароль"));
        assert!(!verify_password(&hash, "неверный"));
        assert!(!verify_password("not a hash", "x"));
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = random_token();
        let b = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_ne!(token_digest(&a), token_digest(&b));
    }

    #[test]
    fn throttle_limits_each_key() {
        let throttle = LoginThrottle::new(NonZeroU32::new(2).unwrap(), NonZeroU32::new(3).unwrap());
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other_ip: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(throttle.attempt("Admin", ip));
        assert!(throttle.attempt("admin", other_ip));
        // Third attempt on the same account, whatever the address.
        assert!(!throttle.attempt("ADMIN", "127.0.0.3".parse().unwrap()));
        // The first address has two attempts left of three, then none.
        assert!(throttle.attempt("someone", ip));
        assert!(throttle.attempt("someone-else", ip));
        assert!(!throttle.attempt("a-third-one", ip));
    }
}
