//! The tests that cross crates: a real tablet (kiosk-core's cores, its client and store, or the
//! `kiosk` binary in a child process) against a real office server, some in headless Chromium.

mod app_controls;
mod crash;
mod disk_full;
mod kiosk_browser;
mod kiosk_recording;
mod kiosk_sync;
