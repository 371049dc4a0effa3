use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The organisation: departments → sections → employees, and the service catalogue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Directory {
    pub departments: Vec<DepartmentEntry>,
    pub services: Vec<ServiceEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DepartmentEntry {
    pub id: i64,
    pub name: String,
    pub sections: Vec<SectionEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SectionEntry {
    pub id: i64,
    pub name: String,
    pub employees: Vec<EmployeeEntry>,
    /// Ids of the services the section offers, in display order.
    pub service_ids: Vec<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EmployeeEntry {
    pub id: i64,
    pub full_name: String,
    pub position: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServiceEntry {
    pub id: i64,
    pub name: String,
}

/// Sizes of what the server holds, for the status page and the demo loader.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Counts {
    pub departments: i64,
    pub sections: i64,
    pub employees: i64,
    pub services: i64,
    pub accounts: i64,
    pub tablets: i64,
    pub visits: i64,
    pub recordings: i64,
}

/// What an account may see and do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Role {
    /// Keeps the directory, accounts and tablets; sees the whole organisation.
    Admin,
    /// Reads the whole organisation, changes nothing.
    Observer,
    /// Reads one department or one section.
    Head { scope: Scope },
    /// Pairs tablets to their own working session.
    Specialist { employee_id: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Scope {
    Department(i64),
    Section(i64),
}

impl Role {
    pub fn name(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Observer => "observer",
            Role::Head { .. } => "head",
            Role::Specialist { .. } => "specialist",
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub login: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: Role,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Account {
    pub id: i64,
    pub login: String,
    pub display_name: String,
    #[serde(flatten)]
    pub role: Role,
}

#[derive(Debug, Clone)]
pub struct NewEnrolment {
    pub id: Uuid,
    pub code: String,
    pub device_description: String,
    pub app_version: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// The public key of the tablet's feedback links, if it sent one.
    pub feedback_key: Option<[u8; 32]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrolmentState {
    Pending {
        expires_at: Timestamp,
    },
    /// Approved and its credential not used yet: the tablet may collect one.
    Approved {
        tablet_id: i64,
        tablet_name: String,
    },
    /// Expired unapproved, or its credential already in use.
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TabletIdentity {
    pub id: i64,
    pub name: String,
    /// Whether the tablet has registered the public key of its feedback links.
    pub has_feedback_key: bool,
}

/// A tablet with the health it last reported, for administrators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TabletInfo {
    pub id: i64,
    pub name: String,
    pub device_description: String,
    #[schema(value_type = String, format = DateTime)]
    pub enrolled_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen_at: Option<Timestamp>,
    pub app_version: Option<String>,
    pub queue_length: Option<i64>,
    pub recordings_pending: Option<i64>,
    pub free_storage_bytes: Option<i64>,
    pub microphone: Option<String>,
    pub clock_offset_ms: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewPairingRequest {
    pub id: Uuid,
    pub tablet_id: i64,
    pub code: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairingRequestState {
    Pending { expires_at: Timestamp },
    Paired { pairing_id: Uuid },
    Expired,
}

/// A specialist typing the code a tablet shows.
#[derive(Debug, Clone)]
pub struct PairingClaim {
    pub code: String,
    pub employee_id: i64,
    pub pairing_id: Uuid,
    pub now: Timestamp,
    /// The end of the working day the pairing belongs to.
    pub ends_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingRecord {
    pub pairing: shared_model::Pairing,
    pub tablet_id: i64,
    pub ended_at: Option<Timestamp>,
}

/// What a tablet declared when it began uploading a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPromise {
    pub size_bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecording {
    pub size_bytes: u64,
    pub sha256: String,
    pub duration_ms: u64,
    pub stored_at: Timestamp,
}

pub use crate::reports::{Level, PeriodSpan, Tally};

/// Which visits a report counts: every given id must match (none given: all visits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportFilter {
    pub department_id: Option<i64>,
    pub section_id: Option<i64>,
    pub employee_id: Option<i64>,
    pub service_id: Option<i64>,
}

/// What the rows of a report are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Department,
    Section,
    Employee,
    Service,
    /// The period key itself (a day, a month…), for trends.
    Period,
    /// One row with id 0.
    Total,
}

/// A Плохо visit as the review report counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewFact {
    pub department_id: i64,
    pub section_id: i64,
    pub employee_id: i64,
    /// The corrected instant of the rating, which places it in the periods.
    pub rated_at: Timestamp,
    /// When it reached the server, which starts its verdict's deadline.
    pub received_at: Timestamp,
    /// When its first verdict was given (what "reviewed in time" is judged by).
    pub first_verdict_at: Option<Timestamp>,
    /// The verdict of record: whether the specialist acted correctly.
    pub correct: Option<bool>,
}

/// A Плохо visit, as the analysis table shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct BadVisit {
    pub visit_id: Uuid,
    pub department_id: i64,
    pub section_id: i64,
    pub section_name: String,
    pub employee_id: i64,
    pub employee_name: String,
    pub service_id: i64,
    pub service_name: String,
    /// When the visitor rated it: the end of the visit, corrected by the tablet's clock offset.
    pub rated_at: Timestamp,
    /// When it reached the server: its verdict's deadline counts from then.
    pub received_at: Timestamp,
    /// How long the visit took, by the tablet's clock.
    pub served_ms: u64,
    pub recording: RecordingState,
    pub verdict: Option<Verdict>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingState {
    /// The tablet kept none (or lost it).
    Missing,
    /// The tablet has one and has not finished uploading it.
    Pending,
    Stored {
        duration_ms: u64,
    },
    /// Deleted by the retention rule; the visit and verdict stay.
    Purged {
        at: Timestamp,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the specialist acted correctly.
    pub correct: bool,
    pub comment: String,
    pub account_id: i64,
    pub decided_by: String,
    pub decided_at: Timestamp,
}

/// Which Плохо visits a list shows, in which order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BadVisitQuery {
    pub filter: ReportFilter,
    pub verdict: VerdictFilter,
    pub recording: RecordingFilter,
    /// Rated at or after this.
    pub rated_from: Option<Timestamp>,
    /// Rated before this.
    pub rated_before: Option<Timestamp>,
    /// Reached the server before this (with `Undecided`: the overdue ones).
    pub received_before: Option<Timestamp>,
    /// Not this employee's (a deputy's own visits are not theirs to review).
    pub except_employee: Option<i64>,
    pub oldest_first: bool,
    /// Only the visits after this one in the list's order (the inbox's «Следующая»).
    pub after: Option<Uuid>,
    pub limit: u32,
    pub offset: u32,
}

/// Плохо visits by their verdict of record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum VerdictFilter {
    #[default]
    Any,
    /// Without a verdict («без решения»).
    Undecided,
    /// «Специалист действовал правильно».
    Correct,
    /// «Специалист действовал неправильно».
    Wrong,
}

/// Плохо visits by whether their recording can be listened to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RecordingFilter {
    #[default]
    Any,
    /// Stored, not purged.
    With,
    /// Missing, pending or purged.
    Without,
}

/// What an audit entry records: a look at personal data (a recording, a report), or a change
/// an administrator made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    Play,
    Download,
    Export,
    DirectoryChange,
    AccountCreate,
    PasswordReset,
    /// Where an account's e-mail notifications go, or how, changed.
    AccountMail,
    TabletApprove,
    TabletReadmit,
    TabletRename,
    TabletRevoke,
    FeedbackAnswer,
    FeedbackHide,
    FeedbackShow,
    /// A visitor's name shown to a head (on a page or in a report).
    VisitorShown,
    /// A visit's result marked ready (by its specialist, a head, or the case system).
    ResultReady,
    /// A message «Результат готов» sent again, or not at all, on a person's decision.
    SmsResend,
    SmsCancel,
    /// A head named a deputy to cover their review of Плохо, or ended the cover.
    DeputyNamed,
    DeputyEnded,
}

impl AuditAction {
    pub const ALL: [AuditAction; 20] = [
        AuditAction::Play,
        AuditAction::Download,
        AuditAction::Export,
        AuditAction::DirectoryChange,
        AuditAction::AccountCreate,
        AuditAction::PasswordReset,
        AuditAction::AccountMail,
        AuditAction::TabletApprove,
        AuditAction::TabletReadmit,
        AuditAction::TabletRename,
        AuditAction::TabletRevoke,
        AuditAction::FeedbackAnswer,
        AuditAction::FeedbackHide,
        AuditAction::FeedbackShow,
        AuditAction::VisitorShown,
        AuditAction::ResultReady,
        AuditAction::SmsResend,
        AuditAction::SmsCancel,
        AuditAction::DeputyNamed,
        AuditAction::DeputyEnded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Play => "play",
            AuditAction::Download => "download",
            AuditAction::Export => "export",
            AuditAction::DirectoryChange => "directory_change",
            AuditAction::AccountCreate => "account_create",
            AuditAction::PasswordReset => "password_reset",
            AuditAction::AccountMail => "account_mail",
            AuditAction::TabletApprove => "tablet_approve",
            AuditAction::TabletReadmit => "tablet_readmit",
            AuditAction::TabletRename => "tablet_rename",
            AuditAction::TabletRevoke => "tablet_revoke",
            AuditAction::FeedbackAnswer => "feedback_answer",
            AuditAction::FeedbackHide => "feedback_hide",
            AuditAction::FeedbackShow => "feedback_show",
            AuditAction::VisitorShown => "visitor_shown",
            AuditAction::ResultReady => "result_ready",
            AuditAction::SmsResend => "sms_resend",
            AuditAction::SmsCancel => "sms_cancel",
            AuditAction::DeputyNamed => "deputy_named",
            AuditAction::DeputyEnded => "deputy_ended",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub at: Timestamp,
    /// Who; `None` for the server's command line.
    pub account_id: Option<i64>,
    pub action: AuditAction,
    pub visit_id: Option<Uuid>,
    pub session_tag: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: Timestamp,
    /// Empty for the server's command line.
    pub account_login: String,
    pub account_name: String,
    pub action: AuditAction,
    pub visit_id: Option<Uuid>,
    pub detail: String,
}

/// When an employee's share of Плохо raises an alert.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertRule {
    pub window: jiff::SignedDuration,
    pub min_ratings: i64,
    /// Percent of rated visits in the window, inclusive.
    pub bad_share_percent: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub id: i64,
    pub employee_id: i64,
    pub employee_name: String,
    pub section_id: i64,
    pub section_name: String,
    pub department_id: i64,
    pub window_start: Timestamp,
    pub window_end: Timestamp,
    pub rated: i64,
    pub bad: i64,
    pub raised_at: Timestamp,
    pub acknowledged_at: Option<Timestamp>,
    pub acknowledged_by: Option<String>,
}

/// An account as the administrator's list shows it.
/// A head's deputy in the review of Плохо, until a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deputy {
    pub head: Account,
    pub deputy: Account,
    pub until: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    pub account: Account,
    pub created_at: Timestamp,
    pub mail: AccountMail,
}

/// How an account is told of events by e-mail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MailMode {
    /// A message for each event.
    #[default]
    Each,
    /// One message a day with every event since the last.
    Digest,
    Off,
}

impl MailMode {
    pub const ALL: [MailMode; 3] = [MailMode::Each, MailMode::Digest, MailMode::Off];

    pub fn as_str(self) -> &'static str {
        match self {
            MailMode::Each => "each",
            MailMode::Digest => "digest",
            MailMode::Off => "off",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.as_str() == text)
    }
}

/// Where an account's notifications go, and how; no address: none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountMail {
    pub email: Option<String>,
    pub mode: MailMode,
}

/// An account that is to be told of events, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRecipient {
    pub account: Account,
    pub email: String,
    pub digest: bool,
}

/// A notification to queue for an account; one per `event_key` and account, ever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMail {
    pub account_id: i64,
    pub event_key: String,
    pub subject: String,
    pub body: String,
    pub digest: bool,
    pub created_at: Timestamp,
    pub due_at: Timestamp,
}

/// A queued notification that is due, with the account's address as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueMail {
    pub id: i64,
    pub account_id: i64,
    pub email: String,
    pub subject: String,
    pub body: String,
    pub digest: bool,
    pub created_at: Timestamp,
    /// Tries so far.
    pub attempts: u32,
}

/// How sending a notification (or a digest of several) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailOutcome {
    Sent,
    Retry { at: Timestamp, error: String },
    Failed { error: String },
}

/// Where a stored visit belongs, for live updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisitPlace {
    pub visit_id: Uuid,
    pub department_id: i64,
    pub section_id: i64,
    pub employee_id: i64,
    pub rating: Option<u8>,
    /// The corrected end instant.
    pub at: Timestamp,
}

/// A stored visit with where it belongs and when it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitRecord {
    pub visit: shared_model::Visit,
    pub tablet_id: i64,
    pub employee_id: i64,
    pub section_id: i64,
    pub department_id: i64,
    pub received_at: Timestamp,
    /// The tablet's clock minus the server's, measured at the sync that delivered it.
    pub clock_offset_ms: i64,
}

/// Rated visits of an employee in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowCount {
    pub rated: i64,
    pub bad: i64,
}

/// An alert to raise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewAlert {
    pub employee_id: i64,
    pub window_start: Timestamp,
    pub window_end: Timestamp,
    pub rated: i64,
    pub bad: i64,
    pub raised_at: Timestamp,
}

/// A visitor's submission from their feedback link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFeedback {
    pub visit_id: Uuid,
    pub tablet_id: i64,
    /// (criterion key, score 1..=5), for the criteria the visitor scored.
    pub scores: Vec<(String, u8)>,
    pub comment: Option<String>,
    pub thanks: bool,
    pub submitted_at: Timestamp,
}

/// What the server knows of a feedback link when it is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackLinkState {
    /// The visit, once it has synced.
    pub visit: Option<LinkedVisit>,
    /// When the link was first opened (now, if this is the first time).
    pub first_opened_at: Timestamp,
    pub feedback: Option<SentFeedback>,
}

/// The synced visit a link names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkedVisit {
    pub tablet_id: i64,
    /// Its end by the tablet's clock corrected by the offset measured at its sync.
    pub corrected_end: Timestamp,
}

/// A submission as the visitor sees it again on their link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentFeedback {
    pub submitted_at: Timestamp,
    pub scores: Vec<(String, u8)>,
    pub comment: Option<String>,
    pub thanks: bool,
    pub answer: Option<String>,
    pub answered_at: Option<Timestamp>,
}

/// The feedback totals of one group and criterion over a span ('' counts submissions, and its
/// `score_sum` the thanks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackTotal {
    pub key: i64,
    pub criterion: String,
    pub score_sum: i64,
    pub scores: i64,
}

/// Which submissions the heads' list shows: joined with their visit, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedbackQuery {
    pub filter: ReportFilter,
    pub unanswered_only: bool,
    pub limit: u32,
    pub offset: u32,
}

/// A submission as the heads see it, beside its visit and the tablet's rating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackEntry {
    pub visit_id: Uuid,
    pub department_id: i64,
    pub section_id: i64,
    pub employee_name: String,
    pub section_name: String,
    pub service_name: String,
    /// The visit's corrected end.
    pub rated_at: Timestamp,
    /// The tablet's rating: 3, 2, 1, or none.
    pub rating: Option<u8>,
    pub submitted_at: Timestamp,
    pub scores: Vec<(String, u8)>,
    /// `None` once its keeping time is over (or none was written).
    pub comment: Option<String>,
    pub thanks: bool,
    pub answer: Option<String>,
    pub answered_by: Option<String>,
    pub answered_at: Option<Timestamp>,
    /// Who hid the comment, and when.
    pub hidden: Option<(String, Timestamp)>,
}

/// What a purge of feedback removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedbackPurged {
    /// Submissions that never joined a visit, deleted.
    pub unjoined: u64,
    /// Comments whose keeping time was over, cleared.
    pub comments: u64,
}

/// A visitor's name as the portal gave it (any part may be empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VisitorName {
    pub family_name: String,
    pub given_name: String,
    pub middle_name: String,
}

impl VisitorName {
    /// «Кулипанов Денис Анатольевич»; empty when the portal gave no name.
    pub fn full(&self) -> String {
        [&self.family_name, &self.given_name, &self.middle_name]
            .into_iter()
            .map(|part| part.trim())
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A person signed in through the city portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visitor {
    pub id: i64,
    pub name: VisitorName,
}

/// Who the portal says signed in: its issuer, its subject id, the name claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalPerson {
    pub issuer: String,
    pub subject: String,
    pub name: VisitorName,
}

/// A sign-in sent to the portal and not yet back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignIn {
    pub nonce: String,
    pub pkce_verifier: String,
    /// The visit to attach once signed in, if it began at a visit's link.
    pub visit_id: Option<Uuid>,
}

/// What attaching a visit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attached {
    /// Attached now, or already to this visitor.
    Yours,
    /// Another person attached it first.
    Taken,
}

/// A visit in the visitor's «Мои посещения».
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitorVisit {
    pub visit_id: Uuid,
    pub attached_at: Timestamp,
    /// The visit's corrected end, section and service; `None` until the tablet has synced it.
    pub visit: Option<(Timestamp, String, String)>,
    /// When the documents were ready; `None`: в работе.
    pub result_ready_at: Option<Timestamp>,
    /// What the visitor sent from the link, with the office's answer.
    pub feedback: Option<SentFeedback>,
}

/// A visit as its result is handled: who served it, its case number, whether it is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultVisit {
    pub visit_id: Uuid,
    pub employee_id: i64,
    pub department_id: i64,
    pub section_id: i64,
    pub case_number: Option<String>,
    pub result_ready_at: Option<Timestamp>,
}

/// One of a specialist's own visits: never its rating, feedback, or whether it has a
/// recording (a recording means «Плохо»).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialistVisit {
    pub visit_id: Uuid,
    /// The visit's corrected end.
    pub ended_at: Timestamp,
    pub service: String,
    pub case_number: Option<String>,
    pub result_ready_at: Option<Timestamp>,
}

/// The number a visit's result is to be told to, given with the visitor's consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsConsent {
    /// E.164, parsed by `domain::sms::PhoneNumber`.
    pub phone: String,
    pub masked: String,
    pub given_at: Timestamp,
    pub expires_at: Timestamp,
}

/// The message a ready event queues when the visitor left a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSms {
    pub text: String,
    /// The random secret in the message's delivery-report address: only the gateway that was
    /// given it can report on the message.
    pub report_key: [u8; 32],
}

/// What marking a result ready did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkedReady {
    /// Marked now; `queued` when a message to the visitor was queued with it.
    Marked { queued: bool },
    /// It was ready already: nothing changed, nothing queued.
    AlreadyReady,
}

/// A message taken from the outbox to send now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueSms {
    pub id: i64,
    /// E.164.
    pub phone: String,
    pub text: String,
    /// Tries so far, this one included.
    pub attempts: u32,
    pub report_key: [u8; 32],
}

/// How one try to send a message ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsOutcome {
    /// The gateway took it.
    Sent,
    /// Surely not sent (the gateway refused the connection or asked to try later): again at
    /// `at`.
    Retry { at: Timestamp, error: String },
    /// Refused for good: a person decides.
    Failed { error: String },
    /// Perhaps sent (the request was written, no answer came): never again without a person.
    Unconfirmed { error: String },
}

/// Where a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmsState {
    Pending,
    Sending,
    Sent,
    Delivered,
    Failed,
    Unconfirmed,
    Cancelled,
}

impl SmsState {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsState::Pending => "pending",
            SmsState::Sending => "sending",
            SmsState::Sent => "sent",
            SmsState::Delivered => "delivered",
            SmsState::Failed => "failed",
            SmsState::Unconfirmed => "unconfirmed",
            SmsState::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            SmsState::Pending,
            SmsState::Sending,
            SmsState::Sent,
            SmsState::Delivered,
            SmsState::Failed,
            SmsState::Unconfirmed,
            SmsState::Cancelled,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }

    /// Waiting for a person: resend or cancel.
    pub fn needs_decision(self) -> bool {
        matches!(self, SmsState::Failed | SmsState::Unconfirmed)
    }
}

/// A person's decision on a message waiting for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsDecision {
    /// Send it again now, reports coming back under this new key.
    Resend { report_key: [u8; 32] },
    /// Do not send it.
    Cancel,
}

/// A delivery report as the gateway gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsReport {
    pub at: Timestamp,
    pub status: u32,
    pub detail: String,
}

/// A message as the heads see it, beside its visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsMessage {
    pub id: i64,
    pub visit_id: Uuid,
    pub department_id: i64,
    pub section_id: i64,
    pub employee: String,
    pub service: String,
    pub case_number: Option<String>,
    pub state: SmsState,
    pub masked: String,
    pub text: String,
    pub attempts: u32,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    pub last_error: String,
    pub reports: Vec<SmsReport>,
}
