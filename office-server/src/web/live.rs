//! Live updates: after a sync commits, the server publishes what changed on a broadcast channel;
//! each open dashboard page listens over SSE and gets only the events of its viewer's scope,
//! then fetches its tables again.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::{broadcast, watch};

use super::session::{Viewer, Visibility};
use crate::app::AppState;
use crate::error::PageResult;

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
}

impl LiveEvent {
    fn place(&self) -> (i64, i64) {
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
            } => (department_id, section_id),
        }
    }

    fn to_sse(self) -> Event {
        match self {
            LiveEvent::Visits { section_id, .. } => Event::default()
                .event("visits")
                .data(section_id.to_string()),
            LiveEvent::Alert { alert_id, .. } => {
                Event::default().event("alert").data(alert_id.to_string())
            }
            LiveEvent::Decision { section_id, .. } => Event::default()
                .event("decision")
                .data(section_id.to_string()),
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
        }
    }

    /// Sends an event to every listening page; nobody listening is fine.
    pub fn publish(&self, event: LiveEvent) {
        let _ = self.sender.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.sender.subscribe()
    }

    /// Ends every open stream.
    pub fn shut_down(&self) {
        let _ = self.stop.send(true);
    }
}

/// `GET /dashboard/events`: the viewer's live updates as server-sent events.
pub async fn events(
    State(state): State<AppState>,
    viewer: Viewer,
) -> PageResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let visibility = viewer.visibility()?;
    let receiver = state.live.subscribe();
    let stopping = state.live.stopping.clone();
    let stream = futures_util::stream::unfold(
        (receiver, stopping, visibility, true),
        |(mut receiver, mut stopping, visibility, first)| async move {
            if first {
                // Tells the page it is connected (and that a reconnect may have missed events).
                let hello = Event::default().event("hello").data("1");
                return Some((Ok(hello), (receiver, stopping, visibility, false)));
            }
            loop {
                if *stopping.borrow() {
                    return None;
                }
                tokio::select! {
                    received = receiver.recv() => match received {
                        Ok(event) => {
                            let (department, section) = event.place();
                            if in_view(visibility, department, section) {
                                return Some((Ok(event.to_sse()), (receiver, stopping, visibility, false)));
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            // Missed some: a refresh catches up whatever they were.
                            let event = Event::default().event("hello").data("lagged");
                            return Some((Ok(event), (receiver, stopping, visibility, false)));
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = stopping.changed() => return None,
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn in_view(visibility: Visibility, department_id: i64, section_id: i64) -> bool {
    visibility.sees(department_id, section_id)
}
