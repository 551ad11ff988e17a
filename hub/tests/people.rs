//! Admins, teachers, children and guardians: who is who, and how each change
//! is audited (by id, never by name or phone).

mod web_support;

use guardian_hub::accounts::{AccountError, Role};
use guardian_hub::audit::Actor;
use guardian_hub::children;
use uuid::Uuid;
use web_support::*;

fn school() -> TestHub {
    let t = TestHub::new();
    t.add_classroom("Sunflowers");
    t.add_classroom("Daisies");
    t
}

#[test]
fn admins_teachers_children_and_guardians_are_recorded_and_audited_by_id() {
    let t = school();
    let accounts = &t.hub.accounts;
    let sunflowers = accounts.classroom_id("Sunflowers").unwrap();
    let daisies = accounts.classroom_id("Daisies").unwrap();

    let admin = accounts
        .add_admin("Alba Admin", "+34600000001", PASSWORD)
        .unwrap();
    let teacher = accounts
        .add_teacher("Tomás Teacher", "+34600000002", PASSWORD, "Sunflowers")
        .unwrap();
    assert_eq!(
        accounts.assign_teacher("+34600000002", "Daisies").unwrap(),
        teacher
    );
    assert_eq!(
        accounts.teacher_classrooms(teacher).unwrap(),
        [sunflowers, daisies]
    );
    assert!(accounts.teaches(teacher, daisies).unwrap());
    let roses = accounts.add_classroom("Roses").unwrap();
    assert!(!accounts.teaches(teacher, roses).unwrap());

    let leo = children::add(&t.hub, "Sunflowers", "Leo López", Actor::Operator).unwrap();
    let guardian = accounts
        .add_guardian("Gina Guardian", "+34600000003", PASSWORD, None)
        .unwrap();
    assert_eq!(
        children::link_guardian(&t.hub, "+34600000003", leo, Actor::Operator).unwrap(),
        guardian
    );

    let child = children::get(&t.hub, leo).unwrap().unwrap();
    assert_eq!(
        (child.classroom_id, child.name.as_str()),
        (sunflowers, "Leo López")
    );
    assert_eq!(
        children::of_guardian(&t.hub, guardian).unwrap(),
        std::slice::from_ref(&child)
    );
    assert_eq!(children::guardians_of(&t.hub, leo).unwrap(), [guardian]);
    assert!(children::is_guardian_of(&t.hub, guardian, leo).unwrap());
    assert!(!children::is_guardian_of(&t.hub, teacher, leo).unwrap());
    assert_eq!(children::in_classroom(&t.hub, sunflowers).unwrap(), [child]);
    assert!(children::in_classroom(&t.hub, daisies).unwrap().is_empty());

    let parent = accounts.parent(guardian).unwrap().unwrap();
    assert_eq!(parent.classroom_id, None);
    assert!(accounts.parent(teacher).unwrap().is_none());
    assert!(accounts.parent(admin).unwrap().is_none());

    let expected = [
        ("admin_added", admin.to_string(), None),
        ("teacher_added", teacher.to_string(), Some(sunflowers)),
        ("teacher_assigned", teacher.to_string(), Some(daisies)),
        ("child_added", leo.to_string(), Some(sunflowers)),
        ("parent_added", guardian.to_string(), None),
    ];
    for (kind, subject, classroom) in expected {
        let rows = t.audit_of(kind);
        assert_eq!(rows.len(), 1, "{kind}");
        assert_eq!(rows[0].subject.as_deref(), Some(subject.as_str()), "{kind}");
        assert_eq!(rows[0].actor, "operator");
        if let Some(classroom) = classroom {
            assert!(rows[0].detail.contains(&classroom.to_string()), "{kind}");
        }
    }
    let linked = t.audit_of("guardian_linked");
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0].subject.as_deref(), Some(leo.to_string().as_str()));
    assert!(linked[0].detail.contains(&guardian.to_string()));

    for row in t.audit_rows() {
        let flat = row.flat();
        for personal in ["Alba", "Tomás", "Leo", "López", "Gina", "+34600"] {
            assert!(!flat.contains(personal), "{personal} in {flat}");
        }
    }
}

#[test]
fn every_role_logs_in_with_its_phone_and_password() {
    let t = school();
    let accounts = &t.hub.accounts;
    let admin = accounts.add_admin("A", "+34600000001", PASSWORD).unwrap();
    let teacher = accounts
        .add_teacher("T", "+34600000002", PASSWORD, "Sunflowers")
        .unwrap();
    let guardian = t.add_guardian("G", "+34600000003").id;

    for (phone, id, role) in [
        ("+34600000001", admin, Role::Admin),
        ("+34 600 000 002", teacher, Role::Teacher),
        ("+34600000003", guardian, Role::Guardian),
    ] {
        let account = accounts.check_login(phone, PASSWORD).unwrap().unwrap();
        assert_eq!((account.id, account.role), (id, role));
        assert!(accounts
            .check_login(phone, "wrong password!")
            .unwrap()
            .is_none());
    }
}

#[test]
fn one_phone_number_is_one_account_with_one_role() {
    let t = school();
    let accounts = &t.hub.accounts;
    t.add_guardian("G", "+34600000003");
    accounts
        .add_teacher("T", "+34600000002", PASSWORD, "Sunflowers")
        .unwrap();

    let taken = accounts
        .add_teacher("T2", "+34600000003", PASSWORD, "Daisies")
        .unwrap_err();
    assert!(
        matches!(
            &taken,
            AccountError::PhoneTaken {
                role: Role::Guardian,
                ..
            }
        ),
        "{taken}"
    );
    let taken = accounts
        .add_admin("A", "+34600000002", PASSWORD)
        .unwrap_err();
    assert!(
        matches!(
            &taken,
            AccountError::PhoneTaken {
                role: Role::Teacher,
                ..
            }
        ),
        "{taken}"
    );
    let taken = accounts
        .add_guardian("G2", "+34600000002", PASSWORD, None)
        .unwrap_err();
    assert!(matches!(taken, AccountError::PhoneTaken { .. }));
    assert!(matches!(
        accounts
            .assign_teacher("+34600000003", "Daisies")
            .unwrap_err(),
        AccountError::PhoneTaken {
            role: Role::Guardian,
            ..
        }
    ));
    assert!(matches!(
        accounts
            .assign_teacher("+34600000009", "Daisies")
            .unwrap_err(),
        AccountError::UnknownTeacher(_)
    ));
}

#[test]
fn new_accounts_need_a_name_a_phone_a_long_password_and_a_real_classroom() {
    let t = school();
    let accounts = &t.hub.accounts;
    assert!(matches!(
        accounts
            .add_admin(" ", "+34600000001", PASSWORD)
            .unwrap_err(),
        AccountError::EmptyPersonName
    ));
    assert!(matches!(
        accounts.add_admin("A", "600000001", PASSWORD).unwrap_err(),
        AccountError::InvalidPhone(_)
    ));
    assert!(matches!(
        accounts
            .add_admin("A", "+34600000001", "short")
            .unwrap_err(),
        AccountError::PasswordTooShort
    ));
    assert!(matches!(
        accounts
            .add_teacher("T", "+34600000002", PASSWORD, "Roses")
            .unwrap_err(),
        AccountError::UnknownClassroom(_)
    ));
    assert!(matches!(
        children::add(&t.hub, "Roses", "Leo", Actor::Operator).unwrap_err(),
        AccountError::UnknownClassroom(_)
    ));
    assert!(matches!(
        children::add(&t.hub, "Sunflowers", "  ", Actor::Operator).unwrap_err(),
        AccountError::EmptyPersonName
    ));
    // Nothing half-made was left behind.
    let accounts_count: i64 = t
        .hub
        .db
        .lock()
        .query_row("SELECT COUNT(*) FROM accounts", [], |row| row.get(0))
        .unwrap();
    assert_eq!(accounts_count, 0);
}

#[test]
fn only_a_guardian_can_be_linked_and_only_to_a_child_that_exists() {
    let t = school();
    let leo = children::add(&t.hub, "Sunflowers", "Leo", Actor::Operator).unwrap();
    t.hub
        .accounts
        .add_teacher("T", "+34600000002", PASSWORD, "Sunflowers")
        .unwrap();
    t.add_guardian("G", "+34600000003");

    assert!(matches!(
        children::link_guardian(&t.hub, "+34600000002", leo, Actor::Operator).unwrap_err(),
        AccountError::UnknownGuardian(_)
    ));
    assert!(matches!(
        children::link_guardian(&t.hub, "+34600000004", leo, Actor::Operator).unwrap_err(),
        AccountError::UnknownGuardian(_)
    ));
    assert!(matches!(
        children::link_guardian(&t.hub, "+34600000003", Uuid::new_v4(), Actor::Operator)
            .unwrap_err(),
        AccountError::UnknownChild(_)
    ));

    // Linking twice is one link and one audit entry.
    children::link_guardian(&t.hub, "+34600000003", leo, Actor::Operator).unwrap();
    children::link_guardian(&t.hub, "+34600000003", leo, Actor::Operator).unwrap();
    assert_eq!(children::guardians_of(&t.hub, leo).unwrap().len(), 1);
    assert_eq!(t.audit_of("guardian_linked").len(), 1);
}

#[test]
fn the_audit_log_stays_intact_through_people_changes() {
    let t = school();
    t.hub
        .accounts
        .add_admin("A", "+34600000001", PASSWORD)
        .unwrap();
    let leo = children::add(&t.hub, "Sunflowers", "Leo", Actor::Operator).unwrap();
    t.add_guardian("G", "+34600000003");
    children::link_guardian(&t.hub, "+34600000003", leo, Actor::Operator).unwrap();

    let verdict = t.hub.audit.verify(&t.hub.db.lock()).unwrap();
    assert!(
        matches!(
            verdict,
            guardian_hub::audit::Verdict::Intact { entries: 6, .. }
        ),
        "{verdict:?}"
    );
}

#[test]
fn erasing_a_child_removes_their_record_consents_and_links_and_audits_only_the_id() {
    use guardian_hub::consent::{self, Purpose};

    let t = school();
    let leo = children::add(&t.hub, "Sunflowers", "Leo", Actor::Operator).unwrap();
    let mia = children::add(&t.hub, "Sunflowers", "Mia", Actor::Operator).unwrap();
    let gina = t.add_guardian("Gina", "+34600000003");
    for child in [leo, mia] {
        children::link_guardian(&t.hub, &gina.phone, child, Actor::Operator).unwrap();
        consent::set(
            &t.hub,
            child,
            Purpose::Originals,
            true,
            Actor::Parent(gina.id),
        )
        .unwrap();
    }
    consent::set(
        &t.hub,
        leo,
        Purpose::Originals,
        false,
        Actor::Parent(gina.id),
    )
    .unwrap();

    let erased = children::erase(&t.hub, leo, Actor::Operator).unwrap();
    assert_eq!(
        erased,
        children::Erased {
            consents: 2,
            guardian_links: 1,
            photos_removed: 0,
            faces_unnamed: 0,
        }
    );

    // Read the database itself: nothing of Leo is left, Mia is untouched.
    let rows = |sql: &str, id: Uuid| -> i64 {
        t.hub
            .db
            .lock()
            .query_row(sql, [id.to_string()], |row| row.get(0))
            .unwrap()
    };
    for sql in [
        "SELECT COUNT(*) FROM children WHERE id = ?1",
        "SELECT COUNT(*) FROM consents WHERE child_id = ?1",
        "SELECT COUNT(*) FROM guardian_links WHERE child_id = ?1",
    ] {
        assert_eq!(rows(sql, leo), 0, "{sql}");
        assert_eq!(rows(sql, mia), 1, "{sql}");
    }
    assert!(children::get(&t.hub, leo).unwrap().is_none());
    assert!(consent::history(&t.hub, leo).unwrap().is_empty());
    assert_eq!(
        children::of_guardian(&t.hub, gina.id)
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect::<Vec<_>>(),
        [mia]
    );

    let audit = t.audit_of("child_erased");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].subject.as_deref(), Some(leo.to_string().as_str()));
    assert!(!audit[0].flat().contains("Leo"));

    // Erased means gone: a second erasure or a new link finds no child.
    assert!(matches!(
        children::erase(&t.hub, leo, Actor::Operator).unwrap_err(),
        AccountError::UnknownChild(_)
    ));
    assert!(matches!(
        children::link_guardian(&t.hub, &gina.phone, leo, Actor::Operator).unwrap_err(),
        AccountError::UnknownChild(_)
    ));
    let verdict = t.hub.audit.verify(&t.hub.db.lock()).unwrap();
    assert!(matches!(
        verdict,
        guardian_hub::audit::Verdict::Intact { .. }
    ));
}
