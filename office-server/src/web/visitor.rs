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
use serde::Deserialize;

use super::account;
use super::dashboard::local_time;
use super::strings::{VISITOR_RU, VisitorStrings};
use crate::app::{AppState, Shared};
use crate::config::FeedbackSettings;
use crate::domain::InvalidText;
use crate::domain::sms::InvalidPhone;
use crate::ops::feedback::{self, FeedbackError, LinkPage, Submission};
use crate::ops::results::{self, NumberChoice, ResultError};
use crate::storage::{SentFeedback, StorageError};

/// A feedback form is a few scores and a comment of at most a few thousand characters.
const FORM_BODY_LIMIT: usize = 32 * 1024;
const STYLESHEET: &str = include_str!("../../static/visitor.css");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/f/visitor.css", get(stylesheet))
        .route("/f/{token}", get(page).post(submit))
        .route("/f/{token}/sms", post(sms_submit))
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
        .route("/my/visits/{id}/sms", post(account::sms_submit))
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
    /// The SMS «Результат готов», when the office sends them and the link is in use.
    sms: Option<SmsBox>,
}

/// The visitor's number for «Результат готов»: the form, or the masked number kept.
pub(super) struct SmsBox {
    /// The section's id, the anchor the form comes back to.
    pub anchor: String,
    /// Where the form posts.
    pub action: String,
    pub masked: Option<String>,
    pub phone: String,
    pub error: Option<&'static str>,
    pub notice: String,
    /// The visitor's account's CSRF token; the link's form needs none (the link is the
    /// credential and the origin is checked).
    pub csrf: Option<String>,
}

impl SmsBox {
    pub(super) fn new(s: &Shared, anchor: String, action: String, masked: Option<String>) -> Self {
        Self {
            anchor,
            action,
            masked,
            phone: String::new(),
            error: None,
            notice: VISITOR_RU
                .sms
                .notice
                .replace("{days}", &s.config.sms.keep_number_days.to_string()),
            csrf: None,
        }
    }
}

/// What the visitor is told when their number was refused, and the status.
pub(super) fn sms_refusal(error: &ResultError) -> (StatusCode, &'static str) {
    let t = VISITOR_RU.sms;
    match error {
        ResultError::BadPhone(InvalidPhone::NotANumber) => (StatusCode::BAD_REQUEST, t.bad_phone),
        ResultError::BadPhone(InvalidPhone::NotMobile) => (StatusCode::BAD_REQUEST, t.not_mobile),
        ResultError::NoConsent => (StatusCode::BAD_REQUEST, t.no_consent),
        ResultError::AlreadyReady => (StatusCode::CONFLICT, t.already_ready),
        ResultError::NotFound(_) | ResultError::SmsOff => (StatusCode::NOT_FOUND, t.failure),
        other => {
            tracing::error!(error = %other, "a visitor's number could not be kept");
            (StatusCode::SERVICE_UNAVAILABLE, t.failure)
        }
    }
}

/// The link's SMS box, when SMS is on and the link may still be used.
fn link_sms_box(s: &Shared, token: &str) -> Option<SmsBox> {
    if !s.config.sms.enabled() {
        return None;
    }
    let visit_id = feedback::linked_visit(
        s.storage.as_ref(),
        token,
        &s.config.feedback,
        Timestamp::now(),
    )
    .ok()?;
    // Ready already: nothing left to tell.
    if s.storage
        .result_visit(visit_id)
        .ok()
        .flatten()
        .is_some_and(|visit| visit.result_ready_at.is_some())
    {
        return None;
    }
    let masked = results::consent(s.storage.as_ref(), visit_id, Timestamp::now()).ok()?;
    Some(SmsBox::new(
        s,
        "sms".into(),
        format!("/f/{token}/sms"),
        masked,
    ))
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
            sms: None,
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
            let sms = link_sms_box(s, &token);
            Ok::<_, FeedbackError>(match opened {
                LinkPage::Form => (VISITOR_RU.title, form(s, None), sms),
                LinkPage::Sent(feedback) => (VISITOR_RU.sent_title, sent(s, feedback), sms),
            })
        })
        .await;
    match shown {
        Ok(Ok((title, body, sms))) => render(
            StatusCode::OK,
            VisitorPage {
                t: &VISITOR_RU,
                title,
                error: None,
                body,
                account: account_href(&state, &link),
                sms,
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
                sms: None,
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
            let sms = link_sms_box(s, &token);
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
            let shown = match result {
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
            };
            (shown, sms)
        })
        .await;
    let (outcome, sms) = match outcome {
        Ok((shown, sms)) => (Ok(shown), sms),
        Err(panicked) => (Err(panicked), None),
    };
    match outcome {
        Ok(Ok(body)) => render(
            StatusCode::OK,
            VisitorPage {
                t: &VISITOR_RU,
                title: VISITOR_RU.sent_title,
                error: None,
                body,
                account: account_href(&state, &link),
                sms,
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
                    sms,
                },
            )
        }
        Ok(Err((error, None))) => message(&error),
        Err(_) => message(&FeedbackError::Storage(StorageError::Corrupt(
            "the feedback task panicked".into(),
        ))),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct SmsForm {
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub consent: String,
    /// `delete` deletes the number kept; anything else keeps the one given.
    #[serde(default)]
    pub action: String,
}

impl SmsForm {
    pub(super) fn choice(&self) -> NumberChoice<'_> {
        if self.action == "delete" {
            NumberChoice::Delete
        } else {
            NumberChoice::Keep {
                typed: &self.phone,
                consented: !self.consent.is_empty(),
            }
        }
    }
}

/// The link's SMS form: keeps the number with consent, or deletes it; back to the link.
async fn sms_submit(
    State(state): State<AppState>,
    crate::http::ClientAddress(client): crate::http::ClientAddress,
    Path(token): Path<String>,
    uri: Uri,
    request_headers: HeaderMap,
    fields: Result<Form<SmsForm>, FormRejection>,
) -> Response {
    if !crate::http::from_this_site(&request_headers, &uri, state.public_origin.as_ref()) {
        return message(&FeedbackError::InvalidLink);
    }
    let Ok(Form(fields)) = fields else {
        return message(&FeedbackError::InvalidLink);
    };
    let link = token.clone();
    let outcome = state
        .blocking(move |s| {
            let now = Timestamp::now();
            feedback::count_post(&s.feedback_throttle, client, &token)?;
            let visit_id =
                feedback::linked_visit(s.storage.as_ref(), &token, &s.config.feedback, now)?;
            let kept = results::choose_number(
                s.storage.as_ref(),
                &s.config.sms,
                visit_id,
                fields.choice(),
                now,
            );
            Ok(kept.map_err(|error| {
                let mut sms = SmsBox::new(s, "sms".into(), format!("/f/{token}/sms"), None);
                let (status, text) = sms_refusal(&error);
                sms.error = Some(text);
                sms.phone = fields
                    .phone
                    .chars()
                    .take(crate::domain::sms::PhoneNumber::MAX_CHARS)
                    .collect();
                (status, sms)
            }))
        })
        .await;
    match outcome {
        Ok(Ok(Ok(_))) => super::see_other(&format!("/f/{link}#sms")),
        Ok(Ok(Err((status, sms)))) => render(
            status,
            VisitorPage {
                t: &VISITOR_RU,
                title: VISITOR_RU.sms.title,
                error: None,
                body: VisitorBody::Message {
                    text: VISITOR_RU.sms.intro.into(),
                    back: true,
                },
                account: None,
                sms: Some(sms),
            },
        ),
        Ok(Err(error)) => message(&error),
        Err(_) => message(&FeedbackError::Storage(StorageError::Corrupt(
            "the SMS task panicked".into(),
        ))),
    }
}
