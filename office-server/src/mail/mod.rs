//! E-mail notifications: the SMTP transport ([`Mailer`], lettre over rustls) and the worker
//! that queues what events call for and sends what is due ([`notifier`]). Which events go to
//! whom, in what words, is `ops::notices`.

pub mod notifier;

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{ConfigError, MailSettings};

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No connection, a timeout, or the server asked to try later (4xx).
    #[error("not sent, tried again later: {0}")]
    Again(String),
    /// Refused for good (5xx: no such mailbox, not allowed to relay), or no valid address.
    #[error("refused: {0}")]
    Refused(String),
}

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    pub fn new(settings: &MailSettings) -> Result<Self, ConfigError> {
        let from = settings.sender()?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.smtp_url)
            .map_err(|error| ConfigError::Mail(format!("smtp_url: {error}")))?
            .timeout(Some(Duration::from_secs(settings.request_timeout_secs)));
        if !settings.user.is_empty() {
            builder = builder.credentials(Credentials::new(
                settings.user.clone(),
                settings.password.0.clone(),
            ));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    /// Sends one plain-text message.
    pub async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), SendError> {
        let to: Mailbox = to
            .parse()
            .map_err(|_| SendError::Refused("the account's address is not valid".into()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_string())
            .map_err(|error| SendError::Refused(error.to_string()))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(error) if error.is_permanent() => Err(SendError::Refused(error.to_string())),
            Err(error) => Err(SendError::Again(error.to_string())),
        }
    }
}
