//! Shared set-up for the web tests: a hub in a temporary directory with a
//! manual clock, real photos sealed into its store, and a small client that
//! calls the router directly with a chosen peer address.

#![allow(dead_code)]

use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use guardian_hub::audit::Actor;
use guardian_hub::clock::ManualClock;
use guardian_hub::codes::{CodeGenerator, OneTimeCode};
use guardian_hub::consent::{self, Purpose};
use guardian_hub::sms::{FileSmsOutbox, OUTBOX_FILE};
use guardian_hub::store::PhotoRecord;
use guardian_hub::web::{router, AppState};
use guardian_hub::Hub;
use guardian_hub::{children, review};
use guardian_models::photo::{decode_upright, DecodeLimits};
use guardian_protocol::{PhotoDetails, PhotoEnvelope, SealedPhoto, ENVELOPE_VERSION};
use tower::ServiceExt;
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery";
pub const HOST: &str = "127.0.0.1:8080";
pub const PEER: &str = "127.0.0.1:50123";

pub use guardian_e2e::testdata;

/// The hand-made face boxes of a test photo in `faces.json`, if it has any.
pub fn annotated_faces(file: &str) -> Vec<guardian_protocol::FaceRect> {
    let faces = guardian_e2e::faces_json();
    faces[file]["faces"]
        .as_array()
        .map(|boxes| {
            boxes
                .iter()
                .map(|b| guardian_protocol::FaceRect {
                    x: b[0].as_u64().unwrap() as u32,
                    y: b[1].as_u64().unwrap() as u32,
                    width: b[2].as_u64().unwrap() as u32,
                    height: b[3].as_u64().unwrap() as u32,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A code generator that hands out the codes it was given, then random ones.
pub struct FixedCodes(Mutex<Vec<u32>>);

impl FixedCodes {
    pub fn new(codes: &[u32]) -> Arc<Self> {
        let mut codes = codes.to_vec();
        codes.reverse();
        Arc::new(Self(Mutex::new(codes)))
    }
}

impl CodeGenerator for FixedCodes {
    fn generate(&self) -> OneTimeCode {
        let next = self.0.lock().unwrap().pop();
        match next {
            Some(number) => OneTimeCode::from_number(number).unwrap(),
            None => guardian_hub::codes::RandomCodes.generate(),
        }
    }
}

/// One parent's login details, and the child linked to them.
#[derive(Debug, Clone)]
pub struct ParentLogin {
    pub id: Uuid,
    pub name: String,
    pub phone: String,
    /// The child [`TestHub::add_parent`] made for them.
    pub child_id: Option<Uuid>,
}

pub struct TestHub {
    pub dir: tempfile::TempDir,
    pub hub: Arc<Hub>,
    pub clock: Arc<ManualClock>,
    pub app: Router,
}

impl TestHub {
    pub fn new() -> Self {
        Self::build(None)
    }

    pub fn with_codes(codes: Arc<dyn CodeGenerator>) -> Self {
        Self::build(Some(codes))
    }

    /// A hub whose renderings carry no watermark, so that tests can measure
    /// the faces in them.
    pub fn unmarked() -> Self {
        let mut t = Self::build(None);
        let sms = Arc::new(FileSmsOutbox::new(t.dir.path(), t.clock.clone()).unwrap());
        t.app = router(AppState::new(t.hub.clone(), sms).unmarked_for_tests());
        t
    }

    /// A hub behind these reverse proxies, which serve it over HTTPS.
    pub fn behind_proxies(proxies: &str) -> Self {
        let mut t = Self::build(None);
        let sms = Arc::new(FileSmsOutbox::new(t.dir.path(), t.clock.clone()).unwrap());
        let state = AppState::new(t.hub.clone(), sms)
            .with_trusted_proxies(proxies.parse().unwrap())
            .with_https(true);
        t.app = router(state);
        t
    }

    /// Adds a teacher of `classroom` and returns their id.
    pub fn add_teacher(&self, name: &str, phone: &str, classroom: &str) -> Uuid {
        self.hub
            .accounts
            .add_teacher(name, phone, PASSWORD, classroom)
            .unwrap()
    }

    /// Adds a child to a classroom and links a guardian to them.
    pub fn add_child_of(&self, classroom: &str, name: &str, guardian: &ParentLogin) -> Uuid {
        let child = children::add(&self.hub, classroom, name, Actor::Operator).unwrap();
        children::link_guardian(&self.hub, &guardian.phone, child, Actor::Operator).unwrap();
        child
    }

    /// A guardian's decision, as the guardian.
    pub fn set_consent(
        &self,
        guardian: &ParentLogin,
        child: Uuid,
        purpose: Purpose,
        granted: bool,
    ) {
        consent::set(
            &self.hub,
            child,
            purpose,
            granted,
            Actor::Parent(guardian.id),
        )
        .unwrap();
    }

    /// Counts the rows a query finds.
    pub fn count(&self, sql: &str, id: impl ToString) -> i64 {
        self.hub
            .db
            .lock()
            .query_row(sql, [id.to_string()], |row| row.get(0))
            .unwrap()
    }

    /// Asks for an original, types the code and downloads it: the whole
    /// flow a parent goes through. Returns the downloaded bytes.
    pub async fn fetch_original(&self, cookie: &str, photo: Uuid) -> Vec<u8> {
        let request = self.request_original(cookie, photo).await;
        let verified = self.verify(cookie, &request, &self.last_code()).await;
        assert_eq!(verified.status, StatusCode::OK, "{}", verified.text());
        let link = verified.json()["download"].as_str().unwrap().to_owned();
        let answer = self.send(get(&link, Some(cookie))).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        answer.body
    }

    fn build(codes: Option<Arc<dyn CodeGenerator>>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let start: DateTime<Utc> = "2025-03-01T09:00:00Z".parse().unwrap();
        let clock = Arc::new(ManualClock::starting_at(start));
        let hub = Arc::new(Hub::open(dir.path(), clock.clone()).unwrap());
        let sms = Arc::new(FileSmsOutbox::new(dir.path(), clock.clone()).unwrap());
        let mut state = AppState::new(hub.clone(), sms);
        if let Some(codes) = codes {
            state = state.with_code_generator(codes);
        }
        let app = router(state);
        Self {
            dir,
            hub,
            clock,
            app,
        }
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub fn add_classroom(&self, name: &str) {
        self.hub.accounts.add_classroom(name).unwrap();
    }

    /// A parent of `classroom` with one child there, who has given both
    /// consents: the first version's parent, who saw every classroom photo.
    pub fn add_parent(&self, name: &str, phone: &str, classroom: &str) -> ParentLogin {
        let id = self
            .hub
            .accounts
            .add_parent(name, phone, PASSWORD, classroom)
            .unwrap();
        let child_id = children::add(
            &self.hub,
            classroom,
            &format!("Child of {name}"),
            Actor::Operator,
        )
        .unwrap();
        children::link_guardian(&self.hub, phone, child_id, Actor::Operator).unwrap();
        for purpose in Purpose::ALL {
            consent::set(&self.hub, child_id, purpose, true, Actor::Parent(id)).unwrap();
        }
        ParentLogin {
            id,
            name: name.to_owned(),
            phone: phone.to_owned(),
            child_id: Some(child_id),
        }
    }

    /// A guardian with no classroom and no child yet.
    pub fn add_guardian(&self, name: &str, phone: &str) -> ParentLogin {
        let id = self
            .hub
            .accounts
            .add_guardian(name, phone, PASSWORD, None)
            .unwrap();
        ParentLogin {
            id,
            name: name.to_owned(),
            phone: phone.to_owned(),
            child_id: None,
        }
    }

    /// Seals a real photo into the store, as a device of `classroom` would,
    /// and releases it with every child of the classroom named in it (see
    /// [`TestHub::name_everyone_and_release`]).
    pub fn add_photo(&self, classroom: &str, file: &str) -> Uuid {
        let now = self.clock_now();
        self.add_photo_at(classroom, file, now - Duration::minutes(1), now, now)
    }

    /// Like [`TestHub::add_photo`], with the device's capture time, the hub's
    /// receipt time and the device's sending time given: the device's clock
    /// skew is `received - device_sent`.
    pub fn add_photo_at(
        &self,
        classroom: &str,
        file: &str,
        captured: DateTime<Utc>,
        received: DateTime<Utc>,
        device_sent: DateTime<Utc>,
    ) -> Uuid {
        let id = self.add_unreviewed_photo_at(classroom, file, captured, received, device_sent);
        self.name_everyone_and_release(id);
        id
    }

    /// A photo as it arrives from a device: stored, its faces (the annotated
    /// boxes of `faces.json`, standing in for the detector's) recorded, and
    /// awaiting review.
    pub fn add_unreviewed_photo(&self, classroom: &str, file: &str) -> Uuid {
        let now = self.clock_now();
        self.add_unreviewed_photo_at(classroom, file, now - Duration::minutes(1), now, now)
    }

    /// Names each child of the photo's classroom on a face, in order, drawing
    /// a small box for those beyond the photo's faces, and releases the
    /// photo: every parent of the classroom then sees it, as in the first
    /// version.
    pub fn name_everyone_and_release(&self, photo_id: Uuid) {
        let photo = self.hub.store.get(photo_id).unwrap().unwrap();
        let kids = children::in_classroom(&self.hub, photo.classroom_id).unwrap();
        let faces = review::get(&self.hub, photo_id)
            .unwrap()
            .unwrap()
            .faces
            .len();
        for (index, child) in kids.iter().enumerate() {
            let n = if index < faces {
                index as u32
            } else {
                let side = 8;
                let rect = guardian_protocol::FaceRect {
                    x: (index as u32 * side) % (photo.width - side),
                    y: 0,
                    width: side,
                    height: side,
                };
                review::add_face(&self.hub, photo_id, rect, Actor::Operator)
                    .unwrap()
                    .0
            };
            review::name_face(&self.hub, photo_id, n, Some(child.id), Actor::Operator).unwrap();
        }
        review::release(&self.hub, photo_id, true, Actor::Operator).unwrap();
    }

    /// Like [`TestHub::add_unreviewed_photo`], with the face boxes given.
    pub fn add_unreviewed_photo_with_faces(
        &self,
        classroom: &str,
        file: &str,
        faces: Vec<guardian_protocol::FaceRect>,
    ) -> Uuid {
        let now = self.clock_now();
        self.seal_photo(
            classroom,
            file,
            faces,
            (now - Duration::minutes(1), now, now),
        )
    }

    pub fn add_unreviewed_photo_at(
        &self,
        classroom: &str,
        file: &str,
        captured: DateTime<Utc>,
        received: DateTime<Utc>,
        device_sent: DateTime<Utc>,
    ) -> Uuid {
        self.seal_photo(
            classroom,
            file,
            annotated_faces(file),
            (captured, received, device_sent),
        )
    }

    /// Seals and stores a photo with these faces; the times are capture,
    /// receipt and the device's sending.
    fn seal_photo(
        &self,
        classroom: &str,
        file: &str,
        faces: Vec<guardian_protocol::FaceRect>,
        (captured, received, device_sent): (DateTime<Utc>, DateTime<Utc>, DateTime<Utc>),
    ) -> Uuid {
        let original = std::fs::read(testdata(file)).unwrap();
        // Upright, as the device measures faces.
        let decoded = image::DynamicImage::ImageRgb8(
            decode_upright(&original, &DecodeLimits::default())
                .unwrap()
                .image,
        );
        let mut preview = Vec::new();
        decoded
            .thumbnail(96, 96)
            .to_rgb8()
            .write_to(&mut Cursor::new(&mut preview), image::ImageFormat::Jpeg)
            .unwrap();

        let provisioning = self
            .hub
            .accounts
            .add_device(classroom, "127.0.0.1:1883", self.hub.keys.public())
            .unwrap();
        let classroom_id = self.hub.accounts.classroom_id(classroom).unwrap();

        let id = Uuid::new_v4();
        let details = PhotoDetails {
            width: decoded.width(),
            height: decoded.height(),
            faces,
            damaged: false,
            detector: "centerface".into(),
            media_type: "image/jpeg".into(),
        };
        let sealed = SealedPhoto::seal(
            &self.hub.keys.public().sealing,
            id,
            &details,
            &preview,
            &original,
        )
        .unwrap();
        let envelope = PhotoEnvelope {
            version: ENVELOPE_VERSION,
            photo_id: id,
            device_id: provisioning.device_id,
            captured_at: captured,
            sealed,
        }
        .to_bytes();

        let record = PhotoRecord {
            id,
            device_id: provisioning.device_id,
            classroom_id,
            captured_at: captured,
            received_at: received,
            device_sent_at: device_sent,
            faces: details.faces.len() as u32,
            width: details.width,
            height: details.height,
            damaged: false,
            envelope_sha256: guardian_protocol::envelope_sha256(&envelope),
        };
        self.hub.store.put(&record, &envelope).unwrap();
        review::record_device_faces(&self.hub, id, &details.faces).unwrap();
        id
    }

    pub fn clock_now(&self) -> DateTime<Utc> {
        use guardian_hub::clock::Clock;
        self.clock.now()
    }

    /// Sends a request to the router as if from `PEER`, unless the request
    /// already names a peer.
    pub async fn send(&self, mut request: Request<Body>) -> Answer {
        if request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_none()
        {
            let peer: SocketAddr = PEER.parse().unwrap();
            request.extensions_mut().insert(ConnectInfo(peer));
        }
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Logs in and returns the `name=value` of the session cookie.
    pub async fn login(&self, phone: &str) -> String {
        let answer = self
            .send(post_json(
                "/api/login",
                None,
                &serde_json::json!({ "login": phone, "password": PASSWORD }),
            ))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        answer.session_cookie().expect("a session cookie")
    }

    /// The codes sent so far, oldest first, read from the SMS outbox file.
    pub fn sent_codes(&self) -> Vec<(String, String)> {
        let path = self.dir.path().join(OUTBOX_FILE);
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines()
            .map(|line| {
                let message: serde_json::Value = serde_json::from_str(line).unwrap();
                let to = message["to"].as_str().unwrap().to_owned();
                let body = message["text"].as_str().unwrap();
                let sixes: Vec<&str> = body
                    .split(|c: char| !c.is_ascii_digit())
                    .filter(|run| run.len() == 6)
                    .collect();
                assert_eq!(sixes.len(), 1, "exactly one six-digit number in {body:?}");
                (to, sixes[0].to_owned())
            })
            .collect()
    }

    pub fn last_code(&self) -> String {
        self.sent_codes().pop().expect("a code was sent").1
    }

    /// Asks for a photo's original; returns the request id.
    pub async fn request_original(&self, cookie: &str, photo: Uuid) -> String {
        let answer = self
            .send(post_json(
                &format!("/api/photos/{photo}/original"),
                Some(cookie),
                &serde_json::json!({}),
            ))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        answer.json()["request_id"].as_str().unwrap().to_owned()
    }

    pub async fn verify(&self, cookie: &str, request: &str, code: &str) -> Answer {
        self.send(post_json(
            &format!("/api/original-requests/{request}/verify"),
            Some(cookie),
            &serde_json::json!({ "code": code }),
        ))
        .await
    }

    /// Every audit row as (kind, actor, subject, ip, detail).
    pub fn audit_rows(&self) -> Vec<AuditRow> {
        let conn = self.hub.db.lock();
        let mut statement = conn
            .prepare("SELECT kind, actor, subject, ip, detail FROM audit_log ORDER BY seq")
            .unwrap();
        statement
            .query_map([], |row| {
                Ok(AuditRow {
                    kind: row.get(0)?,
                    actor: row.get(1)?,
                    subject: row.get(2)?,
                    ip: row.get(3)?,
                    detail: row.get(4)?,
                })
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    pub fn audit_of(&self, kind: &str) -> Vec<AuditRow> {
        self.audit_rows()
            .into_iter()
            .filter(|row| row.kind == kind)
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct AuditRow {
    pub kind: String,
    pub actor: String,
    pub subject: Option<String>,
    pub ip: Option<String>,
    pub detail: String,
}

impl AuditRow {
    /// The whole row as one string, for "never contains" checks.
    pub fn flat(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}",
            self.kind,
            self.actor,
            self.subject.clone().unwrap_or_default(),
            self.ip.clone().unwrap_or_default(),
            self.detail
        )
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `error` code of a JSON error body.
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }

    /// Asserts the status and the error code together.
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(
            (self.status, self.error().as_str()),
            (status, code),
            "{}",
            self.text()
        );
        assert!(self.json()["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }

    pub fn header(&self, name: header::HeaderName) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    /// `guardian_session=<value>` from a Set-Cookie that sets a session.
    pub fn session_cookie(&self) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|pair| pair.starts_with("guardian_session=") && pair.len() > 20)
            .map(str::to_owned)
    }
}

/// A GET from the same site, with a session cookie if given.
pub fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut builder = Request::get(path).header(header::HOST, HOST);
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    builder.body(Body::empty()).unwrap()
}

/// A JSON POST from the hub's own page (Origin = the hub).
pub fn post_json(path: &str, cookie: Option<&str>, body: &serde_json::Value) -> Request<Body> {
    let mut builder = Request::post(path)
        .header(header::HOST, HOST)
        .header(header::ORIGIN, format!("http://{HOST}"))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

/// A JSON PUT from the hub's own page.
pub fn put_json(path: &str, cookie: Option<&str>, body: &serde_json::Value) -> Request<Body> {
    let mut builder = Request::put(path)
        .header(header::HOST, HOST)
        .header(header::ORIGIN, format!("http://{HOST}"))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

/// Two parents in two classrooms, and one photo in each classroom.
pub struct TwoClassrooms {
    pub t: TestHub,
    pub ana: ParentLogin,
    pub ben: ParentLogin,
    pub photo_a: Uuid,
    pub photo_b: Uuid,
}

pub fn two_classrooms(t: TestHub) -> TwoClassrooms {
    t.add_classroom("Class A");
    t.add_classroom("Class B");
    let ana = t.add_parent("Ana Test", "+34600111222", "Class A");
    let ben = t.add_parent("Ben Test", "+34600333444", "Class B");
    let photo_a = t.add_photo("Class A", "mde_train_window_phone_exif6.jpg");
    let photo_b = t.add_photo("Class B", "hopper.jpg");
    TwoClassrooms {
        t,
        ana,
        ben,
        photo_a,
        photo_b,
    }
}
