//! «Результат готов»: the visitor's number with their consent, the office's case number on a
//! visit, marking the result ready (by the specialist who served it, a head in scope, or the
//! case-management system by case number) — which queues one SMS when a number was left —,
//! a person's decision on a message whose outcome is unknown, and the gateway's delivery
//! reports. The rules are `domain::sms`; the sending is `crate::sms`.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::config::SmsSettings;
use crate::domain::Visibility;
use crate::domain::sms::{CaseNumber, InvalidCase, InvalidPhone, PhoneNumber, message_text};
use crate::storage::{
    AuditAction, AuditEvent, MarkedReady, NewSms, ResultVisit, SmsConsent, SmsDecision, SmsReport,
    SpecialistVisit, Storage, StorageError,
};

#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("SMS is not set up in this office")]
    SmsOff,
    #[error("the visitor did not tick the consent")]
    NoConsent,
    #[error("the phone number {0}")]
    BadPhone(InvalidPhone),
    #[error("the case number {0}")]
    BadCase(InvalidCase),
    #[error("another visit has this case number")]
    CaseTaken,
    #[error("the result is ready already")]
    AlreadyReady,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Who is written in the audit log for a change: an account and its session, or — for the
/// case-management system — neither.
#[derive(Debug, Clone, Copy)]
pub struct Audited<'a> {
    pub account_id: Option<i64>,
    pub session_tag: &'a str,
}

impl Audited<'_> {
    pub const CASE_SYSTEM: Audited<'static> = Audited {
        account_id: None,
        session_tag: "",
    };
}

fn audit(
    db: &dyn Storage,
    who: Audited<'_>,
    action: AuditAction,
    visit_id: Uuid,
    detail: String,
    now: Timestamp,
) -> Result<(), ResultError> {
    db.log_audit(&AuditEvent {
        at: now,
        account_id: who.account_id,
        action,
        visit_id: Some(visit_id),
        session_tag: who.session_tag.to_string(),
        detail,
    })?;
    Ok(())
}

/// Who acts on a visit's result, and so which visits they reach.
#[derive(Debug, Clone, Copy)]
pub enum Actor {
    /// The specialist who served it.
    Specialist { employee_id: i64 },
    /// A head or an administrator, within what they see.
    Office(Visibility),
    /// The office's case-management system, by case number.
    CaseSystem,
}

impl Actor {
    fn reaches(self, visit: &ResultVisit) -> bool {
        match self {
            Actor::Specialist { employee_id } => visit.employee_id == employee_id,
            Actor::Office(visibility) => visibility.sees(visit.department_id, visit.section_id),
            Actor::CaseSystem => true,
        }
    }
}

/// The visit, if the actor reaches it; outside their reach it is "not found".
fn reached(db: &dyn Storage, actor: Actor, visit_id: Uuid) -> Result<ResultVisit, ResultError> {
    db.result_visit(visit_id)?
        .filter(|visit| actor.reaches(visit))
        .ok_or(ResultError::NotFound("visit"))
}

/// Keeps the visitor's number for the visit, given with consent; what they are shown of it.
fn give_consent(
    db: &dyn Storage,
    settings: &SmsSettings,
    visit_id: Uuid,
    typed: &str,
    consented: bool,
    now: Timestamp,
) -> Result<String, ResultError> {
    if !settings.enabled() {
        return Err(ResultError::SmsOff);
    }
    if !consented {
        return Err(ResultError::NoConsent);
    }
    let country = settings.country_id().map_err(|_| ResultError::SmsOff)?;
    let phone = PhoneNumber::parse(typed, country).map_err(ResultError::BadPhone)?;
    // Ready already: there is nothing left to tell, so no number is kept.
    if db
        .result_visit(visit_id)?
        .is_some_and(|visit| visit.result_ready_at.is_some())
    {
        return Err(ResultError::AlreadyReady);
    }
    let masked = phone.masked();
    let kept = db.give_sms_consent(
        visit_id,
        &SmsConsent {
            phone: phone.as_e164().to_string(),
            masked: masked.clone(),
            given_at: now,
            expires_at: now + SignedDuration::from_hours(24 * i64::from(settings.keep_number_days)),
        },
    )?;
    if !kept {
        return Err(ResultError::AlreadyReady);
    }
    tracing::info!(visit = %visit_id, "a visitor left a number for «Результат готов»");
    Ok(masked)
}

/// What the visitor asked of their number for a visit.
#[derive(Debug, Clone, Copy)]
pub enum NumberChoice<'a> {
    Keep { typed: &'a str, consented: bool },
    Delete,
}

/// Keeps the number or deletes it, as the visitor chose.
pub fn choose_number(
    db: &dyn Storage,
    settings: &SmsSettings,
    visit_id: Uuid,
    choice: NumberChoice<'_>,
    now: Timestamp,
) -> Result<(), ResultError> {
    match choice {
        NumberChoice::Keep { typed, consented } => {
            give_consent(db, settings, visit_id, typed, consented, now).map(drop)
        }
        NumberChoice::Delete => withdraw_consent(db, visit_id),
    }
}

/// What the visitor is shown of the number kept for the visit, if any.
pub fn consent(
    db: &dyn Storage,
    visit_id: Uuid,
    now: Timestamp,
) -> Result<Option<String>, ResultError> {
    Ok(db.sms_consent(visit_id, now)?.map(|consent| consent.masked))
}

/// Deletes the visitor's number for the visit.
fn withdraw_consent(db: &dyn Storage, visit_id: Uuid) -> Result<(), ResultError> {
    db.withdraw_sms_consent(visit_id)?;
    Ok(())
}

/// Sets the visit's case number (an empty one clears it).
pub fn set_case_number(
    db: &dyn Storage,
    actor: Actor,
    visit_id: Uuid,
    typed: &str,
) -> Result<(), ResultError> {
    let case = if typed.trim().is_empty() {
        None
    } else {
        Some(CaseNumber::parse(typed).map_err(ResultError::BadCase)?)
    };
    reached(db, actor, visit_id)?;
    db.set_case_number(visit_id, case.as_ref().map(CaseNumber::as_str))
        .map_err(|error| match error {
            StorageError::AlreadyExists(_) => ResultError::CaseTaken,
            other => ResultError::Storage(other),
        })
}

/// How long after a visit's end the case-management system may still register its case
/// (the specialist types up the application once the visitor has left).
pub const CASE_AFTER_VISIT: SignedDuration = SignedDuration::from_mins(30);

/// The case-management system gives a case number to the visit the employee was serving at
/// `at` (or had just finished); the visit it went to.
pub fn give_case_number(
    db: &dyn Storage,
    employee_id: i64,
    at: Timestamp,
    typed: &str,
) -> Result<ResultVisit, ResultError> {
    let case = CaseNumber::parse(typed).map_err(ResultError::BadCase)?;
    let visit = db
        .employee_visit_at(employee_id, at, CASE_AFTER_VISIT)?
        .ok_or(ResultError::NotFound("visit of this employee at this time"))?;
    match visit.case_number.as_deref() {
        Some(same) if same == case.as_str() => return Ok(visit),
        // The specialist entered another one: theirs stands; a person sorts it out.
        Some(_) => return Err(ResultError::CaseTaken),
        None => {}
    }
    db.set_case_number(visit.visit_id, Some(case.as_str()))
        .map_err(|error| match error {
            StorageError::AlreadyExists(_) => ResultError::CaseTaken,
            other => ResultError::Storage(other),
        })?;
    tracing::info!(visit = %visit.visit_id, "case number given by the case-management system");
    Ok(ResultVisit {
        case_number: Some(case.as_str().to_string()),
        ..visit
    })
}

/// What marking ready needs beside storage: the message's settings and the outbox's bell.
pub struct Outbox<'a> {
    pub settings: &'a SmsSettings,
    pub wake: &'a Notify,
}

/// Marks the visit's result ready, once, and queues its message when a number was left.
pub fn mark_ready(
    db: &dyn Storage,
    outbox: &Outbox<'_>,
    actor: Actor,
    who: Audited<'_>,
    visit_id: Uuid,
    now: Timestamp,
) -> Result<MarkedReady, ResultError> {
    let visit = reached(db, actor, visit_id)?;
    mark(db, outbox, &visit, who, now)
}

/// Marks ready the visit that carries this case number.
pub fn mark_ready_by_case(
    db: &dyn Storage,
    outbox: &Outbox<'_>,
    actor: Actor,
    who: Audited<'_>,
    typed: &str,
    now: Timestamp,
) -> Result<(ResultVisit, MarkedReady), ResultError> {
    let case = CaseNumber::parse(typed).map_err(ResultError::BadCase)?;
    let visit = db
        .result_visit_by_case(case.as_str())?
        .filter(|visit| actor.reaches(visit))
        .ok_or(ResultError::NotFound("case"))?;
    let marked = mark(db, outbox, &visit, who, now)?;
    Ok((visit, marked))
}

fn mark(
    db: &dyn Storage,
    outbox: &Outbox<'_>,
    visit: &ResultVisit,
    who: Audited<'_>,
    now: Timestamp,
) -> Result<MarkedReady, ResultError> {
    let case = visit
        .case_number
        .as_deref()
        .and_then(|text| CaseNumber::parse(text).ok());
    let sms = NewSms {
        text: message_text(
            &outbox.settings.template,
            case.as_ref(),
            &outbox.settings.office_name,
        ),
        report_key: new_report_key(),
    };
    let marked = db.mark_result_ready(visit.visit_id, &sms, now)?;
    if let MarkedReady::Marked { queued } = marked {
        tracing::info!(visit = %visit.visit_id, queued, "result marked ready");
        audit(
            db,
            who,
            AuditAction::ResultReady,
            visit.visit_id,
            visit.case_number.clone().unwrap_or_default(),
            now,
        )?;
        if queued {
            outbox.wake.notify_one();
        }
    }
    Ok(marked)
}

/// The secret a message's delivery reports come back with.
fn new_report_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    rand::fill(&mut key);
    key
}

/// A person's decision on a message that failed or whose outcome is unknown, within what
/// they see: send it again now, or not at all.
pub fn decide(
    db: &dyn Storage,
    wake: &Notify,
    visibility: Visibility,
    message_id: i64,
    resend: bool,
    who: Audited<'_>,
    now: Timestamp,
) -> Result<(), ResultError> {
    let message = db
        .sms_message(message_id)?
        .filter(|message| visibility.sees(message.department_id, message.section_id))
        .ok_or(ResultError::NotFound("message"))?;
    let by = who.account_id;
    let decision = if resend {
        SmsDecision::Resend {
            report_key: new_report_key(),
        }
    } else {
        SmsDecision::Cancel
    };
    if !db.decide_sms(message_id, &decision, by, now)? {
        return Err(ResultError::NotFound("message waiting for a decision"));
    }
    tracing::info!(message = message_id, by = ?by, resend, "decision on an SMS");
    let action = if resend {
        AuditAction::SmsResend
    } else {
        AuditAction::SmsCancel
    };
    audit(
        db,
        who,
        action,
        message.visit_id,
        message.case_number.unwrap_or_default(),
        now,
    )?;
    if resend {
        wake.notify_one();
    }
    Ok(())
}

/// A delivery report from the gateway; false when the message or its key is not known.
pub fn record_report(
    db: &dyn Storage,
    message_id: i64,
    key_hex: &str,
    status: u32,
    detail: &str,
    now: Timestamp,
) -> Result<bool, ResultError> {
    let mut key = [0u8; 32];
    if hex::decode_to_slice(key_hex, &mut key).is_err() {
        return Ok(false);
    }
    let detail: String = detail
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let recorded = db.record_sms_report(
        message_id,
        &key,
        &SmsReport {
            at: now,
            status,
            detail,
        },
    )?;
    if recorded {
        tracing::info!(message = message_id, status, "SMS delivery report");
    }
    Ok(recorded)
}

/// How many days back a specialist may look through their own visits (a case number
/// forgotten on the day can still be entered).
pub const SPECIALIST_DAYS_BACK: i64 = 30;

/// The specialist's visits of one day of the office's calendar — `day`, or today when it is
/// not given or not within the last [`SPECIALIST_DAYS_BACK`] days —, the latest first; and the
/// day shown.
pub fn specialist_day(
    db: &dyn Storage,
    employee_id: i64,
    zone: &TimeZone,
    now: Timestamp,
    day: Option<Date>,
) -> Result<(Date, Vec<SpecialistVisit>), ResultError> {
    let today = now.to_zoned_datetime(zone.clone()).date();
    let earliest = today
        .checked_sub(jiff::Span::new().days(SPECIALIST_DAYS_BACK))
        .unwrap_or(today);
    let day = day
        .filter(|day| (earliest..=today).contains(day))
        .unwrap_or(today);
    let start = |date: Date| {
        date.to_zoned_datetime(zone.clone())
            .map(|zoned| zoned.timestamp())
    };
    let (Ok(from), Ok(until)) = (start(day), day.tomorrow().and_then(start)) else {
        return Ok((day, Vec::new()));
    };
    Ok((day, db.specialist_visits(employee_id, from, until)?))
}
