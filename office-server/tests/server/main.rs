//! The office server's black-box tests, one binary: a real server on port 0 (the harness is
//! the workspace's `test-support` crate) driven over HTTP, the real binary in a child process,
//! the dashboard in headless Chromium, the 3GP validator on real files.

mod backup;
mod browser;
mod dashboard;
mod deadlines;
mod demo_history;
mod deputy;
mod feedback;
mod hostile;
mod inbox;
mod logs;
mod mail;
mod metrics;
mod recordings;
mod result_sms;
mod review_report;
mod server;
mod shutdown;
mod tablet_api;
mod threegp;
mod visitor_account;
