//! The technician's command line, in layers: clap's raw arguments, then one function per command that calls the
//! store's audited mutators (the same ones the API and the touch UI use). `serve` hands over to [`crate::app`]. Every
//! command opens the same data dir as a running server (SQLite's WAL and busy timeout let both work at once).
//! Passwords come from a prompt or standard input, never from arguments.

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

mod devices;

use crate::calls::control::ControlCommand;
use crate::config::{Config, ConfigError, Overrides};
use crate::core::{
    Actor, AppointmentStatus, Language, Role, Sex, parse_birth_date, parse_start_time, validate_duration,
    validate_email, validate_name, validate_password, validate_phone, validate_text,
};
use crate::credentials::hash_password;
use crate::store::{Account, AppointmentFilter, NewAccount, NewAppointment, NewPatient, Store};

#[derive(Parser)]
#[command(name = "medimitra", version, about = "Medi-Mitra telemedicine kiosk")]
struct Cli {
    /// Configuration file [default: /etc/medimitra/medimitra.toml if it exists, else built-in defaults]
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Data directory (database, TLS material); overrides the configuration
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the kiosk: HTTPS API and the doctor's web app (the default)
    Serve(ServeArgs),
    /// Manage staff accounts: doctors and technicians (`doctor` is the old name of this command)
    #[command(subcommand, alias = "doctor")]
    Account(AccountCmd),
    /// Manage patients
    #[command(subcommand)]
    Patient(PatientCmd),
    /// Manage appointments
    #[command(subcommand)]
    Appointment(AppointmentCmd),
    /// Database maintenance
    #[command(subcommand)]
    Db(DbCmd),
    /// Inspect the configuration
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Answer or end calls on a kiosk without a screen (talks to the running `serve`)
    Call {
        /// accept, decline, end, status, or reply (with --answer)
        #[arg(value_parser = parse_control)]
        action: ControlCommand,
        /// For `reply`: the patient's answer to the doctor's chat message (yes, no, please_repeat, cannot_hear, wait)
        #[arg(long, value_parser = parse_reply)]
        answer: Option<crate::core::chat::QuickReply>,
    },
    /// Media engine diagnostics
    #[command(subcommand)]
    Media(MediaCmd),
    /// The serial medical devices: list them, or watch one's readings
    #[command(subcommand)]
    Devices(devices::DevicesCmd),
    /// Checks: `check network` asks each configured STUN/TURN server (a real TURN allocation, released at once)
    #[command(subcommand)]
    Check(CheckCmd),
    /// Apply a provisioning file (first boot; see the README's technician section). The file holds secrets: it is
    /// removed afterwards, also when it was refused
    Provision(ProvisionArgs),
}

#[derive(Args)]
struct ProvisionArgs {
    /// The provisioning file, e.g. /boot/efi/medimitra-provision.toml
    file: PathBuf,
    /// Only check the file: change nothing and keep it
    #[arg(long)]
    check: bool,
    /// Keep the file after applying it
    #[arg(long)]
    keep_file: bool,
    /// System root whose time zone and Wi-Fi settings are written
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
}

#[derive(Subcommand)]
enum CheckCmd {
    /// Can the kiosk reach its STUN and TURN servers, how far are they, and does TURN give it a relay?
    Network {
        /// Seconds to wait for each server
        #[arg(long, default_value_t = 3)]
        timeout: u64,
    },
}

#[derive(Subcommand)]
enum MediaCmd {
    /// Show which encoder profiles work here, which were picked, and the capture sources
    Probe,
}

#[derive(Args, Default)]
struct ServeArgs {
    /// Address and port to listen on, e.g. 127.0.0.1:8443; overrides the configuration
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// Run without the touch screen UI
    #[arg(long)]
    headless: bool,
}

#[derive(Subcommand)]
enum AccountCmd {
    /// Add an account; the password is read from a prompt or standard input
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        specialty: String,
        #[arg(long, default_value = "doctor", value_parser = parse_role)]
        role: Role,
    },
    /// List accounts
    List,
    /// Disable an account and end its sessions
    Disable { email: String },
    /// Enable a disabled account
    Enable { email: String },
    /// Set a new password (prompt or standard input) and end the account's sessions
    ResetPassword { email: String },
}

#[derive(Subcommand)]
enum PatientCmd {
    /// Register a patient
    Add {
        #[arg(long)]
        name: String,
        /// Date of birth, YYYY-MM-DD
        #[arg(long)]
        dob: Option<String>,
        #[arg(long, default_value = "unknown", value_parser = parse_sex)]
        sex: Sex,
        #[arg(long)]
        phone: Option<String>,
        /// Preferred language (en, hi, bn, ta, te, mr)
        #[arg(long, default_value = "hi", value_parser = parse_language)]
        language: Language,
    },
    /// List patients
    List,
}

#[derive(Subcommand)]
enum AppointmentCmd {
    /// Book an appointment
    Add {
        /// Patient id
        #[arg(long)]
        patient: i64,
        /// The doctor's e-mail
        #[arg(long)]
        doctor: String,
        /// Start, RFC 3339 (e.g. 2026-11-25T10:30:00+05:30)
        #[arg(long)]
        at: String,
        /// Length in minutes
        #[arg(long, default_value_t = 15)]
        duration: i64,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// List appointments
    List {
        /// Only this local day, YYYY-MM-DD
        #[arg(long)]
        day: Option<String>,
        /// Only this doctor's (e-mail)
        #[arg(long)]
        doctor: Option<String>,
        #[arg(long, value_parser = parse_status)]
        status: Option<AppointmentStatus>,
    },
    /// Cancel an appointment
    Cancel { id: i64 },
}

#[derive(Subcommand)]
enum DbCmd {
    /// Copy the live database to PATH (SQLite online backup)
    Backup { path: PathBuf },
    /// Run SQLite's integrity and foreign-key checks
    Check,
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Validate the configuration and exit (code 2 when invalid)
    Check,
    /// Print the effective configuration, secrets masked
    Show,
}

fn parse_control(s: &str) -> Result<ControlCommand, String> {
    s.parse()
}
fn parse_reply(s: &str) -> Result<crate::core::chat::QuickReply, String> {
    s.parse()
}
fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}
fn parse_sex(s: &str) -> Result<Sex, String> {
    s.parse()
}
fn parse_language(s: &str) -> Result<Language, String> {
    s.parse()
}
fn parse_status(s: &str) -> Result<AppointmentStatus, String> {
    s.parse()
}

/// Runs the command line; the process's exit code: 0 done, 1 failed, 2 bad configuration or usage.
pub fn main() -> ExitCode {
    return_big_buffers_to_the_system();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            let refused = matches!(e.downcast_ref(), Some(crate::provision::ProvisionError::Invalid(_)));
            if e.downcast_ref::<ConfigError>().is_some() || refused { ExitCode::from(2) } else { ExitCode::FAILURE }
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let command = cli.command.unwrap_or(Command::Serve(ServeArgs::default()));
    let listen = match &command {
        Command::Serve(a) => a.listen,
        _ => None,
    };
    let loaded = Config::load(&Overrides { config_path: cli.config, data_dir: cli.data_dir, listen })?;
    init_logging(&loaded.config);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    match command {
        Command::Serve(args) => crate::app::serve(loaded, crate::app::ServeOptions { headless: args.headless }),
        Command::Config(ConfigCmd::Check) => {
            let from = loaded.path.as_ref().map_or("built-in defaults".to_string(), |p| p.display().to_string());
            println!("configuration OK ({from})");
            Ok(())
        }
        Command::Config(ConfigCmd::Show) => {
            print!("{}", loaded.config.to_masked_toml());
            Ok(())
        }
        Command::Account(c) => account(&open_store(&loaded.config)?, c),
        Command::Patient(c) => patient(&open_store(&loaded.config)?, c),
        Command::Appointment(c) => appointment(&open_store(&loaded.config)?, c),
        Command::Db(c) => db(&open_store(&loaded.config)?, c),
        Command::Call { action, answer } => {
            let reply = crate::calls::control::request_with(&loaded.config.storage.data_dir, action, answer)?;
            println!("{}", serde_json::to_string_pretty(&reply).unwrap_or_default());
            match (reply.ok, reply.error) {
                (true, _) => Ok(()),
                (false, error) => bail!("the kiosk refused: {}", error.unwrap_or_default()),
            }
        }
        Command::Provision(args) => provision(&loaded.config, loaded.path.as_deref(), args),
        Command::Devices(c) => devices::run(&loaded.config.devices, c),
        Command::Check(CheckCmd::Network { timeout }) => {
            let result = crate::netcheck::check(
                &loaded.config.ice_servers,
                std::time::Duration::from_secs(timeout.clamp(1, 30)),
            );
            print!("{}", result.report());
            if result.good_for_video { Ok(()) } else { Err(anyhow::anyhow!("the network check found a problem")) }
        }
        Command::Media(MediaCmd::Probe) => {
            let engine = crate::media::MediaEngine::start(&loaded.config.media, &loaded.config.ice_servers);
            match engine {
                Ok(e) => {
                    print!("{}", e.report.render());
                    let s = &e.sources;
                    println!(
                        "video source: {}{}",
                        s.video,
                        if s.video_is_test { "  (no camera: test picture)" } else { "" }
                    );
                    println!(
                        "audio source: {}{}",
                        s.audio,
                        if s.audio_is_test { "  (no microphone: test tone)" } else { "" }
                    );
                    println!("audio output: {}", s.audio_sink);
                    Ok(())
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(config.log.level.as_str()));
    // A second initialisation (tests calling `run` twice) is harmless; ignore it.
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let _ = tracing_subscriber::registry().with(filter).with(fmt).with(crate::logring::RecentErrors).try_init();
}

fn open_store(config: &Config) -> Result<Store> {
    Store::open_in(&config.storage.data_dir)
        .with_context(|| format!("opening the database in {}", config.storage.data_dir.display()))
}

/// Reads a new password: twice from a terminal, or one line from piped standard input.
fn read_new_password() -> Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New password: ").context("reading the password")?;
        let second = rpassword::prompt_password("Repeat it: ").context("reading the password")?;
        if first != second {
            bail!("the two passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    validate_password(&password)?;
    Ok(password)
}

fn provision(config: &Config, config_path: Option<&std::path::Path>, args: ProvisionArgs) -> Result<()> {
    use crate::provision;
    if args.check {
        let plan = provision::check_file(&args.file, &args.root)?;
        println!("{}: no problems found (clinic {})", args.file.display(), plan.clinic_id.as_str());
        return Ok(());
    }
    let config_path =
        config_path.map_or_else(|| PathBuf::from(crate::config::DEFAULT_PATH), std::path::Path::to_path_buf);
    let targets = provision::Targets { config_path, root: args.root };
    match provision::run(&args.file, config, &targets, args.keep_file) {
        Ok(applied) => {
            tracing::info!(clinic = %applied.clinic_id, wifi = applied.wifi, "provisioned");
            println!("provisioned clinic {}", applied.clinic_id);
            println!(
                "technician account {}; the one-time password must be changed at the first login",
                if applied.technician_created { "created" } else { "reset" }
            );
            if let Some(fp) = applied.tls_fingerprint {
                println!("TLS certificate fingerprint (SHA-256): {fp}");
            }
            if !args.keep_file {
                println!("{} removed", args.file.display());
            }
            println!("restart the kiosk (systemctl restart medimitra) if it is running");
            Ok(())
        }
        Err(e) => {
            if let provision::ProvisionError::Invalid(problems) = &e {
                for p in problems {
                    tracing::error!(problem = %p, "provisioning refused");
                }
            }
            Err(e.into())
        }
    }
}

fn find_account(store: &Store, email: &str) -> Result<Account> {
    let email = validate_email("email", email)?;
    store.read_blocking(|db| db.account_by_email(&email)).map_err(|_| anyhow!("no account with e-mail {email}"))
}

fn account(store: &Store, cmd: AccountCmd) -> Result<()> {
    let now = chrono::Utc::now();
    match cmd {
        AccountCmd::Add { name, email, specialty, role } => {
            let name = validate_name("name", &name)?;
            let email = validate_email("email", &email)?;
            let specialty = validate_text("specialty", &specialty, 80)?;
            let password = read_new_password()?;
            let password_hash = hash_password(&password).map_err(|e| anyhow!("hashing the password: {e}"))?;
            let new = NewAccount { name, specialty, email, password_hash, role };
            let a = store.write_blocking(|db| db.add_account(&new, Actor::Cli, now))?;
            println!("added {} {} <{}> (id {})", a.role, a.name, a.email, a.id);
        }
        AccountCmd::List => {
            let all = store.read_blocking(|db| db.list_accounts(None))?;
            println!("{:>4}  {:<10}  {:<8}  {:<32}  {:<24}  specialty", "id", "role", "active", "e-mail", "name");
            for d in all {
                let active = if d.active { "yes" } else { "no" };
                println!(
                    "{:>4}  {:<10}  {:<8}  {:<32}  {:<24}  {}",
                    d.id, d.role, active, d.email, d.name, d.specialty
                );
            }
        }
        AccountCmd::Disable { email } => set_active(store, &email, false)?,
        AccountCmd::Enable { email } => set_active(store, &email, true)?,
        AccountCmd::ResetPassword { email } => {
            let a = find_account(store, &email)?;
            let password = read_new_password()?;
            let hash = hash_password(&password).map_err(|e| anyhow!("hashing the password: {e}"))?;
            store.write_blocking(|db| db.reset_password(a.id, &hash, Actor::Cli, now))?;
            println!("password of {} changed; their sessions have ended", a.email);
        }
    }
    Ok(())
}

fn set_active(store: &Store, email: &str, active: bool) -> Result<()> {
    let a = find_account(store, email)?;
    let now = chrono::Utc::now();
    store.write_blocking(|db| db.set_account_active(a.id, active, Actor::Cli, now))?;
    println!("{} is now {}", a.email, if active { "enabled" } else { "disabled; their sessions have ended" });
    Ok(())
}

fn patient(store: &Store, cmd: PatientCmd) -> Result<()> {
    let now = chrono::Utc::now();
    match cmd {
        PatientCmd::Add { name, dob, sex, phone, language } => {
            let today = chrono::Local::now().date_naive();
            let new = NewPatient {
                name: validate_name("name", &name)?,
                date_of_birth: dob.as_deref().map(|d| parse_birth_date("dob", d, today)).transpose()?,
                sex,
                phone: phone.as_deref().map(|p| validate_phone("phone", p)).transpose()?,
                preferred_language: language,
            };
            let p = store.write_blocking(|db| db.add_patient(&new, Actor::Cli, now))?;
            println!("added patient {} (id {})", p.name, p.id);
        }
        PatientCmd::List => {
            println!("{:>5}  {:<10}  {:<7}  {:<4}  {:<16}  name", "id", "born", "sex", "lang", "phone");
            let mut offset = 0;
            loop {
                let page = store.read_blocking(|db| db.list_patients(500, offset))?;
                for p in &page {
                    println!(
                        "{:>5}  {:<10}  {:<7}  {:<4}  {:<16}  {}",
                        p.id,
                        p.date_of_birth.as_deref().unwrap_or("-"),
                        p.sex,
                        p.preferred_language,
                        p.phone.as_deref().unwrap_or("-"),
                        p.name
                    );
                }
                if page.len() < 500 {
                    break;
                }
                offset += 500;
            }
        }
    }
    Ok(())
}

fn appointment(store: &Store, cmd: AppointmentCmd) -> Result<()> {
    let now = chrono::Utc::now();
    match cmd {
        AppointmentCmd::Add { patient, doctor, at, duration, reason } => {
            let d = find_account(store, &doctor)?;
            let new = NewAppointment {
                patient_id: patient,
                doctor_id: d.id,
                starts_at: parse_start_time("at", &at)?,
                duration_minutes: validate_duration("duration", duration)?,
                reason: validate_text("reason", &reason, 500)?,
            };
            let a = store.write_blocking(|db| db.add_appointment(&new, Actor::Cli, now))?;
            println!("booked appointment {} at {} with {}", a.id, a.starts_at, a.doctor_name);
        }
        AppointmentCmd::List { day, doctor, status } => {
            let doctor_id = doctor.as_deref().map(|e| find_account(store, e).map(|d| d.id)).transpose()?;
            let (from, to) = match day.as_deref() {
                Some(day) => {
                    let (f, t) = crate::core::local_day_range("day", day)?;
                    (Some(f), Some(t))
                }
                None => (None, None),
            };
            println!("{:>5}  {:<20}  {:>4}  {:<10}  {:<24}  patient", "id", "starts (UTC)", "min", "status", "doctor");
            let mut offset = 0;
            loop {
                let filter = AppointmentFilter { doctor_id, patient_id: None, from, to, status, limit: 500, offset };
                let page = store.read_blocking(|db| db.list_appointments(&filter))?;
                for a in &page {
                    println!(
                        "{:>5}  {:<20}  {:>4}  {:<10}  {:<24}  {}",
                        a.id, a.starts_at, a.duration_minutes, a.status, a.doctor_name, a.patient_name
                    );
                }
                if page.len() < 500 {
                    break;
                }
                offset += 500;
            }
        }
        AppointmentCmd::Cancel { id } => {
            let a = store
                .write_blocking(|db| db.set_appointment_status(id, AppointmentStatus::Cancelled, Actor::Cli, now))?;
            println!("appointment {} is {}", a.id, a.status);
        }
    }
    Ok(())
}

fn db(store: &Store, cmd: DbCmd) -> Result<()> {
    match cmd {
        DbCmd::Backup { path } => {
            if path.exists() {
                bail!("{} exists already; choose a new file", path.display());
            }
            // Written under a `.partial-` name and renamed only when complete and checked (see `Store::backup_to`).
            store.backup_to(&path).with_context(|| format!("backing up to {}", path.display()))?;
            println!("backed up {} to {}", store.path().display(), path.display());
        }
        DbCmd::Check => {
            let problems = store.check()?;
            let counts = store.read_blocking(|db| db.table_counts())?;
            let summary: Vec<String> = counts.iter().map(|(t, n)| format!("{t} {n}")).collect();
            if problems.is_empty() {
                println!("database OK: schema version {}; {}", store.schema_version()?, summary.join(", "));
            } else {
                for p in &problems {
                    println!("problem: {p}");
                }
                bail!("the database has {} problem(s)", problems.len());
            }
        }
    }
    Ok(())
}

/// glibc raises its mmap threshold after the first large free, after which big buffers (argon2's 19 MiB per password
/// check) come from the heap and stay there: measured 9 MiB RSS at start, 49 MiB after three logins. A fixed
/// threshold keeps every allocation of 1 MiB or more in its own mapping, returned to the system when freed.
fn return_big_buffers_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; it is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}
