//! The kiosk's stop signal. The composition root ([`crate::app`]) owns the one [`Shutdown`]; every long-running task
//! holds a [`ShutdownSignal`] and ends its own work when it fires (the call service ends the call and stops media, the
//! control socket removes its file, the watchdog stops its keepalives). Modelled on tokio's mini-redis `shutdown.rs`.

use tokio::sync::watch;

/// Fires the stop signal. Clones fire the same signal.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: std::sync::Arc<watch::Sender<bool>>,
}

/// Waits for the stop signal. Cheap to clone; every clone sees it.
#[derive(Debug, Clone)]
pub struct ShutdownSignal {
    rx: watch::Receiver<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Self { tx: std::sync::Arc::new(watch::channel(false).0) }
    }

    /// A listener for this signal.
    pub fn signal(&self) -> ShutdownSignal {
        ShutdownSignal { rx: self.tx.subscribe() }
    }

    /// Tells every listener to stop. Idempotent.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }
}

impl ShutdownSignal {
    /// Whether the signal has fired.
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Waits until the signal fires (at once if it has). Also returns if every [`Shutdown`] is dropped: nobody is
    /// left to say "keep running".
    pub async fn wait(&mut self) {
        let _ = self.rx.wait_for(|stop| *stop).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_listener_sees_the_signal_even_if_it_starts_listening_late() {
        let shutdown = Shutdown::new();
        let mut early = shutdown.signal();
        let waiter = tokio::spawn(async move { early.wait().await });
        shutdown.trigger();
        waiter.await.unwrap();
        let mut late = shutdown.signal();
        assert!(late.is_triggered());
        late.wait().await;
    }

    #[tokio::test]
    async fn a_dropped_sender_releases_the_listeners() {
        let shutdown = Shutdown::new();
        let mut s = shutdown.signal();
        drop(shutdown);
        s.wait().await;
    }
}
