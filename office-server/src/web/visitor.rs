//! The visitor's feedback page: the public router a phone reaches through the QR code on the
//! tablet, and the visitor's account beside it ([`super::account`]). Server-rendered, no
//! script; the feedback page sets no cookie. It shows nothing of the dashboard or of the
//! tablet's rating (the specialist can scan the code too) — only the form, or what this link
//! sent and the office's answer, and the way to the visitor's account when the portal is on.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, middleware};
use jiff::Timestamp;

use super::account;
use super::dashboard::local_time;
use super::strings::{VISITOR_RU, VisitorStrings};
use crate::app::{AppState, Shared};
use crate::config::FeedbackSettings;
use crate::domain::InvalidText;
use crate::ops::feedback::{self, FeedbackError, LinkPage, Submission};
use crate::storage::{SentFeedback, StorageError};

/// A feedback form is a few scores and a comment of at most a few thousand characters.
const FORM_BODY_LIMIT: usize = 32 * 1024;
const STYLESHEET: &str = include_str!("../../static/visitor.css");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/f/visitor.css", get(stylesheet))
        .route("/f/{token}", get(page).post(submit))
        .route(
            "/f/{token}/account",
            get(account::consent_page).post(account::attach_submit),
        )
        .route(
            "/f/{token}/account/sign-in",
            get(account::sign_in_from_link),
        )
        .route("/my", get(account::my_visits))
        .route("/my/sign-in", get(account::sign_in))
        .route("/my/visits/{id}/detach", post(account::detach_submit))
        .route("/my/delete", post(account::delete_submit))
        .route("/my/logout", post(account::logout_submit))
        .route(crate::portal::CALLBACK_PATH, get(account::callback))
        .layer(DefaultBodyLimit::max(FORM_BODY_LIMIT))
        .layer(middleware::map_response(headers))
}

/// No script at all, this site's styles only; never framed, never cached.
async fn headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    // The address holds the link's token: it goes to no other site. Not `no-referrer`: with it
    // browsers send `Origin: null` on the form's own post, which the origin check refuses.
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    response
}

async fn stylesheet() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// One criterion on the form, with what the visitor chose before an error.
struct CriterionView {
    key: String,
    label: String,
    /// The scores 1..=5, each with whether it is chosen.
    options: Vec<(u8, bool)>,
}

enum VisitorBody {
    Form {
        criteria: Vec<CriterionView>,
        comment: String,
        thanks: bool,
        max_comment_chars: u32,
        notice: String,
    },
    Sent {
        sent_at: String,
        scores: Vec<(String, u8)>,
        comment: Option<String>,
        thanks: bool,
        answer: Option<String>,
    },
    Message {
        text: String,
        /// Offer the way back to what this link sent.
        back: bool,
    },
}

#[derive(Template)]
#[template(path = "visitor.html")]
struct VisitorPage<'a> {
    t: &'a VisitorStrings,
    title: &'a str,
    error: Option<String>,
    body: VisitorBody,
    /// The way to keep this visit in the visitor's account, when the portal is on.
    account: Option<String>,
}

fn render(status: StatusCode, page: VisitorPage<'_>) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "the feedback page failed to render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn form(s: &Shared, fields: Option<&HashMap<String, String>>) -> VisitorBody {
    let settings = &s.config.feedback;
    let field = |name: &str| fields.and_then(|f| f.get(name)).map(String::as_str);
    VisitorBody::Form {
        criteria: settings
            .criteria
            .iter()
            .map(|c| {
                let chosen: Option<u8> =
                    field(&format!("score_{}", c.key)).and_then(|v| v.trim().parse().ok());
                CriterionView {
                    key: c.key.clone(),
                    label: c.label.clone(),
                    options: (1..=5)
                        .map(|score| (score, chosen == Some(score)))
                        .collect(),
                }
            })
            .collect(),
        comment: field("comment").unwrap_or_default().to_string(),
        thanks: field("thanks").is_some_and(|v| !v.is_empty()),
        max_comment_chars: settings.max_comment_chars,
        notice: VISITOR_RU
            .privacy_notice
            .replace("{days}", &settings.comment_keep_days.to_string()),
    }
}

/// Scores in the form's order, under their labels; a criterion dropped from the configuration
/// since shows under its key.
pub(super) fn labelled_scores(
    settings: &FeedbackSettings,
    sent: &[(String, u8)],
) -> Vec<(String, u8)> {
    let mut scores: Vec<(String, u8)> = Vec::new();
    for criterion in &settings.criteria {
        if let Some((_, score)) = sent.iter().find(|(key, _)| *key == criterion.key) {
            scores.push((criterion.label.clone(), *score));
        }
    }
    for (key, score) in sent {
        if !settings.criteria.iter().any(|c| c.key == *key) {
            scores.push((key.clone(), *score));
        }
    }
    scores
}

fn sent(s: &Shared, sent: SentFeedback) -> VisitorBody {
    VisitorBody::Sent {
        sent_at: local_time(&s.zone, sent.submitted_at),
        scores: labelled_scores(&s.config.feedback, &sent.scores),
        comment: sent.comment,
        thanks: sent.thanks,
        answer: sent.answer,
    }
}

/// The page for an error: its status, title and words.
fn error_page(error: &FeedbackError) -> (StatusCode, &'static str, String, bool) {
    let t = &VISITOR_RU;
    match error {
        FeedbackError::InvalidLink => (
            StatusCode::NOT_FOUND,
            t.invalid_title,
            t.invalid_text.into(),
            false,
        ),
        FeedbackError::Expired => (
            StatusCode::GONE,
            t.expired_title,
            t.expired_text.into(),
            false,
        ),
        FeedbackError::AlreadySent => (StatusCode::CONFLICT, t.title, t.already_sent.into(), true),
        FeedbackError::Throttled => (
            StatusCode::TOO_MANY_REQUESTS,
            t.title,
            t.throttled.into(),
            false,
        ),
        FeedbackError::BadScore => (StatusCode::BAD_REQUEST, t.title, t.bad_score.into(), false),
        FeedbackError::BadComment(InvalidText::TooLong { max }) => (
            StatusCode::BAD_REQUEST,
            t.title,
            t.comment_too_long.replace("{max}", &max.to_string()),
            false,
        ),
        FeedbackError::BadComment(_) => (
            StatusCode::BAD_REQUEST,
            t.title,
            t.comment_control.into(),
            false,
        ),
        FeedbackError::Empty => (StatusCode::BAD_REQUEST, t.title, t.empty.into(), false),
        FeedbackError::Storage(storage) => {
            tracing::error!(error = %storage, "feedback storage failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                t.title,
                t.failure.into(),
                false,
            )
        }
    }
}

pub(super) fn message(error: &FeedbackError) -> Response {
    let (status, title, text, back) = error_page(error);
    render(
        status,
        VisitorPage {
            t: &VISITOR_RU,
            title,
            error: None,
            body: VisitorBody::Message { text, back },
            account: None,
        },
    )
}

/// Where the link offers the visitor's account (`/f/{token}/account`).
fn account_href(state: &AppState, token: &str) -> Option<String> {
    state
        .portal
        .is_some()
        .then(|| format!("/f/{token}/account"))
}

async fn page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let link = token.clone();
    let shown = state
        .blocking(move |s| {
            let opened = feedback::open(
                s.storage.as_ref(),
                &token,
                &s.config.feedback,
                Timestamp::now(),
            )?;
            Ok::<_, FeedbackError>(match opened {
                LinkPage::Form => (VISITOR_RU.title, form(s, None)),
                LinkPage::Sent(feedback) => (VISITOR_RU.sent_title, sent(s, feedback)),
            })
        })
        .await;
    match shown {
        Ok(Ok((title, body))) => render(
            StatusCode::OK,
            VisitorPage {
                t: &VISITOR_RU,
                title,
                error: None,
                body,
                account: account_href(&state, &link),
            },
        ),
        Ok(Err(error)) => message(&error),
        Err(_) => message(&FeedbackError::Storage(StorageError::Corrupt(
            "the feedback task panicked".into(),
        ))),
    }
}

async fn submit(
    State(state): State<AppState>,
    crate::http::ClientAddress(client): crate::http::ClientAddress,
    Path(token): Path<String>,
    uri: Uri,
    request_headers: HeaderMap,
    fields: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    if !crate::http::from_this_site(&request_headers, &uri, state.public_origin.as_ref()) {
        return render(
            StatusCode::FORBIDDEN,
            VisitorPage {
                t: &VISITOR_RU,
                title: VISITOR_RU.title,
                error: None,
                body: VisitorBody::Message {
                    text: VISITOR_RU.stale_form.into(),
                    back: false,
                },
                account: None,
            },
        );
    }
    let fields = match fields {
        Ok(Form(fields)) => fields,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return (StatusCode::PAYLOAD_TOO_LARGE, Html(VISITOR_RU.too_large)).into_response();
        }
        // A body that is not a form reads as an empty one: refused below as nothing to send.
        Err(_) => HashMap::new(),
    };
    let link = token.clone();
    let outcome = state
        .blocking(move |s| {
            let settings = &s.config.feedback;
            let result = Submission::parse(&fields, settings).and_then(|submission| {
                feedback::submit(
                    s.storage.as_ref(),
                    &s.live,
                    &s.feedback_throttle,
                    client,
                    &token,
                    submission,
                    settings,
                    Timestamp::now(),
                )
            });
            match result {
                // Shown as the link shows it from now on.
                Ok(()) => {
                    match feedback::open(s.storage.as_ref(), &token, settings, Timestamp::now()) {
                        Ok(LinkPage::Sent(feedback)) => Ok(sent(s, feedback)),
                        Ok(LinkPage::Form) => Err((
                            FeedbackError::Storage(StorageError::NotFound("feedback")),
                            None,
                        )),
                        Err(error) => Err((error, None)),
                    }
                }
                // Bad input: the form again, as it was filled, with what to correct.
                Err(
                    error @ (FeedbackError::BadScore
                    | FeedbackError::BadComment(_)
                    | FeedbackError::Empty),
                ) => Err((error, Some(Box::new(form(s, Some(&fields)))))),
                Err(error) => Err((error, None)),
            }
        })
        .await;
    match outcome {
        Ok(Ok(body)) => render(
            StatusCode::OK,
            VisitorPage {
                t: &VISITOR_RU,
                title: VISITOR_RU.sent_title,
                error: None,
                body,
                account: account_href(&state, &link),
            },
        ),
        Ok(Err((error, Some(body)))) => {
            let (status, _, text, _) = error_page(&error);
            render(
                status,
                VisitorPage {
                    t: &VISITOR_RU,
                    title: VISITOR_RU.title,
                    error: Some(text),
                    body: *body,
                    account: account_href(&state, &link),
                },
            )
        }
        Ok(Err((error, None))) => message(&error),
        Err(_) => message(&FeedbackError::Storage(StorageError::Corrupt(
            "the feedback task panicked".into(),
        ))),
    }
}
