//! The call state machine, one behaviour per test, asserting the exact effects.

use super::*;
use crate::core::call_status::CallPhase::*;

const DOC: ConnId = 1;
const OTHER: ConnId = 2;

fn appt(status: AppointmentStatus) -> AppointmentInfo {
    AppointmentInfo { id: 7, doctor_id: 10, doctor_name: "Dr. Rao".into(), status }
}

fn state(conn: ConnId, phase: CallPhase) -> Effect {
    Effect::Send {
        conn,
        message: KioskMessage::CallState {
            call_id: "c1".into(),
            appointment_id: 7,
            state: phase,
            codec: VideoCodec::H264,
        },
    }
}

fn patient(phase: CallPhase) -> Effect {
    Effect::Patient(PatientView::InCall { call_id: "c1".into(), doctor_name: "Dr. Rao".into(), phase })
}

fn ended(conn: ConnId, why: EndReason) -> Effect {
    Effect::Send { conn, message: KioskMessage::CallEnded { call_id: "c1".into(), reason: why } }
}

fn settings() -> CallSettings {
    CallSettings::default()
}

/// Session 1 stopped, session 2 started with its connect timer, both sides told "reconnecting".
fn session_1_replaced() -> Vec<Effect> {
    vec![
        Effect::StopMedia { session_id: "c1-s1".into() },
        Effect::StartMedia { session_id: "c1-s2".into(), codec: VideoCodec::H264 },
        Effect::StartTimer { call_id: "c1".into(), timer: Timer::Connect(2), after: settings().connect_timeout },
        state(DOC, Reconnecting),
        patient(Reconnecting),
    ]
}

fn ringing() -> CallCore {
    let mut core = CallCore::new(settings());
    core.handle(Event::DoctorStart {
        conn: DOC,
        doctor_id: 10,
        appointment: appt(AppointmentStatus::CheckedIn),
        codec: Ok(VideoCodec::H264),
    });
    core
}

fn connected() -> CallCore {
    let mut core = ringing();
    core.handle(Event::PatientAccept);
    core.handle(Event::MediaConnected { session_id: "c1-s1".into() });
    core
}

#[test]
fn start_rings_the_patient_and_tells_the_doctor() {
    let mut core = CallCore::new(settings());
    let fx = core.handle(Event::DoctorStart {
        conn: DOC,
        doctor_id: 10,
        appointment: appt(AppointmentStatus::CheckedIn),
        codec: Ok(VideoCodec::H264),
    });
    assert_eq!(
        fx,
        vec![
            Effect::StartTimer { call_id: "c1".into(), timer: Timer::Ring, after: settings().ring_timeout },
            state(DOC, Ringing),
            Effect::Patient(PatientView::Incoming { call_id: "c1".into(), doctor_name: "Dr. Rao".into() }),
        ]
    );
    assert_eq!(core.current(), Some(("c1", 10, Ringing)));
}

#[test]
fn a_second_doctor_gets_busy_and_the_call_goes_on() {
    let mut core = ringing();
    let fx = core.handle(Event::DoctorStart {
        conn: OTHER,
        doctor_id: 11,
        appointment: AppointmentInfo {
            id: 8,
            doctor_id: 11,
            doctor_name: "Dr. Sen".into(),
            status: AppointmentStatus::CheckedIn,
        },
        codec: Ok(VideoCodec::H264),
    });
    assert_eq!(
        fx,
        vec![Effect::Send {
            conn: OTHER,
            message: KioskMessage::Busy { message: "the kiosk is in another call".into() }
        }]
    );
    assert_eq!(core.current(), Some(("c1", 10, Ringing)));
}

#[test]
fn calls_are_refused_for_foreign_unready_or_codecless_appointments() {
    let mut core = CallCore::new(settings());
    let cases = [
        (11, appt(AppointmentStatus::CheckedIn), Ok(VideoCodec::H264), ErrorCode::Forbidden),
        (10, appt(AppointmentStatus::Scheduled), Ok(VideoCodec::H264), ErrorCode::NotCheckedIn),
        (10, appt(AppointmentStatus::Completed), Ok(VideoCodec::H264), ErrorCode::NotCheckedIn),
        (10, appt(AppointmentStatus::CheckedIn), Err("no video codec in common".to_string()), ErrorCode::NoCommonCodec),
    ];
    for (doctor_id, appointment, codec, code) in cases {
        let fx = core.handle(Event::DoctorStart { conn: DOC, doctor_id, appointment, codec });
        assert!(
            matches!(&fx[..], [Effect::Send { conn: DOC, message: KioskMessage::Error { code: c, .. } }] if *c == code),
            "{code}: {fx:?}"
        );
        assert_eq!(core.current(), None);
    }
}

#[test]
fn accept_moves_the_appointment_in_call_and_starts_the_first_session() {
    let mut core = ringing();
    let fx = core.handle(Event::PatientAccept);
    assert_eq!(
        fx,
        vec![
            Effect::SetAppointmentStatus { appointment_id: 7, status: AppointmentStatus::InCall },
            Effect::OpenCallRecord { appointment_id: 7 },
            Effect::StartMedia { session_id: "c1-s1".into(), codec: VideoCodec::H264 },
            Effect::StartTimer { call_id: "c1".into(), timer: Timer::Connect(1), after: settings().connect_timeout },
            state(DOC, Connecting),
            patient(Connecting),
        ]
    );
    assert!(core.handle(Event::PatientAccept).is_empty(), "a second accept does nothing");
}

#[test]
fn decline_and_ring_timeout_end_without_touching_the_appointment() {
    for (event, why) in [
        (Event::PatientDecline, EndReason::Declined),
        (Event::TimerFired { call_id: "c1".into(), timer: Timer::Ring }, EndReason::NoAnswer),
    ] {
        let mut core = ringing();
        let fx = core.handle(event);
        assert_eq!(fx, vec![ended(DOC, why), Effect::Patient(PatientView::Ended { reason: why })]);
        assert_eq!(core.current(), None);
    }
}

#[test]
fn a_late_ring_timer_or_decline_does_nothing_once_accepted() {
    let mut core = ringing();
    core.handle(Event::PatientAccept);
    assert!(core.handle(Event::TimerFired { call_id: "c1".into(), timer: Timer::Ring }).is_empty());
    assert!(core.handle(Event::PatientDecline).is_empty());
}

#[test]
fn offers_and_candidates_flow_for_the_current_session_only() {
    let mut core = ringing();
    core.handle(Event::PatientAccept);
    let fx = core.handle(Event::MediaOffer { session_id: "c1-s1".into(), sdp: "v=0".into() });
    assert_eq!(
        fx,
        vec![Effect::Send {
            conn: DOC,
            message: KioskMessage::Offer { session_id: "c1-s1".into(), sdp: "v=0".into() }
        }]
    );
    assert!(core.handle(Event::MediaOffer { session_id: "c1-s0".into(), sdp: "v=0".into() }).is_empty());
    let cand = Some(IceCandidate { candidate: "candidate:x".into(), sdp_m_line_index: 0, sdp_mid: None });
    let fx = core.handle(Event::DoctorCandidate { conn: DOC, session_id: "c1-s1".into(), candidate: cand.clone() });
    assert_eq!(fx, vec![Effect::AddRemoteCandidate { session_id: "c1-s1".into(), candidate: cand.clone() }]);
    assert!(
        core.handle(Event::DoctorCandidate { conn: OTHER, session_id: "c1-s1".into(), candidate: cand.clone() })
            .is_empty(),
        "another socket"
    );
    assert!(
        core.handle(Event::DoctorCandidate { conn: DOC, session_id: "c1-s9".into(), candidate: cand }).is_empty(),
        "another session"
    );
}

#[test]
fn a_good_answer_is_applied_and_a_bad_one_ends_the_call_with_a_reason() {
    let good = "v=0\r\na=group:BUNDLE 0 1\r\nm=audio 9 X 111\r\na=rtpmap:111 opus/48000/2\r\nm=video 9 X 96\r\na=rtpmap:96 H264/90000\r\n";
    let mut core = ringing();
    core.handle(Event::PatientAccept);
    let fx = core.handle(Event::DoctorAnswer { conn: DOC, session_id: "c1-s1".into(), sdp: good.into() });
    assert_eq!(fx, vec![Effect::ApplyAnswer { session_id: "c1-s1".into(), sdp: good.into() }]);

    let fx = core.handle(Event::DoctorAnswer {
        conn: DOC,
        session_id: "c1-s1".into(),
        sdp: good.replace("m=video 9", "m=video 0"),
    });
    assert!(
        matches!(&fx[0], Effect::Send { message: KioskMessage::Error { code, .. }, .. } if *code == ErrorCode::NegotiationFailed)
    );
    assert_eq!(
        fx[1..],
        [
            Effect::StopMedia { session_id: "c1-s1".into() },
            ended(DOC, EndReason::NegotiationFailed),
            Effect::SetAppointmentStatus { appointment_id: 7, status: AppointmentStatus::CheckedIn },
            Effect::CloseCallRecord { reason: EndReason::NegotiationFailed },
            Effect::Patient(PatientView::Ended { reason: EndReason::NegotiationFailed }),
        ]
    );
}

#[test]
fn connected_then_ended_by_the_doctor_completes_the_appointment() {
    let mut core = ringing();
    core.handle(Event::PatientAccept);
    let fx = core.handle(Event::MediaConnected { session_id: "c1-s1".into() });
    assert_eq!(fx, vec![state(DOC, Connected), patient(Connected)]);
    let fx = core.handle(Event::DoctorEnd { conn: DOC, call_id: "c1".into() });
    assert_eq!(
        fx,
        vec![
            Effect::StopMedia { session_id: "c1-s1".into() },
            ended(DOC, EndReason::DoctorEnded),
            Effect::SetAppointmentStatus { appointment_id: 7, status: AppointmentStatus::Completed },
            Effect::CloseCallRecord { reason: EndReason::DoctorEnded },
            Effect::Patient(PatientView::Ended { reason: EndReason::DoctorEnded }),
        ]
    );
    assert_eq!(core.current(), None);
}

#[test]
fn only_the_calling_doctor_can_end_the_call() {
    let mut core = connected();
    let fx = core.handle(Event::DoctorEnd { conn: OTHER, call_id: "c1".into() });
    assert!(matches!(&fx[..], [Effect::Send { conn: OTHER, message: KioskMessage::Error { .. } }]));
    assert!(core.current().is_some());
}

#[test]
fn the_patient_can_end_the_call() {
    let mut core = connected();
    let fx = core.handle(Event::PatientEnd);
    assert!(fx.contains(&ended(DOC, EndReason::PatientEnded)));
    assert!(fx.contains(&Effect::SetAppointmentStatus { appointment_id: 7, status: AppointmentStatus::Completed }));
}

#[test]
fn a_failed_session_is_replaced_by_a_fresh_one_in_the_same_call() {
    let mut core = connected();
    let fx = core.handle(Event::MediaFailed { session_id: "c1-s1".into(), reason: "ICE failed".into() });
    assert_eq!(fx, session_1_replaced());
    // Stale messages from session 1 are now ignored.
    assert!(core.handle(Event::MediaConnected { session_id: "c1-s1".into() }).is_empty());
    assert!(core.handle(Event::DoctorAnswer { conn: DOC, session_id: "c1-s1".into(), sdp: "v=0".into() }).is_empty());
    assert!(core.handle(Event::TimerFired { call_id: "c1".into(), timer: Timer::Connect(1) }).is_empty());
    // The page can report failure too.
    let fx =
        core.handle(Event::DoctorSessionFailed { conn: DOC, session_id: "c1-s2".into(), reason: "ice failed".into() });
    assert!(fx.contains(&Effect::StartMedia { session_id: "c1-s3".into(), codec: VideoCodec::H264 }));
}

#[test]
fn interrupted_media_that_comes_back_keeps_its_session() {
    let mut core = connected();
    let fx = core.handle(Event::MediaInterrupted { session_id: "c1-s1".into() });
    assert_eq!(
        fx,
        vec![
            Effect::StartTimer {
                call_id: "c1".into(),
                timer: Timer::Interrupted(1, 1),
                after: settings().interrupt_grace
            },
            state(DOC, Reconnecting),
            patient(Reconnecting),
        ]
    );
    let fx = core.handle(Event::MediaConnected { session_id: "c1-s1".into() });
    assert_eq!(
        fx,
        vec![Effect::RefreshPicture { session_id: "c1-s1".into() }, state(DOC, Connected), patient(Connected)]
    );
    // The grace timer of that interruption finds the media back and does nothing.
    assert!(core.handle(Event::TimerFired { call_id: "c1".into(), timer: Timer::Interrupted(1, 1) }).is_empty());
}

#[test]
fn media_interrupted_for_longer_than_the_grace_gets_a_fresh_session() {
    let mut core = connected();
    core.handle(Event::MediaInterrupted { session_id: "c1-s1".into() });
    core.handle(Event::MediaConnected { session_id: "c1-s1".into() });
    core.handle(Event::MediaInterrupted { session_id: "c1-s1".into() });
    // The first interruption's timer is stale: a second interruption started its own clock.
    assert!(core.handle(Event::TimerFired { call_id: "c1".into(), timer: Timer::Interrupted(1, 1) }).is_empty());
    let fx = core.handle(Event::TimerFired { call_id: "c1".into(), timer: Timer::Interrupted(1, 2) });
    assert_eq!(fx, session_1_replaced());
}

#[test]
fn the_connect_timer_of_a_session_that_connected_does_not_replace_it_during_an_interruption() {
    // Seen in the network bench: a cut 12 s into a session; its 15 s connect timer fired while the media was
    // interrupted and replaced a session that had connected long before, while the network was still down.
    let mut core = connected();
    core.handle(Event::MediaInterrupted { session_id: "c1-s1".into() });
    assert!(core.handle(Event::TimerFired { call_id: "c1".into(), timer: Timer::Connect(1) }).is_empty());
    // The interruption's own grace still applies.
    let fx = core.handle(Event::TimerFired { call_id: "c1".into(), timer: Timer::Interrupted(1, 1) });
    assert_eq!(fx, session_1_replaced());
}

#[test]
fn interruptions_outside_a_connected_session_are_ignored() {
    // While ringing, for a stale session, or before the session ever connected.
    let mut core = ringing();
    assert!(core.handle(Event::MediaInterrupted { session_id: "c1-s1".into() }).is_empty());
    core.handle(Event::PatientAccept);
    assert!(core.handle(Event::MediaInterrupted { session_id: "c1-s1".into() }).is_empty());
    core.handle(Event::MediaConnected { session_id: "c1-s1".into() });
    assert!(core.handle(Event::MediaInterrupted { session_id: "c1-s0".into() }).is_empty());
    // A doctor whose socket dropped: the reconnect grace rules, not the interruption timer.
    core.handle(Event::MediaInterrupted { session_id: "c1-s1".into() });
    core.handle(Event::DoctorDisconnected { conn: DOC });
    assert!(core.handle(Event::TimerFired { call_id: "c1".into(), timer: Timer::Interrupted(1, 1) }).is_empty());
}

#[test]
fn too_many_failures_in_a_row_end_the_call() {
    let mut core = ringing();
    core.handle(Event::PatientAccept);
    let mut fx = Vec::new();
    for n in 1..=settings().max_session_attempts {
        fx = core.handle(Event::TimerFired { call_id: "c1".into(), timer: Timer::Connect(n) });
    }
    assert!(fx.contains(&ended(DOC, EndReason::MediaFailed)), "{fx:?}");
    assert!(fx.contains(&Effect::SetAppointmentStatus { appointment_id: 7, status: AppointmentStatus::CheckedIn }));
    assert_eq!(core.current(), None);
}

#[test]
fn a_dropped_doctor_can_resume_within_the_grace_period() {
    let mut core = connected();
    let fx = core.handle(Event::DoctorDisconnected { conn: DOC });
    assert_eq!(
        fx,
        vec![
            Effect::StopMedia { session_id: "c1-s1".into() },
            Effect::StartTimer { call_id: "c1".into(), timer: Timer::Reconnect, after: settings().reconnect_grace },
            patient(Reconnecting),
        ]
    );
    // Another doctor cannot take the call over.
    let fx = core.handle(Event::DoctorResume {
        conn: OTHER,
        doctor_id: 11,
        call_id: "c1".into(),
        codec: Ok(VideoCodec::H264),
    });
    assert!(matches!(&fx[..], [Effect::Send { conn: OTHER, message: KioskMessage::CallEnded { .. } }]));
    let fx =
        core.handle(Event::DoctorResume { conn: 3, doctor_id: 10, call_id: "c1".into(), codec: Ok(VideoCodec::Vp8) });
    assert_eq!(fx[0], Effect::StartMedia { session_id: "c1-s2".into(), codec: VideoCodec::Vp8 });
    assert!(
        core.handle(Event::TimerFired { call_id: "c1".into(), timer: Timer::Reconnect }).is_empty(),
        "back in time"
    );
    assert!(!core.handle(Event::MediaConnected { session_id: "c1-s2".into() }).is_empty());
    assert_eq!(core.current(), Some(("c1", 10, Connected)));
}

#[test]
fn a_doctor_who_does_not_come_back_ends_the_call() {
    let mut core = connected();
    core.handle(Event::DoctorDisconnected { conn: DOC });
    let fx = core.handle(Event::TimerFired { call_id: "c1".into(), timer: Timer::Reconnect });
    assert!(fx.contains(&Effect::SetAppointmentStatus { appointment_id: 7, status: AppointmentStatus::Completed }));
    assert!(fx.contains(&Effect::CloseCallRecord { reason: EndReason::DoctorLost }));
    assert_eq!(core.current(), None);
}

#[test]
fn a_doctor_leaving_while_it_rings_ends_the_call() {
    let mut core = ringing();
    assert!(core.handle(Event::DoctorDisconnected { conn: OTHER }).is_empty());
    let fx = core.handle(Event::DoctorDisconnected { conn: DOC });
    assert_eq!(fx, vec![Effect::Patient(PatientView::Ended { reason: EndReason::DoctorLost })]);
    assert_eq!(core.current(), None);
}

#[test]
fn a_new_call_can_start_after_the_last_one_ended() {
    let mut core = connected();
    core.handle(Event::PatientEnd);
    let fx = core.handle(Event::DoctorStart {
        conn: DOC,
        doctor_id: 10,
        appointment: appt(AppointmentStatus::CheckedIn),
        codec: Ok(VideoCodec::Vp8),
    });
    assert_eq!(core.current(), Some(("c2", 10, Ringing)));
    assert_eq!(fx.len(), 3);
}

#[test]
fn stopping_the_kiosk_ends_a_connected_call_and_gives_the_appointment_back() {
    let mut core = connected();
    let fx = core.handle(Event::KioskStopping);
    assert_eq!(
        fx,
        vec![
            Effect::StopMedia { session_id: "c1-s1".into() },
            ended(DOC, EndReason::KioskStopping),
            Effect::SetAppointmentStatus { appointment_id: 7, status: AppointmentStatus::CheckedIn },
            Effect::CloseCallRecord { reason: EndReason::KioskStopping },
            Effect::Patient(PatientView::Ended { reason: EndReason::KioskStopping }),
        ]
    );
    assert_eq!(core.current(), None);
    assert!(core.handle(Event::KioskStopping).is_empty(), "nothing more to stop");
}

#[test]
fn stopping_the_kiosk_while_it_rings_tells_the_doctor() {
    let mut core = ringing();
    let fx = core.handle(Event::KioskStopping);
    assert_eq!(
        fx,
        vec![
            ended(DOC, EndReason::KioskStopping),
            Effect::Patient(PatientView::Ended { reason: EndReason::KioskStopping })
        ]
    );
}

#[test]
fn call_ids_carry_the_prefix_of_this_run() {
    let mut core = CallCore::with_id_prefix(settings(), "c7f3a-");
    core.handle(Event::DoctorStart {
        conn: DOC,
        doctor_id: 10,
        appointment: appt(AppointmentStatus::CheckedIn),
        codec: Ok(VideoCodec::H264),
    });
    assert_eq!(core.current().map(|(id, _, _)| id.to_string()), Some("c7f3a-1".to_string()));
}

#[test]
fn the_first_connection_of_a_session_needs_no_extra_keyframe() {
    // Its first frame is a keyframe anyway.
    let mut core = ringing();
    core.handle(Event::PatientAccept);
    let fx = core.handle(Event::MediaConnected { session_id: "c1-s1".into() });
    assert!(!fx.iter().any(|e| matches!(e, Effect::RefreshPicture { .. })));
}

#[test]
fn a_doctor_whose_session_ends_ends_the_call_at_once() {
    let mut core = connected();
    assert!(core.handle(Event::DoctorSessionEnded { conn: OTHER }).is_empty(), "another doctor's session");
    let fx = core.handle(Event::DoctorSessionEnded { conn: DOC });
    assert!(fx.contains(&Effect::StopMedia { session_id: "c1-s1".into() }));
    assert!(fx.contains(&ended(DOC, EndReason::SessionEnded)));
    assert!(fx.contains(&Effect::CloseCallRecord { reason: EndReason::SessionEnded }));
    assert_eq!(core.current(), None);
    // The socket's disconnect that follows finds no call.
    assert!(core.handle(Event::DoctorDisconnected { conn: DOC }).is_empty());

    let mut core = ringing();
    let fx = core.handle(Event::DoctorSessionEnded { conn: DOC });
    assert!(fx.contains(&Effect::Patient(PatientView::Ended { reason: EndReason::SessionEnded })));
    assert_eq!(core.current(), None);
}
