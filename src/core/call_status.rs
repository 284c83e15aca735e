//! The call-status contract: where the kiosk's call stands, as every edge sees it — the touch UI, the control socket
//! (`medimitra call status`), the doctor's page (`call:state`, `call:ended`) and the call records. Typed here once;
//! the words on the wire come from [`wire_enum!`](super::names) and are listed in `docs/signaling.md`.

use super::names::wire_enum;

wire_enum!(
    /// The kiosk's side of a call, as the patient's screen follows it.
    CallState {
        /// No call.
        Idle = "idle",
        /// A doctor is calling; the patient has not answered yet.
        Incoming = "incoming",
        /// The patient accepted; see [`CallPhase`] for how the media stands.
        InCall = "in_call",
        /// The last call is over; see [`EndReason`].
        Ended = "ended",
    }
);

wire_enum!(
    /// Where a call stands, as the doctor's page shows it (`call:state`).
    CallPhase {
        /// The kiosk is ringing; the patient has not answered yet.
        Ringing = "ringing",
        /// Accepted; media is being negotiated.
        Connecting = "connecting",
        /// Media flows.
        Connected = "connected",
        /// A media session failed or the doctor's socket dropped; a new session is on its way.
        Reconnecting = "reconnecting",
    }
);

wire_enum!(
    /// Why a call ended (`call:ended`, the call record, the patient's last screen).
    EndReason {
        /// The doctor hung up.
        DoctorEnded = "doctor_ended",
        /// The patient ended the call at the kiosk.
        PatientEnded = "patient_ended",
        /// The patient declined the ringing call.
        Declined = "declined",
        /// Nobody answered before the ring timeout.
        NoAnswer = "no_answer",
        /// The doctor's page lost its connection and did not come back in time.
        DoctorLost = "doctor_lost",
        /// Media sessions failed to connect too many times in a row.
        MediaFailed = "media_failed",
        /// The doctor's browser answered in a way that cannot carry the call.
        NegotiationFailed = "negotiation_failed",
        /// Reply to `call:resume` for a call that is over.
        NotResumable = "not_resumable",
        /// The kiosk is shutting down (SIGTERM, a restart by the technician or systemd).
        KioskStopping = "kiosk_stopping",
        /// The doctor's login session ended during the call (logout, password change, account disabled, expiry).
        SessionEnded = "session_ended",
        /// The kiosk restarted (a crash or power loss) while the call ran; found and closed at the next start.
        KioskRestarted = "kiosk_restarted",
    }
);

impl EndReason {
    /// Whether the patient's screen tells them the call was cut off (rather than finished or not taken).
    pub fn is_cut_off(self) -> bool {
        matches!(
            self,
            Self::DoctorLost | Self::MediaFailed | Self::NegotiationFailed | Self::KioskStopping | Self::KioskRestarted
        )
    }

    /// Whether the call never started from the patient's point of view.
    pub fn is_not_taken(self) -> bool {
        matches!(self, Self::Declined | Self::NoAnswer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_words() {
        let words: Vec<&str> = EndReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            words,
            [
                "doctor_ended",
                "patient_ended",
                "declined",
                "no_answer",
                "doctor_lost",
                "media_failed",
                "negotiation_failed",
                "not_resumable",
                "kiosk_stopping",
                "session_ended",
                "kiosk_restarted"
            ]
        );
        assert_eq!(serde_json::to_value(CallState::InCall).unwrap(), "in_call");
        assert_eq!(serde_json::to_value(CallPhase::Reconnecting).unwrap(), "reconnecting");
    }

    #[test]
    fn every_end_reason_is_documented_for_the_doctors_page() {
        let doc = include_str!("../../docs/signaling.md");
        for r in EndReason::ALL {
            assert!(doc.contains(&format!("`{r}`")), "docs/signaling.md does not name the end reason `{r}`");
        }
    }
}
