//! Whether a synced visit is stored: the one home of the acceptance rule. Storage gathers the
//! facts (the visit already stored under the id, the pairing the visit names) and writes what
//! [`judge`] decides.
//!
//! The rule:
//! - the visit id is the idempotency key: the same content again is `already_stored`, other
//!   content under a stored id is `conflict`;
//! - a visit ends after it starts, and only a Плохо visit may keep a recording;
//! - a visit is stored only under a pairing the server issued to the tablet that sends it, and
//!   only with a service offered under that pairing. An ended pairing still accepts visits: an
//!   offline tablet keeps rating under it, not knowing — so the rule is not "inside the
//!   pairing's start and end". It is, on the visit's corrected end (`ended_at - clock offset`,
//!   the offset measured at this sync) and within a small slack for clocks: not before the
//!   pairing began; not later than the moment the visit arrived; and not later than the first
//!   request the tablet made after an answer told it the pairing had ended (by then it knew);
//! - a visit does not overlap another visit of the same tablet (a desk serves one visitor at a
//!   time), in corrected time, as closed intervals: no two visits share an instant;
//! - a visit id another tablet sent is that tablet's: a resend from this one is a conflict,
//!   never a confirmation of someone else's visit.

use jiff::{SignedDuration, Timestamp};
use shared_model::{Rating, RejectReason, Visit, VisitOutcome};

/// What the server knows of the pairing a visit names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingFacts {
    pub tablet_id: i64,
    pub employee_id: i64,
    pub section_id: i64,
    pub department_id: i64,
    /// The services offered under the pairing.
    pub services: Vec<i64>,
    pub started_at: Timestamp,
    /// The tablet's first request after an answer told it that this pairing had ended.
    pub end_acknowledged_at: Option<Timestamp>,
}

/// A visit already stored under the id, as it reads back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVisit {
    pub visit: Visit,
    pub tablet_id: i64,
}

/// Everything the rule looks at for one visit of a sync.
#[derive(Debug, Clone, Copy)]
pub struct VisitFacts<'a> {
    /// The tablet that sent the sync.
    pub tablet_id: i64,
    pub visit: &'a Visit,
    pub stored: Option<&'a StoredVisit>,
    pub pairing: Option<&'a PairingFacts>,
    /// When the server received the sync.
    pub received_at: Timestamp,
    /// The tablet's clock minus the server's, measured at this sync.
    pub clock_offset_ms: i64,
    /// Whether another stored visit of the tablet overlaps this one (in corrected time).
    pub overlaps: bool,
}

impl VisitFacts<'_> {
    /// The visit's interval in the server's time: the tablet's clock corrected by the offset.
    pub fn corrected(&self) -> (Timestamp, Timestamp) {
        let correct = |at: Timestamp| {
            at.checked_sub(SignedDuration::from_millis(self.clock_offset_ms))
                .unwrap_or(at)
        };
        (correct(self.visit.started_at), correct(self.visit.ended_at))
    }
}

/// The longest a visit may last. Tablets end a visit after two hours; a day is far beyond any
/// real one.
pub const LONGEST_VISIT: SignedDuration = SignedDuration::from_hours(24);

/// The rule's one setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acceptance {
    /// How far a corrected instant may stray from the server's clock (the offset is measured
    /// to about a network round trip, and clocks drift between syncs).
    pub clock_slack: SignedDuration,
}

impl Default for Acceptance {
    fn default() -> Self {
        Self {
            clock_slack: SignedDuration::from_mins(2),
        }
    }
}

/// Where a stored visit belongs: fixed by its pairing, whatever the employee's place later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub employee_id: i64,
    pub section_id: i64,
    pub department_id: i64,
}

/// What to do with one visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    Store(Placement),
    AlreadyStored,
    Reject {
        reason: RejectReason,
        message: String,
    },
}

impl Judgement {
    fn reject(reason: RejectReason, message: impl Into<String>) -> Self {
        Judgement::Reject {
            reason,
            message: message.into(),
        }
    }

    /// The answer the tablet gets once the judgement is carried out.
    pub fn outcome(&self) -> VisitOutcome {
        match self {
            Judgement::Store(_) => VisitOutcome::Stored,
            Judgement::AlreadyStored => VisitOutcome::AlreadyStored,
            Judgement::Reject { reason, message } => VisitOutcome::Rejected {
                reason: *reason,
                message: message.clone(),
            },
        }
    }
}

/// The visit as it reads back from storage: instants are kept to the millisecond.
pub fn at_stored_precision(visit: &Visit) -> Visit {
    let truncate = |ts: Timestamp| Timestamp::from_millisecond(ts.as_millisecond()).unwrap_or(ts);
    Visit {
        started_at: truncate(visit.started_at),
        ended_at: truncate(visit.ended_at),
        ..visit.clone()
    }
}

/// Decides one visit of a sync.
pub fn judge(facts: &VisitFacts<'_>, rule: &Acceptance) -> Judgement {
    let visit = facts.visit;
    if let Some(stored) = facts.stored {
        return if stored.tablet_id != facts.tablet_id {
            Judgement::reject(
                RejectReason::Conflict,
                "a visit with this id was sent by another tablet",
            )
        } else if stored.visit == at_stored_precision(visit) {
            Judgement::AlreadyStored
        } else {
            Judgement::reject(
                RejectReason::Conflict,
                "a different visit with this id is already stored",
            )
        };
    }
    if visit.ended_at < visit.started_at {
        return Judgement::reject(
            RejectReason::InvalidInterval,
            "the visit ends before it starts",
        );
    }
    if visit.ended_at.duration_since(visit.started_at) > LONGEST_VISIT {
        return Judgement::reject(
            RejectReason::InvalidInterval,
            "the visit lasts longer than a day",
        );
    }
    if visit.has_recording && visit.rating != Some(Rating::Bad) {
        return Judgement::reject(
            RejectReason::RecordingNotAllowed,
            "only a visit rated Плохо may keep a recording",
        );
    }
    let Some(pairing) = facts.pairing.filter(|p| p.tablet_id == facts.tablet_id) else {
        return Judgement::reject(
            RejectReason::UnknownPairing,
            "this tablet was never issued that pairing",
        );
    };
    if !pairing.services.contains(&visit.service_id) {
        return Judgement::reject(
            RejectReason::UnknownService,
            format!(
                "service {} was not offered under this pairing",
                visit.service_id
            ),
        );
    }
    let (_, ended) = facts.corrected();
    let slack = rule.clock_slack;
    if ended
        < pairing
            .started_at
            .checked_sub(slack)
            .unwrap_or(Timestamp::MIN)
    {
        return Judgement::reject(
            RejectReason::BeforePairing,
            "the visit ends before its pairing began",
        );
    }
    if ended
        > facts
            .received_at
            .checked_add(slack)
            .unwrap_or(Timestamp::MAX)
    {
        return Judgement::reject(
            RejectReason::InTheFuture,
            "the visit ends later than the moment it arrived",
        );
    }
    if let Some(acknowledged) = pairing.end_acknowledged_at
        && ended > acknowledged.checked_add(slack).unwrap_or(Timestamp::MAX)
    {
        return Judgement::reject(
            RejectReason::AfterPairingEnded,
            "the visit ends after the tablet was told its pairing had ended",
        );
    }
    if facts.overlaps {
        return Judgement::reject(
            RejectReason::Overlapping,
            "the visit overlaps another visit of this tablet",
        );
    }
    Judgement::Store(Placement {
        employee_id: pairing.employee_id,
        section_id: pairing.section_id,
        department_id: pairing.department_id,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use uuid::Uuid;

    const TABLET: i64 = 7;
    const OTHER_TABLET: i64 = 8;
    /// The server's clock when the sync arrives, in the tests.
    const NOW_MS: i64 = 1_800_000_000_000;
    const DAY_MS: i64 = 86_400_000;

    fn now() -> Timestamp {
        Timestamp::from_millisecond(NOW_MS).unwrap()
    }

    fn rule() -> Acceptance {
        Acceptance::default()
    }

    prop_compose! {
        fn any_visit()(
            id in any::<u128>(),
            pairing in any::<u128>(),
            service_id in 0i64..6,
            // From ten days before the sync to one after (and sometimes far off).
            start in prop_oneof![
                (NOW_MS - 10 * DAY_MS)..(NOW_MS + DAY_MS),
                0i64..4_000_000_000_000,
            ],
            // Sometimes negative: a visit that ends before it starts.
            length in -60_000i64..7_200_000,
            nanos in 0i64..1_000_000,
            rating in prop_oneof![Just(None), Just(Some(Rating::Good)), Just(Some(Rating::Medium)), Just(Some(Rating::Bad))],
            has_recording in any::<bool>(),
        ) -> Visit {
            let started_at = Timestamp::from_millisecond(start).unwrap()
                + SignedDuration::from_nanos(nanos);
            Visit {
                id: Uuid::from_u128(id),
                pairing_id: Uuid::from_u128(pairing),
                service_id,
                started_at,
                ended_at: started_at + SignedDuration::from_millis(length),
                rating,
                has_recording,
            }
        }
    }

    prop_compose! {
        fn any_pairing_facts()(
            tablet_id in prop_oneof![Just(TABLET), Just(OTHER_TABLET)],
            services in prop::collection::vec(0i64..6, 0..4),
            started_days_ago in 0i64..12,
            acknowledged_days_ago in prop::option::of(0i64..12),
        ) -> PairingFacts {
            PairingFacts {
                tablet_id,
                employee_id: 11,
                section_id: 21,
                department_id: 31,
                services,
                started_at: Timestamp::from_millisecond(NOW_MS - started_days_ago * DAY_MS).unwrap(),
                end_acknowledged_at: acknowledged_days_ago
                    .map(|days| Timestamp::from_millisecond(NOW_MS - days * DAY_MS).unwrap()),
            }
        }
    }

    fn any_pairing() -> impl Strategy<Value = Option<PairingFacts>> {
        prop_oneof![Just(None), any_pairing_facts().prop_map(Some)]
    }

    fn facts<'a>(
        visit: &'a Visit,
        stored: Option<&'a StoredVisit>,
        pairing: Option<&'a PairingFacts>,
        clock_offset_ms: i64,
        overlaps: bool,
    ) -> VisitFacts<'a> {
        VisitFacts {
            tablet_id: TABLET,
            visit,
            stored,
            pairing,
            received_at: now(),
            clock_offset_ms,
            overlaps,
        }
    }

    fn kind(judgement: &Judgement) -> String {
        match judgement {
            Judgement::Store(_) => "stored".into(),
            Judgement::AlreadyStored => "already_stored".into(),
            Judgement::Reject { reason, .. } => format!("{reason:?}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3_000))]

        /// A visit sent again — alone or with a forged pairing — never changes what is stored:
        /// it is the same visit from the same tablet, or a conflict.
        #[test]
        fn a_resend_never_changes_stored_data(
            visit in any_visit(),
            changed in any_visit(),
            pairing in any_pairing(),
            same in any::<bool>(),
            stored_by in prop_oneof![Just(TABLET), Just(OTHER_TABLET)],
            offset in -100_000i64..100_000,
            overlaps in any::<bool>(),
        ) {
            let stored = StoredVisit { visit: at_stored_precision(&visit), tablet_id: stored_by };
            let resent = if same { visit.clone() } else { Visit { id: visit.id, ..changed } };
            let judgement = judge(&facts(&resent, Some(&stored), pairing.as_ref(), offset, overlaps), &rule());
            prop_assert!(!matches!(judgement, Judgement::Store(_)));
            if stored_by == TABLET && at_stored_precision(&resent) == stored.visit {
                prop_assert_eq!(judgement, Judgement::AlreadyStored);
            } else {
                prop_assert_eq!(kind(&judgement), "Conflict");
            }
        }

        /// A pairing the server did not issue to the sending tablet never stores a visit.
        #[test]
        fn a_forged_pairing_never_passes(
            visit in any_visit(),
            mut pairing in any_pairing_facts(),
            offset in -100_000i64..100_000,
        ) {
            pairing.tablet_id = OTHER_TABLET;
            for pairing in [None, Some(&pairing)] {
                let judgement = judge(&facts(&visit, None, pairing, offset, false), &rule());
                prop_assert!(!matches!(judgement, Judgement::Store(_)), "{:?}", judgement);
            }
        }

        /// What is stored is well-formed, placed where its pairing says, and inside what the
        /// tablet could have rated: after its pairing began, before it arrived, before the
        /// tablet knew the pairing had ended, overlapping nothing.
        #[test]
        fn a_stored_visit_is_well_formed_and_in_its_window(
            visit in any_visit(),
            pairing in any_pairing(),
            offset in prop_oneof![Just(0i64), -3_600_000i64..3_600_000],
            overlaps in any::<bool>(),
        ) {
            let facts = facts(&visit, None, pairing.as_ref(), offset, overlaps);
            let judgement = judge(&facts, &rule());
            if let Judgement::Store(place) = judgement {
                let pairing = pairing.as_ref().unwrap();
                let slack = rule().clock_slack;
                let (_, ended) = facts.corrected();
                prop_assert_eq!(pairing.tablet_id, TABLET);
                prop_assert!(pairing.services.contains(&visit.service_id));
                prop_assert!(visit.ended_at >= visit.started_at);
                prop_assert!(visit.ended_at.duration_since(visit.started_at) <= LONGEST_VISIT);
                prop_assert!(!visit.has_recording || visit.rating == Some(Rating::Bad));
                prop_assert!(ended >= pairing.started_at - slack);
                prop_assert!(ended <= now() + slack);
                prop_assert!(pairing.end_acknowledged_at.is_none_or(|at| ended <= at + slack));
                prop_assert!(!overlaps);
                prop_assert_eq!(place.employee_id, pairing.employee_id);
                prop_assert_eq!(place.section_id, pairing.section_id);
            }
        }

        /// An offline tablet keeps working: under a pairing that has ended without the tablet
        /// being told, any visit between the pairing's start and its arrival is stored.
        #[test]
        fn offline_visits_under_an_ended_pairing_are_kept(
            days_ago in 1i64..10,
            ended_minutes_ago in 1i64..(9 * 24 * 60),
            offset in -600_000i64..600_000,
        ) {
            let pairing = PairingFacts {
                tablet_id: TABLET,
                employee_id: 11,
                section_id: 21,
                department_id: 31,
                services: vec![1],
                started_at: now() - SignedDuration::from_hours(24 * days_ago),
                end_acknowledged_at: None,
            };
            let tablet_end = now() - SignedDuration::from_mins(ended_minutes_ago.min(days_ago * 24 * 60 - 20))
                + SignedDuration::from_millis(offset);
            let visit = Visit {
                id: Uuid::from_u128(1),
                pairing_id: Uuid::from_u128(2),
                service_id: 1,
                started_at: tablet_end - SignedDuration::from_mins(10),
                ended_at: tablet_end,
                rating: Some(Rating::Bad),
                has_recording: true,
            };
            let judgement = judge(&facts(&visit, None, Some(&pairing), offset, false), &rule());
            prop_assert!(matches!(judgement, Judgement::Store(_)), "{:?}", judgement);
        }
    }

    /// Every outcome the rule has is reached by some input.
    #[test]
    fn every_outcome_is_reachable() {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let mut seen = HashSet::new();
        let strategy = (
            any_visit(),
            any_pairing(),
            any::<bool>(),
            any::<bool>(),
            -100_000i64..100_000,
        );
        for _ in 0..20_000 {
            let (visit, pairing, stored_before, overlaps, offset) =
                strategy.new_tree(&mut runner).unwrap().current();
            let stored = StoredVisit {
                visit: at_stored_precision(&visit),
                tablet_id: TABLET,
            };
            let judgement = judge(
                &facts(
                    &visit,
                    stored_before.then_some(&stored),
                    pairing.as_ref(),
                    offset,
                    overlaps,
                ),
                &rule(),
            );
            seen.insert(kind(&judgement));
        }
        let stored = stored_visit();
        let conflict = judge(
            &facts(
                &Visit {
                    rating: None,
                    ..stored.visit.clone()
                },
                Some(&stored),
                None,
                0,
                false,
            ),
            &rule(),
        );
        seen.insert(kind(&conflict));
        for expected in [
            "stored",
            "already_stored",
            "Conflict",
            "InvalidInterval",
            "RecordingNotAllowed",
            "UnknownPairing",
            "UnknownService",
            "BeforePairing",
            "InTheFuture",
            "AfterPairingEnded",
            "Overlapping",
        ] {
            assert!(
                seen.contains(expected),
                "{expected} never reached: {seen:?}"
            );
        }
    }

    fn stored_visit() -> StoredVisit {
        let at = now() - SignedDuration::from_hours(1);
        StoredVisit {
            visit: Visit {
                id: Uuid::from_u128(1),
                pairing_id: Uuid::from_u128(2),
                service_id: 1,
                started_at: at,
                ended_at: at + SignedDuration::from_mins(10),
                rating: Some(Rating::Bad),
                has_recording: true,
            },
            tablet_id: TABLET,
        }
    }

    #[test]
    fn instants_beyond_the_millisecond_are_the_same_visit() {
        let stored = stored_visit();
        let resent = Visit {
            ended_at: stored.visit.ended_at + SignedDuration::from_nanos(999),
            ..stored.visit.clone()
        };
        let judgement = judge(&facts(&resent, Some(&stored), None, 0, false), &rule());
        assert_eq!(judgement, Judgement::AlreadyStored);
    }

    #[test]
    fn another_tablets_visit_is_never_confirmed() {
        let stored = StoredVisit {
            tablet_id: OTHER_TABLET,
            ..stored_visit()
        };
        let judgement = judge(
            &facts(&stored.visit.clone(), Some(&stored), None, 0, false),
            &rule(),
        );
        assert_eq!(kind(&judgement), "Conflict");
    }

    /// The dates a forged visit was seen with: 2001, 2099, 9999.
    #[test]
    fn visits_dated_outside_their_pairing_are_refused() {
        let pairing = PairingFacts {
            tablet_id: TABLET,
            employee_id: 11,
            section_id: 21,
            department_id: 31,
            services: vec![1],
            started_at: now() - SignedDuration::from_hours(3),
            end_acknowledged_at: Some(now() - SignedDuration::from_hours(1)),
        };
        for (end, reason) in [
            ("2001-01-01T10:00:00Z", "BeforePairing"),
            ("2099-01-01T10:00:00Z", "InTheFuture"),
            ("9999-01-01T10:00:00Z", "InTheFuture"),
        ] {
            let ended_at: Timestamp = end.parse().unwrap();
            let visit = Visit {
                ended_at,
                started_at: ended_at - SignedDuration::from_mins(5),
                ..stored_visit().visit
            };
            let judgement = judge(&facts(&visit, None, Some(&pairing), 0, false), &rule());
            assert_eq!(kind(&judgement), reason, "{end}");
        }
        let after_told = Visit {
            ended_at: now() - SignedDuration::from_mins(30),
            started_at: now() - SignedDuration::from_mins(40),
            ..stored_visit().visit
        };
        let judgement = judge(&facts(&after_told, None, Some(&pairing), 0, false), &rule());
        assert_eq!(kind(&judgement), "AfterPairingEnded");
    }
}
