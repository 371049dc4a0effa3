//! Configuration: built-in defaults, then an optional TOML file, then `OFFICE_*` environment
//! variables (nested keys with `__`, e.g. `OFFICE_WORKING_HOURS__END=19:00`), then command-line
//! flags. Nothing is needed to start on loopback.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use jiff::civil::Time;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    #[error("unknown time zone {name:?}: {source}")]
    TimeZone { name: String, source: jiff::Error },
    #[error("working hours must start before they end (start {start}, end {end})")]
    WorkingHours { start: Time, end: Time },
    #[error(
        "refusing plain HTTP on {0}: give tls.cert and tls.key to serve HTTPS, listen on a \
         loopback address, or set allow_plain_http = true behind a TLS-terminating proxy"
    )]
    PlainHttpOffLoopback(SocketAddr),
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    #[error("{0} must be a percentage above 0 and at most 100")]
    Percent(&'static str),
    #[error(
        "public_url must be an http:// or https:// address with no path, like \
         https://rating.office.example, not {0:?}"
    )]
    PublicUrl(String),
    #[error("trusted_proxies: {0:?} is not an IP address or network (like 10.0.0.0/8)")]
    TrustedProxy(String),
    #[error(
        "ingest.max_commit_wait_ms must be at most {MAX_COMMIT_WAIT_MS}: every tablet's sync \
         waits for it, not {0}"
    )]
    CommitWait(u64),
    #[error(
        "feedback.criteria: 1 to {MAX_CRITERIA} criteria, each with a unique key of lower-case \
         letters, digits and _ (at most 32) and a label of at most 200 characters; {0}"
    )]
    Criteria(String),
    #[error("portal: {0}")]
    Portal(String),
    #[error("sms: {0}")]
    Sms(String),
    #[error("metrics: {0}")]
    Metrics(String),
    #[error("mail: {0}")]
    Mail(String),
    #[error("case_system.tokens_sha256: {0:?} is not the hex SHA-256 of a token")]
    CaseToken(String),
    #[error("calendar: {0}")]
    Calendar(String),
    #[error("review.verdict_working_days must be 1 to {MAX_VERDICT_WORKING_DAYS}, not {0}")]
    VerdictDays(u32),
}

/// The longest deadline for a verdict, in working days (about three months).
pub const MAX_VERDICT_WORKING_DAYS: u32 = 60;

/// The most criteria the feedback form may ask about.
pub const MAX_CRITERIA: usize = 10;

/// The longest a commit may wait for more syncs: past a second, tablets would feel it.
pub const MAX_COMMIT_WAIT_MS: u64 = 1000;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port the server listens on.
    pub listen: SocketAddr,
    /// Where the database and the recordings live.
    pub data_dir: PathBuf,
    /// IANA name of the office's time zone: days, weeks and months are counted in it.
    pub time_zone: String,
    pub working_hours: WorkingHours,
    /// Which days the office works: the production calendar.
    pub calendar: CalendarSettings,
    /// The largest recording a tablet may upload, in bytes.
    pub recording_max_bytes: u64,
    /// Recordings older than this many days are deleted (the visit and verdict stay).
    pub retention_days: u32,
    /// Serve HTTPS with these PEM files; without them, plain HTTP on loopback only.
    pub tls: Option<TlsFiles>,
    /// Allow plain HTTP on a non-loopback address (only behind a proxy that terminates TLS).
    pub allow_plain_http: bool,
    /// Time limit for an ordinary request, in seconds.
    pub request_timeout_secs: u64,
    /// Time limit for one recording upload request, in seconds.
    pub upload_timeout_secs: u64,
    /// How long a login session lasts, in hours.
    pub session_hours: u32,
    /// When an employee's share of Плохо raises an alert for the heads.
    pub alerts: AlertSettings,
    /// A tablet not heard from for this many minutes during working hours raises an alert.
    pub tablet_silent_minutes: u32,
    /// How often the retention task looks for recordings to delete, in minutes.
    pub retention_check_minutes: u32,
    /// The address people use to reach the server (`https://rating.office.example`), perhaps
    /// through a proxy: the origin every form and cookie-authenticated request must come from.
    /// Empty: the authority each request was sent to.
    pub public_url: String,
    /// Proxies (addresses or networks, `10.0.0.0/8`) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<String>,
    /// Limits and timeouts of connections.
    pub network: NetworkSettings,
    /// Live-update streams of the dashboard.
    pub live: LiveSettings,
    /// How many guesses a minute are allowed at passwords and pairing codes, and how many
    /// enrolments a minute one address may start.
    pub throttle: ThrottleSettings,
    /// What a tablet may claim.
    pub tablets: TabletSettings,
    /// Recording uploads that are not finished.
    pub uploads: UploadSettings,
    /// The heads' review of Плохо visits.
    pub review: ReviewSettings,
    /// How syncs are grouped into commits.
    pub ingest: IngestSettings,
    /// The visitor's feedback from their phone.
    pub feedback: FeedbackSettings,
    /// Visitors' sign-in through the city portal; off unless `portal.issuer` is set.
    pub portal: PortalSettings,
    /// «Результат готов» by SMS through the gateway; off unless `sms.kannel_url` is set.
    pub sms: SmsSettings,
    /// The office's case-management system, which marks results ready by case number.
    pub case_system: CaseSystemSettings,
    /// The backups the server takes by itself every day.
    pub backup: BackupSettings,
    /// How log lines (on standard error) are written.
    pub log_format: LogFormat,
    /// Who may read `/metrics`.
    pub metrics: MetricsSettings,
    /// E-mail notifications to administrators and heads.
    pub mail: MailSettings,
}

/// E-mail notifications: a tablet silent in working hours, an alert on an employee, verdicts
/// past their deadline, a failed backup — each to the accounts that should know, as each
/// account chose (every event, or a daily digest). Off while `smtp_url` is empty.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSettings {
    /// The SMTP server: `smtps://mail.office.example` (TLS from the start, port 465),
    /// `smtp://mail.office.example:587?tls=required` (STARTTLS), or `smtp://127.0.0.1:25` for a
    /// relay on the same machine (no TLS: only on loopback).
    pub smtp_url: String,
    /// The SMTP account, if the server asks for one.
    pub user: String,
    /// Best given in the environment: `OFFICE_MAIL__PASSWORD`.
    pub password: Secret,
    /// The sender, like `Оценка качества <quality@office.example>`.
    pub from: String,
    /// When the daily digests go out, in the office's time zone.
    #[serde(with = "hh_mm")]
    pub digest_time: Time,
    /// How often events are looked for and due messages sent.
    pub check_secs: u64,
    pub request_timeout_secs: u64,
    /// Tries of a message before it is given up (logged, and kept until purged).
    pub max_attempts: u32,
    pub retry_first_secs: u64,
    pub retry_max_secs: u64,
    /// How long the outbox keeps a message (sent or not); they name employees and tablets.
    pub keep_days: u32,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            smtp_url: String::new(),
            user: String::new(),
            password: Secret::default(),
            from: String::new(),
            digest_time: Time::constant(8, 0, 0, 0),
            check_secs: 60,
            request_timeout_secs: 30,
            max_attempts: 10,
            retry_first_secs: 60,
            retry_max_secs: 3600,
            keep_days: 30,
        }
    }
}

impl MailSettings {
    pub fn enabled(&self) -> bool {
        !self.smtp_url.is_empty()
    }

    /// The sender as a mailbox.
    pub fn sender(&self) -> Result<lettre::message::Mailbox, ConfigError> {
        self.from.parse().map_err(|_| {
            ConfigError::Mail(format!(
                "from: {:?} is not an address like «Name <quality@office.example>»",
                self.from
            ))
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled() {
            return Ok(());
        }
        self.sender()?;
        let url = reqwest::Url::parse(&self.smtp_url).map_err(|_| {
            ConfigError::Mail(format!("smtp_url: {:?} is not an address", self.smtp_url))
        })?;
        let tls = url.scheme() == "smtps"
            || url
                .query_pairs()
                .any(|(k, v)| k == "tls" && v == "required");
        let host = url.host_str().unwrap_or_default();
        let loopback = host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !matches!(url.scheme(), "smtp" | "smtps") || (!tls && !loopback) {
            return Err(ConfigError::Mail(format!(
                "smtp_url: {:?} must be smtps://…, or smtp://…?tls=required; plain smtp:// only \
                 to a relay on loopback (the messages name employees, and the password would \
                 travel in the clear)",
                self.smtp_url
            )));
        }
        if !self.user.is_empty() && self.password.0.is_empty() {
            return Err(ConfigError::Mail(
                "user is set but password is empty".into(),
            ));
        }
        for (name, value) in [
            ("check_secs", self.check_secs),
            ("request_timeout_secs", self.request_timeout_secs),
            ("max_attempts", u64::from(self.max_attempts)),
            ("retry_first_secs", self.retry_first_secs),
            ("keep_days", u64::from(self.keep_days)),
        ] {
            if value == 0 {
                return Err(ConfigError::Mail(format!(
                    "{name} must be greater than zero"
                )));
            }
        }
        Ok(())
    }
}

/// `/metrics` (Prometheus' text format) answers a client from one of the `allow` networks, or
/// one that sends `Authorization: Bearer <token>` with a token whose SHA-256 is listed; anyone
/// else is told there is no such page.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    pub allow: Vec<String>,
    pub tokens_sha256: Vec<String>,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            allow: vec!["127.0.0.1/32".into(), "::1/128".into()],
            tokens_sha256: Vec::new(),
        }
    }
}

impl MetricsSettings {
    pub fn networks(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        networks(&self.allow).map_err(|text| {
            ConfigError::Metrics(format!("allow: {text:?} is not an IP address or network"))
        })
    }

    pub fn digests(&self) -> Result<Vec<[u8; 32]>, ConfigError> {
        sha256_digests(&self.tokens_sha256).map_err(|text| {
            ConfigError::Metrics(format!("tokens_sha256: {text:?} is not a hex SHA-256"))
        })
    }
}

/// `text` for people; `json` (one object a line, the request's id, method and route in
/// `span`) for a log collector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Daily backups (see `office-server backup` for one by hand). Off while `dir` is empty.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupSettings {
    /// Where the backups go, each in its own `backup-<UTC time>` directory; best on another
    /// disk than the data directory. Empty: no scheduled backups.
    pub dir: PathBuf,
    /// When, in the office's time zone (`HH:MM`).
    #[serde(with = "hh_mm")]
    pub time: Time,
    /// How many of the newest backups to keep. Whatever their number, a backup older than
    /// `retention_days` is deleted: it must not keep recordings longer than the server may.
    pub keep: u32,
}

impl Default for BackupSettings {
    fn default() -> Self {
        Self {
            dir: PathBuf::new(),
            time: Time::constant(2, 30, 0, 0),
            keep: 7,
        }
    }
}

impl BackupSettings {
    pub fn enabled(&self) -> bool {
        !self.dir.as_os_str().is_empty()
    }
}

/// The SMS that tells a visitor their result is ready, sent through Kannel's `sendsms`
/// interface. Off while `kannel_url` is empty; then the visitor is not asked for a number.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsSettings {
    /// Kannel smsbox's sendsms address, like `http://127.0.0.1:13013/cgi-bin/sendsms`.
    pub kannel_url: String,
    /// The `sendsms-user` Kannel knows the server as.
    pub username: String,
    /// Best given in the environment: `OFFICE_SMS__PASSWORD`.
    pub password: Secret,
    /// The sender the phone shows (`from`, as the operator registered it); empty: Kannel's
    /// `global-sender`, without which Kannel refuses the message.
    pub sender: String,
    /// The `smsc-id` to send through; empty: Kannel's routing decides.
    pub smsc: String,
    /// The server's address as the gateway reaches it, for delivery reports
    /// (`{report_url}/api/sms/reports/…`); empty: `public_url`.
    pub report_url: String,
    /// The country whose mobile numbers are accepted (ISO 3166 code), and the one a number
    /// typed without a country code belongs to.
    pub country: String,
    /// Messages go out from this time of the office's day…
    #[serde(with = "hh_mm")]
    pub send_from: Time,
    /// …until this one (across midnight when earlier than `send_from`).
    #[serde(with = "hh_mm")]
    pub send_until: Time,
    /// The text: `{case}` is the case number (or nothing), `{office}` is `office_name`.
    pub template: String,
    pub office_name: String,
    /// A number is deleted once its message is delivered, or this many days after it was given.
    pub keep_number_days: u32,
    /// The messages (with the masked number, the case number and the reports) are kept this
    /// many days for the heads' page, then deleted.
    pub keep_messages_days: u32,
    /// Tries before a message that keeps failing waits for a person.
    pub max_attempts: u32,
    /// The wait after the first failed try, doubling each time up to `retry_max_secs`.
    pub retry_first_secs: u64,
    pub retry_max_secs: u64,
    /// Time limit for one request to the gateway, in seconds; past it the outcome is unknown.
    pub request_timeout_secs: u64,
    /// How often the outbox is looked at, in seconds (a ready result wakes it at once).
    pub check_secs: u64,
    /// Messages sent per look at the outbox.
    pub batch: u32,
}

impl Default for SmsSettings {
    fn default() -> Self {
        Self {
            kannel_url: String::new(),
            username: String::new(),
            password: Secret::default(),
            sender: String::new(),
            smsc: String::new(),
            report_url: String::new(),
            country: "RU".into(),
            send_from: Time::constant(9, 0, 0, 0),
            send_until: Time::constant(21, 0, 0, 0),
            template: "Результат по вашему обращению {case} готов. {office}".into(),
            office_name: String::new(),
            keep_number_days: 30,
            keep_messages_days: 365,
            max_attempts: 8,
            retry_first_secs: 30,
            retry_max_secs: 3600,
            request_timeout_secs: 15,
            check_secs: 30,
            batch: 20,
        }
    }
}

impl SmsSettings {
    pub fn enabled(&self) -> bool {
        !self.kannel_url.trim().is_empty()
    }

    /// The country numbers belong to.
    pub fn country_id(&self) -> Result<phonenumber::country::Id, ConfigError> {
        self.country
            .trim()
            .to_ascii_uppercase()
            .parse()
            .map_err(|_| {
                ConfigError::Sms(format!("country {:?} is not a country code", self.country))
            })
    }

    pub fn hours(&self) -> crate::domain::sms::SendingHours {
        crate::domain::sms::SendingHours {
            from: self.send_from,
            until: self.send_until,
        }
    }

    /// Where delivery reports are sent: `report_url`, or else `public_url`.
    pub fn report_base(&self, public_url: &str) -> String {
        let base = if self.report_url.trim().is_empty() {
            public_url
        } else {
            &self.report_url
        };
        base.trim().trim_end_matches('/').to_string()
    }

    fn validate(&self, public_url: &str) -> Result<(), ConfigError> {
        self.country_id()?;
        if self.send_from == self.send_until {
            return Err(ConfigError::Sms(
                "send_from and send_until must differ".into(),
            ));
        }
        if self.template.trim().is_empty() {
            return Err(ConfigError::Sms("template is empty".into()));
        }
        for (name, value) in [
            ("sms.keep_number_days", u64::from(self.keep_number_days)),
            ("sms.keep_messages_days", u64::from(self.keep_messages_days)),
            ("sms.max_attempts", u64::from(self.max_attempts)),
            ("sms.retry_first_secs", self.retry_first_secs),
            ("sms.retry_max_secs", self.retry_max_secs),
            ("sms.request_timeout_secs", self.request_timeout_secs),
            ("sms.check_secs", self.check_secs),
            ("sms.batch", u64::from(self.batch)),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        if !self.enabled() {
            return Ok(());
        }
        let url = self.kannel_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::Sms(format!(
                "kannel_url must be an http:// or https:// address, not {url:?}"
            )));
        }
        let base = self.report_base(public_url);
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ConfigError::Sms(
                "report_url (or public_url) is needed: the gateway sends delivery reports to it"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// The office's case-management system: it marks a result ready by case number through
/// `POST /api/cases/{case}/ready` with `Authorization: Bearer <token>`. Only the tokens'
/// SHA-256 digests are configured (`office-server case-token` makes a token and its digest).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaseSystemSettings {
    pub tokens_sha256: Vec<String>,
}

impl CaseSystemSettings {
    /// The digests, decoded.
    pub fn digests(&self) -> Result<Vec<[u8; 32]>, ConfigError> {
        sha256_digests(&self.tokens_sha256).map_err(|text| ConfigError::CaseToken(text.to_string()))
    }
}

/// The city portal's OpenID Connect provider, through which visitors sign in to «Мои
/// посещения». Off while `issuer` is empty; then it needs `client_id`, `client_secret` and
/// `public_url` (the redirect address is `{public_url}/visitor/callback`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortalSettings {
    /// The provider's issuer identifier exactly as its discovery document gives it
    /// (`https://id.city.example`); https, or http on a loopback address.
    pub issuer: String,
    pub client_id: String,
    /// Best given in the environment: `OFFICE_PORTAL__CLIENT_SECRET`.
    pub client_secret: Secret,
    /// A sign-in must come back from the portal within this many minutes.
    pub sign_in_minutes: u32,
    /// How long a visitor stays signed in, in minutes.
    pub session_minutes: u32,
    /// How long the provider's discovery document and keys are used before they are fetched
    /// again, in minutes.
    pub metadata_minutes: u32,
    /// Time limit for one request to the provider, in seconds.
    pub request_timeout_secs: u64,
    /// Sign-ins one client address (an IPv6 /64) may start a minute; more are refused (429).
    pub sign_ins_per_address_per_minute: u32,
    /// Sign-ins under way at once, from everywhere; more are refused (503) until some come
    /// back or run out, so a flood from many addresses cannot fill the database.
    pub max_pending_sign_ins: u32,
}

impl Default for PortalSettings {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            client_id: String::new(),
            client_secret: Secret::default(),
            sign_in_minutes: 10,
            session_minutes: 60,
            metadata_minutes: 60,
            request_timeout_secs: 10,
            sign_ins_per_address_per_minute: 10,
            max_pending_sign_ins: 10_000,
        }
    }
}

impl PortalSettings {
    pub fn enabled(&self) -> bool {
        !self.issuer.trim().is_empty()
    }

    fn validate(&self, public_url: &str) -> Result<(), ConfigError> {
        if !self.enabled() {
            return Ok(());
        }
        let problem = |text: &str| Err(ConfigError::Portal(text.to_string()));
        let issuer = self.issuer.trim();
        let loopback_http = issuer
            .strip_prefix("http://")
            .and_then(|rest| rest.split(['/', ':']).next())
            .is_some_and(|host| {
                host == "localhost"
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            });
        if !issuer.starts_with("https://") && !loopback_http {
            return problem("issuer must be an https:// address (http:// only on loopback)");
        }
        if self.client_id.trim().is_empty() || self.client_secret.0.is_empty() {
            return problem("client_id and client_secret are needed");
        }
        if public_url.trim().is_empty() {
            return problem("public_url is needed: the portal sends visitors back to it");
        }
        for (name, value) in [
            ("portal.sign_in_minutes", u64::from(self.sign_in_minutes)),
            ("portal.session_minutes", u64::from(self.session_minutes)),
            ("portal.metadata_minutes", u64::from(self.metadata_minutes)),
            ("portal.request_timeout_secs", self.request_timeout_secs),
            (
                "portal.sign_ins_per_address_per_minute",
                u64::from(self.sign_ins_per_address_per_minute),
            ),
            (
                "portal.max_pending_sign_ins",
                u64::from(self.max_pending_sign_ins),
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        Ok(())
    }
}

/// A secret setting: never shown by `Debug`, so never in a log line.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

/// The visitor's feedback link: what it asks, how long it may be used, how long what is sent
/// is kept, and how often one may post.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedbackSettings {
    /// The criteria scored 1..=5, in the form's order. The default is the federal method's
    /// five (Government Decree № 1284).
    pub criteria: Vec<Criterion>,
    /// A link may be submitted this many days after its visit's corrected end, or — while the
    /// visit has not synced — after the link was first opened.
    pub link_valid_days: u32,
    /// A submission that never joins a visit (refused, or its tablet revoked) is deleted after
    /// this many days.
    pub unjoined_keep_days: u32,
    /// A comment is personal data: it is cleared this many days after it was sent.
    pub comment_keep_days: u32,
    /// The longest comment, in characters.
    pub max_comment_chars: u32,
    /// Posts a minute from one client address; more are refused (429).
    pub posts_per_address_per_minute: u32,
    /// Posts a minute to one link; more are refused (429).
    pub posts_per_link_per_minute: u32,
}

/// One criterion of the feedback form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    /// What it is stored under: lower-case letters, digits and `_`.
    pub key: String,
    /// What the visitor reads.
    pub label: String,
}

impl Default for FeedbackSettings {
    fn default() -> Self {
        let criterion = |key: &str, label: &str| Criterion {
            key: key.into(),
            label: label.into(),
        };
        Self {
            criteria: vec![
                criterion("service_time", "Время предоставления услуги"),
                criterion("queue_time", "Время ожидания в очереди"),
                criterion("courtesy", "Вежливость и компетентность сотрудника"),
                criterion("comfort", "Комфортность условий в помещении"),
                criterion(
                    "information",
                    "Доступность информации о порядке предоставления услуги",
                ),
            ],
            link_valid_days: 7,
            unjoined_keep_days: 30,
            comment_keep_days: 365,
            max_comment_chars: 2000,
            posts_per_address_per_minute: 10,
            posts_per_link_per_minute: 3,
        }
    }
}

impl FeedbackSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.criteria.is_empty() || self.criteria.len() > MAX_CRITERIA {
            return Err(ConfigError::Criteria(format!(
                "{} given",
                self.criteria.len()
            )));
        }
        let mut keys = std::collections::HashSet::new();
        for criterion in &self.criteria {
            let key_ok = !criterion.key.is_empty()
                && criterion.key.len() <= 32
                && criterion
                    .key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            let label = criterion.label.trim();
            if !key_ok || label.is_empty() || label.chars().count() > 200 {
                return Err(ConfigError::Criteria(format!("not {:?}", criterion.key)));
            }
            if !keys.insert(criterion.key.as_str()) {
                return Err(ConfigError::Criteria(format!("{:?} twice", criterion.key)));
            }
        }
        Ok(())
    }
}

/// Group commit: the syncs waiting for the database are stored in one transaction, with one
/// fsync, and each is answered after that commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    /// At most this many visits in one commit (a sync is never split: one larger than this is
    /// committed alone).
    pub max_visits_per_commit: u32,
    /// How long, in milliseconds, the committer waits for more syncs once it holds one. 0:
    /// none — it takes the syncs that arrived while the previous commit ran, which is what
    /// groups them under load without slowing a lone sync.
    pub max_commit_wait_ms: u64,
}

impl Default for IngestSettings {
    fn default() -> Self {
        let grouping = crate::storage::GroupCommit::default();
        Self {
            max_visits_per_commit: u32::try_from(grouping.max_visits).unwrap_or(u32::MAX),
            max_commit_wait_ms: u64::try_from(grouping.max_wait.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TabletSettings {
    /// How far a visit's corrected end may stray from the server's clock, in seconds, when it
    /// is checked against its pairing's start, its arrival and its pairing's end.
    pub clock_slack_secs: u64,
    /// Enrolments waiting for an administrator at once; a new one beyond is refused (503).
    pub max_open_enrolments: u32,
}

impl Default for TabletSettings {
    fn default() -> Self {
        Self {
            clock_slack_secs: 120,
            max_open_enrolments: 200,
        }
    }
}

/// The heads' review of Плохо visits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReviewSettings {
    /// How often stored recordings still without the player's analysis are looked for, in
    /// seconds (each is analysed as it arrives; this catches the rest).
    pub analysis_check_secs: u64,
    /// Every Плохо must have a verdict within this many working days of the calendar after
    /// the day it reached the server; past that it is overdue.
    pub verdict_working_days: u32,
    /// The longest a head's deputy may be named for, in days from today.
    pub deputy_max_days: u32,
}

impl Default for ReviewSettings {
    fn default() -> Self {
        Self {
            analysis_check_secs: 60,
            verdict_working_days: 3,
            deputy_max_days: 92,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UploadSettings {
    /// An upload not finished this many seconds after it began is deleted (its bytes too).
    pub abandoned_after_secs: u64,
    /// Bytes one tablet may hold in unfinished uploads (by what it declared).
    pub max_unfinished_bytes_per_tablet: u64,
    /// Below this much free space in the data directory no new upload is taken (visits still
    /// sync).
    pub min_free_bytes: u64,
    /// How often unfinished uploads are looked at, in seconds.
    pub check_secs: u64,
}

impl Default for UploadSettings {
    fn default() -> Self {
        Self {
            abandoned_after_secs: 48 * 3600,
            max_unfinished_bytes_per_tablet: 256 * 1024 * 1024,
            min_free_bytes: 1024 * 1024 * 1024,
            check_secs: 30 * 60,
        }
    }
}

/// Attempts a minute, per account and per client address, each counted apart: a guess is
/// refused (429) when either is used up. Each budget refills evenly over the minute.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleSettings {
    pub sign_in_per_account: u32,
    pub sign_in_per_address: u32,
    pub pairing_per_account: u32,
    pub pairing_per_address: u32,
    /// Enrolments one address may start a minute (no account: enrolment is unauthenticated).
    pub enrolment_per_address: u32,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            sign_in_per_account: 5,
            sign_in_per_address: 30,
            pairing_per_account: 10,
            pairing_per_address: 30,
            enrolment_per_address: 10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkSettings {
    /// A client must send a request's headers within this many seconds, on a new connection
    /// and on an idle kept-alive one; otherwise the connection is closed.
    pub header_read_timeout_secs: u64,
    /// A TLS handshake must finish within this many seconds.
    pub tls_handshake_timeout_secs: u64,
    /// HTTP/2 connections are pinged after this many idle seconds and closed when the ping
    /// is not answered within as many again.
    pub http2_keep_alive_secs: u64,
    /// Connections open at once, in all.
    pub max_connections: u32,
    /// Connections open at once from one client address (a trusted proxy is not limited by
    /// this; its clients are, by `max_requests_per_client`).
    pub max_connections_per_address: u32,
    /// Requests in progress at once for one client (the forwarded address behind a trusted
    /// proxy).
    pub max_requests_per_client: u32,
    /// How often the TLS certificate files are checked for a renewal, in seconds (SIGHUP
    /// reloads them at once).
    pub tls_reload_check_secs: u64,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        Self {
            header_read_timeout_secs: 10,
            tls_handshake_timeout_secs: 10,
            http2_keep_alive_secs: 60,
            max_connections: 512,
            max_connections_per_address: 64,
            max_requests_per_client: 64,
            tls_reload_check_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveSettings {
    /// Streams one session may hold open (a head with a few tabs open).
    pub streams_per_session: u32,
    /// How often an open stream checks that its session still lasts, in seconds.
    pub session_check_secs: u64,
}

impl Default for LiveSettings {
    fn default() -> Self {
        Self {
            streams_per_session: 8,
            session_check_secs: 5,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertSettings {
    /// The sliding window, in minutes.
    pub window_minutes: u32,
    /// The least number of rated visits in the window.
    pub min_ratings: u32,
    /// The share of Плохо among them, in percent, that raises the alert.
    pub bad_share_percent: f64,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            window_minutes: 15,
            min_ratings: 4,
            bad_share_percent: 50.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkingHours {
    #[serde(with = "hh_mm")]
    pub start: Time,
    #[serde(with = "hh_mm")]
    pub end: Time,
}

/// The production calendar: Monday to Friday are working days, except the `holidays`; a
/// Saturday or Sunday in `working_weekends` is one (worked for a day off moved elsewhere).
/// Dates are written `"2027-01-08"`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalendarSettings {
    pub holidays: Vec<jiff::civil::Date>,
    pub working_weekends: Vec<jiff::civil::Date>,
}

impl CalendarSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        use jiff::civil::Weekday;
        for date in &self.working_weekends {
            if !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday) {
                return Err(ConfigError::Calendar(format!(
                    "working_weekends lists {date}, which is not a Saturday or Sunday"
                )));
            }
            if self.holidays.contains(date) {
                return Err(ConfigError::Calendar(format!(
                    "{date} is both a holiday and a working weekend"
                )));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            time_zone: "Asia/Yekaterinburg".into(),
            working_hours: WorkingHours {
                start: Time::constant(8, 0, 0, 0),
                end: Time::constant(18, 0, 0, 0),
            },
            calendar: CalendarSettings::default(),
            recording_max_bytes: 64 * 1024 * 1024,
            retention_days: 90,
            tls: None,
            allow_plain_http: false,
            request_timeout_secs: 30,
            upload_timeout_secs: 600,
            session_hours: 12,
            alerts: AlertSettings::default(),
            tablet_silent_minutes: 30,
            retention_check_minutes: 60,
            public_url: String::new(),
            trusted_proxies: Vec::new(),
            network: NetworkSettings::default(),
            live: LiveSettings::default(),
            throttle: ThrottleSettings::default(),
            tablets: TabletSettings::default(),
            uploads: UploadSettings::default(),
            review: ReviewSettings::default(),
            ingest: IngestSettings::default(),
            feedback: FeedbackSettings::default(),
            portal: PortalSettings::default(),
            sms: SmsSettings::default(),
            case_system: CaseSystemSettings::default(),
            backup: BackupSettings::default(),
            log_format: LogFormat::Text,
            metrics: MetricsSettings::default(),
            mail: MailSettings::default(),
        }
    }
}

/// Flags given on the command line; they win over the file and the environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
}

impl Config {
    /// Loads defaults ← `file` ← environment ← `overrides`, and checks the result.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError::MissingFile(file.to_path_buf()));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(Env::prefixed("OFFICE_").split("__"));
        let mut config: Config = figment.extract().map_err(Box::new)?;
        if let Some(listen) = overrides.listen {
            config.listen = listen;
        }
        if let Some(dir) = &overrides.data_dir {
            config.data_dir = dir.clone();
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: names that must resolve and rules between fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.office_time_zone()?;
        if self.working_hours.start >= self.working_hours.end {
            return Err(ConfigError::WorkingHours {
                start: self.working_hours.start,
                end: self.working_hours.end,
            });
        }
        if self.tls.is_none() && !self.allow_plain_http && !self.listen.ip().is_loopback() {
            return Err(ConfigError::PlainHttpOffLoopback(self.listen));
        }
        for (name, value) in [
            ("recording_max_bytes", self.recording_max_bytes),
            ("request_timeout_secs", self.request_timeout_secs),
            ("upload_timeout_secs", self.upload_timeout_secs),
            ("session_hours", u64::from(self.session_hours)),
            ("retention_days", u64::from(self.retention_days)),
            ("backup.keep", u64::from(self.backup.keep)),
            (
                "review.deputy_max_days",
                u64::from(self.review.deputy_max_days),
            ),
            (
                "alerts.window_minutes",
                u64::from(self.alerts.window_minutes),
            ),
            ("alerts.min_ratings", u64::from(self.alerts.min_ratings)),
            (
                "tablet_silent_minutes",
                u64::from(self.tablet_silent_minutes),
            ),
            (
                "retention_check_minutes",
                u64::from(self.retention_check_minutes),
            ),
            (
                "feedback.link_valid_days",
                u64::from(self.feedback.link_valid_days),
            ),
            (
                "feedback.unjoined_keep_days",
                u64::from(self.feedback.unjoined_keep_days),
            ),
            (
                "feedback.comment_keep_days",
                u64::from(self.feedback.comment_keep_days),
            ),
            (
                "feedback.max_comment_chars",
                u64::from(self.feedback.max_comment_chars),
            ),
            (
                "feedback.posts_per_address_per_minute",
                u64::from(self.feedback.posts_per_address_per_minute),
            ),
            (
                "feedback.posts_per_link_per_minute",
                u64::from(self.feedback.posts_per_link_per_minute),
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        self.feedback.validate()?;
        self.calendar.validate()?;
        if !(1..=MAX_VERDICT_WORKING_DAYS).contains(&self.review.verdict_working_days) {
            return Err(ConfigError::VerdictDays(self.review.verdict_working_days));
        }
        self.portal.validate(&self.public_url)?;
        self.sms.validate(&self.public_url)?;
        self.mail.validate()?;
        self.case_system.digests()?;
        if !(self.alerts.bad_share_percent > 0.0 && self.alerts.bad_share_percent <= 100.0) {
            return Err(ConfigError::Percent("alerts.bad_share_percent"));
        }
        let network = &self.network;
        for (name, value) in [
            (
                "network.header_read_timeout_secs",
                network.header_read_timeout_secs,
            ),
            (
                "network.tls_handshake_timeout_secs",
                network.tls_handshake_timeout_secs,
            ),
            (
                "network.http2_keep_alive_secs",
                network.http2_keep_alive_secs,
            ),
            (
                "network.max_connections",
                u64::from(network.max_connections),
            ),
            (
                "network.max_connections_per_address",
                u64::from(network.max_connections_per_address),
            ),
            (
                "network.max_requests_per_client",
                u64::from(network.max_requests_per_client),
            ),
            (
                "network.tls_reload_check_secs",
                network.tls_reload_check_secs,
            ),
            (
                "live.streams_per_session",
                u64::from(self.live.streams_per_session),
            ),
            ("live.session_check_secs", self.live.session_check_secs),
            (
                "throttle.sign_in_per_account",
                u64::from(self.throttle.sign_in_per_account),
            ),
            (
                "throttle.sign_in_per_address",
                u64::from(self.throttle.sign_in_per_address),
            ),
            (
                "throttle.pairing_per_account",
                u64::from(self.throttle.pairing_per_account),
            ),
            (
                "throttle.pairing_per_address",
                u64::from(self.throttle.pairing_per_address),
            ),
            (
                "throttle.enrolment_per_address",
                u64::from(self.throttle.enrolment_per_address),
            ),
            (
                "tablets.max_open_enrolments",
                u64::from(self.tablets.max_open_enrolments),
            ),
            (
                "uploads.abandoned_after_secs",
                self.uploads.abandoned_after_secs,
            ),
            (
                "uploads.max_unfinished_bytes_per_tablet",
                self.uploads.max_unfinished_bytes_per_tablet,
            ),
            ("uploads.check_secs", self.uploads.check_secs),
            (
                "review.analysis_check_secs",
                self.review.analysis_check_secs,
            ),
            (
                "ingest.max_visits_per_commit",
                u64::from(self.ingest.max_visits_per_commit),
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        if self.ingest.max_commit_wait_ms > MAX_COMMIT_WAIT_MS {
            return Err(ConfigError::CommitWait(self.ingest.max_commit_wait_ms));
        }
        self.public_origin()?;
        self.proxies()?;
        Ok(())
    }

    /// The origin of `public_url` (`https://host[:port]`, lower-case), if one is set.
    pub fn public_origin(&self) -> Result<Option<crate::http::Origin>, ConfigError> {
        let url = self.public_url.trim();
        if url.is_empty() {
            return Ok(None);
        }
        crate::http::Origin::parse(url.trim_end_matches('/'))
            .map(Some)
            .ok_or_else(|| ConfigError::PublicUrl(self.public_url.clone()))
    }

    /// Where visitors' feedback links lead: `{public_url}/f/`; none without a public address
    /// (a phone could not reach the server).
    pub fn feedback_base_url(&self) -> Option<String> {
        let url = self.public_url.trim().trim_end_matches('/');
        (!url.is_empty()).then(|| format!("{url}/f/"))
    }

    /// The trusted proxies as networks.
    pub fn proxies(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        networks(&self.trusted_proxies).map_err(|text| ConfigError::TrustedProxy(text.to_string()))
    }

    /// The acceptance rule's setting.
    pub fn acceptance(&self) -> crate::domain::acceptance::Acceptance {
        crate::domain::acceptance::Acceptance {
            clock_slack: jiff::SignedDuration::from_secs(
                i64::try_from(self.tablets.clock_slack_secs).unwrap_or(i64::MAX),
            ),
        }
    }

    /// How the SQLite backend groups syncs into commits.
    pub fn group_commit(&self) -> crate::storage::GroupCommit {
        crate::storage::GroupCommit {
            max_visits: self.ingest.max_visits_per_commit as usize,
            max_wait: std::time::Duration::from_millis(self.ingest.max_commit_wait_ms),
            ..crate::storage::GroupCommit::default()
        }
    }

    /// The alert rule in the storage layer's terms.
    pub fn alert_rule(&self) -> crate::storage::AlertRule {
        crate::storage::AlertRule {
            window: jiff::SignedDuration::from_mins(i64::from(self.alerts.window_minutes)),
            min_ratings: i64::from(self.alerts.min_ratings),
            bad_share_percent: self.alerts.bad_share_percent,
        }
    }

    pub fn office_time_zone(&self) -> Result<TimeZone, ConfigError> {
        TimeZone::get(&self.time_zone).map_err(|source| ConfigError::TimeZone {
            name: self.time_zone.clone(),
            source,
        })
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub fn upload_timeout(&self) -> Duration {
        Duration::from_secs(self.upload_timeout_secs)
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("office.sqlite3")
    }

    pub fn recordings_dir(&self) -> PathBuf {
        self.data_dir.join("recordings")
    }
}

/// Times of day as `"HH:MM"`, the way people write working hours.
/// Tokens' SHA-256 digests as written (hex); the first that is not one is the error.
fn sha256_digests(written: &[String]) -> Result<Vec<[u8; 32]>, &str> {
    written
        .iter()
        .map(|text| {
            let mut digest = [0u8; 32];
            hex::decode_to_slice(text.trim(), &mut digest).map_err(|_| text.as_str())?;
            Ok(digest)
        })
        .collect()
}

/// Addresses or networks as written (`10.0.0.0/8`, `192.0.2.7`); the first that is neither
/// is the error.
fn networks(written: &[String]) -> Result<Vec<ipnet::IpNet>, &str> {
    written
        .iter()
        .map(|text| {
            let text = text.trim();
            text.parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| text)
        })
        .collect()
}

mod hh_mm {
    use jiff::civil::Time;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &Time, serializer: S) -> Result<S::Ok, S::Error> {
        let format = if time.second() == 0 {
            "%H:%M"
        } else {
            "%H:%M:%S"
        };
        serializer.serialize_str(&time.strftime(format).to_string())
    }

    /// `HH:MM`, or `HH:MM:SS` where seconds matter.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Time, D::Error> {
        let text = String::deserialize(deserializer)?;
        Time::strptime("%H:%M", &text)
            .or_else(|_| Time::strptime("%H:%M:%S", &text))
            .map_err(|_| {
                serde::de::Error::custom(format!("expected a time of day as HH:MM, got {text:?}"))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_loopback() {
        let config = Config::default();
        config.validate().unwrap();
        assert!(config.listen.ip().is_loopback());
        assert_eq!(config.time_zone, "Asia/Yekaterinburg");
    }

    #[test]
    fn the_portal_is_off_by_default_and_checked_when_on() {
        let config = Config::default();
        assert!(!config.portal.enabled());
        let on = |adjust: &dyn Fn(&mut Config)| {
            let mut config = Config {
                public_url: "https://rating.office.example".into(),
                ..Config::default()
            };
            config.portal.issuer = "https://id.city.example".into();
            config.portal.client_id = "office".into();
            config.portal.client_secret = Secret("s3cret".into());
            adjust(&mut config);
            config.validate().map_err(|e| e.to_string())
        };
        on(&|_| {}).unwrap();
        on(&|c| c.portal.issuer = "http://127.0.0.1:4100".into()).unwrap();
        for (adjust, expected) in [
            (
                Box::new(|c: &mut Config| c.portal.issuer = "http://id.city.example".into())
                    as Box<dyn Fn(&mut Config)>,
                "https://",
            ),
            (
                Box::new(|c: &mut Config| c.portal.client_id.clear()),
                "client_id",
            ),
            (
                Box::new(|c: &mut Config| c.portal.client_secret = Secret::default()),
                "client_secret",
            ),
            (
                Box::new(|c: &mut Config| c.public_url.clear()),
                "public_url",
            ),
            (
                Box::new(|c: &mut Config| c.portal.sign_in_minutes = 0),
                "portal.sign_in_minutes",
            ),
        ] {
            let error = on(&*adjust).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
        // The secret never shows in a log line.
        let mut config = Config::default();
        config.portal.client_secret = Secret("s3cret".into());
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn file_then_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("office.toml");
        std::fs::write(
            &file,
            "time_zone = \"Europe/Moscow\"\nretention_days = 30\n[working_hours]\nstart = \"09:30\"\nend = \"17:45\"\n",
        )
        .unwrap();
        let overrides = Overrides {
            data_dir: Some(dir.path().join("d")),
            ..Overrides::default()
        };
        let config = Config::load(Some(&file), &overrides).unwrap();
        assert_eq!(config.time_zone, "Europe/Moscow");
        assert_eq!(config.retention_days, 30);
        assert_eq!(config.working_hours.start, Time::constant(9, 30, 0, 0));
        assert_eq!(config.data_dir, dir.path().join("d"));
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("office.toml");
        for (body, expected) in [
            ("time_zone = \"Mars/Olympus\"", "unknown time zone"),
            (
                "[working_hours]\nstart = \"18:00\"\nend = \"08:00\"",
                "start before",
            ),
            ("[working_hours]\nstart = \"8am\"\nend = \"18:00\"", "HH:MM"),
            ("listen = \"0.0.0.0:8080\"", "refusing plain HTTP"),
            (
                "public_url = \"rating.office.example\"",
                "public_url must be",
            ),
            (
                "public_url = \"https://rating.example/path\"",
                "public_url must be",
            ),
            ("trusted_proxies = [\"10.0.0.0/33\"]", "trusted_proxies"),
            (
                "[network]\nmax_connections = 0",
                "network.max_connections must be",
            ),
            (
                "[ingest]\nmax_visits_per_commit = 0",
                "ingest.max_visits_per_commit must be",
            ),
            (
                "[ingest]\nmax_commit_wait_ms = 1001",
                "ingest.max_commit_wait_ms must be at most 1000",
            ),
            ("lisen = \"127.0.0.1:1\"", "unknown field"),
            (
                "[calendar]\nworking_weekends = [\"2027-01-11\"]",
                "2027-01-11, which is not a Saturday or Sunday",
            ),
            (
                "[calendar]\nholidays = [\"2027-01-09\"]\nworking_weekends = [\"2027-01-09\"]",
                "both a holiday and a working weekend",
            ),
            ("[calendar]\nholidays = [\"9 января\"]", "calendar.holidays"),
            (
                "[review]\nverdict_working_days = 0",
                "verdict_working_days must be 1 to 60, not 0",
            ),
            (
                "[review]\nverdict_working_days = 61",
                "verdict_working_days must be 1 to 60, not 61",
            ),
        ] {
            std::fs::write(&file, body).unwrap();
            let error = Config::load(Some(&file), &Overrides::default()).unwrap_err();
            assert!(error.to_string().contains(expected), "{body}: {error}");
        }
        let missing = Config::load(Some(&dir.path().join("nope.toml")), &Overrides::default());
        assert!(matches!(missing, Err(ConfigError::MissingFile(_))));
    }
}

#[cfg(test)]
mod example {
    use super::*;

    #[test]
    fn the_example_file_is_valid_and_says_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("office.example.toml");
        let config = Config::load(Some(&path), &Overrides::default()).unwrap();
        let defaults = Config::default();
        assert_eq!(
            serde_json::to_value(&config).unwrap(),
            serde_json::to_value(&defaults).unwrap()
        );
    }

    #[test]
    fn mail_goes_over_tls_unless_to_a_relay_on_loopback() {
        let with = |url: &str, from: &str| {
            let mut config = Config::default();
            config.mail.smtp_url = url.into();
            config.mail.from = from.into();
            config.validate()
        };
        let from = "Оценка качества <quality@office.example>";
        for good in [
            "smtps://mail.office.example",
            "smtp://mail.office.example:587?tls=required",
            "smtp://127.0.0.1:25",
            "smtp://[::1]:2525",
            "smtp://localhost",
        ] {
            assert!(with(good, from).is_ok(), "{good}");
        }
        for bad in [
            "smtp://mail.office.example",
            "smtp://mail.office.example:587?tls=opportunistic",
            "http://mail.office.example",
            "mail.office.example",
        ] {
            assert!(
                matches!(with(bad, from), Err(ConfigError::Mail(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            with("smtps://mail.office.example", "quality at office"),
            Err(ConfigError::Mail(_))
        ));
        let mut config = Config::default();
        config.mail.smtp_url = "smtps://mail.office.example".into();
        config.mail.from = from.into();
        config.mail.user = "quality".into();
        assert!(
            matches!(config.validate(), Err(ConfigError::Mail(_))),
            "no password"
        );
        config.mail.password = Secret("secret".into());
        assert!(config.validate().is_ok());
        config.mail.check_secs = 0;
        assert!(matches!(config.validate(), Err(ConfigError::Mail(_))));
    }
}
