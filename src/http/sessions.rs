//! Which signaling sockets belong to which login session, so that a session ended through the API (logout, a
//! password change, the account disabled) closes its sockets, and their calls, at once. Sessions ended elsewhere
//! (expiry, the command line, provisioning) are caught by each socket checking its session again on every keepalive
//! tick.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

#[derive(Default)]
pub struct SessionSockets {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Entry>>,
}

struct Entry {
    account: i64,
    token_hash: String,
    end: oneshot::Sender<()>,
}

/// A socket's place in the registry: `ended` resolves when its session ends; dropping it leaves the registry.
pub struct Registered {
    id: u64,
    registry: Arc<SessionSockets>,
    pub ended: oneshot::Receiver<()>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

impl SessionSockets {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn register(self: &Arc<Self>, account: i64, token_hash: &str) -> Registered {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (end, ended) = oneshot::channel();
        self.lock().insert(id, Entry { account, token_hash: token_hash.to_string(), end });
        Registered { id, registry: self.clone(), ended }
    }

    /// Ends the sockets of one session (logout); returns how many there were.
    pub fn end_session(&self, token_hash: &str) -> usize {
        self.end_where(|e| e.token_hash == token_hash)
    }

    /// Ends the sockets of every session of an account but `keep` (the session that changed the password).
    pub fn end_account(&self, account: i64, keep: Option<&str>) -> usize {
        self.end_where(|e| e.account == account && Some(e.token_hash.as_str()) != keep)
    }

    fn end_where(&self, matches: impl Fn(&Entry) -> bool) -> usize {
        let mut open = self.lock();
        let ids: Vec<u64> = open.iter().filter(|(_, e)| matches(e)).map(|(id, _)| *id).collect();
        for id in &ids {
            if let Some(e) = open.remove(id) {
                let _ = e.end.send(());
            }
        }
        ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ending_a_session_or_an_account_signals_only_its_sockets() {
        let reg = Arc::new(SessionSockets::default());
        let mut a1 = reg.register(1, "t1");
        let mut a2 = reg.register(1, "t2");
        let mut b = reg.register(2, "t3");
        assert_eq!(reg.end_session("t1"), 1);
        assert!(a1.ended.try_recv().is_ok());
        assert!(a2.ended.try_recv().is_err());
        assert_eq!(reg.end_account(1, Some("t2")), 0, "the session that changed the password stays");
        assert_eq!(reg.end_account(1, None), 1);
        assert!(a2.ended.try_recv().is_ok());
        assert!(b.ended.try_recv().is_err());
        drop(b);
        assert_eq!(reg.end_account(2, None), 0, "a closed socket has left the registry");
    }
}
