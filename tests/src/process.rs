//! The real `office-server` binary in a child process: set up with its own commands
//! (`create-admin`, `load-demo`), served with a configuration file, its log kept, stopped with
//! SIGTERM or SIGKILL, or sent SIGHUP.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::server::{ADMIN_LOGIN, ADMIN_PASSWORD, TestServer};

/// A serving `office-server` process.
pub struct ServerProcess {
    child: Child,
    /// `host:port` it listens on.
    pub addr: String,
    pub data_dir: PathBuf,
    /// What `load-demo` printed.
    pub load_demo_output: String,
    log: PathBuf,
    /// How it was started, to start it again.
    binary: PathBuf,
    config: PathBuf,
    options: ProcessOptions,
    _temp: tempfile::TempDir,
}

/// How to start the binary.
#[derive(Debug, Clone, Default)]
pub struct ProcessOptions {
    /// Extra lines of the configuration file (TOML), besides `listen` and `data_dir`.
    pub config: String,
    /// Run under `ulimit -n` of this many files.
    pub file_limit: Option<u32>,
    /// Environment variables for the server.
    pub env: Vec<(String, String)>,
    /// Further arguments of `load-demo` (e.g. the history); its standard input is the
    /// administrator's password.
    pub load_demo: Vec<String>,
}

/// Runs one of the binary's commands to completion; it must succeed. Returns its stdout.
pub fn run_command(binary: &Path, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(binary)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the office-server binary starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("stdin written");
    let output = child.wait_with_output().expect("the command ends");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

impl ServerProcess {
    /// A data directory made by the binary's own commands (administrator, demo organisation),
    /// then `serve` with `options`.
    pub fn start(binary: &Path, options: &ProcessOptions) -> Self {
        let temp = tempfile::tempdir().expect("temporary directory");
        let data = temp.path().join("data");
        let data_arg = data.to_str().expect("a UTF-8 path");
        run_command(
            binary,
            &[
                "create-admin",
                "--data",
                data_arg,
                "--login",
                ADMIN_LOGIN,
                "--password-stdin",
            ],
            &format!("{ADMIN_PASSWORD}\n"),
        );
        let mut load_demo = vec!["load-demo", "--data", data_arg];
        load_demo.extend(options.load_demo.iter().map(String::as_str));
        let load_demo_output = run_command(binary, &load_demo, &format!("{ADMIN_PASSWORD}\n"));
        let mut process = Self::serve_with_temp(binary, data, options, temp);
        process.load_demo_output = load_demo_output;
        process
    }

    /// `serve` on a data directory that exists already (its configuration and log in a
    /// temporary directory).
    pub fn serve_existing(binary: &Path, data: &Path, options: &ProcessOptions) -> Self {
        let temp = tempfile::tempdir().expect("temporary directory");
        Self::serve_with_temp(binary, data.to_path_buf(), options, temp)
    }

    fn serve_with_temp(
        binary: &Path,
        data: PathBuf,
        options: &ProcessOptions,
        temp: tempfile::TempDir,
    ) -> Self {
        let config = temp.path().join("office.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndata_dir = {data:?}\n{}\n",
                options.config
            ),
        )
        .expect("configuration written");
        let log = temp.path().join("server.log");
        let (child, addr) = serve(binary, &config, &log, options);
        Self {
            child,
            addr,
            data_dir: data,
            load_demo_output: String::new(),
            log,
            binary: binary.to_path_buf(),
            config,
            options: options.clone(),
            _temp: temp,
        }
    }

    /// Starts the binary again on the same data directory and configuration, once the
    /// process has ended (e.g. after SIGKILL); it listens on a new port.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, addr) = serve(&self.binary, &self.config, &self.log, &self.options);
        self.child = child;
        self.addr = addr;
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server has written to its log (stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A harness view of this server over `scheme` (`http` or `https`).
    pub async fn server(&self, scheme: &str) -> TestServer {
        let host = if scheme == "https" {
            self.addr.replace("127.0.0.1", "localhost")
        } else {
            self.addr.clone()
        };
        TestServer::external(format!("{scheme}://{host}"), self.data_dir.clone()).await
    }

    /// Sends a signal (`"TERM"`, `"HUP"`, `"KILL"`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit; panics after `limit`.
    pub fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("the child's status") {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "the server did not stop within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `serve` with this configuration, its log appended to `log`; returns the child and the
/// address it printed.
fn serve(binary: &Path, config: &Path, log: &Path, options: &ProcessOptions) -> (Child, String) {
    let serve = format!(
        "{}exec {:?} serve --config {:?} 2>>{:?}",
        options
            .file_limit
            .map(|n| format!("ulimit -n {n} && "))
            .unwrap_or_default(),
        binary,
        config,
        log
    );
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(serve)
        .envs(options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the server prints its address");
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .filter(|addr| !addr.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "no address in {line:?}; log: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        })
        .to_string();
    (child, addr)
}
