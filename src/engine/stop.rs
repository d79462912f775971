//! A stop request (SIGINT/SIGTERM in `sync`, or a test) shared by everything one run
//! waits in: the runner's fence, the request driver's waits and the change-event consumer.

use std::sync::Arc;

/// A stop request shared with whoever asks for it (a signal handler, a test).
#[derive(Clone)]
pub struct Stop {
    asked: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for Stop {
    fn default() -> Self {
        Stop {
            asked: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }
}

impl Stop {
    pub fn new() -> Self {
        Stop::default()
    }

    /// Asks the run to stop after the request in flight: every wait (a follower's poll,
    /// `Retry-After`, a backoff, the daily window) ends at once, and the next request's
    /// fence ends the run with the page uncommitted.
    pub fn request(&self) {
        self.asked.send_replace(true);
    }

    pub fn requested(&self) -> bool {
        *self.asked.borrow()
    }

    /// Resolves once a stop is requested (at once if it already was).
    pub async fn requested_now(&self) {
        let mut rx = self.asked.subscribe();
        // An error means the sender is gone, which cannot happen while `self` holds it.
        let _ = rx.wait_for(|asked| *asked).await;
    }
}
