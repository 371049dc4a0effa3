//! The one test harness of the workspace: it starts real office servers (in-process on port 0,
//! or the real binary as a child process), enrols and pairs tablets — through the tablet API by
//! hand or through kiosk-core's own client and store —, drives headless Chromium, and owns the
//! fixtures every crate's tests share. What a test needs to inspect on the server (its visits,
//! its recordings) it reads through the server's own storage layer, never its tables.

pub mod browser;
pub mod disk;
pub mod fixtures;
pub mod kannel;
pub mod portal;
pub mod process;
pub mod server;
pub mod smtp;
pub mod tablet;
pub mod web;

pub use kannel::*;
pub use portal::*;
pub use server::*;
pub use smtp::*;
pub use tablet::*;
pub use web::*;

use std::time::Duration;

/// A whole-number setting of a benchmark from the environment, or `default`.
pub fn env_number(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {value:?}")),
        Err(_) => default,
    }
}

/// Polls `probe` until it gives a value or `limit` has passed.
pub async fn wait_until<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(found) = probe() {
            return Some(found);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls the async `probe` until it gives a value or `limit` has passed; whether it did.
pub async fn wait_until_async<T, F: Future<Output = Option<T>>>(
    limit: Duration,
    mut probe: impl FnMut() -> F,
) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if probe().await.is_some() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `check` holds, polling; panics after `limit`, naming `what`.
pub async fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    if wait_until(limit, || check().then_some(())).await.is_none() {
        panic!("timed out: {what}");
    }
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// The names of the files (not directories) in `dir`; none if it does not exist.
pub fn files_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Hex SHA-256 of a file.
pub fn sha256_of(path: &std::path::Path) -> String {
    sha256_hex(&std::fs::read(path).expect("readable file"))
}

/// The `kiosk` binary cargo built beside this test (`cargo test --workspace` builds every
/// workspace binary; `scripts/test.sh` runs that).
pub fn kiosk_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test> → target/<profile>/kiosk
    let binary = exe
        .parent()
        .and_then(std::path::Path::parent)
        .map(|dir| dir.join("kiosk"))
        .expect("the target directory");
    assert!(
        binary.is_file(),
        "{} is missing: build it with `cargo build -p kiosk-core --bin kiosk` (or run the whole \
         workspace's tests, which builds it)",
        binary.display()
    );
    binary
}
