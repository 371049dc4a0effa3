//! The kiosk on a Linux PC: `kiosk --server URL --data DIR` serves the kiosk screen on
//! 127.0.0.1 and prints the address to open; `kiosk simulate` runs a fleet of simulated tablets.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use kiosk_core::kiosk::{AudioChoice, KioskConfig, start};
use kiosk_core::machine::Timings;
use kiosk_core::simulate::{self, SimulationConfig};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(version, about = "The rating kiosk of the service-quality system")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The office server's address, e.g. http://127.0.0.1:8080.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Directory for the tablet's database, spool and recordings.
    #[arg(long, default_value = "kiosk-data")]
    data: PathBuf,
    /// Port of the kiosk screen on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Generated audio instead of the microphone.
    #[arg(long)]
    synthetic_audio: bool,
    /// Days a Плохо recording may be kept (shown in the visitor's notice).
    #[arg(long, default_value_t = 90)]
    retention_days: u32,
    /// A PEM file with the office's own CA, if its certificate is not publicly trusted.
    #[arg(long)]
    office_ca: Option<PathBuf>,
    /// Seconds the thank-you screen with the feedback QR code shows after every rating.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=600))]
    thanks_seconds: u16,
}

#[derive(Subcommand)]
enum Command {
    /// Run N simulated tablets against the office server, as a demo or load.
    Simulate {
        #[arg(long, default_value_t = 3)]
        tablets: usize,
        /// An administrator of the office server (approves the tablets, creates specialists).
        #[arg(long, default_value = "admin")]
        admin_login: String,
        /// The administrator's password (or set KIOSK_ADMIN_PASSWORD).
        #[arg(long, env = "KIOSK_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: String,
        /// Seconds a simulated visit lasts.
        #[arg(long, default_value_t = 6.0)]
        visit_seconds: f64,
        /// Seconds between visits at one desk.
        #[arg(long, default_value_t = 3.0)]
        pause_seconds: f64,
        /// Visits per tablet before stopping (default: run until Ctrl-C).
        #[arg(long)]
        visits: Option<u32>,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            None => {
                let office_ca_pem = match &cli.office_ca {
                    Some(path) => Some(
                        std::fs::read(path)
                            .with_context(|| format!("cannot read {}", path.display()))?,
                    ),
                    None => None,
                };
                let kiosk = start(KioskConfig {
                    server: cli.server,
                    data_dir: cli.data,
                    screen_port: cli.port,
                    audio: if cli.synthetic_audio {
                        AudioChoice::Synthetic
                    } else {
                        AudioChoice::Microphone
                    },
                    timings: Timings {
                        thanks: jiff::SignedDuration::from_secs(cli.thanks_seconds.into()),
                        ..Timings::default()
                    },
                    retention_days: cli.retention_days,
                    app_version: concat!("kiosk ", env!("CARGO_PKG_VERSION")).to_string(),
                    office_ca_pem,
                })
                .await?;
                // Whoever started us may stop reading stdout: a closed pipe must not stop the kiosk.
                let mut out = std::io::stdout();
                let _ = writeln!(out, "kiosk screen: {}", kiosk.url);
                let _ = writeln!(
                    out,
                    "open it in Chromium, e.g.: chromium --app='{}'",
                    kiosk.url
                );
                let _ = out.flush();
                tokio::signal::ctrl_c()
                    .await
                    .context("cannot wait for Ctrl-C")?;
                kiosk.stop().await?;
            }
            Some(Command::Simulate {
                tablets,
                admin_login,
                admin_password,
                visit_seconds,
                pause_seconds,
                visits,
            }) => {
                let config = SimulationConfig {
                    server: cli.server,
                    tablets,
                    admin_login,
                    admin_password,
                    data_dir: cli.data.join("simulated"),
                    visit_length: Duration::from_secs_f64(visit_seconds.max(0.5)),
                    pause: Duration::from_secs_f64(pause_seconds.max(0.0)),
                    visits_per_tablet: visits,
                };
                println!("simulating {tablets} tablets against {}", config.server);
                tokio::select! {
                    result = simulate::run(config) => result?,
                    _ = tokio::signal::ctrl_c() => println!("stopping the simulation"),
                }
            }
        }
        Ok(())
    })
}
