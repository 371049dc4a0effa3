//! `GET /dashboard/events`: a viewer's live updates as server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast;

use super::error::PageResult;
use super::session::Viewer;
use crate::app::AppState;
use crate::live::LiveEvent;

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
    }
}

/// `GET /dashboard/events`: the viewer's live updates as server-sent events.
pub async fn events(
    State(state): State<AppState>,
    viewer: Viewer,
) -> PageResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let visibility = viewer.visibility()?;
    let receiver = state.live.subscribe();
    let stopping = state.live.stopping();
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
                            if visibility.sees(department, section) {
                                return Some((Ok(to_sse(event)), (receiver, stopping, visibility, false)));
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
