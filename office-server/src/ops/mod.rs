//! The use cases: what people, tablets and the command line can do, each a transport-agnostic
//! function that takes parsed values ([`crate::domain`] newtypes), applies the rules, calls
//! storage and returns its own error enum. `api` (JSON), `web` (pages) and the binary are thin
//! adapters over these: they parse, call, and turn the result into their own answer.
//!
//! Who may call a use case is decided before it is called — by the adapters' extractors, which
//! check the role (`web::forms`, `api::extract`) — except for scope, which the use cases that
//! act on one visit or alert check themselves (outside it is "not found"). The functions are
//! blocking (storage and password hashing are); adapters run them on tokio's blocking pool.

pub mod accounts;
pub mod analysis;
pub mod audit;
pub mod deputies;
pub mod directory;
pub mod feedback;
pub mod feedback_answers;
pub mod notices;
pub mod pairing;
pub mod results;
pub mod sync;
pub mod tablets;
pub mod uploads;
pub mod verdicts;
pub mod visitors;
