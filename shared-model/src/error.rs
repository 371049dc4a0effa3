use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of every error response: a stable machine-readable code and a human sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
}
