use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use jiff::Timestamp;
use office_server::app::{open_storage, shutdown_signal};
use office_server::config::LogFormat;
use office_server::demo::load_demo_organisation;
use office_server::domain::{DisplayName, Login, Password};
use office_server::ops::accounts::{NewAccountRequest, create_account, generated_password};
use office_server::storage::Role;
use office_server::{Application, Config, Overrides};
use tracing_subscriber::EnvFilter;

/// The office server of the service-quality rating system.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the tablet API (and, later, the heads' dashboard).
    Serve(Common),
    /// Create an administrator account and print its password.
    CreateAdmin {
        #[command(flatten)]
        common: Common,
        /// The administrator's login.
        #[arg(long, default_value = "admin")]
        login: String,
        /// The name shown for the account.
        #[arg(long, default_value = "Администратор")]
        display_name: String,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Load the demo organisation (departments, sections, employees, services) into an empty directory.
    LoadDemo {
        #[command(flatten)]
        common: Common,
        /// Also fill this many days of history up to today: tablets, visits, recordings of
        /// «Плохо» and the department heads' verdicts (needs an administrator and --clips).
        #[arg(long, default_value_t = 0)]
        history_days: u32,
        /// The speech clips (*.3gp) the history's recordings are made of.
        #[arg(long)]
        clips: Option<PathBuf>,
        /// Read the demo heads' password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Back up the data directory while the server runs: a consistent copy of the database
    /// and the recordings, with their checksums, in a new directory under --to.
    Backup {
        #[command(flatten)]
        common: Common,
        /// Where the backups are kept; each goes into a new `backup-<UTC time>` directory.
        /// Default: the configuration's `[backup] dir`, where the daily ones go (and are pruned).
        #[arg(long)]
        to: Option<PathBuf>,
    },
    /// Restore a backup (a `backup-…` directory) into a new, empty data directory.
    Restore {
        #[command(flatten)]
        common: Common,
        /// The backup to restore.
        #[arg(long)]
        from: PathBuf,
    },
    /// Check a data directory: the database's integrity, the recordings against their files,
    /// the report totals against the visits. Exits with 1 and names each problem it finds.
    Check(Common),
    /// Make a token for the office's case-management system: prints the token (give it to
    /// that system) and its SHA-256 (add it to case_system.tokens_sha256).
    CaseToken,
}

#[derive(Args)]
struct Common {
    /// TOML configuration file (see office-server/office.example.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Directory for the database and recordings.
    #[arg(long)]
    data: Option<PathBuf>,
}

impl Common {
    fn load(&self) -> anyhow::Result<Config> {
        let overrides = Overrides {
            listen: self.listen,
            data_dir: self.data.clone(),
        };
        Ok(Config::load(self.config.as_deref(), &overrides)?)
    }
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    // The server writes its log as its configuration says; the other commands, text.
    let serving = match &cli.command {
        Command::Serve(common) => Some(common.load()?),
        _ => None,
    };
    // Filling the demo's history runs thousands of operations that each log as they would in
    // service; only trouble is worth showing under its progress bar.
    // Symphonia's probe warns of the 4-byte box size before every 3GPP's `ftyp`: not junk.
    let default_filter = match cli.command {
        Command::LoadDemo { .. } => "warn,symphonia_core::formats::probe=error",
        _ => "info,tower_http=warn,symphonia_core::formats::probe=error",
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match serving
        .as_ref()
        .map_or(LogFormat::Text, |config| config.log_format)
    {
        LogFormat::Text => logs.init(),
        // The innermost span is the request's: its id, method and route on every line.
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
    match cli.command {
        Command::Serve(_) => {
            let config = serving.context("the configuration was loaded above")?;
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(async {
                let app = Application::build(config).await?;
                println!("office server listening on {}", app.local_addr());
                app.run_until(shutdown_signal()).await
            })?;
        }
        Command::CreateAdmin {
            common,
            login,
            display_name,
            password_stdin,
        } => {
            let config = common.load()?;
            let storage = open_storage(&config)?;
            let password = if password_stdin {
                read_password()?
            } else {
                generated_password()
            };
            let request = NewAccountRequest {
                login: Login::parse(&login)
                    .with_context(|| format!("the login {login:?} cannot be used"))?,
                display_name: DisplayName::parse(&display_name)
                    .context("the display name cannot be used")?,
                password: Password::new_secret(&password).context("the password cannot be used")?,
                role: Role::Admin,
            };
            create_account(storage.as_ref(), &request, None, Timestamp::now())?;
            println!("administrator created");
            println!("  login:    {}", request.login);
            if !password_stdin {
                println!("  password: {password}");
            }
        }
        Command::LoadDemo {
            common,
            history_days,
            clips,
            password_stdin,
        } => {
            let config = common.load()?;
            // The clips are checked before anything is written, so a missing one leaves the
            // data directory as it was.
            let clips = match (history_days, clips) {
                (0, _) => Vec::new(),
                (_, Some(dir)) => office_server::demo::history::load_clips(&dir)?,
                (_, None) => anyhow::bail!("--history-days needs --clips DIR"),
            };
            let storage = open_storage(&config)?;
            let loaded = load_demo_organisation(storage.as_ref())?;
            println!(
                "demo organisation loaded: {} departments, {} sections, {} employees, {} services",
                loaded.departments, loaded.sections, loaded.employees, loaded.services
            );
            if history_days > 0 {
                let password = if password_stdin {
                    read_password()?
                } else {
                    generated_password()
                };
                load_history(config, storage, history_days, &clips, &password)?;
                if !password_stdin {
                    println!("  the heads' password: {password}");
                }
            }
        }
        Command::Backup { common, to } => {
            let config = common.load()?;
            let to = match to {
                Some(to) => to,
                None if config.backup.enabled() => config.backup.dir.clone(),
                None => anyhow::bail!(
                    "where to? give --to DIR, or set [backup] dir in the configuration"
                ),
            };
            return run_backup(&config, &to);
        }
        Command::Restore { common, from } => {
            let config = common.load()?;
            let started = std::time::Instant::now();
            let restored = office_server::backup::restore(&from, &config.data_dir)?;
            println!(
                "restored {} into {}: {} files, {:.1} MB ({:.1} s)",
                from.display(),
                config.data_dir.display(),
                restored.files,
                restored.bytes as f64 / 1e6,
                started.elapsed().as_secs_f64()
            );
        }
        Command::Check(common) => {
            let config = common.load()?;
            let started = std::time::Instant::now();
            let report = office_server::check::check(
                &office_server::backup::DataPaths::of(&config),
                &config.office_time_zone()?,
            )?;
            println!(
                "checked {}: {} visits, {} recordings ({:.1} s)",
                config.data_dir.display(),
                report.visits,
                report.recordings,
                started.elapsed().as_secs_f64()
            );
            if !report.is_clean() {
                println!("{} problems:", report.problems.len());
                for problem in &report.problems {
                    println!("  {problem}");
                }
                return Ok(ExitCode::FAILURE);
            }
            println!("no problems found");
        }
        Command::CaseToken => {
            let token = office_server::auth::random_token();
            println!("token:  {token}");
            println!(
                "sha256: {}",
                hex::encode(office_server::auth::token_digest(&token))
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `backup`, with a progress bar over the recordings; 1 when some recording was missing or
/// differed (the backup is made all the same, and says which).
fn run_backup(config: &Config, to: &std::path::Path) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "  recordings {bar:40} {pos}/{len} ({elapsed}, about {eta} left)",
        )
        .context("the progress bar's template")?,
    );
    let report = office_server::backup::backup(
        &office_server::backup::DataPaths::of(config),
        to,
        Timestamp::now(),
        &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
    )?;
    bar.finish_and_clear();
    println!(
        "backup written to {}: {} recordings, {:.1} MB, {} deleted by retention meanwhile \
         ({:.1} s)",
        report.path.display(),
        report.recordings,
        report.bytes as f64 / 1e6,
        report.purged_meanwhile,
        started.elapsed().as_secs_f64()
    );
    if report.problems.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} problems (office-server check names them too):",
        report.problems.len()
    );
    for problem in &report.problems {
        println!("  {problem}");
    }
    Ok(ExitCode::FAILURE)
}

/// A password given on standard input (its line ending dropped).
fn read_password() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the password from standard input")?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

/// Fills the demo office's history, with a progress bar.
fn load_history(
    config: Config,
    storage: std::sync::Arc<dyn office_server::storage::Storage>,
    days: u32,
    clips: &[office_server::demo::history::Clip],
    password: &str,
) -> anyhow::Result<()> {
    use office_server::demo::history::{HistoryRequest, fill_history};
    let started = std::time::Instant::now();
    let state = office_server::app::AppState::new(config, storage)?;
    let bar = indicatif::ProgressBar::new(u64::from(days) + 1).with_style(
        indicatif::ProgressStyle::with_template(
            "  history {bar:40} {pos}/{len} days ({elapsed}, about {eta} left)",
        )
        .context("the progress bar's template")?,
    );
    let request = HistoryRequest {
        days,
        clips,
        heads_password: password,
        now: Timestamp::now(),
    };
    let filled = fill_history(&state, &request, &mut |done, total| {
        bar.set_length(u64::from(total));
        bar.set_position(u64::from(done));
    })?;
    bar.finish_and_clear();
    println!(
        "demo history: {} working days, {} visits, {} «Плохо» with recordings, {} verdicts, \
         {} of them late, {} awaiting a verdict and {} overdue ({:.1} s)",
        filled.working_days,
        filled.visits,
        filled.bad,
        filled.verdicts,
        filled.late,
        filled.waiting,
        filled.overdue,
        started.elapsed().as_secs_f64()
    );
    println!("  heads: {}", filled.heads.join(", "));
    Ok(())
}
