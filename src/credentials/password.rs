//! Passwords and session tokens.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Checks a password against a stored PHC string; a malformed hash is a mismatch.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// Why password work was not done.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordWorkError {
    /// The password thread could not start or has stopped.
    #[error("the password thread is not running")]
    Gone,
    /// Too many checks are waiting already; the client should try again in a moment.
    #[error("too many password checks are waiting")]
    Busy,
}

/// Which queue a piece of password work waits in. The password thread always takes `Priority` work first, so the
/// logins that matter (a browser that logged into the account before; a logged-in technician creating an account)
/// never wait behind a flood of anonymous guesses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Priority,
    Anonymous,
}

/// How many jobs each lane holds waiting; beyond that, [`PasswordWorkError::Busy`]. With ~40 ms per argon2id check
/// on a slow core, a full lane is about a third of a second of waiting, never seconds.
pub const LANE_CAPACITY: usize = 8;

/// Password hashing is expensive on purpose (argon2id: ~19 MiB and tens of milliseconds each). It runs on one
/// dedicated thread, one hash at a time, so a burst of logins can neither take both cores from calls nor allocate
/// 19 MiB per blocking-pool thread at once; and its queues are short and ordered (see [`Lane`]).
type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queues {
    priority: std::collections::VecDeque<Job>,
    anonymous: std::collections::VecDeque<Job>,
}

struct PasswordThread {
    queues: std::sync::Mutex<Queues>,
    ready: std::sync::Condvar,
}

impl PasswordThread {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next(&self) -> Job {
        let mut q = self.lock();
        loop {
            if let Some(job) = q.priority.pop_front().or_else(|| q.anonymous.pop_front()) {
                return job;
            }
            q = self.ready.wait(q).unwrap_or_else(|p| p.into_inner());
        }
    }
}

static PASSWORD_THREAD: std::sync::LazyLock<Option<&'static PasswordThread>> = std::sync::LazyLock::new(|| {
    let pool: &'static PasswordThread = Box::leak(Box::new(PasswordThread {
        queues: std::sync::Mutex::new(Queues::default()),
        ready: std::sync::Condvar::new(),
    }));
    std::thread::Builder::new()
        .name("password-hash".into())
        .spawn(move || {
            loop {
                pool.next()();
            }
        })
        .ok()
        .map(|_| pool)
});

/// Runs password hashing or verification on the password thread and waits for the result without blocking the
/// async workers; refuses at once when the lane is full.
pub async fn password_work<T: Send + 'static>(
    lane: Lane,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PasswordWorkError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let pool = PASSWORD_THREAD.as_ref().ok_or(PasswordWorkError::Gone)?;
    {
        let mut q = pool.lock();
        let queue = match lane {
            Lane::Priority => &mut q.priority,
            Lane::Anonymous => &mut q.anonymous,
        };
        if queue.len() >= LANE_CAPACITY {
            return Err(PasswordWorkError::Busy);
        }
        queue.push_back(Box::new(move || {
            let _ = tx.send(f());
        }));
    }
    pool.ready.notify_one();
    rx.await.map_err(|_| PasswordWorkError::Gone)
}

/// A fresh session token (256 random bits, URL-safe) and the hash under which it is stored.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterz", &h));
        assert!(!verify_password("anything", "not a phc string"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_lane_says_busy_and_priority_work_overtakes_the_queue() {
        // Hold the thread with a job that waits for a signal, then fill the anonymous lane.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let blocker = tokio::spawn(password_work(Lane::Anonymous, move || {
            let _ = started_tx.send(());
            let _ = held.recv();
        }));
        started.await.unwrap();
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut queued = Vec::new();
        for i in 0..LANE_CAPACITY {
            let order = order.clone();
            queued.push(tokio::spawn(password_work(Lane::Anonymous, move || order.lock().unwrap().push(i))));
        }
        // Let the spawned tasks enqueue.
        for _ in 0..100 {
            if pool_len(Lane::Anonymous) == LANE_CAPACITY {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(password_work(Lane::Anonymous, || ()).await, Err(PasswordWorkError::Busy));
        let o = order.clone();
        let urgent = tokio::spawn(password_work(Lane::Priority, move || o.lock().unwrap().push(99)));
        for _ in 0..100 {
            if pool_len(Lane::Priority) == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        urgent.await.unwrap().unwrap();
        for q in queued {
            q.await.unwrap().unwrap();
        }
        let order = order.lock().unwrap().clone();
        assert_eq!(order[0], 99, "the priority job ran first: {order:?}");
        assert_eq!(order.len(), LANE_CAPACITY + 1);
    }

    fn pool_len(lane: Lane) -> usize {
        let pool = PASSWORD_THREAD.as_ref().unwrap();
        let q = pool.lock();
        match lane {
            Lane::Priority => q.priority.len(),
            Lane::Anonymous => q.anonymous.len(),
        }
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (a, ha) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a), ha);
        assert_ne!(a, ha);
    }
}
