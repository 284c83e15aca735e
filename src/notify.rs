//! systemd's notify protocol without a library: `READY=1` once the kiosk serves, `WATCHDOG=1` keepalives at half
//! of `WATCHDOG_USEC`, `STOPPING=1` on the way out. Does nothing when not started by systemd (`NOTIFY_SOCKET`
//! unset).

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends one notification; errors are logged at debug level only (the service works without systemd).
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let sent = UnixDatagram::unbound().and_then(|s| {
        let bytes = path.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            // An abstract socket name.
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            s.send_to_addr(state.as_bytes(), &addr)
        } else {
            s.send_to(state.as_bytes(), &path)
        }
    });
    if let Err(e) = sent {
        tracing::debug!(error = %e, state, "systemd notification not sent");
    }
}

/// The keepalive period systemd asked for (half its watchdog timeout), if it asked.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Some(pid) = std::env::var("WATCHDOG_PID").ok().and_then(|p| p.parse::<u32>().ok())
        && pid != std::process::id()
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}
