//! The SMS gateway for the «Результат готов» tests: Debian's Kannel, bearerbox and smsbox as
//! child processes with `tests/kannel/kannel.conf.in` filled in, each in its own process group;
//! a `loopback` SMSC whose messages come back as incoming ones to a listener here (the exact
//! bytes and number the phone would get), and a generic HTTP SMSC in front of
//! `tests/kannel/operator.py`, a small operator that takes messages and posts delivery reports
//! back through Kannel.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::free_port;

pub const KANNEL_USER: &str = "office";
pub const KANNEL_PASSWORD: &str = "kannel-test-password";

/// A message as the phone gets it, through the loopback SMSC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSms {
    /// The number it was sent to.
    pub to: String,
    /// Kannel's coding: 2 is UCS-2.
    pub coding: u32,
    /// The exact bytes on the wire.
    pub bytes: Vec<u8>,
}

impl ReceivedSms {
    /// The text, read as UCS-2 (UTF-16BE).
    pub fn text(&self) -> String {
        let units: Vec<u16> = self
            .bytes
            .chunks(2)
            .map(|pair| u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]))
            .collect();
        String::from_utf16_lossy(&units)
    }
}

pub struct TestKannel {
    /// smsbox's `/cgi-bin/sendsms`.
    pub sendsms_url: String,
    admin_port: u16,
    config: PathBuf,
    dir: tempfile::TempDir,
    bearerbox: Option<Child>,
    smsbox: Option<Child>,
    operator: Child,
    operator_log: PathBuf,
    received: Arc<Mutex<Vec<ReceivedSms>>>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for TestKannel {
    fn drop(&mut self) {
        self.stop_boxes();
        let _ = self.operator.kill();
        let _ = self.operator.wait();
        self.listener.abort();
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("kannel")
}

/// Ends a child's whole process group (smsbox re-executes itself under a new pid).
fn end_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{}", child.id())])
        .status();
    for _ in 0..100 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.wait();
}

impl TestKannel {
    /// Starts the operator, the listener for incoming messages, and both boxes.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (admin_port, smsbox_port, sendsms_port, smsc_port, operator_port) = (
            free_port(),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
        );
        let received = Arc::new(Mutex::new(Vec::new()));
        let mo = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listener for incoming messages");
        let mo_url = format!("http://{}", mo.local_addr().expect("address"));
        let listener = tokio::spawn(listen(mo, received.clone()));

        let operator_log = dir.path().join("operator.jsonl");
        let mut operator = Command::new("python3")
            .arg(fixtures().join("operator.py"))
            .args(["--port", &operator_port.to_string()])
            .args([
                "--kannel-dlr-url",
                &format!("http://127.0.0.1:{smsc_port}/"),
            ])
            .arg("--log")
            .arg(&operator_log)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let stdout = operator.stdout.take().expect("operator's output");
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .expect("operator's first line");
        assert!(
            first.contains("ready"),
            "the operator did not start: {first:?}"
        );

        let template =
            std::fs::read_to_string(fixtures().join("kannel.conf.in")).expect("kannel.conf.in");
        let config = template
            .replace("@ADMIN_PORT@", &admin_port.to_string())
            .replace("@SMSBOX_PORT@", &smsbox_port.to_string())
            .replace("@SENDSMS_PORT@", &sendsms_port.to_string())
            .replace("@HTTP_SMSC_PORT@", &smsc_port.to_string())
            .replace(
                "@OPERATOR_URL@",
                &format!("http://127.0.0.1:{operator_port}"),
            )
            .replace("@MO_URL@", &mo_url)
            .replace("@DIR@", &dir.path().display().to_string())
            .replace("@USER@", KANNEL_USER)
            .replace("@PASSWORD@", KANNEL_PASSWORD);
        assert!(
            !config.contains('@'),
            "a placeholder is left in kannel.conf.in"
        );
        let config_path = dir.path().join("kannel.conf");
        std::fs::write(&config_path, config).expect("kannel.conf");
        let mut kannel = Self {
            sendsms_url: format!("http://127.0.0.1:{sendsms_port}/cgi-bin/sendsms"),
            admin_port,
            config: config_path,
            dir,
            bearerbox: None,
            smsbox: None,
            operator,
            operator_log,
            received,
            listener,
        };
        kannel.start_boxes().await;
        kannel
    }

    fn spawn_box(&self, binary: &str, log: &str) -> Child {
        use std::os::unix::process::CommandExt;
        let output = std::fs::File::create(self.dir.path().join(log)).expect("box log");
        let mut command = Command::new(binary);
        if binary.ends_with("bearerbox") {
            command.args(["-v", "0"]);
        }
        command
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("log"))
            .stderr(output)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{binary} (apt install kannel; scripts/setup.sh): {e}"))
    }

    async fn status(&self) -> Option<String> {
        let url = format!("http://127.0.0.1:{}/status.txt", self.admin_port);
        let response = reqwest::get(url).await.ok()?;
        response.status().is_success().then_some(())?;
        response.text().await.ok()
    }

    /// Starts bearerbox, then smsbox once bearerbox answers; returns when sendsms takes
    /// requests.
    pub async fn start_boxes(&mut self) {
        self.bearerbox = Some(self.spawn_box("/usr/sbin/bearerbox", "bearerbox.out"));
        assert!(
            crate::wait_until_async(Duration::from_secs(20), || self.status()).await,
            "bearerbox did not start: {}",
            self.log("bearerbox.out")
        );
        self.smsbox = Some(self.spawn_box("/usr/sbin/smsbox", "smsbox.out"));
        let sendsms = self.sendsms_url.clone();
        let up = crate::wait_until_async(Duration::from_secs(20), || async {
            let status = self.status().await?;
            // Any answer at all: sendsms's port is open.
            reqwest::get(&sendsms).await.ok()?;
            status.contains("smsbox:").then_some(())
        })
        .await;
        assert!(up, "smsbox did not start: {}", self.log("smsbox.out"));
    }

    /// Freezes smsbox (SIGSTOP) or lets it go on (SIGCONT): a frozen smsbox takes connections
    /// (the kernel does) but answers nothing — a request whose outcome is unknown.
    pub fn freeze_smsbox(&self, frozen: bool) {
        if let Some(child) = &self.smsbox {
            let signal = if frozen { "-STOP" } else { "-CONT" };
            let _ = Command::new("kill")
                .args([signal, "--", &format!("-{}", child.id())])
                .status();
        }
    }

    /// Stops both boxes: the gateway is down.
    pub fn stop_boxes(&mut self) {
        for child in [self.smsbox.take(), self.bearerbox.take()]
            .iter_mut()
            .flatten()
        {
            end_group(child);
        }
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// What the loopback SMSC handed back so far.
    pub fn received(&self) -> Vec<ReceivedSms> {
        self.received.lock().expect("received").clone()
    }

    /// The messages the operator took: (number, text bytes).
    pub fn operator_messages(&self) -> Vec<(String, Vec<u8>)> {
        std::fs::read_to_string(&self.operator_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .map(|entry| {
                (
                    entry["receiver"].as_str().unwrap_or_default().to_string(),
                    hex::decode(entry["text_hex"].as_str().unwrap_or_default()).unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// Takes smsbox's `get-url` calls: `GET /mo?to=…&coding=…&hex=…`, one request a connection.
async fn listen(listener: tokio::net::TcpListener, received: Arc<Mutex<Vec<ReceivedSms>>>) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let received = received.clone();
        tokio::spawn(async move {
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65536 {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request);
            let target = text.split_whitespace().nth(1).unwrap_or_default();
            if let Some(query) = target.strip_prefix("/mo?") {
                let fields: HashMap<&str, String> = query
                    .split('&')
                    .filter_map(|pair| pair.split_once('='))
                    .map(|(key, value)| {
                        let value = percent_encoding::percent_decode_str(&value.replace('+', " "))
                            .decode_utf8_lossy()
                            .into_owned();
                        (key, value)
                    })
                    .collect();
                received.lock().expect("received").push(ReceivedSms {
                    to: fields.get("to").cloned().unwrap_or_default(),
                    coding: fields
                        .get("coding")
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(0),
                    bytes: hex::decode(fields.get("hex").map_or("", String::as_str))
                        .unwrap_or_default(),
                });
            }
            let _ = stream
                .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await;
        });
    }
}
