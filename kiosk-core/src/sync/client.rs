//! The client of the office server's tablet API (reqwest over rustls).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::{ClientBuilder, Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use shared_model::{
    EnrolmentRequest, EnrolmentStarted, EnrolmentStatus, ErrorBody, PROTOCOL_HEADER,
    PROTOCOL_VERSION, PairingCodeIssued, PairingCodeStatus, PairingStatus, RECORDING_OFFSET_HEADER,
    RECORDING_SHA256_HEADER, RECORDING_SIZE_HEADER, RecordingProgress, SyncBatch, SyncResponse,
};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use uuid::Uuid;

/// Bytes per upload request: small enough for a slow link to finish one inside the timeout,
/// large enough that a one-hour recording (~12 MB) takes a few dozen requests.
pub const DEFAULT_CHUNK_BYTES: usize = 256 * 1024;
/// Times in a row the server may answer an upload without taking new bytes before the client
/// gives up for this round.
const MAX_STALLS: u32 = 3;

/// Which certificates the client trusts.
#[derive(Clone, Default)]
pub enum TlsTrust {
    /// The platform's verifier and roots (on Android it needs its JNI set-up first).
    #[default]
    Platform,
    /// The platform's roots plus these PEM certificates (not available on Android).
    PlatformAnd(Vec<u8>),
    /// Only these PEM certificates: an office CA, and nothing else.
    OnlyThese(Vec<u8>),
}

impl std::fmt::Debug for TlsTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsTrust::Platform => "Platform",
            TlsTrust::PlatformAnd(_) => "PlatformAnd(<pem>)",
            TlsTrust::OnlyThese(_) => "OnlyThese(<pem>)",
        })
    }
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://office.example:8443` (no trailing path).
    pub base_url: String,
    pub tls: TlsTrust,
    pub connect_timeout: Duration,
    /// Limit of one JSON request.
    pub request_timeout: Duration,
    /// Limit of one upload chunk.
    pub upload_timeout: Duration,
    pub chunk_bytes: usize,
    /// The protocol version stated in every request; [`PROTOCOL_VERSION`] but for tests.
    pub protocol_version: u32,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            tls: TlsTrust::Platform,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            upload_timeout: Duration::from_secs(120),
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            protocol_version: PROTOCOL_VERSION,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot configure the HTTP client: {0}")]
    Setup(String),
    /// The client has no device credential (set one with [`ServerClient::set_token`]).
    #[error("the tablet has no device credential; enrol it first")]
    NoCredential,
    /// Connection refused, DNS, TLS, timeout, a cut connection: try again later.
    #[error("cannot reach the office server: {0}")]
    Network(#[source] reqwest::Error),
    /// 401: the device credential is unknown or revoked; forget it and enrol again.
    #[error("the office server refused the device credential: {0}")]
    Unauthorized(String),
    /// 426: the server no longer speaks this app's protocol; update the app.
    #[error("the tablet app is too old for the office server: {0}")]
    AppTooOld(String),
    /// The server is older than this app's protocol; update the office server.
    #[error("the office server is too old for this tablet app: {0}")]
    ServerTooOld(String),
    /// 408, 429, 5xx: the server is there but cannot answer now.
    #[error("the office server is unavailable ({status}): {message}")]
    Unavailable { status: u16, message: String },
    /// Any other refusal, with the server's error code.
    #[error("the office server refused the request ({status} {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// A success status with a body that is not what the protocol says (e.g. a captive portal).
    #[error("unexpected answer from the office server: {0}")]
    InvalidResponse(String),
    #[error("cannot read the recording {path}: {source}")]
    RecordingFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file on the tablet is not the one that was queued (size changed).
    #[error("the recording {path} changed since it was queued: {detail}")]
    RecordingChanged { path: PathBuf, detail: String },
    /// The server holds a complete recording whose checksum is not ours.
    #[error("the server holds a recording with SHA-256 {server:?}, the tablet's is {local}")]
    ChecksumMismatch {
        local: String,
        server: Option<String>,
    },
    #[error("the upload makes no progress: {0}")]
    UploadStalled(String),
}

/// What to do with a recording after a failed upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingFate {
    /// Keep it and try again later.
    Retry,
    /// It can never be uploaded: give it up (delete the file, count it), with this reason.
    GiveUp(&'static str),
}

impl ClientError {
    /// Whether the same request may succeed later without anyone doing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Network(_)
            | ClientError::Unavailable { .. }
            | ClientError::InvalidResponse(_)
            | ClientError::UploadStalled(_) => true,
            ClientError::Refused { code, .. } => {
                code == "upload_in_progress" || code == "offset_mismatch"
            }
            ClientError::RecordingFile { source, .. } => {
                source.kind() != std::io::ErrorKind::NotFound
            }
            ClientError::Setup(_)
            | ClientError::NoCredential
            | ClientError::Unauthorized(_)
            | ClientError::AppTooOld(_)
            | ClientError::ServerTooOld(_)
            | ClientError::RecordingChanged { .. }
            | ClientError::ChecksumMismatch { .. } => false,
        }
    }

    /// The fate of a recording whose upload failed with this error. `Unauthorized`,
    /// `AppTooOld` and `ServerTooOld` are `Retry`: they stop all syncing, the recording is not at fault.
    pub fn recording_fate(&self) -> RecordingFate {
        match self {
            ClientError::Refused { status, code, .. } => match (*status, code.as_str()) {
                (_, "upload_in_progress" | "offset_mismatch") => RecordingFate::Retry,
                (_, "recording_not_allowed") => RecordingFate::GiveUp("recording_not_allowed"),
                (_, "already_stored") => RecordingFate::GiveUp("another_recording_stored"),
                (_, "invalid_recording") => RecordingFate::GiveUp("invalid_recording"),
                (422, _) => RecordingFate::GiveUp("checksum_mismatch"),
                (413, _) => RecordingFate::GiveUp("too_large"),
                // The server does not know the visit under this tablet (re-enrolled since).
                (404, _) => RecordingFate::GiveUp("visit_unknown"),
                (400, _) => RecordingFate::GiveUp("refused"),
                _ => RecordingFate::Retry,
            },
            ClientError::RecordingFile { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                RecordingFate::GiveUp("file_missing")
            }
            ClientError::RecordingChanged { .. } => RecordingFate::GiveUp("file_changed"),
            ClientError::ChecksumMismatch { .. } => RecordingFate::GiveUp("checksum_mismatch"),
            _ => RecordingFate::Retry,
        }
    }
}

pub type ClientResult<T> = Result<T, ClientError>;

/// What a finished upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadOutcome {
    /// The offset the upload started from (what the server already held).
    pub resumed_from: u64,
    /// Chunks sent by this call.
    pub chunks_sent: u32,
    /// Bytes of the file sent by this call.
    pub bytes_sent: u64,
    /// The server's final answer: complete, with our checksum.
    pub progress: RecordingProgress,
}

/// The tablet API of one office server. Cheap to clone: clones share the connection pool and
/// the device credential.
#[derive(Clone)]
pub struct ServerClient {
    http: reqwest::Client,
    base: String,
    config: Arc<ClientConfig>,
    token: Arc<RwLock<Option<String>>>,
}

impl std::fmt::Debug for ServerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerClient")
            .field("base", &self.base)
            .field("has_token", &self.has_token())
            .finish()
    }
}

/// Whether the platform's verifier can be used in this process. reqwest's rustls backend
/// verifies with rustls-platform-verifier; on Android that calls the system's trust manager
/// through JNI and needs a JavaVM and the app's Context first, which only the app's JNI layer
/// has (`kiosk-android` calls `rustls_platform_verifier::android::init_with_env`, then
/// [`platform_verifier_initialised`]). Elsewhere it needs nothing.
static PLATFORM_VERIFIER_READY: AtomicBool = AtomicBool::new(!cfg!(target_os = "android"));

/// Tells the client that the platform verifier has been initialised (on Android, from JNI).
/// Until then a client that would use it is refused at set-up, rather than failing (the
/// verifier panics when uninitialised) at its first TLS handshake.
pub fn platform_verifier_initialised() {
    PLATFORM_VERIFIER_READY.store(true, Ordering::SeqCst);
}

/// The one place TLS is configured. `platform_ready`: whether the platform verifier may be used
/// (see [`platform_verifier_initialised`]); trusting only the office's own CA does not need it.
fn configure_tls(
    builder: ClientBuilder,
    trust: &TlsTrust,
    platform_ready: bool,
) -> ClientResult<ClientBuilder> {
    let certificates = |pem: &[u8]| {
        reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| ClientError::Setup(format!("office CA certificate: {e}")))
    };
    if !platform_ready && !matches!(trust, TlsTrust::OnlyThese(_)) {
        return Err(ClientError::Setup(
            "the system's certificate verifier is not initialised (on Android the app must \
             initialise it through JNI before the kiosk starts)"
                .into(),
        ));
    }
    let builder = builder.tls_backend_rustls();
    Ok(match trust {
        TlsTrust::Platform => builder,
        TlsTrust::PlatformAnd(pem) => builder.tls_certs_merge(certificates(pem)?),
        TlsTrust::OnlyThese(pem) => builder.tls_certs_only(certificates(pem)?),
    })
}

impl ServerClient {
    /// A client of the server at `base_url` with the default timeouts. With `office_ca_pem`,
    /// only the certificates in it are trusted (the office's own CA; this also works on Android,
    /// where adding roots to the platform verifier does not); without it, the platform's.
    pub fn new(base_url: &str, office_ca_pem: Option<&[u8]>) -> ClientResult<Self> {
        let mut config = ClientConfig::new(base_url);
        if let Some(pem) = office_ca_pem {
            config.tls = TlsTrust::OnlyThese(pem.to_vec());
        }
        Self::with_config(config)
    }

    pub fn with_config(config: ClientConfig) -> ClientResult<Self> {
        let builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("kiosk-core/", env!("CARGO_PKG_VERSION")));
        let platform_ready = PLATFORM_VERIFIER_READY.load(Ordering::SeqCst);
        let http = configure_tls(builder, &config.tls, platform_ready)?
            .build()
            .map_err(|e| ClientError::Setup(with_sources(&e)))?;
        let base = config.base_url.trim_end_matches('/').to_string();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(ClientError::Setup(format!(
                "the server address must start with https:// (or http:// on a test bench): {base}"
            )));
        }
        Ok(Self {
            http,
            base,
            config: Arc::new(config),
            token: Arc::new(RwLock::new(None)),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sets (or clears) the device credential sent as `Authorization: Bearer`, for this client
    /// and its clones.
    pub fn set_token(&self, token: Option<String>) {
        *self
            .token
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = token;
    }

    pub fn has_token(&self) -> bool {
        self.token
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_some()
    }

    /// A request without credential (enrolment).
    fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header(PROTOCOL_HEADER, self.config.protocol_version)
            .timeout(self.config.request_timeout)
    }

    /// A request with the device credential.
    fn request(&self, method: Method, path: &str) -> ClientResult<RequestBuilder> {
        let token = self
            .token
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .ok_or(ClientError::NoCredential)?;
        Ok(self.anonymous(method, path).bearer_auth(token))
    }

    // ---- enrolment (no credential yet) ----

    pub async fn start_enrolment(
        &self,
        request: &EnrolmentRequest,
    ) -> ClientResult<EnrolmentStarted> {
        let response = self
            .anonymous(Method::POST, "/api/tablet/enrolments")
            .json(request)
            .send()
            .await;
        json(response).await
    }

    pub async fn poll_enrolment(&self, enrolment_id: Uuid) -> ClientResult<EnrolmentStatus> {
        let path = format!("/api/tablet/enrolments/{enrolment_id}");
        json(self.anonymous(Method::GET, &path).send().await).await
    }

    // ---- pairing ----

    pub async fn request_pairing_code(&self) -> ClientResult<PairingCodeIssued> {
        let request = self.request(Method::POST, "/api/tablet/pairing-codes")?;
        json(request.send().await).await
    }

    pub async fn poll_pairing_code(&self, request_id: Uuid) -> ClientResult<PairingCodeStatus> {
        let path = format!("/api/tablet/pairing-codes/{request_id}");
        json(self.request(Method::GET, &path)?.send().await).await
    }

    /// The tablet's latest pairing as the server sees it (reads only, writes nothing).
    pub async fn pairing_status(&self) -> ClientResult<PairingStatus> {
        json(
            self.request(Method::GET, "/api/tablet/pairing")?
                .send()
                .await,
        )
        .await
    }

    /// Ends this tablet's pairing from its staff panel; returns the status after it.
    pub async fn end_pairing(&self) -> ClientResult<PairingStatus> {
        json(
            self.request(Method::POST, "/api/tablet/pairing/end")?
                .send()
                .await,
        )
        .await
    }

    // ---- sync ----

    /// Sends one batch. The answer holds one result per visit; only what it names as stored
    /// may leave the outbox.
    pub async fn sync(&self, batch: &SyncBatch) -> ClientResult<SyncResponse> {
        let request = self.request(Method::POST, "/api/tablet/sync")?.json(batch);
        json(request.send().await).await
    }

    // ---- recordings ----

    /// How much of the visit's recording the server holds.
    pub async fn recording_progress(&self, visit_id: Uuid) -> ClientResult<RecordingProgress> {
        let path = format!("/api/tablet/visits/{visit_id}/recording");
        json(self.request(Method::GET, &path)?.send().await).await
    }

    /// Sends `bytes` of the file as the part that starts at `offset`.
    pub async fn upload_chunk(
        &self,
        visit_id: Uuid,
        size: u64,
        sha256: &str,
        offset: u64,
        bytes: Vec<u8>,
    ) -> ClientResult<RecordingProgress> {
        let path = format!("/api/tablet/visits/{visit_id}/recording");
        let request = self
            .request(Method::POST, &path)?
            .timeout(self.config.upload_timeout)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(RECORDING_SIZE_HEADER, size)
            .header(RECORDING_SHA256_HEADER, sha256)
            .header(RECORDING_OFFSET_HEADER, offset)
            .body(bytes);
        json(request.send().await).await
    }

    /// Uploads the recording from where the server stopped, chunk by chunk, and succeeds only
    /// when the server reports it complete with our SHA-256. The file is only read; deleting it
    /// is the caller's, after this returns `Ok`.
    pub async fn upload_recording(
        &self,
        visit_id: Uuid,
        path: &Path,
        size: u64,
        sha256: &str,
    ) -> ClientResult<UploadOutcome> {
        let sha256 = sha256.to_ascii_lowercase();
        let mut progress = self.recording_progress(visit_id).await?;
        let resumed_from = progress.received_bytes;
        let mut file: Option<tokio::fs::File> = None;
        let mut chunks_sent = 0u32;
        let mut bytes_sent = 0u64;
        let mut stalls = 0u32;
        while !progress.complete {
            let mut offset = progress.received_bytes;
            if offset >= size {
                // What the server holds belongs to another file of this visit: start over (the
                // server discards it when it sees our size and checksum).
                offset = 0;
            }
            let file = match &mut file {
                Some(file) => file,
                None => file.insert(open_recording(path, size).await?),
            };
            let len = (size - offset).min(self.config.chunk_bytes.max(1) as u64);
            let bytes = read_at(file, path, offset, len).await?;
            bytes_sent += len;
            let answer = self
                .upload_chunk(visit_id, size, &sha256, offset, bytes)
                .await;
            chunks_sent += 1;
            let before = progress.received_bytes;
            progress = match answer {
                Ok(progress) => progress,
                Err(ClientError::Refused { code, .. }) if code == "offset_mismatch" => {
                    self.recording_progress(visit_id).await?
                }
                Err(error) => return Err(error),
            };
            if progress.received_bytes <= before && !progress.complete {
                stalls += 1;
                if stalls >= MAX_STALLS {
                    return Err(ClientError::UploadStalled(format!(
                        "the server holds {} of {size} bytes after {stalls} tries",
                        progress.received_bytes
                    )));
                }
            } else {
                stalls = 0;
            }
            tracing::debug!(%visit_id, held = progress.received_bytes, size, "recording chunk sent");
        }
        match &progress.sha256 {
            Some(server) if server.eq_ignore_ascii_case(&sha256) => Ok(UploadOutcome {
                resumed_from,
                chunks_sent,
                bytes_sent,
                progress,
            }),
            other => Err(ClientError::ChecksumMismatch {
                local: sha256,
                server: other.clone(),
            }),
        }
    }
}

/// An error with its causes, e.g. reqwest's "builder error" with what the builder refused.
fn with_sources(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn open_recording(path: &Path, size: u64) -> ClientResult<tokio::fs::File> {
    let file_error = |source| ClientError::RecordingFile {
        path: path.to_path_buf(),
        source,
    };
    let file = tokio::fs::File::open(path).await.map_err(file_error)?;
    let actual = file.metadata().await.map_err(file_error)?.len();
    if actual != size {
        return Err(ClientError::RecordingChanged {
            path: path.to_path_buf(),
            detail: format!("{actual} bytes, {size} were queued"),
        });
    }
    Ok(file)
}

async fn read_at(
    file: &mut tokio::fs::File,
    path: &Path,
    offset: u64,
    len: u64,
) -> ClientResult<Vec<u8>> {
    let file_error = |source| ClientError::RecordingFile {
        path: path.to_path_buf(),
        source,
    };
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(file_error)?;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    let read = file
        .take(len)
        .read_to_end(&mut bytes)
        .await
        .map_err(file_error)?;
    if (read as u64) < len {
        return Err(ClientError::RecordingChanged {
            path: path.to_path_buf(),
            detail: format!("ends before byte {}", offset + len),
        });
    }
    Ok(bytes)
}

/// Turns a response into the protocol type, or into the error its status and body say.
async fn json<T: DeserializeOwned>(response: reqwest::Result<Response>) -> ClientResult<T> {
    let response = response.map_err(ClientError::Network)?;
    let status = response.status();
    if status.is_success() {
        let bytes = response.bytes().await.map_err(ClientError::Network)?;
        return serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::InvalidResponse(format!("{status}: {e}")));
    }
    let bytes = response.bytes().await.map_err(ClientError::Network)?;
    let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(body) => (body.error, body.message),
        Err(_) => (
            String::new(),
            String::from_utf8_lossy(&bytes).chars().take(200).collect(),
        ),
    };
    Err(match status {
        StatusCode::UNAUTHORIZED => ClientError::Unauthorized(message),
        StatusCode::UPGRADE_REQUIRED => ClientError::AppTooOld(message),
        StatusCode::BAD_REQUEST if code == "protocol_too_new" => ClientError::ServerTooOld(message),
        StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => ClientError::Unavailable {
            status: status.as_u16(),
            message,
        },
        status if status.is_server_error() => ClientError::Unavailable {
            status: status.as_u16(),
            message,
        },
        status => ClientError::Refused {
            status: status.as_u16(),
            code,
            message,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platform_verifier_is_refused_until_initialised() {
        for trust in [TlsTrust::Platform, TlsTrust::PlatformAnd(Vec::new())] {
            let error = configure_tls(reqwest::Client::builder(), &trust, false)
                .err()
                .unwrap_or_else(|| panic!("{trust:?} accepted without the platform verifier"));
            assert!(
                matches!(&error, ClientError::Setup(m) if m.contains("not initialised")),
                "{error}"
            );
        }
        let builder = configure_tls(reqwest::Client::builder(), &TlsTrust::Platform, true)
            .expect("platform verifier once initialised");
        builder.build().expect("client");
    }

    #[test]
    fn an_office_ca_alone_needs_no_platform_verifier() {
        let key = rcgen::KeyPair::generate().expect("key");
        let ca = rcgen::CertificateParams::new(Vec::<String>::new())
            .expect("params")
            .self_signed(&key)
            .expect("certificate");
        let trust = TlsTrust::OnlyThese(ca.pem().into_bytes());
        configure_tls(reqwest::Client::builder(), &trust, false)
            .expect("office CA without the platform verifier")
            .build()
            .expect("client");
    }
}
