//! The patient's touch UI without a display: Slint's testing backend with the software renderer, the real call
//! service and media engine (test sources), real SQLite. Buttons are found by their words (accessible labels) and
//! pressed the way a screen reader or a finger would; the doctor is a simulated signaling connection.
//!
//! Every screen at 800x480 and 1920x1080, in English, Hindi and Marathi, is compared with its reference in
//! `tests/ui-reference/`: the texts on screen with their places exactly (`.txt`), and the picture cell by cell
//! (`.png`; a changed word changes a large share of the few cells it covers). A changed look is a visible, reviewed
//! change: `UPDATE_UI_REFERENCE=1` rewrites the references.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use chrono::Utc;
use i_slint_backend_testing::{ElementHandle, TestingBackend, TestingBackendOptions};
use medimitra::calls::{CallsHandle, Command};
use medimitra::config::Config;
use medimitra::core::protocol::DoctorMessage;
use medimitra::core::{Actor, AppointmentStatus, CallState};
use medimitra::shutdown::Shutdown;
use medimitra::store::{Account, Store};
use medimitra::ui::{
    CallAdapter, CheckInAdapter, EndReason, KioskAdapter, KioskWindow, Problem, Screen, TechnicianAdapter, Ui,
    UiContext,
};
use slint::ComponentHandle;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::pty::{Streamer, legacy_frame, pty};
use support::seed::{appointment, seed_people};

fn init_backend() {
    // One backend per test thread (no event loop: the tests call `Ui::tick` themselves).
    let _ = slint::platform::set_platform(Box::new(TestingBackend::new(TestingBackendOptions {
        mock_time: true,
        threading: false,
        renderer_name: Some("software".into()),
    })));
}

struct Rig {
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    store: Store,
    calls: CallsHandle,
    config: Arc<Config>,
    doctor: Account,
    /// Keeps the call service running for the test.
    _shutdown: Shutdown,
    patient: i64,
    slot: std::cell::Cell<i64>,
}

impl Rig {
    fn new(tune: impl FnOnce(&mut Config)) -> Rig {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        config.media.video_source = "test".into();
        config.media.audio_source = "test".into();
        config.media.audio_sink = "none".into();
        config.media.width = 640;
        config.media.height = 360;
        config.ui.technician_pin = "2468".into();
        config.clinic.name = "Sehat Clinic, Rampur".into();
        tune(&mut config);
        let config = Arc::new(config);
        let store = Store::open_in(dir.path()).expect("store");
        let people = seed_people(&store, "x");
        let (doctor, patient) = (people.asha, people.patient);
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
        let engine = medimitra::media::MediaEngine::start(&config.media, &config.ice_servers).expect("media");
        let shutdown = Shutdown::new();
        let calls = {
            let _guard = rt.enter();
            medimitra::calls::spawn(engine, store.clone(), config.clone(), shutdown.signal()).handle
        };
        Rig { _dir: dir, rt, store, calls, config, doctor, patient, slot: std::cell::Cell::new(1), _shutdown: shutdown }
    }

    fn ui(&self) -> Ui {
        let sources = medimitra::media::Sources::resolve(&self.config.media);
        Ui::new(UiContext {
            store: self.store.clone(),
            calls: self.calls.clone(),
            config: self.config.clone(),
            sources,
            doctor_url: "https://10.0.0.5:8443/".into(),
            fingerprint: Some("AB:CD".into()),
            setup_refused: false,
            runtime: self.rt.handle().clone(),
        })
        .expect("ui")
    }

    /// A scheduled appointment today (or `days` from today).
    fn appointment(&self, days: i64) -> i64 {
        let n = self.slot.get();
        self.slot.set(n + 1);
        appointment(&self.store, self.patient, self.doctor.id, days, 5 * n, AppointmentStatus::Scheduled)
    }

    fn status_of(&self, id: i64) -> AppointmentStatus {
        self.store.read_blocking(|db| db.appointment(id)).expect("appointment").status
    }

    /// A doctor's signaling connection: calls for `appointment`, as the web app's Call button does.
    fn doctor_calls(
        &self,
        appointment: i64,
    ) -> tokio::sync::mpsc::UnboundedReceiver<medimitra::core::protocol::KioskMessage> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (reply, conn) = tokio::sync::oneshot::channel();
        self.calls.send(Command::Connect { account: self.doctor.clone(), outbox: tx, reply });
        let conn = self.rt.block_on(conn).expect("conn");
        let capabilities = serde_json::from_value(serde_json::json!({"video": [{"mimeType": "video/H264",
            "sdpFmtpLine": "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}]}))
        .expect("caps");
        self.calls.send(Command::Message {
            conn,
            message: DoctorMessage::CallStart { appointment_id: appointment, capabilities },
        });
        rx
    }
}

fn screen(w: &KioskWindow) -> Screen {
    w.global::<KioskAdapter>().get_screen()
}

fn button(w: &KioskWindow, label: &str) -> ElementHandle {
    ElementHandle::find_by_accessible_label(w, label)
        .find(|e| e.accessible_role() == Some(i_slint_backend_testing::AccessibleRole::Button))
        .unwrap_or_else(|| panic!("no button `{label}` on screen {:?}", screen(w)))
}

fn press(w: &KioskWindow, label: &str) {
    button(w, label).invoke_accessible_default_action();
}

fn has_button(w: &KioskWindow, label: &str) -> bool {
    ElementHandle::find_by_accessible_label(w, label)
        .any(|e| e.accessible_role() == Some(i_slint_backend_testing::AccessibleRole::Button))
}

/// Ticks the UI until `cond` holds (the call service runs on its own threads).
fn until(ui: &Ui, what: &str, cond: impl Fn(&KioskWindow) -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        ui.tick();
        if cond(ui.window()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}; screen {:?}", screen(ui.window()));
}

#[test]
fn a_patient_checks_in_takes_the_call_and_the_next_patient_sees_nothing_of_it() {
    init_backend();
    // A pulse oximeter (emulated, on a pseudo-terminal) read by the kiosk's device hub, as `serve` runs it.
    let oximeter = pty();
    let port = oximeter.path.clone();
    let rig = Rig::new(|c| {
        c.devices.scan_dir = "/nonexistent".into();
        c.devices.ports = vec![medimitra::config::DevicePort {
            path: port,
            protocol: medimitra::core::vitals::Protocol::Cms50dLegacy,
        }];
    });
    let _hub = medimitra::devices::Hub::start(&rig.config.devices, rig.calls.media().vitals.clone(), |_| {});
    let streamer = Streamer::start(oximeter.master, &legacy_frame(97, 72, 40, false));
    let ui = rig.ui();
    let w = ui.window();
    let id = rig.appointment(0);
    rig.appointment(1); // tomorrow's is not offered

    // Welcome -> check-in: today's appointments by first name and time only.
    let checkin = w.global::<CheckInAdapter>();
    let call = w.global::<CallAdapter>();
    assert_eq!(screen(w), Screen::Welcome);
    press(w, "Check in");
    assert_eq!(screen(w), Screen::Checkin);
    // The list arrives from the store off the UI thread.
    until(&ui, "today's appointments", |w| slint::Model::row_count(&w.global::<CheckInAdapter>().get_slots()) > 0);
    let slots: Vec<_> = (0..slint::Model::row_count(&checkin.get_slots()))
        .filter_map(|i| slint::Model::row_data(&checkin.get_slots(), i))
        .collect();
    assert_eq!(slots.len(), 1, "only today's scheduled appointment");
    assert_eq!(slots[0].first_name.as_str(), "Meena", "first name only");
    press(w, &format!("{}   Meena", slots[0].time));
    until(&ui, "the confirmation", |w| screen(w) == Screen::Confirm);
    assert_eq!((checkin.get_confirm_name().as_str(), checkin.get_doctor_name().as_str()), ("Meena", "Dr. Asha Rao"));
    press(w, "Yes, check me in");
    until(&ui, "the waiting screen", |w| screen(w) == Screen::Waiting);
    assert_eq!(rig.status_of(id), AppointmentStatus::CheckedIn);

    // The doctor calls: incoming -> accept -> in call.
    let _doctor = rig.doctor_calls(id);
    until(&ui, "the incoming call", |w| screen(w) == Screen::Incoming);
    assert!(has_button(w, "Accept") && has_button(w, "Decline"));
    press(w, "Accept");
    until(&ui, "the call screen", |w| screen(w) == Screen::Incall);
    assert_eq!(rig.status_of(id), AppointmentStatus::InCall);
    // The self view is the kiosk's own camera, drawn small.
    until(&ui, "the self view", |w| w.global::<CallAdapter>().get_has_self_video());
    // The oximeter's numbers, large, the same the doctor gets; an empty clip asks for the finger in words.
    until(&ui, "the oximeter's numbers", |w| texts_on_screen(w).contains("\"Oxygen\\n97 %\""));
    assert!(texts_on_screen(w).contains("\"Pulse\\n72\""), "{}", texts_on_screen(w));
    streamer.send(&legacy_frame(127, 0, 0, true));
    until(&ui, "the prompt for the finger", |w| texts_on_screen(w).contains("\"Put your finger in the clip\""));
    assert!(texts_on_screen(w).contains("\"Oxygen\\n-- %\""), "no stale number: {}", texts_on_screen(w));
    drop(streamer.stop());
    // The doctor's chat message, large, answered with a big button; the answer goes to the doctor.
    let mut replies = rig.calls.media().chat.replies();
    rig.calls.media().chat.received("Please keep your hand on the table".into());
    until(&ui, "the doctor's message", |w| texts_on_screen(w).contains("\"Please keep your hand on the table\""));
    assert!(texts_on_screen(w).contains("\"Message from the doctor\""));
    press(w, "Please repeat");
    assert_eq!(replies.try_recv().ok(), Some(medimitra::core::chat::QuickReply::PleaseRepeat));
    until(&ui, "the message put away", |w| !texts_on_screen(w).contains("Please keep your hand"));
    // The doctor shows a picture: the screen says so.
    rig.calls.media().chat.set_sharing(true);
    until(&ui, "the sharing label", |w| texts_on_screen(w).contains("\"The doctor is showing you a picture\""));
    // The shared picture fills the screen and the doctor's face goes small beside it; when sharing stops the
    // doctor fills the screen again.
    let frame = |v: u8| medimitra::media::VideoFrame { width: 64, height: 36, rgba: vec![v; 64 * 36 * 4] };
    let pictures = &rig.calls.media().pictures;
    pictures.offer_doctor(frame(40));
    pictures.offer_shared(frame(200));
    let width_of = |w: &KioskWindow, label: &str| {
        ElementHandle::find_by_accessible_label(w, label).next().map(|e| e.size().width).unwrap_or(0.0)
    };
    let full = |w: &KioskWindow| w.window().size().width as f32 / w.window().scale_factor() * 0.9;
    until(&ui, "the shared picture full screen", |w| width_of(w, "shared-picture") > full(w));
    let doctor = width_of(w, "doctor-video");
    assert!(doctor > 0.0 && doctor < full(w) / 2.0, "the doctor's face is small while sharing: {doctor}");
    rig.calls.media().chat.set_sharing(false);
    until(&ui, "the doctor full screen again", |w| width_of(w, "doctor-video") > full(w));
    assert_eq!(width_of(w, "shared-picture"), 0.0);
    rig.calls.media().chat.set_sharing(true);
    // One left unanswered is forgotten with the call (checked after Done below).
    rig.calls.media().chat.received("Are you feeling dizzy?".into());
    until(&ui, "the second message", |w| texts_on_screen(w).contains("\"Are you feeling dizzy?\""));
    // Mute and camera reach the media engine.
    press(w, "Mute");
    assert!(rig.calls.media().controls.muted() && call.get_muted());
    press(w, "Unmute");
    assert!(!rig.calls.media().controls.muted());
    press(w, "Camera off");
    assert!(rig.calls.media().controls.camera_off());
    press(w, "Quieter");
    assert!((rig.calls.media().controls.volume() - 0.6).abs() < 0.01);

    // End, with a confirmation: "No" keeps the call.
    press(w, "End call");
    assert!(call.get_confirm_end());
    press(w, "No, continue");
    assert!(!call.get_confirm_end());
    assert_eq!(rig.calls.status().call, CallState::InCall);
    press(w, "End call");
    press(w, "Yes, end the call");
    until(&ui, "the call-ended screen", |w| screen(w) == Screen::Ended);
    assert_eq!(call.get_ended_reason(), EndReason::PatientEnded);
    // Never connected (no doctor's browser answered): the appointment goes back to checked in.
    assert_eq!(rig.status_of(id), AppointmentStatus::CheckedIn);

    // Done -> Welcome, and nothing of this patient is left in the window.
    press(w, "Done");
    assert_eq!(screen(w), Screen::Welcome);
    for v in [
        checkin.get_confirm_name(),
        checkin.get_doctor_name(),
        checkin.get_appointment_time(),
        checkin.get_code(),
        call.get_doctor_name(),
        call.get_spo2(),
        call.get_pulse(),
        call.get_chat_message(),
    ] {
        assert_eq!(v.as_str(), "");
    }
    assert_eq!(call.get_ended_reason(), EndReason::None);
    assert!(!call.get_oximeter_shown());
    assert_eq!(rig.calls.media().chat.latest().1, None, "the unanswered message is gone with the call");
    assert!(!rig.calls.media().chat.sharing() && !call.get_doctor_sharing());
    assert_eq!(slint::Model::row_count(&checkin.get_slots()), 0);
    assert!(!call.get_has_remote_video() && !call.get_has_self_video());
    assert_eq!(call.get_self_video().size().width, 0, "the self view's picture is gone, not only hidden");
}

#[test]
fn decline_and_auto_decline() {
    init_backend();
    let rig = Rig::new(|c| c.calls.ring_timeout_secs = 2);
    let ui = rig.ui();
    let w = ui.window();
    let id = rig.appointment(0);
    rig.store
        .write_blocking(|db| db.set_appointment_status(id, AppointmentStatus::CheckedIn, Actor::Cli, Utc::now()))
        .expect("in");

    let _d = rig.doctor_calls(id);
    until(&ui, "the incoming call", |w| screen(w) == Screen::Incoming);
    assert!(ui.ringing(), "the ring tone sounds");
    press(w, "Decline");
    until(&ui, "the call-ended screen", |w| screen(w) == Screen::Ended);
    assert_eq!(w.global::<CallAdapter>().get_ended_reason(), EndReason::Declined);
    assert!(!ui.ringing(), "and stops");
    assert_eq!(rig.status_of(id), AppointmentStatus::CheckedIn);
    press(w, "Done");

    // Nobody answers: the call is declined for the patient after ring_timeout_secs.
    let _d = rig.doctor_calls(id);
    until(&ui, "the incoming call", |w| screen(w) == Screen::Incoming);
    until(&ui, "the auto-decline", |w| screen(w) == Screen::Ended);
    assert_eq!(w.global::<CallAdapter>().get_ended_reason(), EndReason::NoAnswer);
    assert_eq!(rig.status_of(id), AppointmentStatus::CheckedIn);
}

#[test]
fn appointment_number_on_the_keypad_and_refusals() {
    init_backend();
    let rig = Rig::new(|_| {});
    let ui = rig.ui();
    let w = ui.window();
    let today = rig.appointment(0);
    let tomorrow = rig.appointment(1);
    press(w, "Check in");
    let type_code = |n: i64| {
        press(w, "Erase");
        for d in n.to_string().chars() {
            press(w, &d.to_string());
        }
    };
    let problem = |w: &KioskWindow| w.global::<CheckInAdapter>().get_problem();
    type_code(9999);
    assert_eq!(w.global::<CheckInAdapter>().get_code().as_str(), "9999");
    press(w, "Continue");
    until(&ui, "the unknown number to be refused", |w| problem(w) == Problem::CodeNotFound);
    assert_eq!(screen(w), Screen::Checkin);
    type_code(tomorrow);
    press(w, "Continue");
    until(&ui, "tomorrow's appointment to be refused", |w| problem(w) == Problem::NotToday);
    assert_eq!(screen(w), Screen::Checkin);
    assert_eq!(rig.status_of(tomorrow), AppointmentStatus::Scheduled);
    type_code(today);
    press(w, "Continue");
    until(&ui, "the confirmation", |w| screen(w) == Screen::Confirm);
    press(w, "No");
    assert_eq!(screen(w), Screen::Welcome);
    assert_eq!(rig.status_of(today), AppointmentStatus::Scheduled, "No changes nothing");
}

#[test]
fn language_switch_is_instant_and_resets_for_the_next_patient() {
    init_backend();
    let rig = Rig::new(|_| {});
    let ui = rig.ui();
    let w = ui.window();
    press(w, "हिन्दी");
    assert_eq!(w.global::<KioskAdapter>().get_language().as_str(), "hi");
    assert!(has_button(w, "चेक-इन करें"), "Hindi labels at once");
    assert!(!has_button(w, "Check in"));
    press(w, "मराठी");
    assert!(has_button(w, "चेक-इन करा"));
    press(w, "चेक-इन करा");
    press(w, "मागे"); // Back
    assert_eq!(screen(w), Screen::Welcome);
    assert_eq!(
        w.global::<KioskAdapter>().get_language().as_str(),
        "en",
        "the next patient starts in the configured language"
    );
    assert!(has_button(w, "Check in"));
}

#[test]
fn the_technician_screen_needs_the_pin() {
    init_backend();
    // An oximeter on an adapter udev linked: the screen lists it with its detected protocol and latest reading.
    let links = tempfile::tempdir().unwrap();
    let oximeter = pty();
    std::os::unix::fs::symlink(&oximeter.path, links.path().join("vitals-ftdi-0")).unwrap();
    let scan = links.path().to_path_buf();
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let stun = format!("urls = [\"stun:127.0.0.1:{}\"]", silent.local_addr().unwrap().port());
    let rig = Rig::new(move |c| {
        c.devices.scan_dir = scan;
        c.ice_servers = vec![toml::from_str(&stun).unwrap()];
    });
    let _hub = medimitra::devices::Hub::start(&rig.config.devices, rig.calls.media().vitals.clone(), |_| {});
    let streamer = Streamer::start(oximeter.master, &legacy_frame(96, 88, 40, false));
    let ui = rig.ui();
    let w = ui.window();
    w.global::<KioskAdapter>().invoke_technician_requested(); // what a 3 s press on the clinic's name does
    assert_eq!(screen(w), Screen::Pin);
    for d in ["1", "2", "3", "4"] {
        press(w, d);
    }
    press(w, "Open");
    assert_eq!(screen(w), Screen::Pin);
    let tech = w.global::<TechnicianAdapter>();
    assert!(tech.get_pin_refused());
    for d in ["2", "4", "6", "8"] {
        press(w, d);
    }
    press(w, "Open");
    assert_eq!(screen(w), Screen::Technician);
    let lines = tech.get_lines();
    assert!(lines.contains("Video encoder: software-"), "{lines}");
    assert!(lines.contains("Camera: none (test picture)"), "{lines}");
    assert!(lines.contains("AB:CD"), "{lines}");
    assert!(lines.contains("Sending: nothing (no call)\nReceiving: nothing (no call)"), "{lines}");
    let device = format!(
        "Vitals device {}/vitals-ftdi-0 (cms50d-legacy): connected, SpO2 96 %  pulse 88 /min",
        links.path().display()
    );
    until(&ui, "the oximeter on the technician screen", |_| tech.get_lines().contains(&device));
    // "Test vitals devices" watches each port for a few seconds: frames make it working, bytes that make no frame
    // (another device, or the wrong baud rate) are not understood, a quiet port says what to do.
    let tested = |expect: &str| {
        press(w, "Test vitals devices");
        assert_eq!(tech.get_devices_result().as_str(), "…");
        let line = format!("{}/vitals-ftdi-0: {expect}", links.path().display());
        until(&ui, &format!("the device test to say {line:?}"), |_| {
            tech.get_devices_result().as_str() != "…" && {
                let shown = tech.get_devices_result();
                assert!(shown.starts_with(&line), "{shown}");
                true
            }
        });
    };
    tested("working: ");
    assert!(tech.get_devices_result().ends_with("latest SpO2 96 %  pulse 88 /min  signal 5/8"));
    streamer.send(&[0x12, 0x34, 0x00, 0x41, 0x27]);
    // The test's window starts from the counts the hub last published: readings as they come, but byte counts only
    // every second from the reader, and the hub publishes every 250 ms. Wait past both after a change at the device
    // (200 ms read "working: 2 readings" in a full run; with no wait after the stop below, a loaded machine read
    // "not understood" from the garbage's late byte count).
    let settle = || std::thread::sleep(Duration::from_millis(1500));
    settle();
    tested("data arrives but is not understood (");
    let master = streamer.stop(); // the device quiet, its adapter still plugged in
    settle();
    tested("connected, no data: switch the oximeter on and put a finger in");
    drop(master);
    tested("not connected: check the cable and the adapter");
    // "Check the network": each configured server and the verdict (here a STUN server that never answers; a real
    // TURN server is tests/netcheck.rs's).
    press(w, "Check the network");
    assert_eq!(tech.get_network_result().as_str(), "…");
    until(&ui, "the network check's result", |_| tech.get_network_result().as_str() != "…");
    assert_eq!(
        tech.get_network_result().as_str(),
        format!(
            "stun:127.0.0.1:{}: no answer\nverdict: cannot reach any STUN or TURN server: doctors outside the \
             clinic's network cannot call; check the internet connection and the ice_servers in the configuration",
            silent.local_addr().unwrap().port()
        )
    );
    assert_eq!(tech.get_doctor_url().as_str(), "https://10.0.0.5:8443/");
    assert!(tech.get_qr().size().width > 0, "the URL as a QR code");
    press(w, "Close");
    assert_eq!(screen(w), Screen::Welcome);

    // With no PIN configured the screen stays closed.
    drop(ui);
    let rig = Rig::new(|c| c.ui.technician_pin = String::new());
    let ui = rig.ui();
    ui.window().global::<KioskAdapter>().invoke_technician_requested();
    assert_eq!(screen(ui.window()), Screen::Welcome);
}

#[test]
fn a_kiosk_without_its_camera_says_so_on_welcome() {
    init_backend();
    // "auto" finds no camera on this machine (CI has none): the calls send a test picture and Welcome says so.
    let rig = Rig::new(|c| c.media.video_source = "auto".into());
    if !medimitra::media::Sources::resolve(&rig.config.media).video_is_test {
        return; // a machine with a camera
    }
    let ui = rig.ui();
    ui.tick();
    assert_eq!(ui.window().global::<KioskAdapter>().get_device_problem(), Problem::NoCamera);
}

// Screenshots ---------------------------------------------------------------------------------------------------

#[test]
fn welcome_keeps_every_button_on_screen_with_a_device_banner() {
    init_backend();
    let rig = Rig::new(|_| {});
    let ui = rig.ui();
    let w = ui.window();
    for (lang, label) in [("en", "English"), ("hi", "हिन्दी"), ("mr", "मराठी")] {
        w.global::<KioskAdapter>().set_screen(Screen::Welcome);
        press(w, label);
        for (width, height) in [(800, 480), (1024, 600), (1280, 800), (1920, 1080)] {
            w.window().set_size(slint::PhysicalSize::new(width, height));
            for problem in [Problem::None, Problem::NoCamera, Problem::NoNetwork, Problem::SetupFailed] {
                fill_for_screenshots(w, Screen::Welcome);
                w.global::<KioskAdapter>().set_device_problem(problem);
                for button in ["English", "हिन्दी", "मराठी"] {
                    let found: Vec<_> = ElementHandle::find_by_accessible_label(w, button).collect();
                    let b = found.first().unwrap_or_else(|| panic!("no {button} button"));
                    let bottom = b.absolute_position().y + b.size().height;
                    assert!(
                        bottom <= height as f32 + 0.5,
                        "{lang} {width}x{height} {problem:?}: the {button} button ends at {bottom}, below the screen"
                    );
                }
            }
        }
    }
}

fn fill_for_screenshots(w: &KioskWindow, screen: Screen) {
    let (kiosk, checkin, call, tech) = (
        w.global::<KioskAdapter>(),
        w.global::<CheckInAdapter>(),
        w.global::<CallAdapter>(),
        w.global::<TechnicianAdapter>(),
    );
    kiosk.set_device_problem(Problem::None);
    kiosk.set_date_text("25-11-2026".into());
    kiosk.set_time_text("10:30".into());
    checkin.set_doctor_name("Dr. Asha Rao".into());
    call.set_doctor_name("Dr. Asha Rao".into());
    checkin.set_appointment_time("10:45".into());
    checkin.set_confirm_name("Meena".into());
    checkin.set_confirm_time("10:45".into());
    call.set_call_timer("4:05".into());
    call.set_quality(3);
    call.set_ended_reason(EndReason::PatientEnded);
    let slots = vec![
        medimitra::ui::Slot { id: 1, first_name: "Meena".into(), time: "10:45".into() },
        medimitra::ui::Slot { id: 2, first_name: "Ravi".into(), time: "11:00".into() },
    ];
    checkin.set_slots(slint::ModelRc::new(slint::VecModel::from(slots)));
    // A fixed picture stands in for the doctor's video.
    let mut buf = slint::SharedPixelBuffer::<slint::Rgba8Pixel>::new(320, 180);
    for (i, p) in buf.make_mut_slice().iter_mut().enumerate() {
        let (x, y) = (i % 320, i / 320);
        *p = slint::Rgba8Pixel { r: (x * 255 / 320) as u8, g: (y * 255 / 180) as u8, b: 120, a: 255 };
    }
    call.set_remote_video(slint::Image::from_rgba8(buf));
    call.set_has_remote_video(screen == Screen::Incall);
    tech.set_pin("24".into());
    tech.set_lines("Camera: none (test picture)\nMicrophone: none (test tone)\nVideo encoder: software-x264\nNetwork: eth0 10.0.0.5".into());
    tech.set_doctor_url("https://10.0.0.5:8443/".into());
    if let Some(qr) = medimitra::ui::qr_image("https://10.0.0.5:8443/") {
        tech.set_qr(qr);
    }
    kiosk.set_screen(screen);
}

/// `UPDATE_UI_REFERENCE=1` (exactly) rewrites the reference images and texts after a deliberate change.
fn updating_references() -> bool {
    std::env::var("UPDATE_UI_REFERENCE").is_ok_and(|v| v == "1")
}

fn reference_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui-reference")
}

/// Every text on screen with its place (logical pixels): the words a patient reads, checked exactly, so a changed,
/// missing or moved word fails however few pixels it covers.
fn texts_on_screen(w: &KioskWindow) -> String {
    use i_slint_backend_testing::AccessibleRole::{Button, Text};
    let mut texts: Vec<(i32, i32, i32, i32, String)> = i_slint_backend_testing::ElementQuery::from_root(w)
        .match_descendants()
        .match_predicate(|e| matches!(e.accessible_role(), Some(Text | Button)))
        .find_all()
        .into_iter()
        .filter_map(|e| {
            let label = e.accessible_label()?.to_string();
            let (p, size) = (e.absolute_position(), e.size());
            (!label.trim().is_empty() && size.width > 0.0 && size.height > 0.0).then(|| {
                (p.y.round() as i32, p.x.round() as i32, size.width.round() as i32, size.height.round() as i32, label)
            })
        })
        .collect();
    // An element that is also a component's root is found twice.
    texts.sort();
    texts.dedup();
    texts.into_iter().map(|(y, x, wd, ht, label)| format!("{x},{y} {wd}x{ht} {label:?}\n")).collect()
}

/// Where each text is on screen, in physical pixels (for erasing it from a screenshot): every `Text` element,
/// the words inside buttons included (those have no accessible label of their own: named by their place).
fn text_boxes(w: &KioskWindow) -> Vec<(String, [u32; 4])> {
    let scale = w.window().scale_factor();
    i_slint_backend_testing::ElementQuery::from_root(w)
        .match_descendants()
        .match_type_name("Text")
        .find_all()
        .into_iter()
        .filter_map(|e| {
            let (p, size) = (e.absolute_position(), e.size());
            let r = [p.x * scale, p.y * scale, size.width * scale, size.height * scale].map(|v| v.max(0.0) as u32);
            let name = e.accessible_label().map_or_else(|| format!("text at {},{}", r[0], r[1]), |l| l.to_string());
            (r[2] > 4 && r[3] > 4).then_some((name, r))
        })
        .collect()
}

/// Pixels differing by more than 40 levels in any channel, counted per cell of a grid of `CELL`-pixel squares: a
/// changed word changes a large share of the few cells it covers, while anti-aliasing noise spreads thin. The worst
/// cell's share, and its place.
const CELL: u32 = 24;
/// A cell may differ in this share of its pixels (measured: 0 on unchanged screens here; a word is 10 % and more).
const CELL_TOLERANCE: f64 = 0.04;

fn worst_cell(a: &[u8], b: &[u8], width: u32, height: u32) -> (f64, u32, u32) {
    let (cols, rows) = (width.div_ceil(CELL), height.div_ceil(CELL));
    let mut differing = vec![0u32; (cols * rows) as usize];
    for (i, (pa, pb)) in a.chunks(4).zip(b.chunks(4)).enumerate() {
        if pa.iter().zip(pb).any(|(x, y)| x.abs_diff(*y) > 40) {
            let (x, y) = (i as u32 % width, i as u32 / width);
            differing[((y / CELL) * cols + x / CELL) as usize] += 1;
        }
    }
    let mut worst = (0.0, 0, 0);
    for (i, n) in differing.iter().enumerate() {
        let (cx, cy) = (i as u32 % cols, i as u32 / cols);
        let cw = CELL.min(width - cx * CELL);
        let ch = CELL.min(height - cy * CELL);
        let share = f64::from(*n) / f64::from(cw * ch);
        if share > worst.0 {
            worst = (share, cx * CELL, cy * CELL);
        }
    }
    worst
}

fn rgba_bytes(shot: &slint::SharedPixelBuffer<slint::Rgba8Pixel>) -> Vec<u8> {
    shot.as_slice().iter().flat_map(|p| [p.r, p.g, p.b, p.a]).collect()
}

fn write_png(path: &std::path::Path, bytes: &[u8], width: u32, height: u32) -> Result<(), String> {
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().and_then(|mut w| w.write_image_data(bytes)).map_err(|e| e.to_string())
}

fn read_png(path: &std::path::Path) -> Result<(Vec<u8>, u32, u32), String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("{}: {e} (UPDATE_UI_REFERENCE=1 writes it)", path.display()))?;
    let mut dec = png::Decoder::new(std::io::BufReader::new(file)).read_info().map_err(|e| e.to_string())?;
    let mut bytes = vec![0; dec.output_buffer_size()];
    let info = dec.next_frame(&mut bytes).map_err(|e| e.to_string())?;
    Ok((bytes, info.width, info.height))
}

/// Compares a screen with its reference picture (cell by cell) and its reference texts (exactly).
fn compare_or_update(
    name: &str,
    w: &KioskWindow,
    shot: &slint::SharedPixelBuffer<slint::Rgba8Pixel>,
) -> Result<(), String> {
    let dir = reference_dir();
    let (png_path, txt_path) = (dir.join(format!("{name}.png")), dir.join(format!("{name}.txt")));
    let (wd, ht) = (shot.width(), shot.height());
    let bytes = rgba_bytes(shot);
    let texts = texts_on_screen(w);
    if updating_references() {
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        write_png(&png_path, &bytes, wd, ht)?;
        return std::fs::write(&txt_path, texts).map_err(|e| e.to_string());
    }
    let want_texts = std::fs::read_to_string(&txt_path)
        .map_err(|e| format!("{}: {e} (UPDATE_UI_REFERENCE=1 writes it)", txt_path.display()))?;
    if texts != want_texts {
        let changed: Vec<String> = diff_lines(&want_texts, &texts);
        return Err(format!("{name}: the texts on screen changed:\n{}", changed.join("\n")));
    }
    let (want, rw, rh) = read_png(&png_path)?;
    if (rw, rh) != (wd, ht) {
        return Err(format!("{name}: size {wd}x{ht}, reference {rw}x{rh}"));
    }
    let (share, x, y) = worst_cell(&bytes, &want, wd, ht);
    if share > CELL_TOLERANCE {
        let out = std::env::temp_dir().join(format!("{name}.actual.png"));
        let _ = write_png(&out, &bytes, wd, ht);
        return Err(format!(
            "{name}: {:.1} % of the {CELL}x{CELL} pixels at ({x}, {y}) differ (saved {})",
            share * 100.0,
            out.display()
        ));
    }
    Ok(())
}

/// The lines only in one of two texts, marked `-` (reference) and `+` (now).
fn diff_lines(want: &str, got: &str) -> Vec<String> {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let mut out: Vec<String> = w.iter().filter(|l| !g.contains(l)).map(|l| format!("- {l}")).collect();
    out.extend(g.iter().filter(|l| !w.contains(l)).map(|l| format!("+ {l}")));
    out
}

const SCREENS: [(&str, Screen); 9] = [
    ("welcome", Screen::Welcome),
    ("checkin", Screen::Checkin),
    ("confirm", Screen::Confirm),
    ("waiting", Screen::Waiting),
    ("incoming", Screen::Incoming),
    ("incall", Screen::Incall),
    ("ended", Screen::Ended),
    ("pin", Screen::Pin),
    ("technician", Screen::Technician),
];

#[test]
fn every_screen_matches_its_reference_image_and_texts_at_both_sizes_in_every_language() {
    init_backend();
    let rig = Rig::new(|_| {});
    let ui = rig.ui();
    let w = ui.window();
    let mut failures = Vec::new();
    for (lang, label) in [("en", "English"), ("hi", "हिन्दी"), ("mr", "मराठी")] {
        w.global::<KioskAdapter>().set_screen(Screen::Welcome);
        press(w, label);
        for (width, height) in [(800, 480), (1920, 1080)] {
            w.window().set_size(slint::PhysicalSize::new(width, height));
            for (name, screen) in SCREENS {
                fill_for_screenshots(w, screen);
                let shot = w.window().take_snapshot().expect("snapshot");
                assert_eq!((shot.width(), shot.height()), (width, height));
                if let Err(e) = compare_or_update(&format!("{name}-{lang}-{width}x{height}"), w, &shot) {
                    failures.push(e);
                }
            }
        }
    }
    assert!(failures.is_empty(), "screens changed:\n{}", failures.join("\n"));
}

/// The picture comparison itself: erasing any single word from a screenshot (painting its box in the colour of its
/// corner) must be caught by the cell comparison alone, on every screen.
#[test]
fn the_picture_comparison_notices_any_single_missing_word() {
    init_backend();
    let rig = Rig::new(|_| {});
    let ui = rig.ui();
    let w = ui.window();
    w.window().set_size(slint::PhysicalSize::new(800, 480));
    let mut missed = Vec::new();
    let mut checked = 0;
    for (name, screen) in SCREENS {
        fill_for_screenshots(w, screen);
        let shot = w.window().take_snapshot().expect("snapshot");
        let (wd, ht) = (shot.width(), shot.height());
        let original = rgba_bytes(&shot);
        assert_eq!(worst_cell(&original, &original, wd, ht).0, 0.0);
        for (label, [x, y, bw, bh]) in text_boxes(w) {
            let mut erased = original.clone();
            let corner = ((y.min(ht - 1) * wd + x.min(wd - 1)) * 4) as usize;
            let fill: [u8; 4] = erased[corner..corner + 4].try_into().expect("pixel");
            for py in y..(y + bh).min(ht) {
                for px in x..(x + bw).min(wd) {
                    let i = ((py * wd + px) * 4) as usize;
                    erased[i..i + 4].copy_from_slice(&fill);
                }
            }
            if erased == original {
                continue; // a text drawn in its own background's colour, or clipped away
            }
            checked += 1;
            if worst_cell(&erased, &original, wd, ht).0 <= CELL_TOLERANCE {
                missed.push(format!("{name}: {label:?}"));
            }
        }
    }
    println!("erased {checked} words one at a time");
    assert!(checked > 80, "only {checked} words were tried");
    assert!(missed.is_empty(), "erased words the comparison did not notice:\n{}", missed.join("\n"));
}
