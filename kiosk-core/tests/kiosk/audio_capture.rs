//! Real capture through cpal's ALSA backend, with no sound card: a private PulseAudio daemon
//! (started here, as a child process, with its own runtime directory) plays espeak-ng speech
//! into a null sink; ALSA's `pulse` plugin, named as the default PCM by an `ALSA_CONFIG_PATH`
//! file, gives cpal that sink's monitor as its default input. The audio really flows through
//! ALSA, in real time, as a microphone's would.
//!
//! ALSA reads its configuration once per process, so each capture runs in a child process (this
//! same test binary, re-run with an environment variable) whose environment is set before it
//! starts; the test itself never touches its own environment.
//!
//! Needs the Debian packages pulseaudio, pulseaudio-utils and libasound2-plugins (besides
//! espeak-ng, sox and ffmpeg). Without them the test fails and says what to install.

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kiosk_core::audio::{self, Capture, Source};

use crate::tools::{run, tool};

const CHILD_MODE: &str = "KIOSK_AUDIO_CAPTURE_CHILD";
const CHILD_SPOOL: &str = "KIOSK_AUDIO_CAPTURE_SPOOL";
const TEST_NAME: &str = "real_capture_through_alsa_from_a_pulseaudio_source";
const CAPTURE_SECONDS: f64 = 3.0;

#[test]
fn real_capture_through_alsa_from_a_pulseaudio_source() {
    if let Ok(mode) = std::env::var(CHILD_MODE) {
        child(&mode);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let speech = looped_speech(dir.path());
    let mut pulse = PulseAudio::start(dir.path());
    let _player = pulse.play(&speech);
    // The null sink renders its first block at PulseAudio's default 2 s latency before the
    // player's low-latency request takes hold; a capture opened during that block gets its
    // first audio late. A real microphone has no such start.
    std::thread::sleep(Duration::from_millis(2500));

    // 1. A capture of a few seconds: a spool of the right length, holding that speech.
    let spool = dir
        .path()
        .join("spool")
        .join(format!("{}.wav", uuid::Uuid::now_v7()));
    let report = pulse.run_child("capture", &spool, |_| {});
    eprintln!("capture: {report}");
    assert!(
        report.contains("input=Default Audio Device: 48000 Hz, 2 ch"),
        "{report}"
    );
    let (spec, samples) = read_wav(&spool);
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (16_000, 1, 16)
    );
    let seconds = samples.len() as f64 / 16_000.0;
    assert!(
        (CAPTURE_SECONDS - 0.7..CAPTURE_SECONDS + 0.5).contains(&seconds),
        "{CAPTURE_SECONDS} s of capture made {seconds} s of spool"
    );
    let level = rms(&samples);
    assert!(level > 500.0, "the spool is near silent: rms {level}");
    // It is the speech that was played: its loudness contour matches a stretch of the source.
    let source = resampled_source(dir.path(), &speech);
    let similarity = best_envelope_match(&source, &samples);
    assert!(
        similarity > 0.8,
        "the spool does not follow the speech: {similarity}"
    );

    let out = dir.path().join("captured.3gpp");
    let recording = audio::encode_spool(&spool, &out).unwrap();
    check_3gp(&out, samples.len());
    assert_eq!(recording.duration_ms, samples.len() as u64 * 1000 / 16_000);

    // 2. The device goes away mid-visit: what was captured stays, and the loss is reported.
    let interrupted = dir.path().join("spool").join("interrupted.wav");
    let report = pulse.run_child("interrupt", &interrupted, |pulse| {
        std::thread::sleep(Duration::from_millis(1200));
        pulse.kill();
    });
    eprintln!("device lost: {report}");
    assert!(report.contains("interrupted=Some"), "{report}");
    let (_, samples) = read_wav(&interrupted);
    assert!(
        samples.len() >= 16_000 / 2 && rms(&samples) > 500.0,
        "{} samples, rms {}",
        samples.len(),
        rms(&samples)
    );

    // 3. No input at all (no server behind the default PCM): refused at start, no spool left.
    let absent = dir.path().join("spool").join("absent.wav");
    let report = pulse.run_child("absent", &absent, |_| {});
    eprintln!("no device: {report}");
    assert!(report.contains("refused="), "{report}");
    assert!(!absent.exists());
}

/// The capture itself, in a process whose ALSA and PulseAudio environment the parent set.
fn child(mode: &str) {
    let spool = PathBuf::from(std::env::var(CHILD_SPOOL).expect("spool path"));
    match mode {
        "capture" | "interrupt" => {
            assert!(
                audio::microphone_available(),
                "cpal finds no default input: is libasound2-plugins (ALSA's pulse plugin) \
                 installed?"
            );
            let capture = Capture::start(Source::Microphone, &spool)
                .unwrap_or_else(|e| panic!("capture through ALSA failed: {e}"));
            println!("CAPTURING");
            // Interrupted: the parent kills the server after 1.2 s; the capture must notice
            // within its 2 s stall limit.
            let seconds = if mode == "capture" {
                CAPTURE_SECONDS
            } else {
                4.5
            };
            std::thread::sleep(Duration::from_secs_f64(seconds));
            if mode == "interrupt" {
                assert!(
                    capture.failure().is_some(),
                    "the lost device was not noticed"
                );
            }
            let info = capture.stop().expect("stop");
            assert_eq!(info.path, spool);
            println!(
                "REPORT duration_ms={} dropped={} interrupted={:?} input={}",
                info.duration_ms, info.dropped_samples, info.interrupted, info.input
            );
        }
        "absent" => {
            assert!(!audio::microphone_available());
            let error = Capture::start(Source::Microphone, &spool).expect_err("no input");
            println!("REPORT refused={error}");
        }
        other => panic!("unknown child mode {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// A private PulseAudio

struct PulseAudio {
    daemon: Option<Child>,
    player: Option<Child>,
    runtime: PathBuf,
    home: PathBuf,
    alsa_config: PathBuf,
    client_config: PathBuf,
}

impl PulseAudio {
    fn start(dir: &Path) -> Self {
        let runtime = dir.join("pulse-run");
        let home = dir.join("home");
        fs::create_dir_all(&runtime).unwrap();
        fs::create_dir_all(&home).unwrap();
        // The default PCM and control are PulseAudio's, through ALSA's pulse plugin.
        let alsa_config = dir.join("asound.conf");
        fs::write(
            &alsa_config,
            "pcm.!default { type pulse }\nctl.!default { type pulse }\n",
        )
        .unwrap();
        // Never let a client start a daemon of its own (the "absent" case must stay absent).
        let client_config = dir.join("client.conf");
        fs::write(&client_config, "autospawn = no\n").unwrap();
        let socket = runtime.join("native");
        let mut command = tool("pulseaudio", "pulseaudio");
        command
            .args([
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
            ])
            .args([
                "--disable-shm=yes",
                "--log-target=stderr",
                "--log-level=error",
            ])
            .arg("-L")
            .arg(format!(
                "module-native-protocol-unix socket={} auth-anonymous=1",
                socket.display()
            ))
            .arg("-L")
            .arg("module-null-sink sink_name=speech rate=48000 channels=2")
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("PULSE_RUNTIME_PATH", &runtime)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let daemon = command.spawn().expect("pulseaudio starts");
        let pulse = PulseAudio {
            daemon: Some(daemon),
            player: None,
            runtime,
            home,
            alsa_config,
            client_config,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let mut info = pulse.client("pactl", "pulseaudio-utils");
            info.arg("info").stdout(Stdio::null()).stderr(Stdio::null());
            if info.status().is_ok_and(|s| s.success()) {
                break;
            }
            assert!(Instant::now() < deadline, "pulseaudio did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut source = pulse.client("pactl", "pulseaudio-utils");
        source.args(["set-default-source", "speech.monitor"]);
        run(source);
        pulse
    }

    fn server(&self) -> String {
        format!("unix:{}", self.runtime.join("native").display())
    }

    fn client(&self, program: &str, package: &str) -> Command {
        let mut command = tool(program, package);
        command
            .env("PULSE_SERVER", self.server())
            .env("PULSE_CLIENTCONFIG", &self.client_config)
            .env("HOME", &self.home)
            .env("XDG_RUNTIME_DIR", &self.runtime);
        command
    }

    /// Plays `wav` into the null sink; the returned guard is only for readability, the
    /// player is ended with the daemon.
    fn play(&mut self, wav: &Path) -> &Child {
        let mut paplay = self.client("paplay", "pulseaudio-utils");
        // Low latency, so the null sink renders in small blocks as a sound card would, not
        // in PulseAudio's default 2 s ones (its monitor would then deliver bursts, late).
        paplay
            .args(["--device=speech", "--latency-msec=20"])
            .arg(wav)
            .stdout(Stdio::null());
        self.player.insert(paplay.spawn().expect("paplay starts"))
    }

    /// Runs this test binary as the capturing child in `mode`, calls `during` once the child
    /// says it is capturing (or at once, for modes that never do), and returns the child's
    /// report line.
    fn run_child(&mut self, mode: &str, spool: &Path, during: impl FnOnce(&mut Self)) -> String {
        let exe = std::env::current_exe().unwrap();
        let mut command = Command::new(exe);
        command
            .args([
                format!(
                    "{}::{TEST_NAME}",
                    module_path!().trim_start_matches("kiosk::")
                )
                .as_str(),
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_MODE, mode)
            .env(CHILD_SPOOL, spool)
            .env("ALSA_CONFIG_PATH", &self.alsa_config)
            .env("PULSE_SERVER", self.server())
            .env("PULSE_CLIENTCONFIG", &self.client_config)
            // The capture side of the same: a microphone's latency, not a music player's.
            .env("PULSE_LATENCY_MSEC", "30")
            .env("HOME", &self.home)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if mode == "absent" {
            command.env(
                "PULSE_SERVER",
                format!("unix:{}", self.runtime.join("nobody-here").display()),
            );
        }
        let mut child = command.spawn().expect("the test binary re-runs itself");
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines_rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut lines = Vec::new();
        let mut during = Some(during);
        if mode == "absent"
            && let Some(during) = during.take()
        {
            during(self);
        }
        loop {
            match lines_rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    // libtest prints "test <name> ... " before the child's own output.
                    if line.ends_with("CAPTURING")
                        && let Some(during) = during.take()
                    {
                        during(self);
                    }
                    lines.push(line);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        panic!("the capturing child hung; it said: {lines:?}");
                    }
                }
            }
        }
        let _ = reader.join();
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "the capturing child ({mode}) failed: {lines:?}\n{stderr}"
        );
        lines
            .iter()
            .find_map(|l| l.find("REPORT ").map(|at| l[at..].to_string()))
            .unwrap_or_else(|| panic!("no report from the child ({mode}): {lines:?}\n{stderr}"))
    }

    fn kill(&mut self) {
        for child in [self.player.take(), self.daemon.take()]
            .into_iter()
            .flatten()
        {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PulseAudio {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------------------
// Helpers

/// espeak-ng speech, four times over (about a minute), as a WAV for paplay.
fn looped_speech(dir: &Path) -> PathBuf {
    let once = dir.join("speech-once.wav");
    let mut espeak = tool("espeak-ng", "espeak-ng");
    espeak.args(["-v", "ru", "-s", "150", "-w"]).arg(&once).arg(
        "Здравствуйте. Вы пришли на приём в жилищное управление. Расскажите, пожалуйста, \
         какой у вас вопрос, и я постараюсь помочь. Для оформления документов нужен паспорт \
         и справка о составе семьи.",
    );
    run(espeak);
    let looped = dir.join("speech.wav");
    let mut sox = tool("sox", "sox");
    sox.args([&once, &once, &once, &once]).arg(&looped);
    run(sox);
    looped
}

fn resampled_source(dir: &Path, speech: &Path) -> Vec<i16> {
    let out = dir.join("speech-16k.wav");
    let mut sox = tool("sox", "sox");
    sox.arg(speech)
        .args(["-b", "16", "-r", "16000", "-c", "1"])
        .arg(&out);
    run(sox);
    read_wav(&out).1
}

fn read_wav(path: &Path) -> (hound::WavSpec, Vec<i16>) {
    let mut reader = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("{} is not a readable WAV: {e}", path.display()));
    let samples = reader.samples::<i16>().map(|s| s.unwrap()).collect();
    (reader.spec(), samples)
}

fn rms(samples: &[i16]) -> f64 {
    let sum: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
    (sum / samples.len().max(1) as f64).sqrt()
}

/// Loudness in 20 ms windows.
fn envelope(samples: &[i16]) -> Vec<f64> {
    samples.chunks_exact(320).map(rms).collect()
}

/// The best correlation of `captured`'s loudness contour with any stretch of `source`'s.
fn best_envelope_match(source: &[i16], captured: &[i16]) -> f64 {
    let a = envelope(source);
    let b = envelope(captured);
    let mean_b = b.iter().sum::<f64>() / b.len() as f64;
    let mut best = f64::MIN;
    for start in 0..a.len().saturating_sub(b.len()) {
        let window = &a[start..start + b.len()];
        let mean_a = window.iter().sum::<f64>() / window.len() as f64;
        let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
        for (x, y) in window.iter().zip(&b) {
            ab += (x - mean_a) * (y - mean_b);
            aa += (x - mean_a).powi(2);
            bb += (y - mean_b).powi(2);
        }
        best = best.max(ab / (aa.sqrt() * bb.sqrt()).max(1e-9));
    }
    best
}

fn check_3gp(path: &Path, samples: usize) {
    let mut file = File::open(path).unwrap();
    let len = file.metadata().unwrap().len();
    let info = threegp::validate(&mut file, len).expect("the server accepts it");
    assert_eq!((info.sample_rate, info.channels), (16_000, 1));
    let mut probe = tool("ffprobe", "ffmpeg");
    probe
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
        ])
        .arg(path);
    let json: serde_json::Value = serde_json::from_slice(&run(probe).stdout).unwrap();
    assert_eq!(json["streams"][0]["codec_name"], "aac");
    assert_eq!(json["streams"][0]["sample_rate"], "16000");
    assert_eq!(json["streams"][0]["channels"], 1);
    let duration: f64 = json["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (duration - samples as f64 / 16_000.0).abs() < 0.1,
        "{duration}"
    );
    let mut ffmpeg = tool("ffmpeg", "ffmpeg");
    ffmpeg
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"]);
    let errors = run(ffmpeg).stderr;
    assert!(
        errors.is_empty(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&errors)
    );
}
