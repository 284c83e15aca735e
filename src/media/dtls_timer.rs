//! The kiosk's own DTLS handshake retransmission timer ([`crate::core::dtls`]) on GStreamer's DTLS connections.
//!
//! GStreamer's `dtls` plugin (DTLS-SRTP for webrtcbin) leaves OpenSSL's timer at its default, 1 s for the first
//! resend of a lost handshake flight, and has no property for it (1.22 up to the current main). On a lossy link a
//! lost flight of the kiosk's then held the doctor's browser's handshake, and so the first picture both ways, for
//! a second or more (docs/platform-notes.md). OpenSSL takes a timer callback per connection (`DTLS_set_timer_cb`,
//! OpenSSL ≥ 1.1.1); GStreamer does not expose a connection's `SSL`. So, once at start, the kiosk wraps the
//! `set_property` of the `GstDtlsConnection` class: when a new connection has been given its agent (the moment
//! GStreamer creates its `SSL`, before any handshake), the wrapper installs the callback on that `SSL`, read from the
//! first field of the connection's private data (`GstDtlsConnectionPrivate.ssl`, first since 1.4 and still first on
//! the current main). Applied only to the versions whose layout was checked; anywhere else the default stays and
//! [`install`] says why.

use std::ffi::{CStr, c_uint, c_void};
use std::sync::OnceLock;
use std::time::Duration;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::glib::translate::IntoGlib;
use gstreamer::prelude::*;

use crate::core::dtls::next_retransmission;

type TimerCallback = unsafe extern "C" fn(ssl: *mut c_void, timer_us: c_uint) -> c_uint;
type SetTimerCallback = unsafe extern "C" fn(ssl: *mut c_void, cb: Option<TimerCallback>);
type SetProperty = unsafe extern "C" fn(
    *mut glib::gobject_ffi::GObject,
    c_uint,
    *mut glib::gobject_ffi::GValue,
    *mut glib::gobject_ffi::GParamSpec,
);

/// GStreamer minor versions (1.x) whose `GstDtlsConnectionPrivate` starts with the `SSL` pointer (checked in the
/// sources of 1.22, the version Debian 12 ships, and of the current main).
const CHECKED_MINORS: std::ops::RangeInclusive<u32> = 16..=28;

struct Hook {
    original: SetProperty,
    private_offset: isize,
    set_timer_callback: SetTimerCallback,
}

static HOOK: OnceLock<Hook> = OnceLock::new();

/// Why the kiosk's timer could not be installed (the handshake then keeps OpenSSL's 1 s default).
#[derive(Debug, thiserror::Error)]
pub enum DtlsTimerError {
    #[error("GStreamer's dtls plugin is missing")]
    NoPlugin,
    #[error("GStreamer's dtls plugin {0} is not a version whose connection layout was checked")]
    UncheckedVersion(String),
    #[error("OpenSSL's DTLS_set_timer_cb was not found in the loaded libssl")]
    NoTimerCallback,
    #[error("the GstDtlsConnection class cannot be wrapped: {0}")]
    Class(&'static str),
}

/// Installs the kiosk's DTLS retransmission timer for every DTLS connection created from now on. Idempotent; call
/// after `gst::init`, before the first call.
pub fn install() -> Result<(), DtlsTimerError> {
    if HOOK.get().is_some() {
        return Ok(());
    }
    let factory = gst::ElementFactory::find("dtlsenc").ok_or(DtlsTimerError::NoPlugin)?;
    let factory = factory.load().map_err(|_| DtlsTimerError::NoPlugin)?;
    let version = factory.plugin().map(|p| p.version().to_string()).unwrap_or_default();
    let minor = version.split('.').collect::<Vec<_>>();
    let checked =
        matches!(minor.as_slice(), ["1", m, ..] if m.parse::<u32>().is_ok_and(|m| CHECKED_MINORS.contains(&m)));
    if !checked {
        return Err(DtlsTimerError::UncheckedVersion(version));
    }
    let set_timer_callback = find_set_timer_callback().ok_or(DtlsTimerError::NoTimerCallback)?;
    // The connection's type is registered when the first connection is made: a decoder given a connection id
    // makes one, and takes it away again when dropped.
    drop(gst::ElementFactory::make("dtlsdec").property("connection-id", "medimitra-dtls-timer-install").build());
    let ty = glib::Type::from_name("GstDtlsConnection").ok_or(DtlsTimerError::Class("the type is not registered"))?;
    // SAFETY: `ty` is a registered, instantiatable GObject type (the plugin is loaded); the class reference taken
    // here is never released, so the class struct stays valid for the life of the process. The class's
    // `set_property` is replaced once, before any call creates a connection (the hook is installed at start).
    unsafe {
        let class = glib::gobject_ffi::g_type_class_ref(ty.into_glib()) as *mut glib::gobject_ffi::GObjectClass;
        if class.is_null() {
            return Err(DtlsTimerError::Class("no class"));
        }
        let original = (*class).set_property.ok_or(DtlsTimerError::Class("no set_property"))?;
        let private_offset = glib::gobject_ffi::g_type_class_get_instance_private_offset(class as *mut c_void);
        if private_offset == 0 {
            return Err(DtlsTimerError::Class("no private data"));
        }
        if HOOK.set(Hook { original, private_offset: private_offset as isize, set_timer_callback }).is_err() {
            return Ok(());
        }
        (*class).set_property = Some(set_property);
    }
    Ok(())
}

/// `DTLS_set_timer_cb` from the libssl GStreamer's dtls plugin loaded (the kiosk links no OpenSSL of its own).
fn find_set_timer_callback() -> Option<SetTimerCallback> {
    for name in [c"libssl.so.3", c"libssl.so.1.1"] {
        // SAFETY: RTLD_NOLOAD only returns a handle to a library already loaded (by the dtls plugin), and the symbol
        // looked up has the C signature of `SetTimerCallback` in OpenSSL 1.1.1 and 3.x.
        unsafe {
            let lib = libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
            if lib.is_null() {
                continue;
            }
            let sym = libc::dlsym(lib, c"DTLS_set_timer_cb".as_ptr());
            if !sym.is_null() {
                return Some(std::mem::transmute::<*mut c_void, SetTimerCallback>(sym));
            }
        }
    }
    None
}

/// The wrapped `set_property` of `GstDtlsConnection`: GStreamer's own, then, once the `agent` (construct-only) has
/// created the connection's `SSL`, the kiosk's timer on it.
unsafe extern "C" fn set_property(
    object: *mut glib::gobject_ffi::GObject,
    id: c_uint,
    value: *mut glib::gobject_ffi::GValue,
    pspec: *mut glib::gobject_ffi::GParamSpec,
) {
    let Some(hook) = HOOK.get() else { return };
    // SAFETY: called by GObject with a live `GstDtlsConnection`; the original is the class's own function. The
    // `SSL` pointer is the first field of the connection's private data on the checked versions (see the module's
    // notes); it is set by the original when the property is `agent`, and null otherwise.
    unsafe {
        (hook.original)(object, id, value, pspec);
        if pspec.is_null() || CStr::from_ptr(glib::gobject_ffi::g_param_spec_get_name(pspec)) != c"agent" {
            return;
        }
        let private = (object as *mut u8).offset(hook.private_offset) as *const *mut c_void;
        let ssl = *private;
        if !ssl.is_null() {
            (hook.set_timer_callback)(ssl, Some(timer));
        }
    }
}

/// OpenSSL's question: how long to wait (µs) before sending the flight again, given the last wait (0: first send).
unsafe extern "C" fn timer(_ssl: *mut c_void, timer_us: c_uint) -> c_uint {
    let previous = (timer_us > 0).then(|| Duration::from_micros(u64::from(timer_us)));
    c_uint::try_from(next_retransmission(previous).as_micros()).unwrap_or(c_uint::MAX)
}
