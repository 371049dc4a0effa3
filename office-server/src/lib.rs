//! The office server: the tablets' API, accounts and storage.
//!
//! [`app::Application`] binds a listener and serves; [`api::router`] holds the routes;
//! [`storage::Storage`] is the one persistence interface (SQLite for now).

pub mod analysis;
pub mod api;
pub mod app;
pub mod auth;
pub mod backup;
pub mod check;
pub mod config;
pub mod demo;
pub mod domain;
pub mod http;
pub mod live;
pub mod mail;
pub mod metrics;
pub mod ops;
pub mod portal;
pub mod recordings;
pub mod reports;
pub mod retention;
pub mod sms;
pub mod storage;
pub mod web;
pub mod workday;

pub use app::{Application, StartError};
pub use config::{Config, Overrides};
