//! The city portal's OpenID Connect provider, through which visitors sign in: the
//! authorization code flow with PKCE, `state` and `nonce`, by the `openidconnect` crate over the
//! workspace's own reqwest. The provider's discovery document and keys are fetched when first
//! needed and kept for `portal.metadata_minutes` (dropped at once when an ID token's signature
//! cannot be checked with the keys kept, so that rotated keys are picked up). Tokens are read
//! and dropped: only the subject and the name claims leave this module.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};

use crate::config::PortalSettings;
use crate::storage::{PortalPerson, VisitorName};

/// The largest answer the provider may give (a discovery document or a key set).
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// The ID token signatures accepted: the provider's keys only, never an HMAC keyed by the
/// client secret (whoever knows the secret could then vouch for anyone) nor `none`.
const ID_TOKEN_ALGORITHMS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Where the portal sends visitors back.
pub const CALLBACK_PATH: &str = "/visitor/callback";

#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// Not reachable, or its discovery document is wrong (an issuer other than configured).
    #[error("the portal's provider is not available: {0}")]
    Unavailable(String),
    /// The token endpoint refused the code: expired, used, issued to another client, or the
    /// PKCE verifier does not match.
    #[error("the portal refused the sign-in code: {0}")]
    CodeRefused(String),
    /// The ID token failed a check: signature, issuer, audience, expiry or nonce.
    #[error("the portal's ID token was refused: {0}")]
    BadIdToken(String),
}

/// A sign-in to send the visitor to.
pub struct SignInStart {
    /// The provider's authorization address, with the request in its query.
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// HTTP to the provider failed.
#[derive(Debug, thiserror::Error)]
pub enum PortalHttpError {
    #[error(transparent)]
    Request(#[from] reqwest::Error),
    #[error("the answer is larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("the answer could not be built: {0}")]
    Http(#[from] openidconnect::http::Error),
}

pub struct Portal {
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: ClientSecret,
    redirect: RedirectUrl,
    http: reqwest::Client,
    metadata_for: Duration,
    metadata: Mutex<Option<(Instant, CoreProviderMetadata)>>,
}

impl Portal {
    /// The portal as configured; `None` when sign-in through it is off.
    pub fn new(settings: &PortalSettings, public_url: &str) -> Result<Option<Self>, PortalError> {
        if !settings.enabled() {
            return Ok(None);
        }
        let bad = |what: &str, error: &dyn std::fmt::Display| {
            PortalError::Unavailable(format!("{what}: {error}"))
        };
        let issuer =
            IssuerUrl::new(settings.issuer.trim().to_string()).map_err(|e| bad("issuer", &e))?;
        let redirect = RedirectUrl::new(format!(
            "{}{CALLBACK_PATH}",
            public_url.trim().trim_end_matches('/')
        ))
        .map_err(|e| bad("public_url", &e))?;
        let http = reqwest::Client::builder()
            // Following redirects would let the provider's answers lead the server elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(settings.request_timeout_secs))
            .build()
            .map_err(|e| bad("HTTP client", &e))?;
        Ok(Some(Self {
            issuer,
            client_id: ClientId::new(settings.client_id.trim().to_string()),
            client_secret: ClientSecret::new(settings.client_secret.0.clone()),
            redirect,
            http,
            metadata_for: Duration::from_secs(u64::from(settings.metadata_minutes) * 60),
            metadata: Mutex::new(None),
        }))
    }

    /// The configured issuer, which an authorization response's `iss` must equal.
    pub fn issuer(&self) -> &str {
        self.issuer.as_str()
    }

    /// The provider's discovery document and keys, fetched when the kept ones ran out. The
    /// fetch holds no lock: a provider that hangs delays the sign-ins that need it, each by
    /// at most `request_timeout_secs`, and not one after another.
    async fn provider_metadata(&self) -> Result<CoreProviderMetadata, PortalError> {
        if let Some((fetched, metadata)) = self.kept_metadata().as_ref()
            && fetched.elapsed() < self.metadata_for
        {
            return Ok(metadata.clone());
        }
        let http = self.http.clone();
        // Checks that the document's issuer is the configured one, and fetches its keys.
        let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &move |request| {
            send(http.clone(), request)
        })
        .await
        .map_err(|error| PortalError::Unavailable(error_chain(&error)))?;
        *self.kept_metadata() = Some((Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    fn kept_metadata(&self) -> std::sync::MutexGuard<'_, Option<(Instant, CoreProviderMetadata)>> {
        // Only ever assigned whole: a panic elsewhere cannot leave it half-written.
        self.metadata.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new sign-in: the address to send the visitor to and the secrets to keep until they
    /// come back.
    pub async fn begin(&self) -> Result<SignInStart, PortalError> {
        let metadata = self.provider_metadata().await?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            self.client_id.clone(),
            Some(self.client_secret.clone()),
        )
        .set_redirect_uri(self.redirect.clone());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".to_string()))
            .set_pkce_challenge(challenge)
            .url();
        Ok(SignInStart {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the code for tokens and checks the ID token (signature, issuer, audience,
    /// expiry, nonce): who signed in.
    pub async fn finish(
        &self,
        code: String,
        pkce_verifier: String,
        nonce: String,
    ) -> Result<PortalPerson, PortalError> {
        let metadata = self.provider_metadata().await?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            self.client_id.clone(),
            Some(self.client_secret.clone()),
        )
        .set_redirect_uri(self.redirect.clone());
        let http = self.http.clone();
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|error| PortalError::Unavailable(error_chain(&error)))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier))
            .request_async(&move |request| send(http.clone(), request))
            .await
            .map_err(|error| PortalError::CodeRefused(error_chain(&error)))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| PortalError::BadIdToken("the answer has no ID token".into()))?;
        let verifier = client
            .id_token_verifier()
            .set_allowed_algs(ID_TOKEN_ALGORITHMS);
        let claims = id_token
            .claims(&verifier, &Nonce::new(nonce))
            .map_err(|error| {
                if matches!(error, ClaimsVerificationError::SignatureVerification(_)) {
                    // Perhaps the portal rotated its keys: the next sign-in fetches them.
                    *self.kept_metadata() = None;
                }
                PortalError::BadIdToken(error_chain(&error))
            })?;
        let claim = |value: Option<&str>| value.map(str::trim).unwrap_or_default().to_string();
        Ok(PortalPerson {
            issuer: claims.issuer().as_str().to_string(),
            subject: claims.subject().as_str().to_string(),
            name: VisitorName {
                family_name: claim(
                    claims
                        .family_name()
                        .and_then(|c| c.get(None))
                        .map(|n| n.as_str()),
                ),
                given_name: claim(
                    claims
                        .given_name()
                        .and_then(|c| c.get(None))
                        .map(|n| n.as_str()),
                ),
                middle_name: claim(
                    claims
                        .middle_name()
                        .and_then(|c| c.get(None))
                        .map(|n| n.as_str()),
                ),
            },
        })
    }
}

/// An error with its causes, for the log.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// One request to the provider through the workspace's reqwest, its answer capped in size.
async fn send(
    http: reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, PortalHttpError> {
    let request = reqwest::Request::try_from(request)?;
    let mut response = http.execute(request).await?;
    let mut answer = openidconnect::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        answer = answer.header(name, value);
    }
    if response
        .content_length()
        .is_some_and(|length| length > MAX_RESPONSE_BYTES as u64)
    {
        return Err(PortalHttpError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(PortalHttpError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(answer.body(body)?)
}
