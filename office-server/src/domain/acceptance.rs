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
//!   offline tablet keeps rating under it.

use jiff::Timestamp;
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
pub fn judge(facts: &VisitFacts<'_>) -> Judgement {
    let visit = facts.visit;
    if let Some(stored) = facts.stored {
        return if stored.visit == at_stored_precision(visit) {
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

    fn pairing_facts(tablet_id: i64, services: Vec<i64>) -> PairingFacts {
        PairingFacts {
            tablet_id,
            employee_id: 11,
            section_id: 21,
            department_id: 31,
            services,
        }
    }

    prop_compose! {
        fn any_visit()(
            id in any::<u128>(),
            pairing in any::<u128>(),
            service_id in 0i64..6,
            start in 1_700_000_000_000i64..1_900_000_000_000,
            // Sometimes negative: a visit that ends before it starts.
            length in -60_000i64..7_200_000,
            nanos in 0i64..1_000_000,
            rating in prop_oneof![Just(None), Just(Some(Rating::Good)), Just(Some(Rating::Medium)), Just(Some(Rating::Bad))],
            has_recording in any::<bool>(),
        ) -> Visit {
            let started_at = Timestamp::from_millisecond(start).unwrap()
                + jiff::SignedDuration::from_nanos(nanos);
            Visit {
                id: Uuid::from_u128(id),
                pairing_id: Uuid::from_u128(pairing),
                service_id,
                started_at,
                ended_at: started_at + jiff::SignedDuration::from_millis(length),
                rating,
                has_recording,
            }
        }
    }

    fn any_pairing() -> impl Strategy<Value = Option<PairingFacts>> {
        prop_oneof![
            Just(None),
            (
                prop_oneof![Just(TABLET), Just(OTHER_TABLET)],
                prop::collection::vec(0i64..6, 0..4)
            )
                .prop_map(|(tablet, services)| Some(pairing_facts(tablet, services))),
        ]
    }

    fn kind(judgement: &Judgement) -> String {
        match judgement {
            Judgement::Store(_) => "stored".into(),
            Judgement::AlreadyStored => "already_stored".into(),
            Judgement::Reject { reason, .. } => format!("{reason:?}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// A visit sent again — alone or with a forged pairing — never changes what is stored:
        /// it is either the same visit or a conflict.
        #[test]
        fn a_resend_never_changes_stored_data(
            visit in any_visit(),
            changed in any_visit(),
            pairing in any_pairing(),
            same in any::<bool>(),
        ) {
            let stored = StoredVisit { visit: at_stored_precision(&visit), tablet_id: TABLET };
            let resent = if same { visit.clone() } else { Visit { id: visit.id, ..changed } };
            let judgement = judge(&VisitFacts {
                tablet_id: TABLET,
                visit: &resent,
                stored: Some(&stored),
                pairing: pairing.as_ref(),
            });
            prop_assert!(!matches!(judgement, Judgement::Store(_)));
            if at_stored_precision(&resent) == stored.visit {
                prop_assert_eq!(judgement, Judgement::AlreadyStored);
            } else {
                prop_assert_eq!(kind(&judgement), "Conflict");
            }
        }

        /// A pairing the server did not issue to the sending tablet never stores a visit.
        #[test]
        fn a_forged_pairing_never_passes(visit in any_visit(), services in prop::collection::vec(0i64..6, 0..4)) {
            let others = pairing_facts(OTHER_TABLET, services);
            for pairing in [None, Some(&others)] {
                let judgement = judge(&VisitFacts { tablet_id: TABLET, visit: &visit, stored: None, pairing });
                prop_assert!(!matches!(judgement, Judgement::Store(_)), "{:?}", judgement);
            }
        }

        /// What is stored is well-formed and placed where its pairing says.
        #[test]
        fn a_stored_visit_is_well_formed(visit in any_visit(), pairing in any_pairing()) {
            let judgement = judge(&VisitFacts { tablet_id: TABLET, visit: &visit, stored: None, pairing: pairing.as_ref() });
            if let Judgement::Store(place) = judgement {
                let pairing = pairing.unwrap();
                prop_assert_eq!(pairing.tablet_id, TABLET);
                prop_assert!(pairing.services.contains(&visit.service_id));
                prop_assert!(visit.ended_at >= visit.started_at);
                prop_assert!(!visit.has_recording || visit.rating == Some(Rating::Bad));
                prop_assert_eq!(place.employee_id, pairing.employee_id);
                prop_assert_eq!(place.section_id, pairing.section_id);
            }
        }
    }

    /// Every outcome the rule has is reached by some input.
    #[test]
    fn every_outcome_is_reachable() {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let mut seen = HashSet::new();
        let strategy = (any_visit(), any_pairing(), any::<bool>());
        for _ in 0..5_000 {
            let (visit, pairing, stored_before) = strategy.new_tree(&mut runner).unwrap().current();
            let stored = StoredVisit {
                visit: at_stored_precision(&visit),
                tablet_id: TABLET,
            };
            let judgement = judge(&VisitFacts {
                tablet_id: TABLET,
                visit: &visit,
                stored: stored_before.then_some(&stored),
                pairing: pairing.as_ref(),
            });
            seen.insert(kind(&judgement));
        }
        let conflict = judge(&VisitFacts {
            tablet_id: TABLET,
            visit: &Visit {
                rating: None,
                ..stored_visit().visit
            },
            stored: Some(&stored_visit()),
            pairing: None,
        });
        seen.insert(kind(&conflict));
        for expected in [
            "stored",
            "already_stored",
            "Conflict",
            "InvalidInterval",
            "RecordingNotAllowed",
            "UnknownPairing",
            "UnknownService",
        ] {
            assert!(
                seen.contains(expected),
                "{expected} never reached: {seen:?}"
            );
        }
    }

    fn stored_visit() -> StoredVisit {
        let at: Timestamp = "2026-11-24T05:00:00Z".parse().unwrap();
        StoredVisit {
            visit: Visit {
                id: Uuid::from_u128(1),
                pairing_id: Uuid::from_u128(2),
                service_id: 1,
                started_at: at,
                ended_at: at + jiff::SignedDuration::from_mins(10),
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
            ended_at: stored.visit.ended_at + jiff::SignedDuration::from_nanos(999),
            ..stored.visit.clone()
        };
        let judgement = judge(&VisitFacts {
            tablet_id: TABLET,
            visit: &resent,
            stored: Some(&stored),
            pairing: None,
        });
        assert_eq!(judgement, Judgement::AlreadyStored);
    }
}
