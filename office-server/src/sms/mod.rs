//! Sending «Результат готов»: the gateway behind a small trait ([`SmsGateway`]; Kannel's HTTP
//! `sendsms` first, [`kannel`]) and the outbox worker that takes due messages from storage,
//! sends each, and records how each try ended ([`outbox`]).

pub mod kannel;
pub mod outbox;

use std::future::Future;

/// One message to hand to the gateway.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// E.164.
    pub to: &'a str,
    pub text: &'a str,
    /// Where the gateway sends this message's delivery reports; the gateway adds the report's
    /// type in its own way (`type=` for the report endpoint).
    pub report_url: &'a str,
}

/// Why a message did not certainly leave.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Certainly not sent (no connection, or the gateway asked to try later): try again.
    #[error("not sent: {0}")]
    NotSent(String),
    /// The gateway refused it for good (bad credentials, a number it will not take).
    #[error("refused: {0}")]
    Refused(String),
    /// The request was written but no answer came: it may have been sent.
    #[error("outcome unknown: {0}")]
    Unknown(String),
}

/// An SMS gateway: Kannel's HTTP interface now; an SMPP client or an operator's own HTTP API
/// can follow behind the same three outcomes.
pub trait SmsGateway: Send + Sync + 'static {
    fn send(&self, sms: Outgoing<'_>) -> impl Future<Output = Result<(), SendError>> + Send;
}
