use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The visitor's rating. On the wire it is its score: Хорошо = 3, Средне = 2, Плохо = 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum Rating {
    Bad,
    Medium,
    Good,
}

impl Rating {
    pub const ALL: [Rating; 3] = [Rating::Good, Rating::Medium, Rating::Bad];

    pub fn score(self) -> u8 {
        match self {
            Rating::Good => 3,
            Rating::Medium => 2,
            Rating::Bad => 1,
        }
    }
}

impl From<Rating> for u8 {
    fn from(rating: Rating) -> u8 {
        rating.score()
    }
}

/// A number that is not a rating's score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidRating(pub u8);

impl std::fmt::Display for InvalidRating {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rating must be 1, 2 or 3, not {}", self.0)
    }
}

impl std::error::Error for InvalidRating {}

impl TryFrom<u8> for Rating {
    type Error = InvalidRating;

    fn try_from(score: u8) -> Result<Self, Self::Error> {
        match score {
            3 => Ok(Rating::Good),
            2 => Ok(Rating::Medium),
            1 => Ok(Rating::Bad),
            other => Err(InvalidRating(other)),
        }
    }
}

/// One finished visit, as the tablet recorded it.
///
/// `started_at` and `ended_at` are read from the tablet's clock; the server stores them as sent
/// together with the clock offset it measured at the sync that delivered them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Visit {
    /// UUIDv7 made on the tablet; the idempotency key of sync.
    pub id: Uuid,
    /// The pairing (specialist session) the visit was made under.
    pub pairing_id: Uuid,
    pub service_id: i64,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub ended_at: Timestamp,
    /// 3 = Хорошо, 2 = Средне, 1 = Плохо; `null` when the visitor did not rate the visit.
    #[schema(value_type = Option<u8>, minimum = 1, maximum = 3)]
    pub rating: Option<Rating>,
    /// Whether the tablet kept a recording to upload (only ever for Плохо).
    pub has_recording: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rating_is_its_score_on_the_wire() {
        for rating in Rating::ALL {
            let json = serde_json::to_string(&rating).unwrap();
            assert_eq!(json, rating.score().to_string());
            assert_eq!(serde_json::from_str::<Rating>(&json).unwrap(), rating);
        }
        assert!(serde_json::from_str::<Rating>("0").is_err());
        assert!(serde_json::from_str::<Rating>("4").is_err());
        assert!(serde_json::from_str::<Rating>("\"good\"").is_err());
    }

    #[test]
    fn unrated_visit_round_trips() {
        let visit = Visit {
            id: Uuid::now_v7(),
            pairing_id: Uuid::now_v7(),
            service_id: 7,
            started_at: "2026-11-24T05:00:00Z".parse().unwrap(),
            ended_at: "2026-11-24T05:12:30Z".parse().unwrap(),
            rating: None,
            has_recording: false,
        };
        let json = serde_json::to_string(&visit).unwrap();
        assert!(json.contains("\"rating\":null"));
        assert_eq!(serde_json::from_str::<Visit>(&json).unwrap(), visit);
    }
}
