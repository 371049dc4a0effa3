//! The wire protocol between the kiosk tablets and the office server.
//!
//! Types only — and the feedback link's format with its signature check — no I/O, no clocks, no
//! randomness. Both sides serialise these with serde as JSON.
//! Every tablet request carries [`PROTOCOL_HEADER`] with [`PROTOCOL_VERSION`]; the server refuses
//! versions outside [`MIN_SUPPORTED_PROTOCOL`]..=[`PROTOCOL_VERSION`] with a clear error.

mod enrolment;
mod error;
mod feedback;
mod pairing;
mod recording;
mod sync;
mod visit;

pub use enrolment::*;
pub use error::*;
pub use feedback::*;
pub use pairing::*;
pub use recording::*;
pub use sync::*;
pub use visit::*;

/// The protocol version this build speaks. 2: a sync may refuse a visit as before its pairing,
/// in the future, after its pairing ended, or overlapping another (protocol-1 tablets read
/// these as an invalid interval). 3: enrolment and sync carry the tablet's feedback key, and a
/// sync's answer says where the tablet's feedback links lead.
pub const PROTOCOL_VERSION: u32 = 3;
/// The oldest tablet protocol the server still accepts.
pub const MIN_SUPPORTED_PROTOCOL: u32 = 1;
/// The request header in which a tablet states its protocol version.
pub const PROTOCOL_HEADER: &str = "x-protocol-version";
/// The most visits one sync batch may carry.
pub const MAX_SYNC_BATCH: usize = 500;

/// Request headers of a recording upload chunk.
pub const RECORDING_SIZE_HEADER: &str = "x-recording-size";
pub const RECORDING_SHA256_HEADER: &str = "x-recording-sha256";
pub const RECORDING_OFFSET_HEADER: &str = "x-recording-offset";
