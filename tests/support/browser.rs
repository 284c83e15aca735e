//! The doctor's browser: headless Debian Chromium through chromedriver, or Firefox ESR through geckodriver (built by
//! `scripts/test` into `target/tools`), and the web app's helpers.

use fantoccini::{Client, Locator};
use medimitra::calls::control::ControlCommand;
use medimitra::core::CallState;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::kiosk::KioskProcess;
use super::{KillOnDrop, PASSWORD, poll_until, wait_for};

/// chromedriver on a port it picks itself (`--port=0`; it prints the port once it listens), and its port.
pub fn start_chromedriver() -> (KillOnDrop, u16) {
    chromedriver(Command::new("chromedriver"))
}

/// chromedriver (and the browsers it starts) inside network namespace `ns`; its port is on that namespace's
/// loopback (see `natlab::forward_into`).
pub fn start_chromedriver_in(ns: &str) -> (KillOnDrop, u16) {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, "chromedriver"]);
    chromedriver(cmd)
}

fn chromedriver(mut cmd: Command) -> (KillOnDrop, u16) {
    use std::os::unix::process::CommandExt;
    let mut child = cmd
        .arg("--port=0")
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver");
    let out = child.stdout.take().expect("chromedriver's output");
    let proc = KillOnDrop(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(port) = line.split("started successfully on port ").nth(1) {
                let _ = tx.send(port.trim_end_matches('.').parse::<u16>().ok());
            }
        }
    });
    let port = rx.recv_timeout(Duration::from_secs(20)).ok().flatten().expect("chromedriver says its port");
    (proc, port)
}

/// Which browser plays the doctor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Chromium,
    Firefox,
}

/// A doctor's browser: its driver process, its profile and the WebDriver session.
pub struct Doctor {
    pub client: Client,
    _driver: KillOnDrop,
    _profile: tempfile::TempDir,
}

impl Doctor {
    /// A fresh browser of `engine` with a fake camera and microphone, trusting the kiosk's self-signed certificate.
    pub async fn start(engine: Engine) -> Doctor {
        let profile = tempfile::tempdir().expect("a profile directory");
        let (driver, client) = match engine {
            Engine::Chromium => {
                let (driver, port) = start_chromedriver();
                (driver, browser(port, &profile.path().join("chromium")).await)
            }
            Engine::Firefox => {
                let (driver, port) = start_geckodriver(profile.path());
                (driver, firefox(port).await)
            }
        };
        Doctor { client, _driver: driver, _profile: profile }
    }
}

/// geckodriver: `$GECKODRIVER`, else the one `scripts/test` builds into `target/tools/bin`, else the PATH's.
fn geckodriver_path() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("GECKODRIVER") {
        return p.into();
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools/bin/geckodriver");
    if built.exists() { built } else { "geckodriver".into() }
}

/// geckodriver on a free port of this namespace's loopback, its temporary Firefox profiles under `tmp`.
pub fn start_geckodriver(tmp: &Path) -> (KillOnDrop, u16) {
    use std::os::unix::process::CommandExt;
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let exe = geckodriver_path();
    let child = Command::new(&exe)
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--log", "error"])
        .env("TMPDIR", tmp)
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{} did not start ({e}): scripts/test builds it (cargo install geckodriver)", exe.display())
        });
    let proc = KillOnDrop(child);
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(20), "geckodriver does not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    (proc, port)
}

/// Headless Firefox ESR with fake media devices (a moving picture and a tone), media permission granted and
/// autoplay allowed, as a doctor who clicked "Allow" would have it.
pub async fn firefox(driver_port: u16) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("firefox"));
    caps.insert("acceptInsecureCerts".into(), json!(true));
    caps.insert(
        "moz:firefoxOptions".into(),
        json!({
            "binary": "/usr/bin/firefox-esr",
            "args": ["-headless"],
            "prefs": {
                "media.navigator.streams.fake": true,
                "media.navigator.permission.disabled": true,
                "media.autoplay.default": 0,
                "media.autoplay.blocking_policy": 0,
                // Host candidates as addresses, not mDNS names (a test network has no mDNS responder).
                "media.peerconnection.ice.obfuscate_host_addresses": false,
                "app.update.enabled": false,
                "datareporting.policy.dataSubmissionEnabled": false,
            }
        }),
    );
    session(driver_port, caps, "geckodriver").await
}

/// A WebDriver session with `caps` through the driver listening on `driver_port`.
async fn session(driver_port: u16, caps: serde_json::Map<String, Value>, driver: &str) -> Client {
    fantoccini::ClientBuilder::rustls()
        .expect("tls")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .unwrap_or_else(|e| panic!("{driver} session: {e}"))
}

/// The serious and critical accessibility violations axe-core (npm, fetched by `scripts/test` into `target/tools`)
/// finds in the page as it is now: `rule: element, element…` per rule.
pub async fn accessibility_violations(c: &Client) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools/axe-core-4.14.1/axe.min.js");
    let axe = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/test fetches axe-core there)", path.display()));
    c.execute("eval(arguments[0]); return true;", vec![json!(axe)]).await.expect("load axe-core");
    let found = js_async(
        c,
        "const r = await axe.run(document, { resultTypes: ['violations'] }); \
         return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical') \
           .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);",
    )
    .await;
    found.as_array().expect("axe-core's result").iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect()
}

/// Glass-to-glass helpers for a page (`measure.js`): `window.mmMeasure`.
pub const MEASURE_JS: &str = include_str!("measure.js");

/// Installs `window.mmMeasure` in the page now loaded.
pub async fn inject_measure(c: &Client) {
    let installed = c.execute("return eval(arguments[0]);", vec![json!(MEASURE_JS)]).await.expect("inject measure.js");
    assert_eq!(installed, json!(true));
}

/// Runs `body` as the body of an async function in the page and returns what it returns.
pub async fn js_async(c: &Client, body: &str) -> Value {
    let script = format!(
        "const done = arguments[arguments.length - 1]; (async () => {{ {body} }})().then(done, (e) => done('ERR ' + e));"
    );
    c.execute_async(&script, vec![]).await.unwrap_or(Value::Null)
}

/// Audio energy received from the kiosk so far (Chrome's `totalAudioEnergy` of the inbound audio).
pub async fn received_audio_energy(c: &Client) -> f64 {
    js_async(
        c,
        "const r = await window.medimitra.call.pc.getStats(); let e = 0; \
         r.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'audio') e = s.totalAudioEnergy || 0; }); return e;",
    )
    .await
    .as_f64()
    .unwrap_or(f64::NAN)
}

/// Mean luma (0-255) of the kiosk's picture as the doctor's page shows it now.
pub async fn remote_picture_luma(c: &Client) -> f64 {
    js(
        c,
        "(() => { const v = document.getElementById('remote-video'); const k = document.createElement('canvas'); \
         k.width = 64; k.height = 36; const g = k.getContext('2d'); g.drawImage(v, 0, 0, 64, 36); \
         const d = g.getImageData(0, 0, 64, 36).data; let s = 0; \
         for (let i = 0; i < d.length; i += 4) s += 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2]; \
         return s / (d.length / 4); })()",
    )
    .await
    .as_f64()
    .unwrap_or(f64::NAN)
}

pub async fn js(c: &Client, expr: &str) -> Value {
    c.execute(&format!("return ({expr});"), vec![]).await.unwrap_or(Value::Null)
}

pub async fn browser(driver_port: u16, profile: &Path) -> Client {
    browser_with(driver_port, profile, "--use-fake-device-for-media-stream").await
}

/// A browser whose fake camera is set by `fake_device` (e.g. `--use-fake-device-for-media-stream=fps=30`).
pub async fn browser_with(driver_port: u16, profile: &Path, fake_device: &str) -> Client {
    let mut caps = serde_json::Map::new();
    let mut args = vec![
        "--headless=new".to_string(),
        "--no-sandbox".into(),
        "--disable-dev-shm-usage".into(),
        "--disable-gpu".into(),
        fake_device.into(),
        "--use-fake-ui-for-media-stream".into(),
        "--autoplay-policy=no-user-gesture-required".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--no-first-run".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    if let Ok(dir) = std::env::var("MM_CHROME_LOG_DIR") {
        let name = profile.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        args.push("--enable-logging".into());
        args.push(format!("--log-file={dir}/chrome-{name}.log"));
        args.push("--v=0".into());
        args.push("--vmodule=*/webrtc/*=2".into());
    }
    caps.insert("goog:chromeOptions".into(), json!({ "binary": "/usr/bin/chromium", "args": args }));
    caps.insert("acceptInsecureCerts".into(), json!(true));
    session(driver_port, caps, "chromedriver").await
}

/// Types `text` into the page's element at `css`.
pub async fn type_into(c: &Client, css: &str, text: &str) {
    c.find(Locator::Css(css)).await.expect(css).send_keys(text).await.expect("type");
}

pub async fn login(c: &Client, url: &str, email: &str) {
    c.goto(url).await.expect("open the web app");
    // A navigation Chromium aborts shows its error page (titled with the host): say which error it was. (The
    // namespaces the tests make used to cause `ERR_NETWORK_CHANGED` here now and then; see
    // `kiosk::without_duplicate_address_detection`.)
    // Shown, not only there: the page shows its login view once it knows nobody is logged in (typing into the
    // hidden field failed in Firefox on a loaded machine: "not reachable by keyboard").
    let shown = poll_until(Duration::from_secs(15), || async {
        match c.find(Locator::Css("#email")).await {
            Ok(e) => e.is_displayed().await.unwrap_or(false),
            Err(_) => false,
        }
    })
    .await;
    if shown.is_none() {
        let shown = c.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        let title = c.title().await.unwrap_or_default();
        let error = js(c, "(document.querySelector('.error-code') || {}).textContent || null").await;
        panic!("the web app did not load: {shown}, title {title:?}, browser error {error}");
    }
    type_into(c, "#email", email).await;
    type_into(c, "#password", PASSWORD).await;
    c.find(Locator::Css("#login-form button[type=submit]")).await.expect("submit").click().await.expect("click");
    wait_for("the signaling socket", Duration::from_secs(15), || async {
        js(c, "window.medimitra && window.medimitra.signal.ready").await == json!(true)
    })
    .await;
}

/// Starts a call from the page (the same code the Call button runs) and has the kiosk accept it.
pub async fn call_and_accept(c: &Client, k: &KioskProcess, appointment: i64) -> (Duration, Duration) {
    let t0 = Instant::now();
    js(c, &format!("window.medimitra.call.start({appointment}, 'Meena') && true")).await;
    wait_for("the kiosk to ring", Duration::from_secs(10), || async { k.kiosk_status().call == CallState::Incoming })
        .await;
    let accept = k.control(ControlCommand::Accept);
    assert!(accept.ok, "{accept:?}");
    let t_accept = Instant::now();
    // Liveness bounds, not targets (set-up time is the network bench's): with two browsers, two kiosks and a moving
    // test picture on the 2-core test machine a start has taken over 10 s.
    let in_browser = poll_until(Duration::from_secs(20), || async {
        js(c, "window.medimitra.call.stats.framesDecoded > 0 && window.medimitra.call.stats.audioPacketsReceived > 0")
            .await
            == json!(true)
    })
    .await;
    if in_browser.is_none() {
        panic!("no video and audio in the browser 20 s after accepting: {}", media_report(c, k).await);
    }
    let browser_media = t_accept.elapsed();
    let at_kiosk = poll_until(Duration::from_secs(20), || async {
        let s = k.kiosk_status();
        s.remote_video_frames > 0 && s.remote_audio_buffers > 0
    })
    .await;
    if at_kiosk.is_none() {
        panic!("no video and audio from the browser at the kiosk 20 s after accepting: {}", media_report(c, k).await);
    }
    (t0.elapsed(), browser_media)
}

/// Presses `key` on the keyboard (WebDriver actions: keys go to whatever has focus, as a person's would).
pub async fn press_key(c: &Client, key: char) {
    use fantoccini::actions::{InputSource, KeyAction, KeyActions};
    let keys =
        KeyActions::new("keyboard".into()).then(KeyAction::Down { value: key }).then(KeyAction::Up { value: key });
    c.perform_actions(keys).await.expect("a key press");
}

/// Keyboard-only use of what is on screen inside `scope` (CSS): from just before its first control (a button put
/// there and focused: headless Firefox does not bring Tab back from its own toolbar once focus leaves the page),
/// presses Tab (at most twice as many times as there are controls, plus 10), reading after each press which element
/// has focus (headless Firefox's window never has system focus, so it sends no focus events), and returns each
/// visible, enabled control that Tab never reached and each that showed no focus indicator (an outline or a shadow)
/// when it had focus (only where the page has system focus: without it no browser applies focus styles).
/// Empty when every control can be reached and seen.
pub async fn keyboard_misses(c: &Client, scope: &str) -> Vec<String> {
    let controls = c
        .execute(
            "const all = Array.from(document.querySelector(arguments[0]).querySelectorAll(\
               'button, input:not([type=hidden]), select, textarea, summary, a[href], [tabindex]')); \
             const shown = all.filter((e) => !e.disabled && e.getClientRects().length > 0 && \
               getComputedStyle(e).visibility !== 'hidden' && !e.closest('[inert]') && e.tabIndex !== -1); \
             window.__kbd = { seen: new Set(), plain: new Set(), order: [] }; \
             shown.forEach((e, i) => { e.dataset.kbd = String(i); }); \
             const start = document.createElement('button'); start.type = 'button'; start.id = 'kbd-start'; \
             start.textContent = 'start'; start.style.cssText = 'position: absolute; width: 1px; height: 1px; overflow: hidden'; \
             if (shown.length) shown[0].before(start); else document.querySelector(arguments[0]).prepend(start); \
             start.focus(); \
             return document.activeElement === start ? shown.length : -1;",
            vec![json!(scope)],
        )
        .await
        .expect("mark the controls");
    assert_ne!(controls, json!(-1), "the mark before the first control of {scope} took no focus");
    let n = controls.as_u64().unwrap_or(0) as usize;
    for _ in 0..(2 * n + 10) {
        press_key(c, '\u{E004}').await;
        c.execute(
            "const e = document.activeElement; const k = window.__kbd; \
             if (k.order.length < 100) k.order.push(e.id || e.tagName.toLowerCase()); \
             if (!e.dataset || e.dataset.kbd === undefined) return null; \
             k.seen.add(e.dataset.kbd); const st = getComputedStyle(e); \
             if (document.hasFocus() && (st.outlineStyle === 'none' || parseFloat(st.outlineWidth) === 0) && st.boxShadow === 'none') k.plain.add(e.dataset.kbd); \
             return null;",
            vec![],
        )
        .await
        .expect("where focus is");
    }
    let report = c
        .execute(
            "const name = (e) => e.id || `${e.tagName.toLowerCase()} \\\"${(e.textContent || e.getAttribute('aria-label') || '').trim().slice(0, 30)}\\\"`; \
             const out = []; document.querySelectorAll('[data-kbd]').forEach((e) => { \
               if (!window.__kbd.seen.has(e.dataset.kbd)) out.push(`not reached by Tab: ${name(e)}`); \
               else if (window.__kbd.plain.has(e.dataset.kbd)) out.push(`no focus indicator: ${name(e)}`); \
               delete e.dataset.kbd; }); \
             document.getElementById('kbd-start').remove(); \
             if (out.length) out.push(`focus went: ${window.__kbd.order.join(' ')}`); \
             return out;",
            vec![],
        )
        .await
        .expect("what Tab reached");
    report.as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

/// What both ends say about a call's media, for a failure message: the page's connection states, its received
/// streams (per payload type and SSRC) and its last stats; the kiosk's status.
pub async fn media_report(c: &Client, k: &KioskProcess) -> String {
    let page = js_async(
        c,
        "const call = window.medimitra.call, pc = call.pc; if (!pc) return 'no peer connection'; \
         const rtp = []; (await pc.getStats()).forEach((r) => { \
           if (r.type === 'inbound-rtp' || r.type === 'outbound-rtp') rtp.push(`${r.type} ${r.kind} mid ${r.mid} ssrc ${r.ssrc} \
             packets ${r.packetsReceived ?? r.packetsSent} frames ${r.framesDecoded ?? r.framesEncoded ?? '-'}`); }); \
         return `connection ${pc.connectionState}, ice ${pc.iceConnectionState}, signaling ${pc.signalingState}; \
           transceivers ${pc.getTransceivers().map((t) => `${t.mid}:${t.receiver.track.kind}:${t.currentDirection}`).join(' ')}; \
           ${rtp.join('; ')}; stats ${JSON.stringify(call.stats)}`;",
    )
    .await;
    format!("page: {}\nkiosk: {:?}", page.as_str().unwrap_or_default(), k.kiosk_status())
}

pub async fn end_from_page(c: &Client, k: &KioskProcess) {
    c.find(Locator::Css("#end")).await.expect("end button").click().await.expect("click end");
    wait_for("the call to end at the kiosk", Duration::from_secs(10), || async {
        let s = k.kiosk_status();
        s.call == CallState::Ended && s.media_sessions == 0
    })
    .await;
}

pub async fn banner(c: &Client) -> String {
    js(c, "document.getElementById('banner').textContent").await.as_str().unwrap_or("").to_string()
}
