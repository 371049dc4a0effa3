//! Kannel's HTTP `sendsms` interface (smsbox): the text as UTF-8 with `charset=UTF-8`, sent as
//! UCS-2 (`coding=2`) so Cyrillic arrives intact; delivery reports asked for with `dlr-mask`
//! and come back to `dlr-url`, where Kannel puts the report's type in place of `%d`.

use std::time::Duration;

use super::{Outgoing, SendError, SmsGateway};
use crate::config::SmsSettings;

/// Delivered (1), undelivered (2), queued at the operator (4), accepted by it (8), rejected
/// by it (16): every report Kannel can give.
const DLR_MASK: &str = "31";

/// The longest part of a gateway's answer kept in an error.
const MAX_ANSWER_CHARS: usize = 200;

pub struct Kannel {
    http: reqwest::Client,
    url: String,
    username: String,
    password: String,
    sender: String,
    smsc: String,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot make the HTTP client for Kannel: {0}")]
pub struct KannelSetupError(#[from] reqwest::Error);

impl Kannel {
    pub fn new(settings: &SmsSettings) -> Result<Self, KannelSetupError> {
        let timeout = Duration::from_secs(settings.request_timeout_secs);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            // A fresh connection for every message: a pooled one the gateway closed meanwhile
            // would make the client's own quiet retry a possible second message.
            .pool_max_idle_per_host(0)
            // The request holds the password and the visitor's number: to Kannel only.
            .no_proxy()
            .build()?;
        Ok(Self {
            http,
            url: settings.kannel_url.trim().to_string(),
            username: settings.username.clone(),
            password: settings.password.0.clone(),
            sender: settings.sender.trim().to_string(),
            smsc: settings.smsc.trim().to_string(),
        })
    }
}

/// The answer's first line, at most [`MAX_ANSWER_CHARS`].
fn excerpt(text: &str) -> String {
    text.trim()
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(MAX_ANSWER_CHARS)
        .collect()
}

impl SmsGateway for Kannel {
    async fn send(&self, sms: Outgoing<'_>) -> Result<(), SendError> {
        let report_url = format!("{}&type=%d&answer=%A", sms.report_url);
        let mut query: Vec<(&str, &str)> = vec![
            ("username", &self.username),
            ("password", &self.password),
            ("to", sms.to),
            ("text", sms.text),
            ("charset", "UTF-8"),
            ("coding", "2"),
            ("dlr-mask", DLR_MASK),
            ("dlr-url", &report_url),
        ];
        if !self.sender.is_empty() {
            query.push(("from", &self.sender));
        }
        if !self.smsc.is_empty() {
            query.push(("smsc", &self.smsc));
        }
        let response = self
            .http
            .get(&self.url)
            .query(&query)
            .send()
            .await
            .map_err(|error| {
                // The address holds the password and the visitor's number: never in a message.
                let error = error.without_url();
                if error.is_connect() {
                    SendError::NotSent(format!("no connection to Kannel: {error}"))
                } else {
                    SendError::Unknown(format!("no answer from Kannel: {error}"))
                }
            })?;
        let status = response.status();
        // The status line came: Kannel has decided. Its words are only for people — without
        // anything of the request an answer from elsewhere (a wrong address) might echo.
        let mut answer = excerpt(&response.text().await.unwrap_or_default());
        for secret in [self.password.as_str(), sms.to.trim_start_matches('+')] {
            if !secret.is_empty() {
                answer = answer.replace(secret, "***");
            }
        }
        if status.is_success() {
            Ok(())
        } else if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            Err(SendError::NotSent(format!("Kannel: {status} {answer}")))
        } else {
            Err(SendError::Refused(format!("Kannel: {status} {answer}")))
        }
    }
}
