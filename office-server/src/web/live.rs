//! `GET /dashboard/events`: a viewer's live updates as server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast;

use jiff::Timestamp;
use tokio::sync::watch;

use super::error::{PageError, PageResult};
use super::session::Viewer;
use crate::app::AppState;
use crate::domain::Visibility;
use crate::live::{LiveEvent, StreamSlot};

fn to_sse(event: LiveEvent) -> Event {
    match event {
        LiveEvent::Visits { section_id, .. } => Event::default()
            .event("visits")
            .data(section_id.to_string()),
        LiveEvent::Alert { alert_id, .. } => {
            Event::default().event("alert").data(alert_id.to_string())
        }
        LiveEvent::Decision { section_id, .. } => Event::default()
            .event("decision")
            .data(section_id.to_string()),
        LiveEvent::Feedback { section_id, .. } => Event::default()
            .event("feedback")
            .data(section_id.to_string()),
    }
}

/// What one open stream holds while it waits.
struct Listener {
    state: AppState,
    receiver: broadcast::Receiver<LiveEvent>,
    stopping: watch::Receiver<bool>,
    visibility: Visibility,
    /// The session's token digest, to see that the session still lasts.
    session: [u8; 32],
    check: tokio::time::Interval,
    said_hello: bool,
    _slot: StreamSlot,
}

impl Listener {
    /// The next event for this viewer; `None` ends the stream: the server stops, or the
    /// session ended (sign-out, password reset, expiry).
    async fn next(&mut self) -> Option<Event> {
        if !self.said_hello {
            self.said_hello = true;
            // Tells the page it is connected (and that a reconnect may have missed events).
            return Some(Event::default().event("hello").data("1"));
        }
        loop {
            if *self.stopping.borrow() {
                return None;
            }
            tokio::select! {
                received = self.receiver.recv() => match received {
                    Ok(event) => {
                        let (department, section) = event.place();
                        if self.visibility.sees(department, section) {
                            return Some(to_sse(event));
                        }
                    }
                    // Missed some: a refresh catches up whatever they were.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        return Some(Event::default().event("hello").data("lagged"));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = self.stopping.changed() => return None,
                _ = self.check.tick() => {
                    let session = self.session;
                    let lasts = self
                        .state
                        .db(move |db| db.session_account(&session, Timestamp::now()))
                        .await;
                    if !matches!(lasts, Ok(Some(_))) {
                        return None;
                    }
                }
            }
        }
    }
}

/// `GET /dashboard/events`: the viewer's live updates as server-sent events, while the
/// session lasts; a session holds a few streams at most.
pub async fn events(
    State(state): State<AppState>,
    viewer: Viewer,
) -> PageResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let visibility = viewer.visibility()?;
    let settings = &state.config.live;
    let slot = state
        .live
        .open_stream(&viewer.session_tag, settings.streams_per_session)
        .ok_or(PageError::TooManyAttempts)?;
    let mut check = tokio::time::interval(Duration::from_secs(settings.session_check_secs));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    check.reset();
    let listener = Listener {
        receiver: state.live.subscribe(),
        stopping: state.live.stopping(),
        state: state.clone(),
        visibility,
        session: viewer.session,
        check,
        said_hello: false,
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(listener, |mut listener| async move {
        let event = listener.next().await?;
        Some((Ok(event), listener))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
