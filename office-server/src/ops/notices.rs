//! Which events each account is told of by e-mail, and in what words: a tablet silent in
//! working hours and a failed backup to administrators; an alert on an employee and verdicts
//! past their deadline to the heads whose scope they are in, and to a head's deputy while the
//! deputy covers. Each event has a key, so noticing it again at the next look queues nothing.

use jiff::{SignedDuration, Timestamp};

use crate::app::Shared;
use crate::domain::scope::ReviewScope;
use crate::domain::tablets::silent_tablets;
use crate::storage::{
    BadVisitQuery, MailRecipient, NewMail, ReportFilter, Role, StorageResult, VerdictFilter,
};
use crate::web::local_time;
use crate::web::strings::{MAIL_RU, fill};
use crate::workday::next_time_of_day;

/// Alerts raised longer ago than this are not mailed: an administrator turning notifications
/// on is not sent the past.
const ALERT_NEWS: SignedDuration = SignedDuration::from_hours(24);

/// One thing to tell, before it is addressed.
struct Notice {
    key: String,
    subject: String,
    body: String,
    /// The page that shows it, under `public_url`.
    page: Option<&'static str>,
}

/// The notifications that events at `now` call for, one per recipient and event.
pub fn collect(shared: &Shared, now: Timestamp) -> StorageResult<Vec<NewMail>> {
    let db = shared.storage.as_ref();
    let recipients = db.mail_recipients()?;
    if recipients.is_empty() {
        return Ok(Vec::new());
    }
    let mut mail = Vec::new();
    let admins: Vec<&MailRecipient> = recipients
        .iter()
        .filter(|r| r.account.role == Role::Admin)
        .collect();
    if !admins.is_empty() {
        for notice in silent_notices(shared, now)? {
            for admin in &admins {
                mail.push(address(shared, admin, &notice, now));
            }
        }
    }
    let alerts: Vec<_> = db
        .alerts(&ReportFilter::default(), true, 500)?
        .into_iter()
        .filter(|alert| now.duration_since(alert.raised_at) < ALERT_NEWS)
        .collect();
    let open = shared.calendar.is_open(now, &shared.config.working_hours);
    for recipient in recipients.iter().filter(|r| r.account.role != Role::Admin) {
        let mut scopes = crate::ops::deputies::review_scopes(db, &recipient.account, now)?;
        scopes.dedup();
        if scopes.is_empty() {
            continue;
        }
        for alert in &alerts {
            let sees = |scope: &ReviewScope| {
                scope.sees(alert.department_id, alert.section_id, alert.employee_id)
            };
            if scopes.iter().any(sees) {
                let notice = Notice {
                    key: format!("alert:{}", alert.id),
                    subject: fill(MAIL_RU.alert_subject, &[("employee", &alert.employee_name)]),
                    body: fill(
                        MAIL_RU.alert_body,
                        &[
                            ("employee", &alert.employee_name),
                            ("section", &alert.section_name),
                            ("bad", &alert.bad.to_string()),
                            ("rated", &alert.rated.to_string()),
                            ("from", &local_time(&shared.zone, alert.window_start)),
                            ("to", &local_time(&shared.zone, alert.window_end)),
                        ],
                    ),
                    page: Some("/dashboard/alerts"),
                };
                mail.push(address(shared, recipient, &notice, now));
            }
        }
        // Told once a working day, while the office is open, as long as any stay overdue.
        if open {
            let overdue = overdue_count(shared, &scopes, now)?;
            if overdue > 0 {
                let day = shared.zone.to_datetime(now).date();
                let notice = Notice {
                    key: format!("overdue:{day}"),
                    subject: fill(MAIL_RU.overdue_subject, &[("count", &overdue.to_string())]),
                    body: fill(
                        MAIL_RU.overdue_body,
                        &[
                            ("count", &overdue.to_string()),
                            (
                                "days",
                                &shared.config.review.verdict_working_days.to_string(),
                            ),
                        ],
                    ),
                    page: Some("/dashboard/bad?verdict=overdue"),
                };
                mail.push(address(shared, recipient, &notice, now));
            }
        }
    }
    Ok(mail)
}

/// What the administrators are told of a scheduled backup that failed at `at`.
pub fn backup_failed(shared: &Shared, at: Timestamp, error: &str) -> StorageResult<Vec<NewMail>> {
    let notice = Notice {
        key: format!("backup-failed:{}", at.as_millisecond()),
        subject: MAIL_RU.backup_subject.to_string(),
        body: fill(
            MAIL_RU.backup_body,
            &[("at", &local_time(&shared.zone, at)), ("error", error)],
        ),
        page: None,
    };
    Ok(shared
        .storage
        .mail_recipients()?
        .iter()
        .filter(|r| r.account.role == Role::Admin)
        .map(|admin| address(shared, admin, &notice, at))
        .collect())
}

/// One notice per tablet silent now; a tablet heard from again and silent anew is a new
/// event (the key holds when it was last heard).
fn silent_notices(shared: &Shared, now: Timestamp) -> StorageResult<Vec<Notice>> {
    let tablets = shared.storage.tablets()?;
    let minutes = shared.config.tablet_silent_minutes;
    Ok(silent_tablets(
        &tablets,
        now,
        &shared.calendar,
        &shared.config.working_hours,
        minutes,
    )
    .into_iter()
    .map(|tablet| {
        let heard = tablet.last_seen_at.unwrap_or(tablet.enrolled_at);
        Notice {
            key: format!("tablet-silent:{}:{}", tablet.id, heard.as_millisecond()),
            subject: fill(MAIL_RU.silent_subject, &[("name", &tablet.name)]),
            body: fill(
                MAIL_RU.silent_body,
                &[
                    ("name", &tablet.name),
                    ("minutes", &minutes.to_string()),
                    ("since", &local_time(&shared.zone, heard)),
                ],
            ),
            page: Some("/admin/tablets"),
        }
    })
    .collect())
}

/// The Плохо past their deadline without a verdict that `scopes` cover.
fn overdue_count(shared: &Shared, scopes: &[ReviewScope], now: Timestamp) -> StorageResult<u64> {
    let before = shared.verdicts_overdue_before(now);
    let mut count = 0;
    for scope in scopes {
        let query = BadVisitQuery {
            filter: scope.visibility.filter(),
            verdict: VerdictFilter::Undecided,
            received_before: Some(before),
            except_employee: scope.except_employee,
            ..BadVisitQuery::default()
        };
        count += shared.storage.bad_visit_count(&query)?;
    }
    Ok(count)
}

/// The notice for one recipient: due now, or at the next digest time if they take a digest.
fn address(shared: &Shared, to: &MailRecipient, notice: &Notice, now: Timestamp) -> NewMail {
    let mut body = notice.body.clone();
    if let Some(page) = notice.page
        && !shared.config.public_url.is_empty()
    {
        body = format!(
            "{body}\n{} {}{page}",
            MAIL_RU.open, shared.config.public_url
        );
    }
    NewMail {
        account_id: to.account.id,
        event_key: notice.key.clone(),
        subject: notice.subject.clone(),
        body,
        digest: to.digest,
        created_at: now,
        due_at: if to.digest {
            next_time_of_day(now, shared.config.mail.digest_time, &shared.zone)
        } else {
            now
        },
    }
}
