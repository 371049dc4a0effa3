//! The kiosk core: everything the tablet does that is not Android.
//!
//! - [`machine`]: the pure visit state machine, `step(state, event) -> (state, effects)`.
//! - [`order`]: the per-visit order of the three rating buttons, from the OS random generator.
//! - [`store`]: the tablet's SQLite database: credentials, pairing, outbox, recordings queue.
//! - [`sync`]: the client of the office server's tablet API and the sync loop.
//! - [`audio`]: capture, resampling, the WAV spool and the AAC-LC 3GP encoder.
//! - [`screen`]: the kiosk page served on 127.0.0.1, and its string catalogue.
//! - [`feedback`]: the visitor's signed feedback link and its QR code on the thank-you screen.
//! - [`kiosk`]: the machine wired to its adapters; [`simulate`]: a fleet of simulated tablets.

pub mod audio;
pub mod feedback;
pub mod kiosk;
pub mod machine;
pub mod order;
mod provisioning;
pub mod screen;
pub mod simulate;
pub mod store;
pub mod sync;
