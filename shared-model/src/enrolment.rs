use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /api/tablet/enrolments`: an unenrolled tablet asks for a code to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentRequest {
    pub app_version: String,
    /// What the tablet calls itself (model, serial), shown to the administrator who approves it.
    #[serde(default)]
    pub device_description: String,
    /// The public key of the tablet's feedback links (protocol 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback_key: Option<crate::FeedbackKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnrolmentStarted {
    /// Secret to the tablet: it polls `GET /api/tablet/enrolments/{enrolment_id}` with it.
    pub enrolment_id: Uuid,
    /// The short code the tablet shows and an administrator types in.
    pub code: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

/// The answer to an enrolment poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum EnrolmentStatus {
    Pending {
        #[schema(value_type = String, format = DateTime)]
        expires_at: Timestamp,
    },
    /// Approved: here is the tablet's own credential. It is shown until the tablet first uses
    /// it; each poll before then issues a fresh one, so a lost answer loses nothing.
    Approved {
        tablet_id: i64,
        tablet_name: String,
        /// Sent as `Authorization: Bearer …` on every later request.
        device_token: String,
    },
    Expired,
}
