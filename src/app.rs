//! The composition root of `medimitra serve`: it starts the parts in order — runtime, media engine, call service,
//! control socket, HTTPS server, touch UI, watchdog, signal handling — and stops them in the reverse order when a
//! signal (SIGTERM, Ctrl-C) arrives or the listener fails. Every part listens to one [`Shutdown`]; nothing here
//! holds domain logic.
//!
//! Stopping, bounded by [`STOP_WITHIN`]: `STOPPING=1` to systemd; the call service ends any call as
//! `kiosk_stopping` (the doctor's page is told, media stops, the record is closed, the appointment returns to
//! `checked_in`) and lets go of the signaling sockets; the sockets flush and close; the HTTPS listener stops.

use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::calls::{CallService, CallsHandle};
use crate::config::{Config, Loaded};
use crate::http::{self, AppState, RunningServer};
use crate::media::{MediaEngine, Sources};
use crate::shutdown::{Shutdown, ShutdownSignal};
use crate::store::Store;

/// The whole stop, from the signal to the process's exit, stays within this (systemd's default stop timeout is
/// 90 s; a technician's `systemctl restart` should not wait).
pub const STOP_WITHIN: Duration = Duration::from_secs(5);

/// What `serve` was asked for on the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServeOptions {
    /// Never open the touch UI.
    pub headless: bool,
}

/// The parts running on the runtime, in the order they stop.
struct Parts {
    calls: Option<(CallService, Sources)>,
    /// The medical devices' readers, feeding the calls' data channels; stopped when dropped.
    _vitals: Option<crate::devices::Hub>,
    server: RunningServer,
}

/// Runs the kiosk until a signal or a failed listener stops it.
pub fn serve(loaded: Loaded, options: ServeOptions) -> Result<()> {
    let config = loaded.config;
    let store = Store::open_in(&config.storage.data_dir)
        .with_context(|| format!("opening the database in {}", config.storage.data_dir.display()))?;
    let accounts = store.read_blocking(|db| db.list_accounts(None))?.len();
    // Read once: a refused provisioning file changes only with the next provisioning, which restarts the kiosk.
    let setup_refused = crate::provision::last_failure(&config.storage.data_dir).unwrap_or_default();
    for problem in &setup_refused {
        tracing::warn!(%problem, "the last provisioning file was refused; the kiosk kept its settings");
    }
    // Database and password work run on the blocking pool, bounded by the store and the password thread, so a small
    // pool suffices (every thread is a stack and a malloc arena on a small device).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(16)
        .build()
        .context("starting the runtime")?;
    let shutdown = Shutdown::new();
    let shared = Arc::new(config.clone());
    let parts = runtime.block_on(start_parts(&store, &shared, &shutdown))?;
    let urls = doctor_urls(parts.server.scheme, parts.server.addr);
    println!("Medi-Mitra kiosk for {} is running.", config.clinic.name);
    for url in &urls {
        println!("Doctors open: {url}");
    }
    if let Some(fp) = &parts.server.fingerprint {
        println!("TLS certificate SHA-256: {fp}");
    }
    if accounts == 0 {
        println!(
            "No accounts yet. Add one (the password is asked for):\n  medimitra --data-dir {} account add --role technician --name NAME --email EMAIL",
            config.storage.data_dir.display()
        );
    }

    // The touch UI needs the main thread (winit and KMS both want it); everything else runs on the runtime.
    let ui = match (&parts.calls, options.headless) {
        (_, true) => None,
        (None, false) => {
            println!("The touch UI needs the media engine; serving doctors only.");
            None
        }
        (Some((calls, sources)), false) => {
            let ctx = crate::ui::UiContext {
                store: store.clone(),
                calls: calls.handle.clone(),
                config: shared.clone(),
                sources: sources.clone(),
                doctor_url: urls.first().cloned().unwrap_or_default(),
                fingerprint: parts.server.fingerprint.clone(),
                setup_refused: !setup_refused.is_empty(),
                runtime: runtime.handle().clone(),
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
    };
    let mode = if ui.is_some() { "touch UI" } else { "headless" };
    tracing::info!(addr = %parts.server.addr, mode, clinic = config.clinic.id.as_str(), "serving");
    crate::notify::notify(&format!("READY=1\nSTATUS=serving on {} ({mode})", parts.server.addr));
    runtime.spawn(watchdog(shutdown.signal()));
    runtime.spawn(stop_on_signal(shutdown.clone(), ui.is_some()));

    let Parts { calls, mut server, _vitals } = parts;
    let result = match ui {
        // Returns when a signal ends the event loop (or the window is closed on a desktop).
        Some(ui) => ui.run().context("the touch UI"),
        None => {
            let mut stop = shutdown.signal();
            runtime.block_on(async {
                tokio::select! {
                    r = server.wait() => r.context("the HTTPS listener stopped"),
                    _ = stop.wait() => Ok(()),
                }
            })
        }
    };
    let started = Instant::now();
    crate::notify::notify("STOPPING=1");
    shutdown.trigger();
    tracing::info!("shutting down");
    runtime.block_on(stop_parts(calls.map(|(c, _)| c), server, started));
    runtime.shutdown_timeout(STOP_WITHIN.saturating_sub(started.elapsed()));
    tracing::info!(took_ms = started.elapsed().as_millis() as u64, "stopped");
    result
}

/// Media engine and call service (when GStreamer works), the control socket, then the HTTPS server.
async fn start_parts(store: &Store, config: &Arc<Config>, shutdown: &Shutdown) -> Result<Parts> {
    let mut state = AppState::new(store.clone(), (**config).clone());
    let mut calls = None;
    let mut vitals = None;
    match MediaEngine::start(&config.media, &config.ice_servers) {
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
            let sources = engine.sources.clone();
            vitals =
                Some(crate::devices::Hub::start(&config.devices, engine.live.vitals.clone(), keeper(store.clone())));
            let service = crate::calls::spawn(engine, store.clone(), config.clone(), shutdown.signal());
            let handle: CallsHandle = service.handle.clone();
            let sock = crate::calls::control::serve(&config.storage.data_dir, handle.clone(), shutdown.signal())
                .context("opening the local control socket")?;
            tracing::info!(path = %sock.display(), "local call control");
            state = state.with_calls(handle);
            calls = Some((service, sources));
        }
        Err(e) => {
            tracing::error!(error = %e, "calls are unavailable: the media engine did not start");
            println!("Calls are unavailable: {e}");
        }
    }
    let server = http::start(state).await?;
    Ok(Parts { calls, server, _vitals: vitals })
}

/// Keeps stable device readings with the appointment they belong to (`core::vitals::observation::owner`): the one in
/// a call, else the only one checked in. Called on the device hub's thread; a failed write is logged, not retried.
fn keeper(store: Store) -> impl FnMut(Vec<crate::core::vitals::observation::Observation>) + Send + 'static {
    move |observations| {
        let now = chrono::Utc::now();
        let kept = store.write_blocking(|db| {
            let (in_call, checked_in) = db.patients_at_the_kiosk(now)?;
            match crate::core::vitals::observation::owner(in_call, &checked_in) {
                Some(id) => db.add_observations(id, &observations, now).map(|()| Some(id)),
                None => Ok(None),
            }
        });
        match kept {
            Ok(Some(id)) => tracing::info!(appointment = id, readings = observations.len(), "vitals kept"),
            Ok(None) => tracing::debug!("a stable reading with no patient to keep it for"),
            Err(e) => tracing::warn!(error = %e, "vitals not kept"),
        }
    }
}

/// The reverse of [`start_parts`], after the shutdown signal: the call service first (it tells the doctors and lets
/// go of their sockets), then the sockets flush, then the listener.
async fn stop_parts(calls: Option<CallService>, server: RunningServer, started: Instant) {
    let left = || STOP_WITHIN.saturating_sub(started.elapsed());
    if let Some(calls) = calls
        && tokio::time::timeout(left().mul_f32(0.6), calls.stopped()).await.is_err()
    {
        tracing::warn!("the call service did not stop in time");
    }
    server.wait_for_sockets(left().mul_f32(0.3)).await;
    if let Err(e) = server.shutdown(left().mul_f32(0.5)).await {
        tracing::warn!(error = %e, "the HTTPS listener did not stop cleanly");
    }
}

/// Keepalives come from the runtime that serves doctors: a wedged runtime stops them and systemd restarts us.
async fn watchdog(mut shutdown: ShutdownSignal) {
    let Some(every) = crate::notify::watchdog_interval() else { return };
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => crate::notify::notify("WATCHDOG=1"),
        }
    }
}

/// SIGTERM or Ctrl-C fires the shutdown signal; with the touch UI on the main thread, it also ends its event loop.
async fn stop_on_signal(shutdown: Shutdown, with_ui: bool) {
    let mut stopping = shutdown.signal();
    tokio::select! {
        _ = wait_for_signal() => {
            tracing::info!("stop requested by a signal");
            shutdown.trigger();
        }
        _ = stopping.wait() => {}
    }
    if with_ui {
        let _ = slint::invoke_from_event_loop(|| {
            let _ = slint::quit_event_loop();
        });
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
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
