//! Everything the server keeps, behind traits split by area — directory, accounts and
//! sessions, tablets and pairings, visits, reports, alerts, recordings, audit, feedback, visitors'
//! accounts — so that a second
//! backend (PostgreSQL) can be written and tested area by area. [`Storage`] is all of them.
//!
//! Storage holds no rules: it reads and writes. Whether a visit is accepted, when an alert is
//! due, what a name may be — those live in [`crate::domain`] and are applied by [`crate::ops`].
//!
//! Methods are blocking; the HTTP layer calls them on tokio's blocking pool (see
//! `ARCHITECTURE.md` for why they stay blocking).

mod sqlite;
mod types;

pub use sqlite::{
    CommitStats, GroupCommit, INSERT_VISIT, SqliteStorage, TotalsAccumulator, maintenance,
    migrations, record_sync, set_totals_zone,
};
pub use types::*;

use std::sync::Arc;

use jiff::Timestamp;
use shared_model::{PairingEndReason, PairingStatus, TabletHealth, Visit, VisitOutcome};
use uuid::Uuid;

use crate::analysis::Analysis;
use crate::domain::acceptance::{Judgement, VisitFacts};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("database pool error: {0}")]
    Pool(#[from] r2d2::Error),
    #[error(transparent)]
    Open(#[from] sqlite_db::OpenError),
    #[error("could not open the data directory: {0}")]
    Io(#[from] std::io::Error),
    /// A uniqueness rule was broken (a login or a name that already exists).
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    /// A referenced row does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the checkpoint was blocked by a reader; the log stays for the next start")]
    CheckpointBlocked,
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// The thread that commits ingest has stopped (a bug: it survives panics).
    #[error("the ingest committer has stopped")]
    IngestStopped,
    /// A write to storage opened read-only.
    #[error("the database is open read-only")]
    ReadOnly,
}

impl StorageError {
    /// Whether the database could not grow: the disk (or its quota) is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StorageError::Database(error) => matches!(
                error.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DiskFull)
            ),
            StorageError::Io(error) => error.kind() == std::io::ErrorKind::StorageFull,
            _ => false,
        }
    }
}

impl From<sqlite_db::BadInstant> for StorageError {
    fn from(error: sqlite_db::BadInstant) -> Self {
        StorageError::Corrupt(error.to_string())
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// The server's persistent state. Every write that is acknowledged to a client is durable when
/// the method returns.
pub trait Storage:
    DirectoryStore
    + AccountStore
    + TabletStore
    + VisitStore
    + ReportStore
    + AlertStore
    + RecordingStore
    + AuditStore
    + FeedbackStore
    + VisitorStore
    + SmsStore
    + MailStore
{
    /// Sizes of what the server holds.
    fn counts(&self) -> StorageResult<Counts>;
    /// Flushes the write-ahead log into the database file; called at shutdown.
    fn checkpoint(&self) -> StorageResult<()>;
}

/// Departments, sections, employees and the service catalogue.
pub trait DirectoryStore: Send + Sync + 'static {
    fn create_department(&self, name: &str) -> StorageResult<i64>;
    fn rename_department(&self, id: i64, name: &str) -> StorageResult<()>;
    fn create_section(&self, department_id: i64, name: &str) -> StorageResult<i64>;
    fn rename_section(&self, id: i64, name: &str) -> StorageResult<()>;
    /// Replaces the services a section offers, in display order.
    fn set_section_services(&self, section_id: i64, service_ids: &[i64]) -> StorageResult<()>;
    fn create_employee(
        &self,
        section_id: i64,
        full_name: &str,
        position: &str,
    ) -> StorageResult<i64>;
    fn update_employee(
        &self,
        id: i64,
        section_id: i64,
        full_name: &str,
        position: &str,
    ) -> StorageResult<()>;
    fn create_service(&self, name: &str) -> StorageResult<i64>;
    fn rename_service(&self, id: i64, name: &str) -> StorageResult<()>;
    fn directory(&self) -> StorageResult<Directory>;
}

/// People's accounts and their sign-in sessions.
pub trait AccountStore: Send + Sync + 'static {
    fn create_account(&self, account: &NewAccount) -> StorageResult<i64>;
    /// The account with this (normalised) login and its password hash.
    fn account_credentials(&self, login: &str) -> StorageResult<Option<(Account, String)>>;
    fn accounts(&self) -> StorageResult<Vec<AccountSummary>>;
    /// Sets a new password hash and ends the account's sessions.
    fn set_password(&self, account_id: i64, password_hash: &str) -> StorageResult<()>;
    fn create_session(
        &self,
        token_hash: &[u8; 32],
        account_id: i64,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StorageResult<()>;
    fn session_account(
        &self,
        token_hash: &[u8; 32],
        now: Timestamp,
    ) -> StorageResult<Option<Account>>;
    fn delete_session(&self, token_hash: &[u8; 32]) -> StorageResult<()>;
    /// Names (replacing any earlier) or, with `None`, ends the head's deputy, and logs it.
    fn set_deputy(
        &self,
        head_id: i64,
        deputy: Option<(i64, Timestamp)>,
        audit: &AuditEvent,
    ) -> StorageResult<()>;
    /// The head's deputy whose cover has not ended at `now`.
    fn deputy_of(&self, head_id: i64, now: Timestamp) -> StorageResult<Option<Deputy>>;
    /// The heads this account covers for at `now`.
    fn covered_by(&self, deputy_id: i64, now: Timestamp) -> StorageResult<Vec<Deputy>>;
}

/// Tablets, their enrolment and credential, and their pairings to specialists.
pub trait TabletStore: Send + Sync + 'static {
    fn create_enrolment(&self, enrolment: &NewEnrolment) -> StorageResult<()>;
    /// Approves the open enrolment with this code: a new tablet, or — `readmit` — a revoked
    /// tablet again, under its own id (its pairings and queued visits stay its own).
    fn approve_enrolment(
        &self,
        code: &str,
        tablet_name: &str,
        readmit: Option<i64>,
        now: Timestamp,
    ) -> StorageResult<i64>;
    /// Enrolments waiting for an administrator.
    fn open_enrolments(&self, now: Timestamp) -> StorageResult<u32>;
    fn enrolment_state(&self, id: Uuid, now: Timestamp) -> StorageResult<Option<EnrolmentState>>;
    /// Sets a fresh credential for an approved tablet that has not used one yet.
    fn issue_tablet_token(&self, tablet_id: i64, token_hash: &[u8; 32]) -> StorageResult<()>;
    /// The tablet this credential belongs to, unless revoked; marks the credential as used.
    fn authenticate_tablet(
        &self,
        token_hash: &[u8; 32],
        now: Timestamp,
    ) -> StorageResult<Option<TabletIdentity>>;
    /// Revokes the tablet and ends its open pairings.
    fn revoke_tablet(&self, tablet_id: i64, now: Timestamp) -> StorageResult<()>;
    fn rename_tablet(&self, id: i64, name: &str) -> StorageResult<()>;
    fn tablets(&self) -> StorageResult<Vec<TabletInfo>>;
    /// Registers the public key of the tablet's feedback links unless it has one; the key it
    /// holds afterwards.
    fn register_feedback_key(&self, tablet_id: i64, key: &[u8; 32]) -> StorageResult<[u8; 32]>;
    /// The public key of the tablet's feedback links, if it registered one.
    fn feedback_key(&self, tablet_id: i64) -> StorageResult<Option<[u8; 32]>>;

    /// A new pairing code for the tablet; it replaces the tablet's codes not yet entered.
    fn create_pairing_request(&self, request: &NewPairingRequest) -> StorageResult<()>;
    fn pairing_request_state(
        &self,
        request_id: Uuid,
        tablet_id: i64,
        now: Timestamp,
    ) -> StorageResult<Option<PairingRequestState>>;
    /// Pairs the tablet that shows `code` to the employee, ending the tablet's previous pairing
    /// and the employee's pairings on other tablets (named in `ended_elsewhere`).
    fn claim_pairing_code(&self, claim: &PairingClaim) -> StorageResult<shared_model::Pairing>;
    fn pairing(&self, id: Uuid) -> StorageResult<Option<PairingRecord>>;
    fn tablet_pairing_status(&self, tablet_id: i64, now: Timestamp)
    -> StorageResult<PairingStatus>;
    fn active_pairings_of_employee(
        &self,
        employee_id: i64,
        now: Timestamp,
    ) -> StorageResult<Vec<shared_model::Pairing>>;
    /// The tablet's pairings whose end it was told before `at` are acknowledged at `at`.
    fn acknowledge_told_ends(&self, tablet_id: i64, at: Timestamp) -> StorageResult<()>;
    /// The tablet's pairings that have ended by `at`, and were not yet told, are told at `at`.
    fn note_ends_told(&self, tablet_id: i64, at: Timestamp) -> StorageResult<()>;
    /// `false` when the pairing had already ended.
    fn end_pairing(
        &self,
        id: Uuid,
        reason: PairingEndReason,
        now: Timestamp,
    ) -> StorageResult<bool>;
}

/// How the acceptance rule is handed to [`VisitStore::ingest`]: shared, because a backend may
/// judge on a thread of its own (SQLite's group commit does).
pub type Judge = dyn Fn(&VisitFacts<'_>) -> Judgement + Send + Sync;

/// Visits as the tablets sent them.
pub trait VisitStore: Send + Sync + 'static {
    /// Stores a sync atomically: for each visit, gathers its facts (the visit stored under its
    /// id — earlier visits of the same batch and of syncs stored before it included — and the
    /// pairing it names), lets `judge` decide, and writes what was decided, with the report
    /// totals; records the tablet's health and clock offset. Returns one outcome per visit, in
    /// order, once all of it is durable. A backend may commit several syncs together.
    fn ingest(&self, sync: IngestBatch, judge: Arc<Judge>) -> StorageResult<Ingested>;
    /// A visit the tablet sent.
    fn visit_of_tablet(&self, visit_id: Uuid, tablet_id: i64) -> StorageResult<Option<Visit>>;
    /// Stored visits, by id; of one tablet if given.
    fn visits(&self, tablet_id: Option<i64>) -> StorageResult<Vec<VisitRecord>>;
    /// How ingest has grouped syncs into commits since the storage was opened.
    fn commit_stats(&self) -> CommitStats;
}

/// The report totals kept beside the visits (in the ingest transaction), the Плохо analysis
/// and its verdicts.
pub trait ReportStore: Send + Sync + 'static {
    /// Sums the report totals of one span, grouped; groups without visits are absent.
    fn totals(
        &self,
        filter: &ReportFilter,
        group: GroupBy,
        span: PeriodSpan,
    ) -> StorageResult<Vec<(i64, Tally)>>;
    /// Recomputes every report total from the visits (after a change of time zone).
    fn rebuild_totals(&self) -> StorageResult<u64>;

    /// Плохо visits, newest first.
    fn bad_visits(&self, query: &BadVisitQuery) -> StorageResult<Vec<BadVisit>>;
    /// How many Плохо visits a query means, whatever its cursor, limit and offset.
    fn bad_visit_count(&self, query: &BadVisitQuery) -> StorageResult<u64>;
    fn bad_visit(&self, visit_id: Uuid) -> StorageResult<Option<BadVisit>>;
    /// Records a verdict on a Плохо visit: it becomes the verdict of record, and the earlier
    /// ones stay in its history.
    fn record_verdict(
        &self,
        visit_id: Uuid,
        account_id: i64,
        correct: bool,
        comment: &str,
        now: Timestamp,
    ) -> StorageResult<()>;
    /// Every verdict given on a visit, the first first; the last is the verdict of record.
    fn verdict_history(&self, visit_id: Uuid) -> StorageResult<Vec<Verdict>>;
    /// Every Плохо visit within the filter, for the review report.
    fn review_facts(&self, filter: &ReportFilter) -> StorageResult<Vec<ReviewFact>>;
}

/// Alerts about an employee's share of Плохо.
pub trait AlertStore: Send + Sync + 'static {
    /// The employee's rated visits in the window `(start, end]` (corrected instants), and how
    /// many of them are Плохо.
    fn ratings_in_window(
        &self,
        employee_id: i64,
        start: Timestamp,
        end: Timestamp,
    ) -> StorageResult<WindowCount>;
    /// Stores the alert unless one of the employee's alerts already covers part of its window.
    fn raise_alert(&self, alert: &NewAlert) -> StorageResult<Option<Alert>>;
    fn alerts(
        &self,
        filter: &ReportFilter,
        open_only: bool,
        limit: u32,
    ) -> StorageResult<Vec<Alert>>;
    fn alert(&self, id: i64) -> StorageResult<Option<Alert>>;
    /// `false` if it was already acknowledged.
    fn acknowledge_alert(&self, id: i64, account_id: i64, now: Timestamp) -> StorageResult<bool>;
}

/// Recordings of Плохо visits: uploads in progress, stored files, retention.
pub trait RecordingStore: Send + Sync + 'static {
    fn recording_upload(&self, visit_id: Uuid) -> StorageResult<Option<UploadPromise>>;
    fn begin_recording_upload(
        &self,
        visit_id: Uuid,
        promise: &UploadPromise,
        now: Timestamp,
    ) -> StorageResult<()>;
    fn abandon_recording_upload(&self, visit_id: Uuid) -> StorageResult<()>;
    /// Bytes the tablet has declared for its unfinished uploads, `except` one of them.
    fn unfinished_upload_bytes(&self, tablet_id: i64, except: Uuid) -> StorageResult<u64>;
    /// Unfinished uploads begun before `before`.
    fn uploads_begun_before(&self, before: Timestamp) -> StorageResult<Vec<Uuid>>;
    fn complete_recording(&self, visit_id: Uuid, recording: &StoredRecording) -> StorageResult<()>;
    fn recording(&self, visit_id: Uuid) -> StorageResult<Option<StoredRecording>>;
    /// The visits with a stored recording row, purged or not.
    fn recording_ids(&self) -> StorageResult<Vec<Uuid>>;
    /// Stored recordings (not yet purged) of visits rated before `rated_before`.
    fn recordings_rated_before(
        &self,
        rated_before: Timestamp,
        limit: u32,
    ) -> StorageResult<Vec<Uuid>>;
    /// Marks the recording purged and deletes its analysis with it.
    fn mark_recording_purged(&self, visit_id: Uuid, now: Timestamp) -> StorageResult<()>;
    /// Keeps a stored recording's analysis (replacing an earlier one); `None` records that it
    /// could not be analysed, so nothing tries again.
    fn store_recording_analysis(
        &self,
        visit_id: Uuid,
        analysis: Option<&Analysis>,
    ) -> StorageResult<()>;
    /// Stored recordings, not purged, that no analysis has been tried on yet.
    fn recordings_awaiting_analysis(&self, limit: u32) -> StorageResult<Vec<Uuid>>;
    /// The analysis of a stored, not purged, recording, if one was made.
    fn recording_analysis(&self, visit_id: Uuid) -> StorageResult<Option<Analysis>>;
}

/// Who listened to, downloaded or exported what.
pub trait AuditStore: Send + Sync + 'static {
    /// Logs an event; `false` when it was a playback or download of a recording already
    /// logged for this account and session.
    fn log_audit(&self, event: &AuditEvent) -> StorageResult<bool>;
    /// Logs several events in one transaction, each as [`AuditStore::log_audit`] would.
    fn log_audits(&self, events: &[AuditEvent]) -> StorageResult<()>;
    /// The newest entries first, before the entry `before` if given.
    fn audit_log(&self, limit: u32, before: Option<i64>) -> StorageResult<Vec<AuditEntry>>;
}

/// What [`VisitStore::ingest`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Ingested {
    /// One per visit of the batch, in order.
    pub outcomes: Vec<VisitOutcome>,
    /// The visits stored by this batch (not those already stored).
    pub stored: Vec<VisitPlace>,
}

/// One sync, as the storage layer needs it.
pub struct IngestBatch {
    pub tablet_id: i64,
    pub received_at: Timestamp,
    pub clock_offset_ms: i64,
    pub health: TabletHealth,
    pub visits: Vec<Visit>,
}

/// The visitors' feedback from their links.
pub trait FeedbackStore: Send + Sync + 'static {
    /// The state of a visit's link, noting when it was first opened.
    fn open_feedback_link(
        &self,
        visit_id: Uuid,
        tablet_id: i64,
        now: Timestamp,
    ) -> StorageResult<FeedbackLinkState>;
    /// Stores a submission; if its visit is stored already, joins it at once (and counts it in
    /// the feedback totals). `AlreadyExists` when the visit has feedback.
    fn submit_feedback(&self, feedback: &NewFeedback) -> StorageResult<()>;
    /// Deletes submissions submitted before `unjoined_before` that never joined a visit, and
    /// clears the comments of those submitted before `comments_before`.
    fn purge_feedback(
        &self,
        unjoined_before: Timestamp,
        comments_before: Timestamp,
    ) -> StorageResult<FeedbackPurged>;

    /// Sums the feedback totals of one span per group and criterion.
    fn feedback_totals(
        &self,
        filter: &ReportFilter,
        group: GroupBy,
        span: PeriodSpan,
    ) -> StorageResult<Vec<FeedbackTotal>>;
    /// Joined submissions in the filter, newest first.
    fn feedback_entries(&self, query: &FeedbackQuery) -> StorageResult<Vec<FeedbackEntry>>;
    /// One joined submission.
    fn feedback_entry(&self, visit_id: Uuid) -> StorageResult<Option<FeedbackEntry>>;
    /// Writes (or replaces) the office's answer; false if there is no such submission.
    fn answer_feedback(
        &self,
        visit_id: Uuid,
        answer: &str,
        by: i64,
        at: Timestamp,
    ) -> StorageResult<bool>;
    /// Hides the comment (`hidden`) or shows it again; false if there is no such submission.
    fn set_feedback_hidden(
        &self,
        visit_id: Uuid,
        hidden: bool,
        by: i64,
        at: Timestamp,
    ) -> StorageResult<bool>;
}

/// Visitors signed in through the city portal, the visits they attached, their sessions and
/// the sign-ins under way.
pub trait VisitorStore: Send + Sync + 'static {
    /// Keeps a sign-in sent to the portal until `expires_at`, under its state's digest
    /// (sign-ins that ran out are swept on the way); `false`, keeping nothing, when
    /// `max_pending` are under way already.
    fn begin_sign_in(
        &self,
        state_digest: &[u8; 32],
        pending: &PendingSignIn,
        max_pending: u32,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StorageResult<bool>;
    /// Takes the sign-in back, once: `None` if there is none or it ran out.
    fn take_sign_in(
        &self,
        state_digest: &[u8; 32],
        now: Timestamp,
    ) -> StorageResult<Option<PendingSignIn>>;
    /// The visitor the portal names, made on first sign-in; their name claims are updated each
    /// time.
    fn upsert_visitor(&self, person: &PortalPerson, now: Timestamp) -> StorageResult<Visitor>;
    fn attach_visit(
        &self,
        visitor_id: i64,
        visit_id: Uuid,
        now: Timestamp,
    ) -> StorageResult<Attached>;
    /// Removes the visit from the visitor's account, and the number they left for it; false if
    /// it was not theirs.
    fn detach_visit(&self, visitor_id: i64, visit_id: Uuid) -> StorageResult<bool>;
    /// Deletes the visitor, their attachments, sessions and the numbers left for their visits;
    /// visits and feedback stay.
    fn delete_visitor(&self, visitor_id: i64) -> StorageResult<()>;
    fn create_visitor_session(
        &self,
        token_digest: &[u8; 32],
        visitor_id: i64,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StorageResult<()>;
    fn visitor_session(
        &self,
        token_digest: &[u8; 32],
        now: Timestamp,
    ) -> StorageResult<Option<Visitor>>;
    fn end_visitor_session(&self, token_digest: &[u8; 32]) -> StorageResult<()>;
    /// The visitor's visits, the latest attached first.
    fn visitor_visits(&self, visitor_id: i64) -> StorageResult<Vec<VisitorVisit>>;
    /// The names of the visitors who attached these visits (visits with none are left out).
    fn visitor_names(&self, visit_ids: &[Uuid]) -> StorageResult<Vec<(Uuid, VisitorName)>>;
}

/// «Результат готов»: case numbers, the visitor's consent and number, the SMS outbox and its
/// delivery reports.
pub trait SmsStore: Send + Sync + 'static {
    fn result_visit(&self, visit_id: Uuid) -> StorageResult<Option<ResultVisit>>;
    fn result_visit_by_case(&self, case_number: &str) -> StorageResult<Option<ResultVisit>>;
    /// Sets or clears the visit's case number; `AlreadyExists` when another visit has it.
    fn set_case_number(&self, visit_id: Uuid, case_number: Option<&str>) -> StorageResult<()>;
    /// The employee's visit going on at `at` (corrected times), or else the latest that ended
    /// within `slack` before it.
    fn employee_visit_at(
        &self,
        employee_id: i64,
        at: Timestamp,
        slack: jiff::SignedDuration,
    ) -> StorageResult<Option<ResultVisit>>;
    /// The employee's visits that ended (corrected) in `from..until`, the latest first.
    fn specialist_visits(
        &self,
        employee_id: i64,
        from: Timestamp,
        until: Timestamp,
    ) -> StorageResult<Vec<SpecialistVisit>>;
    /// Keeps the number for the visit, replacing one given before — unless the visit's result
    /// is ready already (false: nothing kept, there is nothing left to tell).
    fn give_sms_consent(&self, visit_id: Uuid, consent: &SmsConsent) -> StorageResult<bool>;
    fn sms_consent(&self, visit_id: Uuid, now: Timestamp) -> StorageResult<Option<SmsConsent>>;
    /// Deletes the number; false if there was none.
    fn withdraw_sms_consent(&self, visit_id: Uuid) -> StorageResult<bool>;
    /// Deletes the numbers kept past their time; how many.
    fn expire_sms_consents(&self, now: Timestamp) -> StorageResult<u64>;
    /// Marks the result ready, once; in the same transaction queues `sms` when the visitor
    /// left a number (one message per ready event).
    fn mark_result_ready(
        &self,
        visit_id: Uuid,
        sms: &NewSms,
        now: Timestamp,
    ) -> StorageResult<MarkedReady>;
    /// Takes up to `limit` messages that are due, marking each `sending` (durably, before the
    /// gateway is asked); a message whose number is gone is cancelled on the way.
    fn claim_due_sms(&self, now: Timestamp, limit: u32) -> StorageResult<Vec<DueSms>>;
    /// Records how the try of a `sending` message ended; false, changing nothing, if a
    /// delivery report has moved it on meanwhile.
    fn finish_sms(&self, id: i64, outcome: &SmsOutcome, now: Timestamp) -> StorageResult<bool>;
    /// Messages left `sending` by a server that stopped mid-request become `unconfirmed`;
    /// how many.
    fn interrupted_sms_unconfirmed(&self) -> StorageResult<u64>;
    /// Records a delivery report if `report_key` is the message's; false if it is not.
    /// Delivered: the message is done and the number deleted. Failed: a person decides.
    fn record_sms_report(
        &self,
        id: i64,
        report_key: &[u8; 32],
        report: &SmsReport,
    ) -> StorageResult<bool>;
    /// A person's decision on a failed or unconfirmed message: send it again now (under a new
    /// report key, so reports of the earlier try do not count for this one), or not at all.
    /// False if the message is not waiting for one.
    fn decide_sms(
        &self,
        id: i64,
        decision: &SmsDecision,
        by: Option<i64>,
        now: Timestamp,
    ) -> StorageResult<bool>;
    /// Deletes the messages (and their reports) created before `before` that no longer wait
    /// to be sent; how many.
    fn purge_sms_messages(&self, before: Timestamp) -> StorageResult<u64>;
    fn sms_message(&self, id: i64) -> StorageResult<Option<SmsMessage>>;
    /// The latest messages within `filter`, those waiting for a person first.
    fn sms_messages(&self, filter: &ReportFilter, limit: u32) -> StorageResult<Vec<SmsMessage>>;
}

/// E-mail notifications: where each account's go, and the outbox.
pub trait MailStore: Send + Sync + 'static {
    /// Sets where and how the account is told of events, and logs it; false if there is no
    /// such account.
    fn set_account_mail(
        &self,
        account_id: i64,
        mail: &AccountMail,
        audit: &AuditEvent,
    ) -> StorageResult<bool>;
    /// The accounts with an address whose notifications are not off.
    fn mail_recipients(&self) -> StorageResult<Vec<MailRecipient>>;
    /// Queues each notification unless its account was already told of its event; how many
    /// were new.
    fn queue_mail(&self, mail: &[NewMail]) -> StorageResult<u64>;
    /// Up to `limit` queued notifications due at `now` whose account still has an address
    /// and wants them, oldest first.
    fn due_mail(&self, now: Timestamp, limit: u32) -> StorageResult<Vec<DueMail>>;
    /// Records how sending these (one message, or one digest of them) ended.
    fn finish_mail(&self, ids: &[i64], outcome: &MailOutcome, now: Timestamp) -> StorageResult<()>;
    /// Deletes notifications queued before `before`, sent or not; how many.
    fn purge_mail(&self, before: Timestamp) -> StorageResult<u64>;
}
