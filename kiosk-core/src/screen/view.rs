//! What the page shows, derived from the machine's state. It never carries a rating: the rating
//! screen lists the three buttons' words in their drawn order, and after the tap the view is the
//! same whatever was pressed (the feedback QR code names the visit, not its rating).

use serde::Serialize;
use shared_model::{NamedRef, Rating};

use crate::feedback::FeedbackQr;
use crate::machine::State;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct View {
    pub screen: ScreenView,
    pub staff: StaffStatus,
    /// How long a Плохо recording may be kept, for the 152-FZ notice.
    pub retention_days: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum ScreenView {
    Enrolment {
        code: Option<String>,
    },
    Pairing {
        code: Option<String>,
    },
    Idle {
        specialist: String,
        section: String,
    },
    ServiceChoice {
        services: Vec<NamedRef>,
    },
    InVisit {
        service: String,
        started_at_ms: i64,
    },
    /// The catalogue keys of the three buttons, in screen order: "good", "medium", "bad".
    Rating {
        buttons: [&'static str; 3],
    },
    /// The QR code of the visit's feedback link (an image `data:` URL), when the tablet knows
    /// where links lead; and the link itself, for tools that act as the visitor's phone (the
    /// simulator). The page draws only the code.
    Thanks {
        feedback_qr: Option<String>,
        feedback_link: Option<String>,
    },
}

/// What the staff panel shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StaffStatus {
    pub queued: u32,
    pub rejected: u32,
    pub recordings_pending: u32,
    /// RFC 3339, in UTC; the page shows it in local time.
    pub last_sync: Option<String>,
    pub online: bool,
    pub microphone: &'static str,
    /// Catalogue keys of notices, e.g. "notice_no_audio_disk_full".
    pub notices: Vec<&'static str>,
    pub paired: bool,
}

fn key(rating: Rating) -> &'static str {
    match rating {
        Rating::Good => "good",
        Rating::Medium => "medium",
        Rating::Bad => "bad",
    }
}

impl ScreenView {
    /// The view of `state`; `feedback_qr` is shown on the thank-you screen of its own visit.
    pub fn of(state: &State, feedback_qr: Option<&FeedbackQr>) -> Self {
        match state {
            State::Enrolment { code } => ScreenView::Enrolment { code: code.clone() },
            State::Pairing { code } => ScreenView::Pairing { code: code.clone() },
            State::Idle { pairing } => ScreenView::Idle {
                specialist: pairing.employee.name.clone(),
                section: pairing.section.name.clone(),
            },
            State::ServiceChoice { pairing } => ScreenView::ServiceChoice {
                services: pairing.services.clone(),
            },
            State::InVisit { pairing, visit } => ScreenView::InVisit {
                service: pairing
                    .services
                    .iter()
                    .find(|s| s.id == visit.service_id)
                    .map(|s| s.name.clone())
                    .unwrap_or_default(),
                started_at_ms: visit.started_at.as_millisecond(),
            },
            State::Rating { order, .. } => ScreenView::Rating {
                buttons: order.map(key),
            },
            State::Thanks { visit_id, .. } => {
                let qr = feedback_qr.filter(|qr| qr.visit_id == *visit_id);
                ScreenView::Thanks {
                    feedback_qr: qr.map(|qr| qr.image.clone()),
                    feedback_link: qr.map(|qr| qr.link.clone()),
                }
            }
        }
    }
}
