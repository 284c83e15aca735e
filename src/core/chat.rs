//! Chat during a call, on the call's `chat` data channel: the doctor types short messages that the patient's screen
//! shows large; the patient answers with quick replies, which reach the doctor in English. The rules of what may be
//! sent, and the messages' JSON. Nothing here is stored.

use serde::Deserialize;

use super::names::wire_enum;

/// The data channel's label.
pub const CHAT_CHANNEL: &str = "chat";
/// The longest message a doctor may send (characters): what fits the patient's screen in large type.
pub const MAX_CHAT_CHARS: usize = 300;

wire_enum!(
    /// The patient's answers: big buttons in their language, sent to the doctor in English.
    QuickReply {
        Yes = "yes",
        No = "no",
        PleaseRepeat = "please_repeat",
        CannotHear = "cannot_hear",
        Wait = "wait",
    }
);

impl QuickReply {
    /// What the doctor reads.
    pub fn english(self) -> &'static str {
        match self {
            QuickReply::Yes => "Yes",
            QuickReply::No => "No",
            QuickReply::PleaseRepeat => "Please repeat",
            QuickReply::CannotHear => "I cannot hear you",
            QuickReply::Wait => "Wait",
        }
    }

    /// The JSON sent to the doctor's page.
    pub fn to_json(self) -> String {
        serde_json::json!({"type": "reply", "reply": self.as_str(), "text": self.english()}).to_string()
    }
}

/// Why a message from the doctor's page was not shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    #[error("not a chat message: {0}")]
    NotAMessage(String),
    #[error("the message is empty")]
    Empty,
    #[error("the message has {0} characters; at most {MAX_CHAT_CHARS} fit the patient's screen")]
    TooLong(usize),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Wire {
    Chat { text: String },
    Sharing { on: bool },
}

/// What the doctor's page says on the `chat` channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromDoctor {
    /// A message for the patient's screen (cleaned: see [`from_doctor`]).
    Message(String),
    /// The doctor started (`true`) or stopped showing a picture or their screen in place of their camera.
    Sharing(bool),
}

/// Reads the doctor's JSON (`{"type":"chat","text":"…"}` or `{"type":"sharing","on":true}`). A message is trimmed,
/// its control characters (other than line breaks) removed, and must be 1 to [`MAX_CHAT_CHARS`] characters.
pub fn from_doctor(json: &str) -> Result<FromDoctor, ChatError> {
    match serde_json::from_str(json).map_err(|e| ChatError::NotAMessage(e.to_string()))? {
        Wire::Chat { text } => message(&text).map(FromDoctor::Message),
        Wire::Sharing { on } => Ok(FromDoctor::Sharing(on)),
    }
}

/// The text to show the patient, from the doctor's JSON (only a chat message; see [`from_doctor`]).
pub fn message_from_doctor(json: &str) -> Result<String, ChatError> {
    match from_doctor(json)? {
        FromDoctor::Message(m) => Ok(m),
        FromDoctor::Sharing(_) => Err(ChatError::NotAMessage("a sharing notice, not a message".into())),
    }
}

fn message(text: &str) -> Result<String, ChatError> {
    let clean: String = text.chars().filter(|c| !c.is_control() || *c == '\n').collect();
    let clean = clean.trim();
    let n = clean.chars().count();
    if n == 0 {
        return Err(ChatError::Empty);
    }
    if n > MAX_CHAT_CHARS {
        return Err(ChatError::TooLong(n));
    }
    Ok(clean.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_doctor_message_is_cleaned_and_bounded() {
        assert_eq!(
            message_from_doctor(r#"{"type":"chat","text":"  Please sit still.\u0007 "}"#).as_deref(),
            Ok("Please sit still.")
        );
        assert_eq!(
            message_from_doctor(r#"{"type":"chat","text":"Line one\nline two"}"#).as_deref(),
            Ok("Line one\nline two")
        );
        assert_eq!(message_from_doctor(r#"{"type":"chat","text":" \u0000 "}"#), Err(ChatError::Empty));
        let long = format!(r#"{{"type":"chat","text":"{}"}}"#, "x".repeat(301));
        assert_eq!(message_from_doctor(&long), Err(ChatError::TooLong(301)));
        assert!(matches!(message_from_doctor("hello"), Err(ChatError::NotAMessage(_))));
        assert!(matches!(
            message_from_doctor(r#"{"type":"chat","text":"x","extra":1}"#),
            Err(ChatError::NotAMessage(_))
        ));
        assert!(matches!(message_from_doctor(r#"{"type":"vitals"}"#), Err(ChatError::NotAMessage(_))));
    }

    #[test]
    fn the_doctor_says_when_a_picture_is_shown_instead_of_the_camera() {
        assert_eq!(from_doctor(r#"{"type":"sharing","on":true}"#), Ok(FromDoctor::Sharing(true)));
        assert_eq!(from_doctor(r#"{"type":"sharing","on":false}"#), Ok(FromDoctor::Sharing(false)));
        assert!(matches!(from_doctor(r#"{"type":"sharing","on":"yes"}"#), Err(ChatError::NotAMessage(_))));
        assert_eq!(from_doctor(r#"{"type":"chat","text":"Hi"}"#), Ok(FromDoctor::Message("Hi".into())));
    }

    #[test]
    fn a_quick_reply_reaches_the_doctor_in_english() {
        let sent: serde_json::Value = serde_json::from_str(&QuickReply::CannotHear.to_json()).unwrap_or_default();
        assert_eq!(sent, serde_json::json!({"type": "reply", "reply": "cannot_hear", "text": "I cannot hear you"}));
        assert_eq!("please_repeat".parse::<QuickReply>(), Ok(QuickReply::PleaseRepeat));
    }
}
