//! Each guardian sees their own child, and no other child without consent.
//!
//! One real group photo with six annotated faces: three are named as
//! children of three families with different consents, three stay unknown.
//! Every family's preview and (where offered) original are measured with the
//! watermark switched off: an uncovered face keeps at least half of the
//! source's detail (variance of the Laplacian), a covered one less than a
//! tenth.

mod web_support;

use axum::http::StatusCode;
use guardian_e2e::measure::{decode, laplacian_variance, load_upright, resize, Region};
use guardian_hub::audit::Actor;
use guardian_hub::consent::Purpose;
use guardian_hub::review;
use image::RgbImage;
use serde_json::json;
use uuid::Uuid;
use web_support::*;

const PHOTO: &str = "voc_2008_002470.jpg";

/// What one face should be for one viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Uncovered,
    Covered,
}
use Seen::{Covered, Uncovered};

struct Class {
    t: TestHub,
    photo: Uuid,
    leo_family: ParentLogin,
    mia_family: ParentLogin,
    noa_family: ParentLogin,
    /// Faces 0, 1 and 2 are Leo, Mia and Noa; 3, 4 and 5 nobody named.
    faces: Vec<Region>,
}

/// Leo's family shares everything; Mia's allows originals but not being
/// seen by other families; Noa's allows neither.
fn class() -> Class {
    let t = TestHub::unmarked();
    t.add_classroom("Class A");
    let leo_family = t.add_guardian("Lena", "+34600000011");
    let mia_family = t.add_guardian("Marco", "+34600000012");
    let noa_family = t.add_guardian("Nadia", "+34600000013");
    let leo = t.add_child_of("Class A", "Leo", &leo_family);
    let mia = t.add_child_of("Class A", "Mia", &mia_family);
    let noa = t.add_child_of("Class A", "Noa", &noa_family);
    t.set_consent(&leo_family, leo, Purpose::VisibleToClassmates, true);
    t.set_consent(&leo_family, leo, Purpose::Originals, true);
    t.set_consent(&mia_family, mia, Purpose::VisibleToClassmates, false);
    t.set_consent(&mia_family, mia, Purpose::Originals, true);
    t.set_consent(&noa_family, noa, Purpose::Originals, false);

    let photo = t.add_unreviewed_photo("Class A", PHOTO);
    for (n, child) in [leo, mia, noa].into_iter().enumerate() {
        review::name_face(&t.hub, photo, n as u32, Some(child), Actor::Operator).unwrap();
    }
    review::release(&t.hub, photo, false, Actor::Operator).unwrap();

    let faces = guardian_e2e::faces_json()[PHOTO]["faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(Region::from_json)
        .collect::<Vec<_>>();
    assert_eq!(faces.len(), 6);
    Class {
        t,
        photo,
        leo_family,
        mia_family,
        noa_family,
        faces,
    }
}

/// Checks every face of a rendering against what the viewer should see.
fn assert_faces(rendering: &RgbImage, faces: &[Region], expected: &[Seen], what: &str) {
    let source = load_upright(&testdata(PHOTO));
    let source = if source.dimensions() == rendering.dimensions() {
        source
    } else {
        resize(&source, rendering.width(), rendering.height())
    };
    let scale = f64::from(rendering.width()) / f64::from(source.width());

    for (n, (face, seen)) in faces.iter().zip(expected).enumerate() {
        let region = face.scaled(scale);
        let kept = laplacian_variance(rendering, region) / laplacian_variance(&source, region);
        match seen {
            Uncovered => assert!(
                kept >= 0.5,
                "{what}: face {n} should be uncovered, keeps {kept:.3}"
            ),
            Covered => assert!(
                kept < 0.1,
                "{what}: face {n} should be covered, keeps {kept:.3}"
            ),
        }
    }
}

async fn preview(t: &TestHub, cookie: &str, photo: Uuid) -> RgbImage {
    let answer = t
        .send(get(&format!("/api/photos/{photo}/preview"), Some(cookie)))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    decode(&answer.body)
}

#[tokio::test]
async fn each_family_sees_its_own_child_and_only_consenting_classmates() {
    let c = class();

    //                 Leo        Mia      Noa      unknown x3
    let for_leo = [Uncovered, Covered, Covered, Covered, Covered, Covered];
    let for_mia = [Uncovered, Uncovered, Covered, Covered, Covered, Covered];
    let for_noa = [Uncovered, Covered, Uncovered, Covered, Covered, Covered];

    for (family, expected, name) in [
        (&c.leo_family, for_leo, "Leo's family"),
        (&c.mia_family, for_mia, "Mia's family"),
        (&c.noa_family, for_noa, "Noa's family"),
    ] {
        let cookie = c.t.login(&family.phone).await;
        let rendering = preview(&c.t, &cookie, c.photo).await;
        assert_faces(
            &rendering,
            &c.faces,
            &expected,
            &format!("{name}'s preview"),
        );
    }
}

#[tokio::test]
async fn an_original_is_offered_only_when_every_uncovered_child_consented() {
    let c = class();

    // Leo's family: Leo (originals: yes) is the only uncovered child.
    let leo = c.t.login(&c.leo_family.phone).await;
    let listed = c.t.send(get("/api/photos", Some(&leo))).await.json();
    assert_eq!(listed[0]["original_available"], true);
    let original = decode(&c.t.fetch_original(&leo, c.photo).await);
    assert_faces(
        &original,
        &c.faces,
        &[Uncovered, Covered, Covered, Covered, Covered, Covered],
        "Leo's family's original",
    );

    // Mia's family: Mia and Leo uncovered, both consented to originals.
    let mia = c.t.login(&c.mia_family.phone).await;
    let original = decode(&c.t.fetch_original(&mia, c.photo).await);
    assert_faces(
        &original,
        &c.faces,
        &[Uncovered, Uncovered, Covered, Covered, Covered, Covered],
        "Mia's family's original",
    );

    // Noa's family: Noa is uncovered for them and has no consent for
    // originals, so none is offered and asking is refused and audited.
    let noa = c.t.login(&c.noa_family.phone).await;
    let listed = c.t.send(get("/api/photos", Some(&noa))).await.json();
    assert_eq!(listed[0]["original_available"], false);
    c.t.send(post_json(
        &format!("/api/photos/{}/original", c.photo),
        Some(&noa),
        &json!({}),
    ))
    .await
    .assert_error(StatusCode::FORBIDDEN, "original_not_allowed");
    let refused = c.t.audit_of("original_request_refused");
    assert!(refused
        .iter()
        .any(|row| row.actor == format!("parent:{}", c.noa_family.id)
            && row.detail.contains("no_consent")));
}

#[tokio::test]
async fn the_sealed_original_on_disk_never_changes() {
    let c = class();
    let sealed = || {
        let record = c.t.hub.store.get(c.photo).unwrap().unwrap();
        (
            c.t.hub.store.envelope(c.photo).unwrap(),
            record.envelope_sha256,
        )
    };
    let before = sealed();

    let leo = c.t.login(&c.leo_family.phone).await;
    preview(&c.t, &leo, c.photo).await;
    c.t.fetch_original(&leo, c.photo).await;

    assert_eq!(sealed(), before);
}

#[tokio::test]
async fn a_teacher_drawn_face_nobody_named_is_covered_for_every_family() {
    let c = class();

    // A seventh box over Leo's face region, drawn by a teacher and left
    // unknown, overrides nothing: unknown means covered, even where a named
    // face would otherwise be shown.
    let leo_face = &c.faces[0];
    review::add_face(
        &c.t.hub,
        c.photo,
        guardian_protocol::FaceRect {
            x: leo_face.x as u32,
            y: leo_face.y as u32,
            width: leo_face.w as u32,
            height: leo_face.h as u32,
        },
        Actor::Operator,
    )
    .unwrap();

    for family in [&c.leo_family, &c.mia_family, &c.noa_family] {
        let cookie = c.t.login(&family.phone).await;
        let rendering = preview(&c.t, &cookie, c.photo).await;
        assert_faces(
            &rendering,
            &c.faces[..1],
            &[Covered],
            &format!("{}'s preview", family.name),
        );
    }
}

#[tokio::test]
async fn a_withdrawn_consent_applies_to_the_next_preview() {
    let c = class();
    let mia = c.t.login(&c.mia_family.phone).await;
    let before = preview(&c.t, &mia, c.photo).await;
    assert_faces(&before, &c.faces[..1], &[Uncovered], "before withdrawal");

    let leo = c.t.hub.store.get(c.photo).unwrap().unwrap();
    let leo_child = review::get(&c.t.hub, leo.id).unwrap().unwrap().faces[0]
        .child_id
        .unwrap();
    c.t.set_consent(
        &c.leo_family,
        leo_child,
        Purpose::VisibleToClassmates,
        false,
    );

    let after = preview(&c.t, &mia, c.photo).await;
    assert_faces(&after, &c.faces[..1], &[Covered], "after withdrawal");
}

#[tokio::test]
async fn a_large_photo_is_scaled_for_the_preview_and_keeps_its_covers() {
    // A 7-megapixel photo, its faces found by the real detector.
    const LARGE: &str = "mde_cafe_group_7mp.jpg";
    let source = load_upright(&testdata(LARGE));
    let mut detector =
        guardian_models::detector(guardian_models::DetectorKind::CenterFace).unwrap();
    let found = detector.detect(&source).unwrap();
    assert!(found.len() >= 3, "the detector found {} faces", found.len());
    let faces: Vec<guardian_protocol::FaceRect> = found
        .iter()
        .map(|face| guardian_protocol::FaceRect {
            x: face.x,
            y: face.y,
            width: face.width,
            height: face.height,
        })
        .collect();

    let t = TestHub::unmarked();
    t.add_classroom("Class A");
    let family = t.add_guardian("Lena", "+34600000011");
    let leo = t.add_child_of("Class A", "Leo", &family);
    let photo = t.add_unreviewed_photo_with_faces("Class A", LARGE, faces.clone());
    review::name_face(&t.hub, photo, 0, Some(leo), Actor::Operator).unwrap();
    review::release(&t.hub, photo, false, Actor::Operator).unwrap();

    let cookie = t.login(&family.phone).await;
    let rendering = preview(&t, &cookie, photo).await;
    assert_eq!(rendering.width().max(rendering.height()), 1280);

    let scale = f64::from(rendering.width()) / f64::from(source.width());
    let small_source = resize(&source, rendering.width(), rendering.height());
    for (n, face) in faces.iter().enumerate() {
        let region = Region {
            x: f64::from(face.x),
            y: f64::from(face.y),
            w: f64::from(face.width),
            h: f64::from(face.height),
        }
        .scaled(scale);
        let kept =
            laplacian_variance(&rendering, region) / laplacian_variance(&small_source, region);
        if n == 0 {
            assert!(kept >= 0.5, "Leo's face keeps {kept:.3}");
        } else {
            assert!(kept < 0.1, "face {n} keeps {kept:.3}");
        }
    }

    // The second view comes from the preview kept in memory, and is the same.
    let again = preview(&t, &cookie, photo).await;
    assert_eq!(again.dimensions(), rendering.dimensions());
}
