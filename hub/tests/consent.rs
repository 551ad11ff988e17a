//! Consent records: no until given, given and withdrawn at once, every
//! decision kept with who made it and when.

mod web_support;

use chrono::Duration;
use guardian_hub::audit::Actor;
use guardian_hub::children;
use guardian_hub::consent::{self, ConsentError, Purpose};
use uuid::Uuid;
use web_support::*;

/// A classroom, one child and the child's guardian.
fn one_family() -> (TestHub, Uuid, ParentLogin) {
    let t = TestHub::new();
    t.add_classroom("Sunflowers");
    let leo = children::add(&t.hub, "Sunflowers", "Leo", Actor::Operator).unwrap();
    let gina = t.add_guardian("Gina", "+34600000003");
    children::link_guardian(&t.hub, &gina.phone, leo, Actor::Operator).unwrap();
    (t, leo, gina)
}

#[test]
fn until_consent_is_given_the_answer_is_no() {
    let (t, leo, _) = one_family();
    for purpose in Purpose::ALL {
        assert!(!consent::current(&t.hub, leo, purpose).unwrap());
    }
    assert!(consent::history(&t.hub, leo).unwrap().is_empty());
    assert!(!consent::current(&t.hub, Uuid::new_v4(), Purpose::Originals).unwrap());
}

#[test]
fn giving_and_withdrawing_take_effect_at_once_and_are_kept_in_order() {
    let (t, leo, gina) = one_family();
    let by = Actor::Parent(gina.id);
    let first = t.clock_now();

    consent::set(&t.hub, leo, Purpose::VisibleToClassmates, true, by).unwrap();
    assert!(consent::current(&t.hub, leo, Purpose::VisibleToClassmates).unwrap());
    assert!(
        !consent::current(&t.hub, leo, Purpose::Originals).unwrap(),
        "purposes are separate"
    );

    t.advance(Duration::days(3));
    let admin = t
        .hub
        .accounts
        .add_admin("A", "+34600000001", PASSWORD)
        .unwrap();
    consent::set(&t.hub, leo, Purpose::Originals, true, Actor::Admin(admin)).unwrap();
    t.advance(Duration::hours(1));
    let withdrawn = consent::set(&t.hub, leo, Purpose::VisibleToClassmates, false, by).unwrap();
    assert!(!withdrawn.granted);
    assert!(!consent::current(&t.hub, leo, Purpose::VisibleToClassmates).unwrap());
    assert!(consent::current(&t.hub, leo, Purpose::Originals).unwrap());

    let history = consent::history(&t.hub, leo).unwrap();
    let summary: Vec<(Purpose, bool, String, i64)> = history
        .iter()
        .map(|r| {
            (
                r.purpose,
                r.granted,
                r.by.clone(),
                (r.at - first).num_hours(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                Purpose::VisibleToClassmates,
                true,
                format!("parent:{}", gina.id),
                0
            ),
            (Purpose::Originals, true, format!("admin:{admin}"), 72),
            (
                Purpose::VisibleToClassmates,
                false,
                format!("parent:{}", gina.id),
                73
            ),
        ]
    );
    assert!(history.iter().all(|r| r.child_id == leo));
}

#[test]
fn each_decision_is_audited_with_the_child_id_only() {
    let (t, leo, gina) = one_family();
    consent::set(
        &t.hub,
        leo,
        Purpose::Originals,
        true,
        Actor::Parent(gina.id),
    )
    .unwrap();
    consent::set(
        &t.hub,
        leo,
        Purpose::Originals,
        false,
        Actor::Parent(gina.id),
    )
    .unwrap();

    let rows = t.audit_of("consent_changed");
    assert_eq!(rows.len(), 2);
    for (row, granted) in rows.iter().zip([true, false]) {
        assert_eq!(row.actor, format!("parent:{}", gina.id));
        assert_eq!(row.subject.as_deref(), Some(leo.to_string().as_str()));
        let detail: serde_json::Value = serde_json::from_str(&row.detail).unwrap();
        assert_eq!(detail["purpose"], "originals");
        assert_eq!(detail["granted"], granted);
        assert!(!row.flat().contains("Leo"));
    }
}

#[test]
fn consent_history_cannot_be_rewritten() {
    let (t, leo, gina) = one_family();
    consent::set(
        &t.hub,
        leo,
        Purpose::Originals,
        false,
        Actor::Parent(gina.id),
    )
    .unwrap();

    let rewritten = t
        .hub
        .db
        .lock()
        .execute("UPDATE consents SET granted = 1", []);
    let error = rewritten.unwrap_err().to_string();
    assert!(error.contains("append-only"), "{error}");
    assert!(!consent::current(&t.hub, leo, Purpose::Originals).unwrap());
}

#[test]
fn consent_for_a_child_that_does_not_exist_is_refused_and_not_recorded() {
    let (t, _, gina) = one_family();
    let nobody = Uuid::new_v4();
    let error = consent::set(
        &t.hub,
        nobody,
        Purpose::Originals,
        true,
        Actor::Parent(gina.id),
    )
    .unwrap_err();
    assert!(matches!(error, ConsentError::UnknownChild(id) if id == nobody));
    assert!(t.audit_of("consent_changed").is_empty());
    assert!(matches!(
        "all".parse::<Purpose>().unwrap_err(),
        ConsentError::UnknownPurpose(_)
    ));
}
