//! What rendering a photo for one viewer costs: every preview, original and
//! review image is made from the sealed original on request (decrypt, decode,
//! cover, scale, watermark, encode), nothing decrypted being kept between
//! requests.
//!
//! `cargo bench -p guardian-hub --bench render` prints the median time of
//! each rendering per photo and the peak resident memory; it asserts nothing.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use chrono::Utc;
use guardian_hub::render::{self, Covering, Size, PREVIEW_CACHE_ENTRIES};
use guardian_hub::review;
use guardian_hub::store::PhotoRecord;
use guardian_hub::watermark::ViewerMark;
use guardian_models::photo::{decode_upright, DecodeLimits};
use guardian_protocol::{FaceRect, PhotoDetails};
use uuid::Uuid;

mod support;
use support::{bench_hub, median, peak_rss, sealed_envelope};

const PHOTOS: [&str; 4] = [
    "voc_2008_001322.jpg",
    "mde_cafe_group_7mp.jpg",
    "mde_couple_balcony_exif6_8mp.jpg",
    "mde_food_counter_12mp_noface.jpg",
];
const ROUNDS: usize = 5;

fn main() {
    let (_dir, hub, device) = bench_hub();
    let classroom_id = hub.accounts.classroom_id("Bench").expect("classroom id");
    let mark = ViewerMark {
        viewer_name: "Bench Viewer".into(),
        client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        at: Utc::now(),
        access_id: Uuid::new_v4(),
    };

    println!(
        "{:<36} {:>11} {:>12} {:>12} {:>12} {:>12}",
        "photo", "pixels", "preview ms", "cached ms", "original ms", "review ms"
    );
    for name in PHOTOS {
        let original = std::fs::read(guardian_e2e::testdata(name)).expect("photo");
        let upright = decode_upright(&original, &DecodeLimits::default())
            .expect("decode")
            .image;
        let (width, height) = upright.dimensions();
        drop(upright);

        // Three faces to cover, as in a small group photo.
        let faces: Vec<FaceRect> = (0..3)
            .map(|i| FaceRect {
                x: width / 4 * i,
                y: height / 3,
                width: width / 8,
                height: width / 8,
            })
            .collect();
        let photo_id = Uuid::new_v4();
        let details = PhotoDetails {
            width,
            height,
            faces: faces.clone(),
            damaged: false,
            detector: "bench".into(),
            media_type: "image/jpeg".into(),
        };
        let envelope = sealed_envelope(&device, photo_id, &details, &original, &original);
        let record = PhotoRecord {
            id: photo_id,
            device_id: device.device_id,
            classroom_id,
            captured_at: Utc::now(),
            received_at: Utc::now(),
            device_sent_at: Utc::now(),
            faces: 3,
            width,
            height,
            damaged: false,
            envelope_sha256: guardian_protocol::envelope_sha256(&envelope),
        };
        hub.store.put(&record, &envelope).expect("store");
        review::record_device_faces(&hub, photo_id, &faces).expect("faces");
        let review_faces = review::get(&hub, photo_id)
            .expect("review")
            .expect("photo")
            .faces;

        let covering = Covering {
            faces: faces[1..].to_vec(),
            everything: false,
        };
        let time = |render: &dyn Fn() -> Vec<u8>| {
            let mut ms = Vec::new();
            for _ in 0..ROUNDS {
                let started = Instant::now();
                let jpeg = render();
                ms.push(started.elapsed().as_secs_f64() * 1000.0);
                assert!(!jpeg.is_empty());
            }
            median(&mut ms)
        };
        let cold_preview = time(&|| {
            hub.previews.forget(photo_id);
            render::for_viewer(&hub, photo_id, &covering, Size::Preview, Some(&mark))
                .expect("preview")
        });
        let cached_preview = time(&|| {
            render::for_viewer(&hub, photo_id, &covering, Size::Preview, Some(&mark))
                .expect("preview")
        });
        let full = time(&|| {
            render::for_viewer(&hub, photo_id, &covering, Size::Original, Some(&mark))
                .expect("original")
        });
        let review_image =
            time(&|| render::for_review(&hub, photo_id, &review_faces, &mark).expect("review"));
        println!(
            "{:<36} {:>11} {:>12.1} {:>12.1} {:>12.1} {:>12.1}",
            name,
            format!("{width}x{height}"),
            cold_preview,
            cached_preview,
            full,
            review_image
        );
    }
    println!(
        "median of {ROUNDS} rounds, one thread; \"cached\": the photo was viewed before and is \
         still among the last {PREVIEW_CACHE_ENTRIES} decoded; the web server renders at most 2 at once"
    );
    println!("peak resident memory (VmHWM): {}", peak_rss());
}
