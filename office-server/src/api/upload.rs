//! Recording upload: resumable by offset, checked by SHA-256, validated as 3GP before it is kept.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use http_body_util::BodyExt;
use jiff::Timestamp;
use shared_model::{
    ErrorBody, RECORDING_OFFSET_HEADER, RECORDING_SHA256_HEADER, RECORDING_SIZE_HEADER, Rating,
    RecordingProgress,
};
use uuid::Uuid;

use super::error::{ApiError, ApiJson, ApiPath, ApiResult};
use super::extract::TabletAuth;
use crate::app::AppState;
use crate::recordings::FinishError;
use crate::storage::{StoredRecording, UploadPromise};

#[utoipa::path(
    get, path = "/api/tablet/visits/{id}/recording", tag = "recording",
    summary = "How much of a recording the server holds",
    params(("id" = Uuid, Path, description = "The visit's id"), ("x-protocol-version" = u32, Header)),
    security(("device_token" = [])),
    responses(
        (status = 200, body = RecordingProgress, description = "How many bytes the server holds"),
        (status = 404, body = ErrorBody, description = "No such visit of this tablet (sync it first)"),
    )
)]
pub async fn progress(
    State(state): State<AppState>,
    TabletAuth(tablet, _): TabletAuth,
    ApiPath(visit_id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<RecordingProgress>> {
    let (visit, stored) = state
        .db(move |db| {
            Ok((
                db.visit_of_tablet(visit_id, tablet.id)?,
                db.recording(visit_id)?,
            ))
        })
        .await?;
    if visit.is_none() {
        return Err(ApiError::NotFound("visit"));
    }
    Ok(ApiJson(match stored {
        Some(recording) => complete(&recording),
        None => RecordingProgress {
            received_bytes: partial_len(&state, visit_id)?,
            complete: false,
            sha256: None,
            duration_ms: None,
        },
    }))
}

#[utoipa::path(
    post, path = "/api/tablet/visits/{id}/recording", tag = "recording",
    summary = "Upload the next chunk of a Плохо visit's recording (resumable)",
    params(
        ("id" = Uuid, Path, description = "The visit's id"),
        ("x-protocol-version" = u32, Header),
        ("x-recording-size" = u64, Header, description = "Size of the whole file in bytes"),
        ("x-recording-sha256" = String, Header, description = "Hex SHA-256 of the whole file"),
        ("x-recording-offset" = u64, Header, description = "Where this chunk starts; must equal the bytes the server holds"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The next bytes of the file"),
    security(("device_token" = [])),
    responses(
        (status = 200, body = RecordingProgress, description = "Bytes held now; `complete` once the file was checked and kept"),
        (status = 404, body = ErrorBody, description = "No such visit of this tablet"),
        (status = 409, body = ErrorBody, description = "Not rated Плохо, wrong offset, or another upload of it is running"),
        (status = 413, body = ErrorBody, description = "Larger than the server accepts"),
        (status = 422, body = ErrorBody, description = "Checksum mismatch or not 3GP AAC audio; start over"),
    )
)]
pub async fn append(
    State(state): State<AppState>,
    TabletAuth(tablet, _): TabletAuth,
    ApiPath(visit_id): ApiPath<Uuid>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<ApiJson<RecordingProgress>> {
    metrics::counter!(crate::metrics::UPLOAD_REQUESTS).increment(1);
    let mut body = Some(body);
    let result = accept_chunk(&state, tablet.id, visit_id, &headers, &mut body).await;
    if let (Err(_), Some(unread)) = (&result, body) {
        // Read the refused body before answering, so the tablet gets the answer rather than
        // a connection closed under its feet while it is still sending.
        drain(unread, state.config.recording_max_bytes).await;
    }
    result.map(ApiJson)
}

/// Reads and discards up to `limit` bytes of a body.
async fn drain(mut body: Body, limit: u64) {
    let mut seen = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            seen += data.len() as u64;
            if seen > limit {
                break;
            }
        }
    }
}

/// Checks the request against what is known of the visit and its upload, then takes the body.
async fn accept_chunk(
    state: &AppState,
    tablet_id: i64,
    visit_id: Uuid,
    headers: &HeaderMap,
    body: &mut Option<Body>,
) -> ApiResult<RecordingProgress> {
    let promise = UploadPromise {
        size_bytes: number_header(headers, RECORDING_SIZE_HEADER)?,
        sha256: sha256_header(headers)?,
    };
    let offset = number_header(headers, RECORDING_OFFSET_HEADER)?;
    let max = state.config.recording_max_bytes;
    if promise.size_bytes > max {
        return Err(ApiError::TooLarge(format!(
            "a recording may be at most {max} bytes, this one is {}",
            promise.size_bytes
        )));
    }
    if promise.size_bytes == 0 {
        return Err(ApiError::BadRequest(
            "an empty recording cannot be uploaded".into(),
        ));
    }
    let (visit, stored, open_upload) = state
        .db(move |db| {
            Ok((
                db.visit_of_tablet(visit_id, tablet_id)?,
                db.recording(visit_id)?,
                db.recording_upload(visit_id)?,
            ))
        })
        .await?;
    let visit = visit.ok_or(ApiError::NotFound("visit"))?;
    if visit.rating != Some(Rating::Bad) {
        return Err(ApiError::conflict(
            "recording_not_allowed",
            "only a visit rated Плохо may have a recording; delete it on the tablet",
        ));
    }
    if let Some(recording) = stored {
        return if recording.sha256.eq_ignore_ascii_case(&promise.sha256) {
            Ok(complete(&recording))
        } else {
            Err(ApiError::conflict(
                "already_stored",
                "a different recording of this visit is already stored",
            ))
        };
    }
    let mut claim = state.uploads.claim(visit_id).await.ok_or_else(|| {
        ApiError::conflict(
            "upload_in_progress",
            "another upload of this recording is running",
        )
    })?;
    if open_upload.as_ref() != Some(&promise) {
        // A new upload must fit: on the disk, and in what this tablet may hold unfinished.
        let free = state.recordings.free_bytes().map_err(internal)?;
        let floor = state.config.uploads.min_free_bytes;
        if free < floor.saturating_add(promise.size_bytes) {
            tracing::warn!(free, floor, "recording refused: the server's disk is low");
            return Err(ApiError::InsufficientStorage(format!(
                "the server has {free} bytes free, under its floor of {floor}: recordings wait on \
                 the tablet until an administrator makes room (visits still sync)"
            )));
        }
        let cap = state.config.uploads.max_unfinished_bytes_per_tablet;
        let held = state
            .db(move |db| db.unfinished_upload_bytes(tablet_id, visit_id))
            .await?;
        if held.saturating_add(promise.size_bytes) > cap {
            return Err(ApiError::conflict(
                "too_much_unfinished",
                format!(
                    "this tablet holds {held} bytes in unfinished uploads; with this one it would \
                     pass {cap}: finish those first"
                ),
            ));
        }
        // A new file (or the first attempt): whatever was received for another one is void.
        state
            .recordings
            .discard_partial(visit_id)
            .map_err(internal)?;
        let promised = promise.clone();
        state
            .db(move |db| db.begin_recording_upload(visit_id, &promised, Timestamp::now()))
            .await?;
    }
    let held = partial_len(state, visit_id)?;
    if offset != held {
        return Err(ApiError::conflict(
            "offset_mismatch",
            format!("the server holds {held} bytes of this recording; continue from there"),
        ));
    }
    let body = body
        .take()
        .ok_or_else(|| internal(anyhow::anyhow!("body taken twice")))?;
    let received = receive(
        state,
        visit_id,
        held,
        promise.size_bytes,
        body,
        &mut claim.superseded,
    )
    .await?;
    if received < promise.size_bytes {
        return Ok(RecordingProgress {
            received_bytes: received,
            complete: false,
            sha256: None,
            duration_ms: None,
        });
    }
    finish(state, visit_id, promise).await
}

/// Bytes gathered in memory before one write to disk.
const WRITE_BUFFER: usize = 1024 * 1024;

/// Appends the body to the partial file; returns how many bytes are held afterwards. A body
/// cut short keeps what arrived, so the tablet can resume after it.
async fn receive(
    state: &AppState,
    visit_id: Uuid,
    held: u64,
    size: u64,
    mut body: Body,
    superseded: &mut tokio::sync::watch::Receiver<bool>,
) -> ApiResult<u64> {
    let recordings = state.recordings.clone();
    let mut writer = blocking(move || recordings.append_at(visit_id, held)).await?;
    let mut buffer = Vec::with_capacity(WRITE_BUFFER);
    let mut cut_short = false;
    loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            // A newer request of the same visit: stop, keep what arrived, let go.
            _ = superseded.changed() => Some(Err(axum::Error::new("superseded"))),
        };
        let end = match frame {
            None => true,
            Some(Err(_)) => {
                cut_short = true;
                true
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if writer.held() + (buffer.len() + data.len()) as u64 > size {
                        let recordings = state.recordings.clone();
                        blocking(move || {
                            writer.roll_back()?;
                            // Nothing held before this request: leave no empty file behind.
                            if held == 0 {
                                recordings.discard_partial(visit_id)?;
                            }
                            Ok(())
                        })
                        .await?;
                        return Err(ApiError::TooLarge(format!(
                            "the body runs past the declared size of {size} bytes"
                        )));
                    }
                    buffer.extend_from_slice(&data);
                }
                false
            }
        };
        if end || buffer.len() >= WRITE_BUFFER {
            let chunk = std::mem::take(&mut buffer);
            writer = blocking(move || writer.write(&chunk).map(|()| writer)).await?;
        }
        if end {
            break;
        }
    }
    let received = blocking(move || writer.sync()).await?;
    if cut_short {
        tracing::info!(%visit_id, received, "recording upload interrupted; it can resume");
    }
    Ok(received)
}

/// Runs file work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(internal)?
        .map_err(internal)
}

async fn finish(
    state: &AppState,
    visit_id: Uuid,
    promise: UploadPromise,
) -> ApiResult<RecordingProgress> {
    let recordings = state.recordings.clone();
    let declared = promise.sha256.clone();
    let checked = tokio::task::spawn_blocking(move || recordings.finish(visit_id, &declared))
        .await
        .map_err(internal)?;
    let (info, sha256) = match checked {
        Ok(done) => done,
        Err(refusal) => {
            state
                .db(move |db| db.abandon_recording_upload(visit_id))
                .await?;
            let reason = match refusal {
                FinishError::ChecksumMismatch { .. } => Some("checksum"),
                FinishError::Invalid(_) => Some("invalid"),
                FinishError::Io(_) => None,
            };
            if let Some(reason) = reason {
                metrics::counter!(crate::metrics::RECORDINGS_REFUSED, "reason" => reason)
                    .increment(1);
            }
            return Err(match refusal {
                FinishError::ChecksumMismatch { .. } => ApiError::Unprocessable(format!(
                    "{refusal}; the upload was discarded, send the file again"
                )),
                FinishError::Invalid(invalid) => ApiError::InvalidRecording(invalid),
                FinishError::Io(error) => internal(error),
            });
        }
    };
    let recording = StoredRecording {
        size_bytes: promise.size_bytes,
        sha256,
        duration_ms: info.duration_ms,
        stored_at: Timestamp::now(),
    };
    let kept = recording.clone();
    state
        .db(move |db| db.complete_recording(visit_id, &kept))
        .await?;
    tracing::info!(%visit_id, bytes = recording.size_bytes, duration_ms = recording.duration_ms, "recording stored");
    metrics::counter!(crate::metrics::RECORDINGS_STORED).increment(1);
    metrics::counter!(crate::metrics::RECORDING_BYTES).increment(recording.size_bytes);
    // The player's waveform and speech, made now rather than when a head first listens. The
    // tablet need not wait for it; if the server stops first, the periodic pass makes it.
    let analysing = state.clone();
    state.background.spawn(async move {
        let done = analysing
            .blocking(move |s| {
                crate::ops::analysis::analyse_recording(s.storage.as_ref(), &s.recordings, visit_id)
            })
            .await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%visit_id, %error, "recording analysis not stored"),
            Err(error) => tracing::warn!(%visit_id, %error, "recording analysis failed"),
        }
    });
    Ok(complete(&recording))
}

fn complete(recording: &StoredRecording) -> RecordingProgress {
    RecordingProgress {
        received_bytes: recording.size_bytes,
        complete: true,
        sha256: Some(recording.sha256.clone()),
        duration_ms: Some(recording.duration_ms),
    }
}

fn partial_len(state: &AppState, visit_id: Uuid) -> ApiResult<u64> {
    state.recordings.partial_len(visit_id).map_err(internal)
}

fn internal(error: impl Into<anyhow::Error>) -> ApiError {
    ApiError::Internal(error.into())
}

fn number_header(headers: &HeaderMap, name: &'static str) -> ApiResult<u64> {
    headers
        .get(name)
        .ok_or_else(|| ApiError::BadRequest(format!("the {name} header is missing")))?
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .ok_or_else(|| ApiError::BadRequest(format!("{name} must be a whole number of bytes")))
}

fn sha256_header(headers: &HeaderMap) -> ApiResult<String> {
    let value = headers
        .get(RECORDING_SHA256_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(|text| text.trim().to_ascii_lowercase())
        .ok_or_else(|| {
            ApiError::BadRequest(format!("the {RECORDING_SHA256_HEADER} header is missing"))
        })?;
    if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value)
    } else {
        Err(ApiError::BadRequest(format!(
            "{RECORDING_SHA256_HEADER} must be 64 hexadecimal digits"
        )))
    }
}
