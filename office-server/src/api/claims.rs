//! Which recording uploads are running. A tablet uploads one file at a time, so a new request
//! for a visit whose upload is still running means the old one is dead — the tablet was killed,
//! or its network dropped without a word and the server has not noticed yet. The new request
//! supersedes it: the old one stops reading, keeps what arrived, and lets go.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use uuid::Uuid;

/// How long a new request waits for the upload it supersedes to let go.
const SUPERSEDE_WAIT: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct UploadClaims {
    running: Mutex<HashMap<Uuid, Running>>,
    generation: std::sync::atomic::AtomicU64,
}

struct Running {
    generation: u64,
    /// Set to tell the running request to stop.
    stop: watch::Sender<bool>,
    /// Woken when the running request lets go.
    released: Arc<Notify>,
}

/// The running upload of one visit; it lets go when dropped, however the request ends.
pub struct UploadClaim {
    claims: Arc<UploadClaims>,
    visit: Uuid,
    generation: u64,
    /// Turns `true` when a newer request of the same visit supersedes this one.
    pub superseded: watch::Receiver<bool>,
}

impl UploadClaims {
    fn running(&self) -> MutexGuard<'_, HashMap<Uuid, Running>> {
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Claims the upload of `visit`, superseding one that is running; `None` if that one did
    /// not let go in time.
    pub async fn claim(self: &Arc<Self>, visit: Uuid) -> Option<UploadClaim> {
        let deadline = tokio::time::Instant::now() + SUPERSEDE_WAIT;
        loop {
            let released = {
                let mut running = self.running();
                match running.get(&visit) {
                    None => {
                        let generation = self
                            .generation
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let (stop, superseded) = watch::channel(false);
                        running.insert(
                            visit,
                            Running {
                                generation,
                                stop,
                                released: Arc::new(Notify::new()),
                            },
                        );
                        return Some(UploadClaim {
                            claims: Arc::clone(self),
                            visit,
                            generation,
                            superseded,
                        });
                    }
                    Some(old) => {
                        let _ = old.stop.send(true);
                        Arc::clone(&old.released)
                    }
                }
            };
            tracing::info!(%visit, "a newer upload of this recording supersedes a running one");
            // Woken when it lets go; looking again at least every 100 ms covers a wake that
            // came before the wait began.
            let waited = tokio::time::timeout(Duration::from_millis(100), released.notified());
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            let _ = waited.await;
        }
    }
}

impl Drop for UploadClaim {
    fn drop(&mut self) {
        let mut running = self.claims.running();
        if running
            .get(&self.visit)
            .is_some_and(|r| r.generation == self.generation)
            && let Some(done) = running.remove(&self.visit)
        {
            done.released.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_new_claim_supersedes_a_running_one() {
        let claims = Arc::new(UploadClaims::default());
        let visit = Uuid::from_u128(1);
        let first = claims.claim(visit).await.unwrap();
        let mut superseded = first.superseded.clone();
        let letting_go = tokio::spawn(async move {
            superseded.changed().await.unwrap();
            drop(first);
        });
        let second = claims.claim(visit).await.expect("the running one lets go");
        letting_go.await.unwrap();
        assert!(!*second.superseded.borrow());
        // Another visit is claimed at once.
        assert!(claims.claim(Uuid::from_u128(2)).await.is_some());
    }

    #[tokio::test]
    async fn a_claim_that_never_lets_go_refuses_the_new_one_in_time() {
        let claims = Arc::new(UploadClaims::default());
        let visit = Uuid::from_u128(1);
        let _stuck = claims.claim(visit).await.unwrap();
        let started = tokio::time::Instant::now();
        assert!(claims.claim(visit).await.is_none());
        assert!(started.elapsed() >= SUPERSEDE_WAIT);
    }
}
