//! A parent's browser, reduced to what the tests need: JSON calls with the
//! session cookie the hub set.

use std::io::Read;

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

    pub fn login(&mut self, phone: &str, password: &str) -> Reply {
        self.post(
            "/api/login",
            &serde_json::json!({ "login": phone, "password": password }),
        )
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
