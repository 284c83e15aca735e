//! Local control of the kiosk without a screen: a Unix socket in the data dir (mode 0600, so only the kiosk's user
//! and root can use it) taking one JSON line per request: `{"command": "accept" | "decline" | "end" | "status"}`.
//! `medimitra call …` is its client; the touch UI drives the same [`CallsHandle`] directly.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::{CallsHandle, PatientIntent};

pub const SOCKET_NAME: &str = "control.sock";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    command: String,
}

/// Serves the control socket until the runtime stops. Replaces a stale socket file from an earlier run.
pub fn serve(data_dir: &Path, calls: CallsHandle) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = data_dir.join(SOCKET_NAME);
    if path.exists() {
        std::fs::remove_file(&path)?;
    }
    let listener = tokio::net::UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let calls = calls.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read.take(4096)).lines();
                if let Ok(Some(line)) = lines.next_line().await {
                    let reply = answer(&calls, &line);
                    let _ = write.write_all(format!("{reply}\n").as_bytes()).await;
                }
            });
        }
    });
    Ok(path)
}

fn answer(calls: &CallsHandle, line: &str) -> serde_json::Value {
    let req: Request = match serde_json::from_str(line) {
        Ok(r) => r,
        Err(e) => return serde_json::json!({"ok": false, "error": format!("bad request: {e}")}),
    };
    let intent = match req.command.as_str() {
        "status" => None,
        "accept" => Some(PatientIntent::Accept),
        "decline" => Some(PatientIntent::Decline),
        "end" => Some(PatientIntent::End),
        other => {
            return serde_json::json!({"ok": false, "error": format!("unknown command `{other}` (accept, decline, end, status)")});
        }
    };
    let before = calls.status();
    if let Some(i) = intent {
        let applicable = match i {
            PatientIntent::Accept | PatientIntent::Decline => before.call == "incoming",
            PatientIntent::End => before.call == "in_call" || before.call == "incoming",
        };
        if !applicable {
            return serde_json::json!({"ok": false, "error": format!("nothing to {} (the kiosk is {})", req.command, before.call), "status": before});
        }
        calls.patient(i);
    }
    serde_json::json!({"ok": true, "status": calls.status()})
}

/// Client side, for the CLI: sends one command and returns the reply line.
pub fn request(data_dir: &Path, command: &str) -> std::io::Result<serde_json::Value> {
    use std::io::{BufRead, Write};
    let path = data_dir.join(SOCKET_NAME);
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot reach the kiosk at {}: {e} (is `medimitra serve` running?)", path.display()),
        )
    })?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    writeln!(stream, "{}", serde_json::json!({ "command": command }))?;
    let mut line = String::new();
    std::io::BufReader::new(stream).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
