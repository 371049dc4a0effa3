//! The command-line tools the audio tests drive (espeak-ng, sox, ffmpeg, PulseAudio), each
//! found on the PATH or named with the Debian package that brings it.

use std::process::Command;

/// `program`, or a failed test saying which package to install.
pub fn tool(program: &str, package: &str) -> Command {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{program}` is not installed; this test needs it: apt-get install {package}"
    );
    Command::new(program)
}

/// Runs the command; it must succeed.
pub fn run(mut command: Command) -> std::process::Output {
    let output = command.output().expect("the tool could not be started");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
