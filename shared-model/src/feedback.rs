//! The visitor's feedback link, made on the tablet offline and checked by the server.
//!
//! After a rating the tablet shows a QR code of `{base_url}{token}`: the token carries the
//! visit's id and the tablet's id, signed with an Ed25519 key the tablet generated and whose
//! public half it registered with the server ([`FeedbackKey`]). The server verifies the
//! signature before anything else, so a link can neither be guessed nor altered, and it can do
//! so before the visit itself has synced. The token is URL-safe base64 without padding.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The first byte of every token: the layout below, and what the signature covers.
const TOKEN_VERSION: u8 = 1;
/// What is signed: this context, then the visit id and the tablet id, so that a signature
/// made for anything else can never pass as a feedback link.
const SIGNING_CONTEXT: &[u8] = b"office-feedback-link/1";
const TOKEN_BYTES: usize = 1 + 16 + 8 + 64;
/// The length of an encoded token; anything else is not a token.
pub const TOKEN_CHARS: usize = (TOKEN_BYTES * 4).div_ceil(3);

/// A tablet's public key for feedback links, as it travels: 32 bytes, URL-safe base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct FeedbackKey(pub String);

impl FeedbackKey {
    pub fn of(key: &SigningKey) -> Self {
        Self(URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()))
    }

    /// The key's 32 bytes, if this is a valid Ed25519 public key.
    pub fn to_bytes(&self) -> Option<[u8; 32]> {
        let bytes: [u8; 32] = URL_SAFE_NO_PAD.decode(&self.0).ok()?.try_into().ok()?;
        VerifyingKey::from_bytes(&bytes).ok()?;
        Some(bytes)
    }
}

/// Where a tablet's feedback links lead, from the server's answer to a sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeedbackLinks {
    /// The public address a link starts with; the token follows it.
    pub base_url: String,
    /// The tablet's id, which every link names.
    pub tablet_id: i64,
}

/// What a link names, once its signature is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedbackToken {
    pub visit_id: Uuid,
    pub tablet_id: i64,
}

/// Why a token is not a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not the shape of a token.
    Malformed,
    /// Well-formed, but not signed by the key of the tablet it names.
    BadSignature,
}

impl FeedbackToken {
    fn message(&self) -> Vec<u8> {
        let mut message = Vec::with_capacity(SIGNING_CONTEXT.len() + 24);
        message.extend_from_slice(SIGNING_CONTEXT);
        message.extend_from_slice(self.visit_id.as_bytes());
        message.extend_from_slice(&self.tablet_id.to_be_bytes());
        message
    }

    /// The signed token, on the tablet.
    pub fn sign(&self, key: &SigningKey) -> String {
        let signature = key.sign(&self.message());
        let mut bytes = Vec::with_capacity(TOKEN_BYTES);
        bytes.push(TOKEN_VERSION);
        bytes.extend_from_slice(self.visit_id.as_bytes());
        bytes.extend_from_slice(&self.tablet_id.to_be_bytes());
        bytes.extend_from_slice(&signature.to_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// What a token claims, unchecked: the server needs the tablet id to find the key.
    pub fn read(token: &str) -> Result<(Self, [u8; 64]), TokenError> {
        if token.len() != TOKEN_CHARS {
            return Err(TokenError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| TokenError::Malformed)?;
        let bytes: [u8; TOKEN_BYTES] = bytes.try_into().map_err(|_| TokenError::Malformed)?;
        if bytes[0] != TOKEN_VERSION {
            return Err(TokenError::Malformed);
        }
        let (visit, rest) = bytes[1..].split_at(16);
        let (tablet, signature) = rest.split_at(8);
        let claims = Self {
            visit_id: Uuid::from_slice(visit).map_err(|_| TokenError::Malformed)?,
            tablet_id: i64::from_be_bytes(tablet.try_into().map_err(|_| TokenError::Malformed)?),
        };
        let signature: [u8; 64] = signature.try_into().map_err(|_| TokenError::Malformed)?;
        Ok((claims, signature))
    }

    /// Checks a token against the named tablet's public key (32 bytes).
    pub fn verify(token: &str, public_key: &[u8; 32]) -> Result<Self, TokenError> {
        let (claims, signature) = Self::read(token)?;
        let key = VerifyingKey::from_bytes(public_key).map_err(|_| TokenError::BadSignature)?;
        key.verify_strict(&claims.message(), &Signature::from_bytes(&signature))
            .map_err(|_| TokenError::BadSignature)?;
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn claims() -> FeedbackToken {
        FeedbackToken {
            visit_id: Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            tablet_id: 42,
        }
    }

    #[test]
    fn a_signed_token_verifies_with_its_key_only() {
        let token = claims().sign(&key(1));
        assert_eq!(token.len(), TOKEN_CHARS);
        let public = FeedbackKey::of(&key(1)).to_bytes().expect("a valid key");
        assert_eq!(FeedbackToken::verify(&token, &public), Ok(claims()));
        let other = FeedbackKey::of(&key(2)).to_bytes().expect("a valid key");
        assert_eq!(
            FeedbackToken::verify(&token, &other),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn every_altered_character_is_refused() {
        let token = claims().sign(&key(1));
        let public = FeedbackKey::of(&key(1)).to_bytes().expect("a valid key");
        for at in 0..token.len() {
            let mut altered = token.clone().into_bytes();
            altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(altered).expect("ASCII");
            assert!(
                FeedbackToken::verify(&altered, &public).is_err(),
                "position {at} altered and still accepted"
            );
        }
    }

    #[test]
    fn not_a_token() {
        let public = FeedbackKey::of(&key(1)).to_bytes().expect("a valid key");
        for junk in [
            "",
            "abc",
            &"A".repeat(TOKEN_CHARS),
            &"é".repeat(TOKEN_CHARS),
        ] {
            assert_eq!(
                FeedbackToken::verify(junk, &public),
                Err(TokenError::Malformed),
                "{junk:?}"
            );
        }
        assert_eq!(FeedbackKey("short".into()).to_bytes(), None);
    }
}
