//! Local control of the kiosk without a screen: a Unix socket in the data dir (mode 0600, so only the kiosk's user
//! and root can use it) taking one JSON line per request: `{"command": "accept" | "decline" | "end" | "status"}`
//! or `{"command": "reply", "reply": "yes" | "no" | "please_repeat" | "cannot_hear" | "wait"}`,
//! answered with `{"ok": bool, "error"?: text, "status": KioskStatus}`. `medimitra call …` is its client; the touch
//! UI drives the same [`CallsHandle`] directly.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::{CallsHandle, KioskStatus, PatientIntent};
use crate::core::CallState;
use crate::core::names::wire_enum;
use crate::shutdown::ShutdownSignal;

pub const SOCKET_NAME: &str = "control.sock";

wire_enum!(
    /// What the local control can ask.
    ControlCommand {
        Accept = "accept",
        Decline = "decline",
        End = "end",
        Status = "status",
        /// The patient's quick reply to the doctor's chat message (with `reply`).
        Reply = "reply",
    }
);

impl ControlCommand {
    fn intent(self) -> Option<PatientIntent> {
        match self {
            Self::Accept => Some(PatientIntent::Accept),
            Self::Decline => Some(PatientIntent::Decline),
            Self::End => Some(PatientIntent::End),
            Self::Status | Self::Reply => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    command: ControlCommand,
    /// For `reply`: `yes`, `no`, `please_repeat`, `cannot_hear` or `wait`.
    #[serde(default)]
    reply: Option<String>,
}

/// The answer to one request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<KioskStatus>,
}

/// Serves the control socket until `shutdown` fires, then removes it. Replaces a stale socket file from an earlier
/// run.
pub fn serve(data_dir: &Path, calls: CallsHandle, mut shutdown: ShutdownSignal) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = data_dir.join(SOCKET_NAME);
    if path.exists() {
        std::fs::remove_file(&path)?;
    }
    let listener = tokio::net::UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let socket_file = path.clone();
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                _ = shutdown.wait() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => break,
                },
            };
            let calls = calls.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read.take(4096)).lines();
                if let Ok(Some(line)) = lines.next_line().await {
                    let reply = serde_json::to_string(&answer(&calls, &line)).unwrap_or_default();
                    let _ = write.write_all(format!("{reply}\n").as_bytes()).await;
                }
            });
        }
        let _ = std::fs::remove_file(&socket_file);
    });
    Ok(path)
}

fn answer(calls: &CallsHandle, line: &str) -> Reply {
    let (command, reply) = match serde_json::from_str::<Request>(line) {
        Ok(r) => (r.command, r.reply),
        Err(e) => return Reply { ok: false, error: Some(format!("bad request: {e}")), status: None },
    };
    let before = calls.status();
    if command == ControlCommand::Reply {
        let answer = match reply.as_deref().map(str::parse::<crate::core::chat::QuickReply>) {
            Some(Ok(answer)) => answer,
            Some(Err(e)) => return Reply { ok: false, error: Some(e), status: Some(before) },
            None => return Reply { ok: false, error: Some("reply needs an answer".into()), status: Some(before) },
        };
        if before.call != CallState::InCall {
            let error = format!("nothing to reply to (the kiosk is {})", before.call);
            return Reply { ok: false, error: Some(error), status: Some(before) };
        }
        calls.media().chat.reply(answer);
        return Reply { ok: true, error: None, status: Some(calls.status()) };
    }
    if let Some(intent) = command.intent() {
        let applicable = match intent {
            PatientIntent::Accept | PatientIntent::Decline => before.call == CallState::Incoming,
            PatientIntent::End => matches!(before.call, CallState::InCall | CallState::Incoming),
        };
        if !applicable {
            let error = format!("nothing to {command} (the kiosk is {})", before.call);
            return Reply { ok: false, error: Some(error), status: Some(before) };
        }
        calls.patient(intent);
    }
    Reply { ok: true, error: None, status: Some(calls.status()) }
}

/// Client side, for the CLI and tests: sends one command and returns the reply.
pub fn request(data_dir: &Path, command: ControlCommand) -> std::io::Result<Reply> {
    request_with(data_dir, command, None)
}

/// [`request`] with the patient's quick reply (for [`ControlCommand::Reply`]).
pub fn request_with(
    data_dir: &Path,
    command: ControlCommand,
    reply: Option<crate::core::chat::QuickReply>,
) -> std::io::Result<Reply> {
    use std::io::{BufRead, Write};
    let path = data_dir.join(SOCKET_NAME);
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot reach the kiosk at {}: {e} (is `medimitra serve` running?)", path.display()),
        )
    })?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let request = match reply {
        Some(r) => serde_json::json!({ "command": command.as_str(), "reply": r.as_str() }),
        None => serde_json::json!({ "command": command.as_str() }),
    };
    writeln!(stream, "{request}")?;
    let mut line = String::new();
    std::io::BufReader::new(stream).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
