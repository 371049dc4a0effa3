//! Live updates: after a change commits (a sync, a verdict, an alert), the use case publishes
//! what changed on a broadcast channel; each open dashboard page listens (`web::live`, over SSE),
//! gets only the events of its viewer's scope, and fetches its tables again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch};

/// Something a dashboard page in scope should show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveEvent {
    /// New visits of this section were stored.
    Visits { department_id: i64, section_id: i64 },
    /// An alert was raised about an employee of this section.
    Alert {
        department_id: i64,
        section_id: i64,
        alert_id: i64,
    },
    /// A verdict was recorded or an alert acknowledged in this section.
    Decision { department_id: i64, section_id: i64 },
    /// A visitor's feedback on a visit of this section arrived, was answered or hidden.
    Feedback { department_id: i64, section_id: i64 },
}

impl LiveEvent {
    /// The department and section it concerns.
    pub fn place(&self) -> (i64, i64) {
        match *self {
            LiveEvent::Visits {
                department_id,
                section_id,
            }
            | LiveEvent::Alert {
                department_id,
                section_id,
                ..
            }
            | LiveEvent::Decision {
                department_id,
                section_id,
            }
            | LiveEvent::Feedback {
                department_id,
                section_id,
            } => (department_id, section_id),
        }
    }
}

/// The broadcast channel between ingest and the open pages, and the signal that ends every
/// stream at shutdown (so that graceful shutdown does not wait for idle listeners).
#[derive(Clone)]
pub struct LiveHub {
    sender: broadcast::Sender<LiveEvent>,
    stopping: watch::Receiver<bool>,
    stop: std::sync::Arc<watch::Sender<bool>>,
    /// Open streams per session (by the session's audit tag).
    streams: Arc<Mutex<HashMap<String, u32>>>,
}

/// An open stream's place in its session's count; freed when the stream ends.
pub struct StreamSlot {
    streams: Arc<Mutex<HashMap<String, u32>>>,
    session: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut streams = self
            .streams
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = streams.get_mut(&self.session) {
            *count -= 1;
            if *count == 0 {
                streams.remove(&self.session);
            }
        }
    }
}

impl Default for LiveHub {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveHub {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(1024);
        let (stop, stopping) = watch::channel(false);
        Self {
            sender,
            stopping,
            stop: std::sync::Arc::new(stop),
            streams: Arc::default(),
        }
    }

    /// A place for one more stream of `session`, unless it already holds `max`.
    pub fn open_stream(&self, session: &str, max: u32) -> Option<StreamSlot> {
        let mut streams = self
            .streams
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = streams.entry(session.to_string()).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            streams: Arc::clone(&self.streams),
            session: session.to_string(),
        })
    }

    /// How many streams are open now, of every session.
    pub fn open_streams(&self) -> u64 {
        self.streams
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .map(|&n| u64::from(n))
            .sum()
    }

    /// Sends an event to every listening page; nobody listening is fine.
    pub fn publish(&self, event: LiveEvent) {
        let _ = self.sender.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.sender.subscribe()
    }

    /// Turns `true` when the server is stopping: every stream ends then.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.clone()
    }

    /// Ends every open stream.
    pub fn shut_down(&self) {
        let _ = self.stop.send(true);
    }
}
