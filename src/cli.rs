//! The technician's command line. Every command opens the same data dir as a running server (SQLite's WAL and
//! busy timeout let both work at once). Passwords come from a prompt or standard input, never from arguments.

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::{Config, ConfigError, Loaded, Overrides};
use crate::core::{
    AppointmentStatus, Language, Role, Sex, parse_birth_date, parse_start_time, validate_duration, validate_email,
    validate_name, validate_password, validate_phone, validate_text,
};
use crate::http::{self, AppState};
use crate::store::{AppointmentFilter, Doctor, NewAppointment, NewDoctor, NewPatient, Store};

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
    /// Manage doctor and technician accounts
    #[command(subcommand)]
    Doctor(DoctorCmd),
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
        /// accept, decline, end or status
        #[arg(value_parser = ["accept", "decline", "end", "status"])]
        action: String,
    },
    /// Media engine diagnostics
    #[command(subcommand)]
    Media(MediaCmd),
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
enum DoctorCmd {
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
        Command::Serve(args) => serve(loaded, args),
        Command::Config(ConfigCmd::Check) => {
            let from = loaded.path.as_ref().map_or("built-in defaults".to_string(), |p| p.display().to_string());
            println!("configuration OK ({from})");
            Ok(())
        }
        Command::Config(ConfigCmd::Show) => {
            print!("{}", loaded.config.to_masked_toml());
            Ok(())
        }
        Command::Doctor(c) => doctor(&open_store(&loaded.config)?, c),
        Command::Patient(c) => patient(&open_store(&loaded.config)?, c),
        Command::Appointment(c) => appointment(&open_store(&loaded.config)?, c),
        Command::Db(c) => db(&open_store(&loaded.config)?, c),
        Command::Call { action } => {
            let reply = crate::calls::control::request(&loaded.config.storage.data_dir, &action)?;
            println!("{}", serde_json::to_string_pretty(&reply).unwrap_or_default());
            if reply["ok"] == serde_json::Value::Bool(true) {
                Ok(())
            } else {
                bail!("the kiosk refused: {}", reply["error"])
            }
        }
        Command::Provision(args) => provision(&loaded.config, loaded.path.as_deref(), args),
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

fn serve(loaded: Loaded, args: ServeArgs) -> Result<()> {
    let config = loaded.config;
    let store = open_store(&config)?;
    let accounts = store.read_blocking(|db| db.list_doctors(None))?.len();
    // The technician screen lists recent warnings: a refused provisioning file shows there with its reasons.
    for problem in crate::provision::last_failure(&config.storage.data_dir).unwrap_or_default() {
        tracing::warn!(%problem, "the last provisioning file was refused; the kiosk kept its settings");
    }
    // Database and password work run on the blocking pool, bounded by the store and the password thread, so a small
    // pool suffices (every thread is a stack and a malloc arena on a small device).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(16)
        .build()
        .context("starting the runtime")?;
    let shared = std::sync::Arc::new(config.clone());
    let (mut server, calls, sources) = runtime.block_on(async {
        let mut state = AppState::new(store.clone(), config.clone());
        let mut calls = None;
        let mut sources = None;
        match crate::media::MediaEngine::start(&config.media, &config.ice_servers) {
            Ok(engine) => {
                for p in engine.report.chosen() {
                    tracing::info!(codec = p.codec.encoding_name(), profile = %p.name, "video encoder");
                }
                if engine.sources.video_is_test {
                    tracing::warn!("no camera: calls send a test picture");
                }
                if engine.sources.audio_is_test {
                    tracing::warn!("no microphone: calls send a test tone");
                }
                sources = Some(engine.sources.clone());
                let handle = crate::calls::spawn(engine, store.clone(), shared.clone());
                let sock = crate::calls::control::serve(&config.storage.data_dir, handle.clone())
                    .context("opening the local control socket")?;
                tracing::info!(path = %sock.display(), "local call control");
                state = state.with_calls(handle.clone());
                calls = Some(handle);
            }
            Err(e) => {
                tracing::error!(error = %e, "calls are unavailable: the media engine did not start");
                println!("Calls are unavailable: {e}");
            }
        }
        let server = http::start(state).await?;
        anyhow::Ok((server, calls, sources))
    })?;
    let urls = doctor_urls(server.scheme, server.addr);
    println!("Medi-Mitra kiosk for {} is running.", config.clinic.name);
    for url in &urls {
        println!("Doctors open: {url}");
    }
    if let Some(fp) = &server.fingerprint {
        println!("TLS certificate SHA-256: {fp}");
    }
    if accounts == 0 {
        println!(
            "No accounts yet. Add one (the password is asked for):\n  medimitra --data-dir {} doctor add --role technician --name NAME --email EMAIL",
            config.storage.data_dir.display()
        );
    }
    let handle = server.handle();
    // The touch UI needs the main thread (winit and KMS both want it); the server keeps running on the runtime.
    let ui = match (args.headless, calls, sources) {
        (false, Some(calls), Some(sources)) => {
            let ctx = crate::ui::UiContext {
                store: store.clone(),
                calls,
                config: shared.clone(),
                sources,
                doctor_url: urls.first().cloned().unwrap_or_default(),
                fingerprint: server.fingerprint.clone(),
            };
            match crate::ui::select_backend(&config.ui.backend).and_then(|()| crate::ui::Ui::new(ctx)) {
                Ok(ui) => Some(ui),
                Err(e) => {
                    tracing::error!(error = %e, "the touch UI did not start; serving doctors only");
                    println!("The touch UI did not start ({e}); serving doctors only.");
                    None
                }
            }
        }
        (false, _, _) => {
            println!("The touch UI needs the media engine; serving doctors only.");
            None
        }
        (true, _, _) => None,
    };
    let mode = if ui.is_some() { "touch UI" } else { "headless" };
    tracing::info!(addr = %server.addr, mode, clinic = config.clinic.id.as_str(), "serving");
    crate::notify::notify(&format!("READY=1\nSTATUS=serving on {} ({mode})", server.addr));
    if let Some(every) = crate::notify::watchdog_interval() {
        // Keepalives come from the runtime that serves doctors: a wedged runtime stops them and systemd restarts us.
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                crate::notify::notify("WATCHDOG=1");
            }
        });
    }
    match ui {
        None => runtime.block_on(async {
            tokio::select! {
                r = server.wait() => r.context("the HTTPS listener stopped")?,
                _ = shutdown_signal() => {
                    tracing::info!("shutting down");
                    handle.graceful_shutdown(Some(Duration::from_secs(5)));
                    server.wait().await.context("stopping the HTTPS listener")?;
                }
            }
            anyhow::Ok(())
        }),
        Some(ui) => {
            runtime.spawn(async {
                shutdown_signal().await;
                tracing::info!("shutting down");
                let _ = slint::invoke_from_event_loop(|| {
                    let _ = slint::quit_event_loop();
                });
            });
            let result = ui.run();
            handle.graceful_shutdown(Some(Duration::from_secs(5)));
            runtime.block_on(server.wait()).context("stopping the HTTPS listener")?;
            result.context("the touch UI")
        }
    }
}

async fn shutdown_signal() {
    wait_for_signal().await;
    crate::notify::notify("STOPPING=1");
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The URLs a doctor can open: every non-loopback address when listening on all of them, else the one bound.
fn doctor_urls(scheme: &str, addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    let fmt = |ip: std::net::IpAddr| match ip {
        std::net::IpAddr::V6(v6) => format!("{scheme}://[{v6}]:{port}/"),
        std::net::IpAddr::V4(v4) => format!("{scheme}://{v4}:{port}/"),
    };
    if !addr.ip().is_unspecified() {
        return vec![fmt(addr.ip())];
    }
    let mut urls: Vec<String> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_loopback() && i.ip().is_ipv4())
        .map(|i| fmt(i.ip()))
        .collect();
    urls.push(format!("{scheme}://localhost:{port}/"));
    urls
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

fn account(store: &Store, email: &str) -> Result<Doctor> {
    let email = validate_email("email", email)?;
    store.read_blocking(|db| db.doctor_by_email(&email)).map_err(|_| anyhow!("no account with e-mail {email}"))
}

const CLI_ACTOR: &str = "cli";

fn doctor(store: &Store, cmd: DoctorCmd) -> Result<()> {
    let now = chrono::Utc::now();
    match cmd {
        DoctorCmd::Add { name, email, specialty, role } => {
            let name = validate_name("name", &name)?;
            let email = validate_email("email", &email)?;
            let specialty = validate_text("specialty", &specialty, 80)?;
            let password = read_new_password()?;
            let password_hash =
                http::auth::hash_password(&password).map_err(|e| anyhow!("hashing the password: {e}"))?;
            let d = store.write_blocking(|db| {
                let d = db.add_doctor(&NewDoctor { name, specialty, email, password_hash, role }, now)?;
                db.audit(CLI_ACTOR, "account_create", &format!("account:{}", d.id), d.role.as_str(), now)?;
                Ok(d)
            })?;
            println!("added {} {} <{}> (id {})", d.role, d.name, d.email, d.id);
        }
        DoctorCmd::List => {
            let all = store.read_blocking(|db| db.list_doctors(None))?;
            println!("{:>4}  {:<10}  {:<8}  {:<32}  {:<24}  specialty", "id", "role", "active", "e-mail", "name");
            for d in all {
                let active = if d.active { "yes" } else { "no" };
                println!(
                    "{:>4}  {:<10}  {:<8}  {:<32}  {:<24}  {}",
                    d.id, d.role, active, d.email, d.name, d.specialty
                );
            }
        }
        DoctorCmd::Disable { email } => set_active(store, &email, false)?,
        DoctorCmd::Enable { email } => set_active(store, &email, true)?,
        DoctorCmd::ResetPassword { email } => {
            let d = account(store, &email)?;
            let password = read_new_password()?;
            let hash = http::auth::hash_password(&password).map_err(|e| anyhow!("hashing the password: {e}"))?;
            store.write_blocking(|db| {
                db.set_password_hash(d.id, &hash, now)?;
                db.audit(CLI_ACTOR, "password_reset", &format!("account:{}", d.id), "", now)
            })?;
            println!("password of {} changed; their sessions have ended", d.email);
        }
    }
    Ok(())
}

fn set_active(store: &Store, email: &str, active: bool) -> Result<()> {
    let d = account(store, email)?;
    let now = chrono::Utc::now();
    store.write_blocking(|db| {
        db.set_doctor_active(d.id, active, now)?;
        let action = if active { "account_enable" } else { "account_disable" };
        db.audit(CLI_ACTOR, action, &format!("account:{}", d.id), "", now)
    })?;
    println!("{} is now {}", d.email, if active { "enabled" } else { "disabled; their sessions have ended" });
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
            let p = store.write_blocking(|db| {
                let p = db.add_patient(&new, now)?;
                db.audit(CLI_ACTOR, "patient_create", &format!("patient:{}", p.id), "", now)?;
                Ok(p)
            })?;
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
            let d = account(store, &doctor)?;
            let new = NewAppointment {
                patient_id: patient,
                doctor_id: d.id,
                starts_at: parse_start_time("at", &at)?,
                duration_minutes: validate_duration("duration", duration)?,
                reason: validate_text("reason", &reason, 500)?,
            };
            let a = store.write_blocking(|db| {
                let a = db.add_appointment(&new, now)?;
                db.audit(CLI_ACTOR, "appointment_create", &format!("appointment:{}", a.id), "", now)?;
                Ok(a)
            })?;
            println!("booked appointment {} at {} with {}", a.id, a.starts_at, a.doctor_name);
        }
        AppointmentCmd::List { day, doctor, status } => {
            let doctor_id = doctor.as_deref().map(|e| account(store, e).map(|d| d.id)).transpose()?;
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
                let filter = AppointmentFilter { doctor_id, from, to, status, limit: 500, offset };
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
            let a = store.write_blocking(|db| {
                let a = db.set_appointment_status(id, AppointmentStatus::Cancelled, now)?;
                db.audit(CLI_ACTOR, "appointment_status", &format!("appointment:{id}"), "-> cancelled", now)?;
                Ok(a)
            })?;
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
