//! The office's rules, with no I/O: what a typed name or code may be, whether a synced visit is
//! accepted, when an alert is due, which tablets are silent, what a viewer may see. The use
//! cases in [`crate::ops`] apply them; storage only reads and writes.

pub mod acceptance;
pub mod alerts;
pub mod codes;
pub mod feedback;
pub mod names;
pub mod scope;
pub mod sms;
pub mod tablets;

pub use codes::{Code, EnrolmentCode, InvalidCode, PairingCode};
pub use names::{
    Comment, DirectoryName, DisplayName, InvalidText, Login, Password, Position, TabletName,
};
pub use scope::{ReviewScope, Visibility};
