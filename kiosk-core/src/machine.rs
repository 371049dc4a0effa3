//! The visit state machine: `step(state, event) -> (state, effects)`, pure. Time, randomness,
//! ids, storage, audio and the network are the caller's: they come in as event data and go out
//! as effects.
//!
//! A visit begins when the specialist picks the service (effect [`Effect::BeginVisit`]) and ends
//! exactly once, rated or not ([`Effect::FinishVisit`]). After a rating nothing in the state
//! depends on which button was pressed.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use shared_model::{Pairing, Rating, Visit};
use uuid::Uuid;

/// Timings of the visitor's screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// Taps on the rating screen sooner than this after it appears are ignored (the tap that
    /// ended the visit must not land on a rating button).
    pub rating_arm_delay: SignedDuration,
    /// With no rating by then, the visit ends unrated.
    pub rating_timeout: SignedDuration,
    /// How long «Спасибо за оценку!» and the feedback QR code show, the same after every
    /// rating; nothing shortens it (taps are ignored meanwhile), so that the visitor has time
    /// to scan the code and the specialist learns nothing from how soon the screen returns.
    pub thanks: SignedDuration,
    /// A visit longer than this ends unrated and its recording is deleted.
    pub visit_cap: SignedDuration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            rating_arm_delay: SignedDuration::from_millis(600),
            rating_timeout: SignedDuration::from_secs(90),
            thanks: SignedDuration::from_secs(20),
            visit_cap: SignedDuration::from_hours(2),
        }
    }
}

/// A visit under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenVisit {
    pub id: Uuid,
    pub pairing_id: Uuid,
    pub service_id: i64,
    pub started_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "screen", rename_all = "snake_case")]
pub enum State {
    /// Not enrolled: shows the enrolment code once the server gave one.
    Enrolment { code: Option<String> },
    /// Enrolled, no pairing: shows the pairing code once the server gave one.
    Pairing { code: Option<String> },
    /// Paired and waiting: the specialist's name and «Начать прием».
    Idle { pairing: Pairing },
    /// The specialist picks the service.
    ServiceChoice { pairing: Pairing },
    /// «Идет прием»: recording; «Завершить прием».
    InVisit { pairing: Pairing, visit: OpenVisit },
    /// Three buttons in `order`; the visit has ended and waits for the visitor.
    Rating {
        pairing: Pairing,
        visit: OpenVisit,
        ended_at: Timestamp,
        order: [Rating; 3],
    },
    /// «Спасибо за оценку!» and the QR code of the visit's feedback link, the same whatever was
    /// pressed.
    Thanks {
        pairing: Pairing,
        visit_id: Uuid,
        until: Timestamp,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The server issued an enrolment code to show.
    EnrolmentCode(String),
    /// The tablet received its credential.
    Enrolled,
    /// The tablet's credential was revoked: start over (a visit under way ends unrated).
    CredentialRevoked {
        now: Timestamp,
    },
    /// The server issued a pairing code to show.
    PairingCode(String),
    /// A specialist entered the code (or the stored pairing was loaded at start).
    Paired(Pairing),
    /// The pairing ended (by the specialist, the working day, or the staff panel).
    PairingEnded,
    StartPressed,
    ServiceChosen {
        service_id: i64,
        visit_id: Uuid,
        now: Timestamp,
    },
    ServiceChoiceCancelled,
    EndPressed {
        now: Timestamp,
        order: [Rating; 3],
    },
    /// The visitor tapped the button at `position` (0, 1, 2 from the left or top).
    RatingTapped {
        position: usize,
        now: Timestamp,
    },
    Tick {
        now: Timestamp,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Ask the server for an enrolment code and wait for approval.
    RequestEnrolment,
    /// Ask the server for a pairing code and wait for a specialist.
    RequestPairingCode,
    /// Persist the open visit and start recording its audio.
    BeginVisit(OpenVisit),
    /// Stop recording (the visit's talk is over; the rating screen follows).
    StopRecording { visit_id: Uuid },
    /// Persist the finished visit with its outbox entry in one transaction; then keep the
    /// recording only when `visit.rating` is Плохо (encode it), otherwise delete it at once.
    FinishVisit(Visit),
    /// Forget the pairing stored on the tablet.
    ForgetPairing,
}

/// Applies one event. Events that make no sense in the current state change nothing.
pub fn step(state: State, event: Event, timings: &Timings) -> (State, Vec<Effect>) {
    use Event as E;
    use State as S;
    match (state, event) {
        (state, E::CredentialRevoked { now }) => {
            let mut effects = match state {
                S::InVisit { visit, .. } => vec![
                    Effect::StopRecording { visit_id: visit.id },
                    finish(&visit, now.max(visit.started_at), None),
                ],
                S::Rating {
                    visit, ended_at, ..
                } => vec![finish(&visit, ended_at, None)],
                _ => vec![],
            };
            effects.extend([Effect::ForgetPairing, Effect::RequestEnrolment]);
            (S::Enrolment { code: None }, effects)
        }
        (S::Enrolment { .. }, E::EnrolmentCode(code)) => {
            (S::Enrolment { code: Some(code) }, vec![])
        }
        (S::Enrolment { .. }, E::Enrolled) => {
            (S::Pairing { code: None }, vec![Effect::RequestPairingCode])
        }
        (S::Pairing { .. }, E::PairingCode(code)) => (S::Pairing { code: Some(code) }, vec![]),
        (S::Pairing { .. }, E::Paired(pairing)) => (S::Idle { pairing }, vec![]),

        (S::Idle { .. } | S::ServiceChoice { .. }, E::PairingEnded) => (
            S::Pairing { code: None },
            vec![Effect::ForgetPairing, Effect::RequestPairingCode],
        ),
        // Re-paired while idle (the stored pairing was replaced).
        (S::Idle { .. }, E::Paired(pairing)) => (S::Idle { pairing }, vec![]),

        (S::Idle { pairing }, E::StartPressed) => (S::ServiceChoice { pairing }, vec![]),
        (S::ServiceChoice { pairing }, E::ServiceChoiceCancelled) => (S::Idle { pairing }, vec![]),
        (
            S::ServiceChoice { pairing },
            E::ServiceChosen {
                service_id,
                visit_id,
                now,
            },
        ) if pairing.services.iter().any(|s| s.id == service_id) => {
            let visit = OpenVisit {
                id: visit_id,
                pairing_id: pairing.id,
                service_id,
                started_at: now,
            };
            (
                S::InVisit {
                    pairing,
                    visit: visit.clone(),
                },
                vec![Effect::BeginVisit(visit)],
            )
        }

        (S::InVisit { pairing, visit }, E::EndPressed { now, order }) => {
            let stop = Effect::StopRecording { visit_id: visit.id };
            // A clock stepped back during the visit must not make it end before it began.
            let ended_at = now.max(visit.started_at);
            (
                S::Rating {
                    pairing,
                    visit,
                    ended_at,
                    order,
                },
                vec![stop],
            )
        }
        (S::InVisit { pairing, visit }, E::Tick { now })
            if now.duration_since(visit.started_at) >= timings.visit_cap =>
        {
            let ended_at = visit.started_at + timings.visit_cap;
            let finish = finish(&visit, ended_at, None);
            (
                S::Idle { pairing },
                vec![Effect::StopRecording { visit_id: visit.id }, finish],
            )
        }

        (
            S::Rating {
                pairing,
                visit,
                ended_at,
                order,
            },
            E::RatingTapped { position, now },
        ) if position < 3 && now.duration_since(ended_at) >= timings.rating_arm_delay => {
            let finish = finish(&visit, ended_at, Some(order[position]));
            (
                S::Thanks {
                    pairing,
                    visit_id: visit.id,
                    until: now + timings.thanks,
                },
                vec![finish],
            )
        }
        (
            S::Rating {
                pairing,
                visit,
                ended_at,
                ..
            },
            E::Tick { now },
        ) if now.duration_since(ended_at) >= timings.rating_timeout => {
            (S::Idle { pairing }, vec![finish(&visit, ended_at, None)])
        }

        (S::Thanks { pairing, until, .. }, E::Tick { now }) if now >= until => {
            (S::Idle { pairing }, vec![])
        }

        // Everything else — a tap too early, a second tap, a tap during the thanks, an event
        // for another screen — is ignored.
        (state, _) => (state, vec![]),
    }
}

fn finish(visit: &OpenVisit, ended_at: Timestamp, rating: Option<Rating>) -> Effect {
    Effect::FinishVisit(Visit {
        id: visit.id,
        pairing_id: visit.pairing_id,
        service_id: visit.service_id,
        started_at: visit.started_at,
        ended_at,
        rating,
        has_recording: rating == Some(Rating::Bad),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use shared_model::NamedRef;
    use std::collections::HashMap;

    fn pairing() -> Pairing {
        let t: Timestamp = "2026-11-24T03:00:00Z".parse().unwrap();
        Pairing {
            id: Uuid::from_u128(1),
            employee: NamedRef {
                id: 1,
                name: "Иванова Ольга Петровна".into(),
            },
            section: NamedRef {
                id: 1,
                name: "Отдел учета".into(),
            },
            department: NamedRef {
                id: 1,
                name: "Жилищное управление".into(),
            },
            services: vec![
                NamedRef {
                    id: 10,
                    name: "Консультация".into(),
                },
                NamedRef {
                    id: 11,
                    name: "Прием заявлений".into(),
                },
            ],
            started_at: t,
            ends_at: t + SignedDuration::from_hours(10),
            ended_elsewhere: Vec::new(),
        }
    }

    fn t0() -> Timestamp {
        "2026-11-24T05:00:00Z".parse().unwrap()
    }

    fn run(events: Vec<Event>) -> (State, Vec<Effect>, Vec<State>) {
        let timings = Timings::default();
        let mut state = State::Idle { pairing: pairing() };
        let mut effects = Vec::new();
        let mut states = Vec::new();
        for event in events {
            let (next, mut more) = step(state, event, &timings);
            state = next;
            effects.append(&mut more);
            states.push(state.clone());
        }
        (state, effects, states)
    }

    fn visit_events(position: usize) -> Vec<Event> {
        let order = [Rating::Medium, Rating::Bad, Rating::Good];
        vec![
            Event::StartPressed,
            Event::ServiceChosen {
                service_id: 11,
                visit_id: Uuid::from_u128(7),
                now: t0(),
            },
            Event::EndPressed {
                now: t0() + SignedDuration::from_mins(12),
                order,
            },
            Event::RatingTapped {
                position,
                now: t0() + SignedDuration::from_mins(12) + SignedDuration::from_secs(3),
            },
        ]
    }

    #[test]
    fn a_rated_visit() {
        let (state, effects, _) = run(visit_events(1));
        assert!(matches!(state, State::Thanks { .. }));
        let finished: Vec<_> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::FinishVisit(v) => Some(v),
                _ => None,
            })
            .collect();
        assert_eq!(finished.len(), 1);
        assert_eq!(finished[0].rating, Some(Rating::Bad));
        assert!(finished[0].has_recording);
        assert_eq!(
            finished[0].ended_at.duration_since(finished[0].started_at),
            SignedDuration::from_mins(12)
        );
    }

    #[test]
    fn early_second_and_late_taps_are_ignored() {
        let mut events = visit_events(0);
        // The tap that ended the visit bleeds onto the rating screen: too early.
        events.insert(
            3,
            Event::RatingTapped {
                position: 2,
                now: t0() + SignedDuration::from_mins(12) + SignedDuration::from_millis(100),
            },
        );
        // A second tap, and taps during the thanks.
        events.push(Event::RatingTapped {
            position: 1,
            now: t0() + SignedDuration::from_mins(13),
        });
        events.push(Event::StartPressed);
        let (_, effects, _) = run(events);
        let ratings: Vec<_> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::FinishVisit(v) => Some(v.rating),
                _ => None,
            })
            .collect();
        assert_eq!(ratings, vec![Some(Rating::Medium)]);
    }

    #[test]
    fn unrated_after_the_timeout_and_capped_visits() {
        let order = [Rating::Good, Rating::Medium, Rating::Bad];
        let (state, effects, _) = run(vec![
            Event::StartPressed,
            Event::ServiceChosen {
                service_id: 10,
                visit_id: Uuid::from_u128(8),
                now: t0(),
            },
            Event::EndPressed {
                now: t0() + SignedDuration::from_mins(5),
                order,
            },
            Event::Tick {
                now: t0() + SignedDuration::from_mins(7),
            },
        ]);
        assert!(matches!(state, State::Idle { .. }));
        assert!(effects.iter().any(
            |e| matches!(e, Effect::FinishVisit(v) if v.rating.is_none() && !v.has_recording)
        ));

        let (state, effects, _) = run(vec![
            Event::StartPressed,
            Event::ServiceChosen {
                service_id: 10,
                visit_id: Uuid::from_u128(9),
                now: t0(),
            },
            Event::Tick {
                now: t0() + SignedDuration::from_hours(3),
            },
        ]);
        assert!(matches!(state, State::Idle { .. }));
        let Some(Effect::FinishVisit(visit)) = effects.last() else {
            panic!("{effects:?}")
        };
        assert_eq!(visit.rating, None);
        assert_eq!(
            visit.ended_at.duration_since(visit.started_at),
            SignedDuration::from_hours(2)
        );
    }

    #[test]
    fn a_service_not_offered_is_not_started() {
        let (state, effects, _) = run(vec![
            Event::StartPressed,
            Event::ServiceChosen {
                service_id: 999,
                visit_id: Uuid::from_u128(1),
                now: t0(),
            },
        ]);
        assert!(matches!(state, State::ServiceChoice { .. }));
        assert!(effects.is_empty());
    }

    fn arb_event() -> impl Strategy<Value = Event> {
        let order = prop::sample::select(crate::order::ORDERS.to_vec());
        let offset = (0i64..10_000_000).prop_map(|ms| t0() + SignedDuration::from_millis(ms));
        prop_oneof![
            Just(Event::StartPressed),
            Just(Event::ServiceChoiceCancelled),
            Just(Event::PairingEnded),
            Just(Event::Paired(pairing())),
            offset
                .clone()
                .prop_map(|now| Event::CredentialRevoked { now }),
            Just(Event::Enrolled),
            (
                prop::sample::select(vec![10i64, 11, 12]),
                any::<u128>(),
                offset.clone()
            )
                .prop_map(|(service_id, id, now)| Event::ServiceChosen {
                    service_id,
                    visit_id: Uuid::from_u128(id),
                    now
                }),
            (offset.clone(), order).prop_map(|(now, order)| Event::EndPressed { now, order }),
            (0usize..4, offset.clone())
                .prop_map(|(position, now)| Event::RatingTapped { position, now }),
            offset.prop_map(|now| Event::Tick { now }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

        /// Every started visit ends exactly once, rated or unrated, once time runs on.
        #[test]
        fn every_started_visit_ends_exactly_once(mut events in proptest::collection::vec(arb_event(), 0..60)) {
            // Visit ids must be unique per visit, as the caller makes them.
            let mut next_id = 0u128;
            for event in &mut events {
                if let Event::ServiceChosen { visit_id, .. } = event {
                    next_id += 1;
                    *visit_id = Uuid::from_u128(next_id);
                }
            }
            let far = t0() + SignedDuration::from_hours(48);
            events.push(Event::Tick { now: far });
            events.push(Event::Tick { now: far + SignedDuration::from_hours(48) });
            let (_, effects, _) = run(events);
            let mut begun: HashMap<Uuid, usize> = HashMap::new();
            let mut finished: HashMap<Uuid, usize> = HashMap::new();
            for effect in effects {
                match effect {
                    Effect::BeginVisit(v) => *begun.entry(v.id).or_default() += 1,
                    Effect::FinishVisit(v) => {
                        prop_assert!(v.ended_at >= v.started_at);
                        prop_assert_eq!(v.has_recording, v.rating == Some(Rating::Bad));
                        *finished.entry(v.id).or_default() += 1
                    }
                    _ => {}
                }
            }
            prop_assert!(begun.values().all(|n| *n == 1));
            prop_assert_eq!(begun, finished);
        }

        /// After a rating, the states that follow are the same whichever button was pressed.
        #[test]
        fn no_state_after_a_rating_reveals_it(
            position in 0usize..3,
            other in 0usize..3,
            tail in proptest::collection::vec(arb_event(), 0..20),
        ) {
            let mut with = visit_events(position);
            let mut without = visit_events(other);
            with.extend(tail.iter().cloned());
            without.extend(tail);
            let (_, _, states_a) = run(with);
            let (_, _, states_b) = run(without);
            // From the rating on (index 3), the states are identical.
            prop_assert_eq!(&states_a[3..], &states_b[3..]);
        }
    }
}
