//! A browser, reduced to what the tests need: JSON calls with the session
//! cookie the hub set, and the few calls a teacher and a parent make.

use std::io::Read;

use serde_json::json;

use crate::measure::Region;

/// One HTTP response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub set_cookie: Vec<String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "status {} body is not JSON ({error}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The stable error code of a JSON error reply.
    pub fn error_code(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

pub struct Browser {
    base: String,
    agent: ureq::Agent,
    pub cookie: Option<String>,
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Browser {
            base: base.to_owned(),
            agent,
            cookie: None,
        }
    }

    pub fn get(&mut self, path: &str) -> Reply {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", cookie);
        }
        self.finish(request.call())
    }

    pub fn post(&mut self, path: &str, body: &serde_json::Value) -> Reply {
        let mut request = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json");
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", cookie);
        }
        self.finish(request.send(body.to_string()))
    }

    pub fn put(&mut self, path: &str, body: &serde_json::Value) -> Reply {
        let mut request = self
            .agent
            .put(format!("{}{path}", self.base))
            .header("Content-Type", "application/json");
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", cookie);
        }
        self.finish(request.send(body.to_string()))
    }

    pub fn login(&mut self, phone: &str, password: &str) -> Reply {
        self.post(
            "/api/login",
            &json!({ "login": phone, "password": password }),
        )
    }

    /// A teacher's photos awaiting review, oldest first.
    pub fn review(&mut self) -> Vec<ReviewPhoto> {
        let reply = self.get("/api/review");
        assert_eq!(reply.status, 200, "GET /api/review: {reply:?}");
        reply
            .json()
            .as_array()
            .expect("the review is a list")
            .iter()
            .map(ReviewPhoto::from_json)
            .collect()
    }

    /// A teacher says which child face `n` of a photo is.
    pub fn name_face(&mut self, photo_id: &str, n: u64, child_id: &str) -> Reply {
        self.post(
            &format!("/api/photos/{photo_id}/faces/{n}/name"),
            &json!({ "child_id": child_id }),
        )
    }

    /// A teacher draws a face the detector missed; returns its number.
    pub fn add_face(&mut self, photo_id: &str, rect: [u32; 4]) -> u64 {
        let reply = self.post(
            &format!("/api/photos/{photo_id}/faces"),
            &json!({ "box": rect }),
        );
        assert_eq!(reply.status, 200, "adding a face to {photo_id}: {reply:?}");
        reply.json()["n"].as_u64().expect("the new face's number")
    }

    /// A teacher releases a photo; `no_faces` confirms that it shows nobody.
    pub fn release(&mut self, photo_id: &str, no_faces: bool) -> Reply {
        let body = if no_faces {
            json!({ "no_faces": true })
        } else {
            json!({})
        };
        self.post(&format!("/api/photos/{photo_id}/release"), &body)
    }

    /// A teacher names `child_id` on every photo awaiting review and releases
    /// it: on the first face the device found or, in a photo where it found
    /// none, on a box drawn over the middle of the picture. Returns the ids
    /// released.
    pub fn name_child_and_release_all(&mut self, child_id: &str) -> Vec<String> {
        let mut released = Vec::new();
        for photo in self.review() {
            let n = match photo.faces.first() {
                Some(face) => face.n,
                None => self.add_face(
                    &photo.id,
                    [
                        photo.width / 4,
                        photo.height / 4,
                        photo.width / 2,
                        photo.height / 2,
                    ],
                ),
            };
            let named = self.name_face(&photo.id, n, child_id);
            assert_eq!(
                named.status, 200,
                "naming face {n} of {}: {named:?}",
                photo.id
            );
            let reply = self.release(&photo.id, false);
            assert_eq!(reply.status, 200, "releasing {}: {reply:?}", photo.id);
            released.push(photo.id);
        }
        released
    }

    /// A parent gives one consent for their child.
    pub fn grant_consent(&mut self, child_id: &str, purpose: &str) -> Reply {
        self.put(
            &format!("/api/children/{child_id}/consent"),
            &json!({ "purpose": purpose, "granted": true }),
        )
    }

    /// A parent's photo list.
    pub fn photos(&mut self) -> Vec<serde_json::Value> {
        let reply = self.get("/api/photos");
        assert_eq!(reply.status, 200, "GET /api/photos: {reply:?}");
        reply
            .json()
            .as_array()
            .expect("the photos are a list")
            .clone()
    }

    /// The ids of a parent's photo list, sorted.
    pub fn photo_ids(&mut self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .photos()
            .iter()
            .map(|photo| photo["id"].as_str().expect("a photo id").to_owned())
            .collect();
        ids.sort();
        ids
    }

    fn finish(&mut self, result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
        let mut response = result.expect("HTTP request to the hub");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let set_cookie: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|value| value.to_str().ok().map(str::to_owned))
            .collect();
        if let Some(cookie) = set_cookie.first() {
            let pair = cookie.split(';').next().unwrap_or_default().to_owned();
            self.cookie = Some(pair);
        }
        let mut body = Vec::new();
        response
            .body_mut()
            .as_reader()
            .read_to_end(&mut body)
            .expect("read the body");
        Reply {
            status,
            content_type,
            set_cookie,
            body,
        }
    }
}

/// A photo on a teacher's review list.
#[derive(Debug, Clone)]
pub struct ReviewPhoto {
    pub id: String,
    pub width: u32,
    pub height: u32,
    pub damaged: bool,
    pub faces: Vec<ReviewFace>,
    /// `(id, name)` of the children a face may be named as.
    pub children: Vec<(String, String)>,
}

/// One face of a photo under review.
#[derive(Debug, Clone)]
pub struct ReviewFace {
    pub n: u64,
    /// In the full upright photo's pixels.
    pub region: Region,
    /// `device` or `teacher`.
    pub origin: String,
    pub child_id: Option<String>,
}

impl ReviewPhoto {
    pub fn from_json(value: &serde_json::Value) -> ReviewPhoto {
        let text = |value: &serde_json::Value| value.as_str().expect("a string").to_owned();
        let size = |key: &str| value[key].as_u64().expect("a size") as u32;
        ReviewPhoto {
            id: text(&value["id"]),
            width: size("width"),
            height: size("height"),
            damaged: value["damaged"].as_bool().expect("damaged"),
            faces: value["faces"]
                .as_array()
                .expect("faces")
                .iter()
                .map(|face| ReviewFace {
                    n: face["n"].as_u64().expect("a face number"),
                    region: Region::from_json(&face["box"]),
                    origin: text(&face["origin"]),
                    child_id: face["child_id"].as_str().map(str::to_owned),
                })
                .collect(),
            children: value["children"]
                .as_array()
                .expect("children")
                .iter()
                .map(|child| (text(&child["id"]), text(&child["name"])))
                .collect(),
        }
    }
}

/// The last code the development SMS provider wrote for `phone`.
pub fn last_sms_code(hub_dir: &std::path::Path, phone: &str) -> String {
    let text = std::fs::read_to_string(hub_dir.join("sms-outbox.jsonl")).expect("sms outbox");
    let line = text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .rfind(|message| message["to"] == phone)
        .expect("an SMS to this phone");
    let body = line["text"].as_str().expect("text");
    six_digit_numbers(body)
        .into_iter()
        .next()
        .expect("a 6-digit code in the SMS")
}

fn six_digit_numbers(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            if run.len() == 6 {
                found.push(run.clone());
            }
            run.clear();
        }
    }
    found
}
