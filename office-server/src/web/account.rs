//! The visitor's personal account, on the public router beside the feedback link (no script,
//! no framing; see [`super::visitor`]): the consent, the sign-in through the city portal and
//! its callback, «Мои посещения», detaching a visit, deleting the account, signing out.
//!
//! The visitor's session is its own cookie over its own table: a staff cookie means nothing
//! here and a visitor's means nothing on the staff's routes.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;
use uuid::Uuid;

use super::dashboard::local_time;
use super::strings::{ACCOUNT_RU, AccountStrings};
use super::visitor::{SmsBox, SmsForm, labelled_scores, sms_refusal};
use crate::app::{AppState, Shared};
use crate::auth::form_token;
use crate::http::{
    ClientAddress, constant_time_eq, cookie, cookie_value, from_this_site, loggable,
    navigated_from_this_site,
};
use crate::ops::feedback::{self, FeedbackError};
use crate::ops::results;
use crate::ops::visitors::{self, VisitorError};
use crate::portal::PortalError;
use crate::storage::{Visitor, VisitorVisit};

/// The visitor's session: apart from the staff's `office_session` in name and in storage.
pub const VISITOR_SESSION_COOKIE: &str = "visitor_session";
/// The `state` of the sign-in under way in this browser, sent back only to the callback.
const SIGN_IN_COOKIE: &str = "visitor_sign_in";

/// Why an account page could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("sign-in through the portal is off")]
    Off,
    #[error(transparent)]
    Link(#[from] FeedbackError),
    #[error(transparent)]
    Visitor(#[from] VisitorError),
    #[error(transparent)]
    Portal(#[from] PortalError),
    #[error("the portal answered with an error")]
    Denied,
    #[error("a form from another site, or with a stale token")]
    StaleForm,
    #[error("blocking work panicked")]
    Panicked,
}

impl From<crate::app::Panicked> for AccountError {
    fn from(_: crate::app::Panicked) -> Self {
        AccountError::Panicked
    }
}

impl From<crate::storage::StorageError> for AccountError {
    fn from(error: crate::storage::StorageError) -> Self {
        AccountError::Visitor(VisitorError::Storage(error))
    }
}

pub type AccountResult<T> = Result<T, AccountError>;

impl IntoResponse for AccountError {
    fn into_response(self) -> Response {
        let t = &ACCOUNT_RU;
        let (status, text) = match &self {
            // The link's own messages, as the feedback page gives them.
            AccountError::Link(error) => return super::visitor::message(error),
            AccountError::Off => (StatusCode::NOT_FOUND, t.off),
            AccountError::Visitor(VisitorError::UnknownSignIn) => {
                (StatusCode::BAD_REQUEST, t.unknown_sign_in)
            }
            AccountError::Visitor(VisitorError::WrongIssuer) => {
                (StatusCode::BAD_REQUEST, t.wrong_issuer)
            }
            AccountError::Visitor(VisitorError::Taken) => (StatusCode::CONFLICT, t.taken),
            AccountError::Visitor(VisitorError::NotYours) => (StatusCode::NOT_FOUND, t.not_yours),
            AccountError::Visitor(VisitorError::Throttled) => {
                (StatusCode::TOO_MANY_REQUESTS, t.throttled)
            }
            AccountError::Visitor(VisitorError::Busy) => (StatusCode::SERVICE_UNAVAILABLE, t.busy),
            AccountError::Visitor(VisitorError::Storage(error)) => {
                tracing::error!(%error, "visitor account storage failed");
                (StatusCode::SERVICE_UNAVAILABLE, t.failure)
            }
            AccountError::Portal(error) => {
                tracing::warn!(error = %loggable(&error.to_string(), 500), "portal sign-in refused");
                match error {
                    PortalError::Unavailable(_) => (StatusCode::BAD_GATEWAY, t.unavailable),
                    PortalError::CodeRefused(_) => (StatusCode::BAD_REQUEST, t.code_refused),
                    PortalError::BadIdToken(_) => (StatusCode::BAD_REQUEST, t.bad_id_token),
                }
            }
            AccountError::Denied => (StatusCode::BAD_REQUEST, t.denied),
            AccountError::StaleForm => (StatusCode::FORBIDDEN, t.stale_form),
            AccountError::Panicked => (StatusCode::INTERNAL_SERVER_ERROR, t.failure),
        };
        let title = if matches!(self, AccountError::Off) {
            t.my_title
        } else {
            t.error_title
        };
        render(
            status,
            AccountPage {
                t,
                title,
                notice: None,
                body: AccountBody::Message {
                    text: text.to_string(),
                },
            },
        )
    }
}

/// One visit of «Мои посещения».
struct VisitView {
    id: Uuid,
    /// Date, section, service; `None` until the tablet has synced the visit.
    visit: Option<(String, String, String)>,
    ready_at: Option<String>,
    feedback: Option<FeedbackView>,
    /// The visitor's number for «Результат готов», while the result is not ready.
    sms: Option<SmsBox>,
}

struct FeedbackView {
    scores: Vec<(String, u8)>,
    comment: Option<String>,
    thanks: bool,
    answer: Option<String>,
}

enum AccountBody {
    Consent {
        for_visit: bool,
        sign_in_href: String,
        /// Signed in already: a form that attaches the visit, with its token.
        attach: Option<(String, String)>,
    },
    Visits {
        name: String,
        visits: Vec<VisitView>,
        csrf: String,
    },
    Message {
        text: String,
    },
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    t: &'a AccountStrings,
    title: &'a str,
    notice: Option<&'a str>,
    body: AccountBody,
}

fn render(status: StatusCode, page: AccountPage<'_>) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "an account page failed to render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A redirect to anywhere, the portal included (only ever given addresses built here).
fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// A signed-in visitor and their session.
struct SignedInVisitor {
    visitor: Visitor,
    token: String,
    csrf: String,
}

impl SignedInVisitor {
    fn check_csrf(&self, sent: &str) -> AccountResult<()> {
        if constant_time_eq(sent.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(AccountError::StaleForm)
        }
    }
}

fn portal_on(state: &AppState) -> AccountResult<()> {
    if state.portal.is_some() {
        Ok(())
    } else {
        Err(AccountError::Off)
    }
}

async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> AccountResult<Option<SignedInVisitor>> {
    let Some(token) = cookie(headers, VISITOR_SESSION_COOKIE).map(str::to_string) else {
        return Ok(None);
    };
    let lookup = token.clone();
    let visitor = state
        .blocking(move |s| visitors::session_visitor(s.storage.as_ref(), &lookup, Timestamp::now()))
        .await??;
    Ok(visitor.map(|visitor| SignedInVisitor {
        visitor,
        csrf: form_token("visitor csrf", &token),
        token,
    }))
}

/// A state-changing form: from this site, with this session's token.
async fn form_of(
    state: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    csrf: &str,
) -> AccountResult<Option<SignedInVisitor>> {
    if !from_this_site(headers, uri, state.public_origin.as_ref()) {
        return Err(AccountError::StaleForm);
    }
    let me = signed_in(state, headers).await?;
    if let Some(me) = &me {
        me.check_csrf(csrf)?;
    }
    Ok(me)
}

#[derive(Debug, Default, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `GET /f/{token}/account`: the consent before the visit goes to the visitor's account.
pub async fn consent_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> AccountResult<Response> {
    portal_on(&state)?;
    linked_visit(&state, token.clone()).await?;
    let me = signed_in(&state, &headers).await?;
    let t = &ACCOUNT_RU;
    Ok(render(
        StatusCode::OK,
        AccountPage {
            t,
            title: t.consent_title,
            notice: None,
            body: AccountBody::Consent {
                for_visit: true,
                sign_in_href: format!("/f/{token}/account/sign-in"),
                attach: me.map(|me| (format!("/f/{token}/account"), me.csrf)),
            },
        },
    ))
}

/// `POST /f/{token}/account`: a signed-in visitor attaches the visit.
pub async fn attach_submit(
    State(state): State<AppState>,
    Path(token): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> AccountResult<Response> {
    portal_on(&state)?;
    let Some(me) = form_of(&state, &uri, &headers, &form.csrf).await? else {
        return Ok(redirect(&format!("/f/{token}/account")));
    };
    let visit_id = linked_visit(&state, token).await?;
    let visitor = me.visitor;
    state
        .blocking(move |s| {
            visitors::attach(s.storage.as_ref(), &visitor, visit_id, Timestamp::now())
        })
        .await??;
    Ok(redirect(&format!("/my#visit-{visit_id}")))
}

async fn linked_visit(state: &AppState, token: String) -> AccountResult<Uuid> {
    Ok(state
        .blocking(move |s| {
            feedback::linked_visit(
                s.storage.as_ref(),
                &token,
                &s.config.feedback,
                Timestamp::now(),
            )
        })
        .await??)
}

/// `GET /f/{token}/account/sign-in`: to the portal, to come back with the visit attached.
/// Only from the consent page: a link elsewhere could otherwise put a visit it holds in the
/// account of whoever follows it while signed in at the portal. From anywhere else the
/// visitor is shown the consent page, whose button leads here.
pub async fn sign_in_from_link(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    Path(token): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> AccountResult<Response> {
    portal_on(&state)?;
    if !navigated_from_this_site(&headers, &uri, state.public_origin.as_ref()) {
        return Ok(redirect(&format!("/f/{token}/account")));
    }
    state.sign_in_throttle.attempt(client)?;
    let visit_id = linked_visit(&state, token).await?;
    begin_sign_in(&state, Some(visit_id)).await
}

/// `GET /my/sign-in`: to the portal, to come back to «Мои посещения».
pub async fn sign_in(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
) -> AccountResult<Response> {
    portal_on(&state)?;
    state.sign_in_throttle.attempt(client)?;
    begin_sign_in(&state, None).await
}

/// A link, not a form: browsers check a form's redirect against `form-action`, and this one
/// leads to the portal. It only starts a sign-in bound to this browser's cookie.
async fn begin_sign_in(state: &AppState, visit_id: Option<Uuid>) -> AccountResult<Response> {
    let portal = state.portal.as_ref().ok_or(AccountError::Off)?;
    let start = portal.begin().await?;
    let url = start.url.clone();
    let browser_state = start.state.clone();
    state
        .blocking(move |s| {
            visitors::keep_sign_in(
                s.storage.as_ref(),
                &start,
                visit_id,
                &s.config.portal,
                Timestamp::now(),
            )
        })
        .await??;
    let cookie = cookie_value(
        SIGN_IN_COOKIE,
        &browser_state,
        crate::portal::CALLBACK_PATH,
        Some(i64::from(state.config.portal.sign_in_minutes) * 60),
        state.https,
    );
    Ok(crate::http::with_cookie(redirect(&url), &cookie))
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    iss: Option<String>,
}

/// `GET /visitor/callback`: the portal sends the visitor back here.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    // Whatever happens, the sign-in is over in this browser.
    let cleared = cookie_value(
        SIGN_IN_COOKIE,
        "",
        crate::portal::CALLBACK_PATH,
        Some(0),
        state.https,
    );
    let response = match finish_sign_in(&state, &headers, query.ok().map(|q| q.0)).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    crate::http::with_cookie(response, &cleared)
}

async fn finish_sign_in(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<CallbackQuery>,
) -> AccountResult<Response> {
    let portal = state.portal.as_ref().ok_or(AccountError::Off)?;
    let query = query.ok_or(VisitorError::UnknownSignIn)?;
    let browser_state = cookie(headers, SIGN_IN_COOKIE).map(str::to_string);
    let issuer = portal.issuer().to_string();
    let CallbackQuery {
        code,
        state: sent_state,
        error,
        iss,
    } = query;
    let pending = state
        .blocking(move |s| {
            visitors::take_sign_in(
                s.storage.as_ref(),
                &sent_state,
                browser_state.as_deref(),
                iss.as_deref(),
                &issuer,
                Timestamp::now(),
            )
        })
        .await??;
    if let Some(error) = error {
        tracing::info!(error = %loggable(&error, 100), "the portal ended a sign-in");
        return Err(AccountError::Denied);
    }
    let code = code.ok_or(VisitorError::UnknownSignIn)?;
    let visit_id = pending.visit_id;
    let person = portal
        .finish(code, pending.pkce_verifier, pending.nonce)
        .await?;
    let signed = state
        .blocking(move |s| {
            visitors::sign_in(
                s.storage.as_ref(),
                &person,
                visit_id,
                &s.config.portal,
                Timestamp::now(),
            )
        })
        .await??;
    let target = match (visit_id, signed.taken) {
        (_, true) => "/my?taken=1".to_string(),
        (Some(visit_id), false) => format!("/my#visit-{visit_id}"),
        (None, false) => "/my".to_string(),
    };
    let session = cookie_value(
        VISITOR_SESSION_COOKIE,
        &signed.token,
        "/",
        Some(i64::from(state.config.portal.session_minutes) * 60),
        state.https,
    );
    Ok(crate::http::with_cookie(redirect(&target), &session))
}

#[derive(Debug, Default, Deserialize)]
pub struct MyQuery {
    #[serde(default)]
    taken: Option<String>,
}

/// What a refused number shows on its visit: the words and what was typed.
type SmsRefusal = (Uuid, &'static str, String);

fn visit_view(
    s: &Shared,
    visit: VisitorVisit,
    csrf: &str,
    refused: Option<&SmsRefusal>,
) -> VisitView {
    let sms = (s.config.sms.enabled() && visit.result_ready_at.is_none()).then(|| {
        let id = visit.visit_id;
        let masked = results::consent(s.storage.as_ref(), id, Timestamp::now())
            .ok()
            .flatten();
        let mut sms = SmsBox::new(
            s,
            format!("sms-{id}"),
            format!("/my/visits/{id}/sms"),
            masked,
        );
        sms.csrf = Some(csrf.to_string());
        if let Some((_, error, typed)) = refused.filter(|(visit, ..)| *visit == id) {
            sms.error = Some(error);
            sms.phone = typed.clone();
            sms.masked = None;
        }
        sms
    });
    VisitView {
        sms,
        id: visit.visit_id,
        visit: visit
            .visit
            .map(|(at, section, service)| (local_time(&s.zone, at), section, service)),
        ready_at: visit.result_ready_at.map(|at| local_time(&s.zone, at)),
        feedback: visit.feedback.map(|sent| FeedbackView {
            scores: labelled_scores(&s.config.feedback, &sent.scores),
            comment: sent.comment,
            thanks: sent.thanks,
            answer: sent.answer,
        }),
    }
}

/// `GET /my`: «Мои посещения», or the way to sign in.
pub async fn my_visits(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<MyQuery>,
) -> AccountResult<Response> {
    portal_on(&state)?;
    let t = &ACCOUNT_RU;
    let Some(me) = signed_in(&state, &headers).await? else {
        return Ok(render(
            StatusCode::OK,
            AccountPage {
                t,
                title: t.my_title,
                notice: None,
                body: AccountBody::Consent {
                    for_visit: false,
                    sign_in_href: "/my/sign-in".into(),
                    attach: None,
                },
            },
        ));
    };
    let notice = query.taken.is_some().then_some(t.taken);
    visits_page(&state, me, StatusCode::OK, notice, None).await
}

/// «Мои посещения» of the signed-in visitor.
async fn visits_page(
    state: &AppState,
    me: SignedInVisitor,
    status: StatusCode,
    notice: Option<&'static str>,
    refused: Option<SmsRefusal>,
) -> AccountResult<Response> {
    let t = &ACCOUNT_RU;
    let (visitor_id, csrf) = (me.visitor.id, me.csrf.clone());
    let visits = state
        .blocking(move |s| {
            s.storage.visitor_visits(visitor_id).map(|visits| {
                visits
                    .into_iter()
                    .map(|v| visit_view(s, v, &csrf, refused.as_ref()))
                    .collect()
            })
        })
        .await??;
    Ok(render(
        status,
        AccountPage {
            t,
            title: t.my_title,
            notice,
            body: AccountBody::Visits {
                name: me.visitor.name.full(),
                visits,
                csrf: me.csrf,
            },
        },
    ))
}

#[derive(Debug, Default, Deserialize)]
pub struct AccountSmsForm {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    sms: SmsForm,
}

/// `POST /my/visits/{id}/sms`: the visitor's number for one of their visits, or its deletion.
pub async fn sms_submit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    Form(form): Form<AccountSmsForm>,
) -> AccountResult<Response> {
    portal_on(&state)?;
    let Some(me) = form_of(&state, &uri, &headers, &form.csrf).await? else {
        return Ok(redirect("/my"));
    };
    let visit_id = Uuid::parse_str(&id).map_err(|_| VisitorError::NotYours)?;
    let visitor = me.visitor.clone();
    let fields = form.sms;
    let typed: String = fields
        .phone
        .chars()
        .take(crate::domain::sms::PhoneNumber::MAX_CHARS)
        .collect();
    let kept = state
        .blocking(move |s| {
            visitors::owns(s.storage.as_ref(), &visitor, visit_id)?;
            Ok::<_, AccountError>(results::choose_number(
                s.storage.as_ref(),
                &s.config.sms,
                visit_id,
                fields.choice(),
                Timestamp::now(),
            ))
        })
        .await??;
    match kept {
        Ok(()) => Ok(redirect(&format!("/my#sms-{visit_id}"))),
        Err(error) => {
            let (status, text) = sms_refusal(&error);
            visits_page(&state, me, status, None, Some((visit_id, text, typed))).await
        }
    }
}

/// `POST /my/visits/{id}/detach`.
pub async fn detach_submit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> AccountResult<Response> {
    portal_on(&state)?;
    let Some(me) = form_of(&state, &uri, &headers, &form.csrf).await? else {
        return Ok(redirect("/my"));
    };
    let visit_id = Uuid::parse_str(&id).map_err(|_| VisitorError::NotYours)?;
    let visitor = me.visitor;
    state
        .blocking(move |s| visitors::detach(s.storage.as_ref(), &visitor, visit_id))
        .await??;
    Ok(redirect("/my"))
}

fn message_page(status: StatusCode, title: &str, text: &str) -> Response {
    render(
        status,
        AccountPage {
            t: &ACCOUNT_RU,
            title,
            notice: None,
            body: AccountBody::Message {
                text: text.to_string(),
            },
        },
    )
}

fn cleared_session(state: &AppState, response: Response) -> Response {
    let cookie = cookie_value(VISITOR_SESSION_COOKIE, "", "/", Some(0), state.https);
    crate::http::with_cookie(response, &cookie)
}

#[derive(Debug, Default, Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /my/delete`: withdrawal of consent.
pub async fn delete_submit(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    Form(form): Form<DeleteForm>,
) -> AccountResult<Response> {
    portal_on(&state)?;
    let Some(me) = form_of(&state, &uri, &headers, &form.csrf).await? else {
        return Ok(redirect("/my"));
    };
    if form.confirm.is_empty() {
        // The box left unticked: the page again (the browser's `required` usually stops it).
        return Ok(redirect("/my#delete"));
    }
    let visitor = me.visitor;
    state
        .blocking(move |s| visitors::delete_account(s.storage.as_ref(), &visitor))
        .await??;
    let t = &ACCOUNT_RU;
    Ok(cleared_session(
        &state,
        message_page(StatusCode::OK, t.deleted_title, t.deleted_text),
    ))
}

/// `POST /my/logout`.
pub async fn logout_submit(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> AccountResult<Response> {
    portal_on(&state)?;
    if let Some(me) = form_of(&state, &uri, &headers, &form.csrf).await? {
        let token = me.token;
        state
            .blocking(move |s| visitors::sign_out(s.storage.as_ref(), &token))
            .await??;
    }
    let t = &ACCOUNT_RU;
    Ok(cleared_session(
        &state,
        message_page(StatusCode::OK, t.signed_out_title, t.signed_out_text),
    ))
}
