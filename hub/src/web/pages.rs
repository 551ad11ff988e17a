//! The hub's page, `GET /`, rendered on the hub, and its two static files.
//!
//! Without a session it is a login form. A guardian sees their children with
//! a switch per consent and a link to export everything about each, then the
//! gallery of their previews, each with "Get the original" where every child
//! shown allows it. A teacher gets the review page: the photos awaiting
//! review, each face to name, and a Release button; the script builds it
//! from the review API, so the hub renders only its frame. An admin sees
//! every child with the same consent switches. The script (`static/app.js`)
//! only calls the JSON API; there is no inline script or style, so the
//! Content-Security-Policy can forbid both.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;
use tracing::instrument;
use uuid::Uuid;

use super::client_ip::ClientIp;
use super::consents::{summary, ChildSummary};
use super::error::ApiError;
use super::photos::{list_for, local_time, GuardianPhoto};
use super::session::MaybeSession;
use super::{blocking, record, AppState};
use crate::accounts::{Account, Role};
use crate::audit::{Actor, AuditEvent, AuditKind};
use crate::fleet::{self, DeviceStatus};
use crate::{children, retention};

const APP_JS: &str = include_str!("static/app.js");
const APP_CSS: &str = include_str!("static/app.css");

/// `GET /`: the login form, or the page of the signed-in role.
#[instrument(skip_all)]
pub async fn index(
    State(state): State<AppState>,
    session: MaybeSession,
    ip: ClientIp,
) -> Result<Html<String>, ApiError> {
    let Some(session) = session.0 else {
        return Ok(Html(page(LOGIN_FORM, None)));
    };

    let account = session.account;
    let main = match account.role {
        Role::Guardian => guardian_main(&state, &account, ip).await?,
        Role::Teacher => REVIEW.to_owned(),
        Role::Admin => admin_main(&state, &account, ip).await?,
    };
    Ok(Html(page(&main, Some(&account.name))))
}

/// A guardian's children with their consents, then their photos.
async fn guardian_main(
    state: &AppState,
    account: &Account,
    ip: ClientIp,
) -> Result<String, ApiError> {
    let hub = state.hub.clone();
    let account_id = account.id;
    let (kids, photos) = blocking(move || {
        let parent = hub
            .accounts
            .parent(account_id)?
            .ok_or(ApiError::WrongRole)?;
        let kids = children::of_guardian(&hub, parent.id)?
            .into_iter()
            .map(|child| summary(&hub, child, true))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((kids, list_for(&hub, &parent, ip, "page")?))
    })
    .await?;

    Ok(format!(
        "{}\n{}",
        consents(&kids, Viewer::Guardian),
        gallery(&photos, &kids, state.hub.timezone)
    ))
}

/// Every child of the school with the consent switches, for an admin who
/// records a family's answer given on paper.
async fn admin_main(state: &AppState, account: &Account, ip: ClientIp) -> Result<String, ApiError> {
    let hub = state.hub.clone();
    let admin_id = account.id;
    let (kids, devices) = blocking(move || {
        let kids = children::all(&hub)?
            .into_iter()
            .map(|child| summary(&hub, child, true))
            .collect::<Result<Vec<_>, _>>()?;
        let devices = fleet::list(&hub)?;
        // The same names and consents as `GET /api/children`, so the same
        // audit entry.
        record(
            &hub,
            AuditEvent::new(AuditKind::ChildrenListed, Actor::Admin(admin_id))
                .ip(ip)
                .detail(json!({ "count": kids.len(), "via": "page" })),
        )?;
        Ok((kids, devices))
    })
    .await?;

    let children = if kids.is_empty() {
        "<p class=\"empty\">No children yet: add them with \
         <code>guardian-hub child add</code>.</p>"
            .to_owned()
    } else {
        consents(&kids, Viewer::Admin)
    };
    Ok(children + &device_table(&devices, state.hub.timezone))
}

/// The classroom devices with their last heartbeat, and a button to revoke
/// each active one.
fn device_table(devices: &[DeviceStatus], timezone: chrono_tz::Tz) -> String {
    let mut html = String::from("<section class=\"devices\">\n<h2>Classroom devices</h2>\n");
    if devices.is_empty() {
        html.push_str(
            "<p class=\"empty\">No devices yet: register one with \
             <code>guardian-hub device add</code>.</p>\n</section>\n",
        );
        return html;
    }

    html.push_str(
        "<table>\n<tr><th>Classroom</th><th>Device</th><th>Last contact</th>\
         <th>Waiting</th><th>Clock</th><th>Version</th><th>Problem</th><th></th></tr>\n",
    );
    for device in devices {
        let id = escape(&device.id.to_string());
        let seen = device
            .last_seen_at
            .map_or_else(|| "never".to_owned(), |at| local_time(at, timezone));
        let beat = device.heartbeat.as_ref();
        let waiting = beat.map_or_else(String::new, |beat| beat.outbox_len.to_string());
        let clock = match (beat, device.clock_skew_ms) {
            (Some(beat), Some(skew)) => format!(
                "{} ({:+.0} s)",
                if beat.clock_synced {
                    "synced"
                } else {
                    "not synced"
                },
                skew as f64 / 1000.0
            ),
            (Some(beat), None) => (if beat.clock_synced {
                "synced"
            } else {
                "not synced"
            })
            .to_owned(),
            (None, _) => String::new(),
        };
        let version = beat.map_or_else(String::new, |beat| escape(&beat.version));
        let problem = beat
            .and_then(|beat| beat.last_error.as_deref())
            .map_or_else(String::new, escape);
        let action = match device.revoked_at {
            Some(at) => format!("revoked {}", escape(&local_time(at, timezone))),
            None => format!("<button class=\"revoke\" data-device-id=\"{id}\">Revoke</button>"),
        };
        html.push_str(&format!(
            "<tr><td>{}</td><td><code>{id}</code></td><td>{}</td><td>{waiting}</td>\
             <td>{clock}</td><td>{version}</td><td>{problem}</td><td>{action}</td></tr>\n",
            escape(&device.classroom),
            escape(&seen),
        ));
    }
    html.push_str("</table>\n<p class=\"status\"></p>\n</section>\n");
    html
}

/// `GET /static/app.js`
pub async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// `GET /static/app.css`
pub async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // Revalidated each time, so a hub upgrade reaches phones at once.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// The login form. It posts JSON through the script; without the script the
/// browser's own POST is refused (415) rather than putting the password in a URL.
const LOGIN_FORM: &str = r#"<form id="login" class="card" method="post" action="/api/login">
<h2>Sign in</h2>
<label>Phone number
<input name="login" type="tel" autocomplete="tel" placeholder="+34600111222" required></label>
<label>Password
<input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
<p class="status" role="status" aria-live="polite"></p>
</form>"#;

/// The teacher's review page. The script fills the queue from
/// `GET /api/review` and the viewer from the photo chosen. The image is shown
/// inline only: there is no link to it and nothing offers to save it.
const REVIEW: &str = r#"<section id="review" class="review">
<div class="queue-pane">
<h2>Photos to review</h2>
<p class="note">Name each face you recognise. A face left unknown stays covered for every family.</p>
<p class="status queue-status" role="status" aria-live="polite">Loading the photos…</p>
<ul class="queue"></ul>
</div>
<div class="viewer" hidden>
<h2 class="viewer-title" tabindex="-1">Photo</h2>
<p class="meta"></p>
<div class="stage">
<img class="review-image" alt="" draggable="false">
<div class="boxes" aria-hidden="true"></div>
</div>
<p class="controls">
<button type="button" class="mark" aria-pressed="false">Mark a missed face</button>
<span class="hint" hidden>Drag over the face on the photo, or press Escape to stop.</span>
</p>
<ol class="faces"></ol>
<div class="release-area">
<p class="release-note note"></p>
<label class="no-faces consent" hidden><input type="checkbox" name="no_faces"> There are no faces in this photo</label>
<button type="button" class="release">Release to families</button>
</div>
<p class="status viewer-status" role="status" aria-live="polite"></p>
</div>
</section>"#;

fn page(main: &str, signed_in: Option<&str>) -> String {
    let account = match signed_in {
        Some(name) => format!(
            "<p class=\"account\">Signed in as {} \
             <button id=\"logout\" type=\"button\">Sign out</button></p>",
            escape(name)
        ),
        None => String::new(),
    };
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <title>Guardian: class photos</title>\n\
         <link rel=\"stylesheet\" href=\"/static/app.css\">\n\
         <script src=\"/static/app.js\" defer></script>\n</head>\n<body>\n\
         <header><h1>Class photos</h1>{account}</header>\n<main>\n{main}\n</main>\n</body>\n</html>\n"
    )
}

/// Who a list of children is for: the words differ, and only a child's own
/// guardian gets the export of everything about them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Viewer {
    Guardian,
    Admin,
}

/// Children, each with a switch per consent. Nothing is shown for a parent
/// with no child linked yet.
fn consents(kids: &[ChildSummary], viewer: Viewer) -> String {
    if kids.is_empty() {
        return String::new();
    }

    let intro = match viewer {
        Viewer::Guardian => {
            "<h2>Your children</h2>\n<p class=\"note\">Until you say yes, the answer is no. \
             You can change your mind at any time; it takes effect at once.</p>"
        }
        Viewer::Admin => {
            "<h2>Children</h2>\n<p class=\"note\">Record here what a family answered, on a \
             paper form say. Until a family says yes, the answer is no; a change takes \
             effect at once.</p>"
        }
    };
    let mut html = format!("<section class=\"children\">\n{intro}\n<ul>\n");
    for kid in kids {
        let name = escape(&kid.name);
        let id = escape(&kid.id.to_string());
        let checked = |granted: Option<bool>| {
            if granted == Some(true) {
                " checked"
            } else {
                ""
            }
        };
        let export = match viewer {
            Viewer::Guardian => format!(
                "<p><a class=\"export\" href=\"/api/children/{id}/export\" download>\
                 Download everything about {name}</a></p>\n"
            ),
            Viewer::Admin => String::new(),
        };
        // Writing to a String cannot fail.
        let _ = write!(
            html,
            "<li class=\"child\" data-child-id=\"{id}\">\n<h3>{name}</h3>\n\
             <label class=\"consent\"><input type=\"checkbox\" name=\"visible_to_classmates\"{visible}> \
             Other families of the class may see {name}'s face</label>\n\
             <label class=\"consent\"><input type=\"checkbox\" name=\"originals\"{originals}> \
             Originals showing {name}'s face may be given out</label>\n\
             {export}<p class=\"status\" role=\"status\" aria-live=\"polite\"></p>\n</li>\n",
            visible = checked(kid.visible_to_classmates),
            originals = checked(kid.originals),
        );
    }
    html.push_str("</ul>\n</section>");
    html
}

/// A guardian's photos: previews made for them, with "Get the original" only
/// where every child shown allows originals.
fn gallery(photos: &[GuardianPhoto], kids: &[ChildSummary], timezone: chrono_tz::Tz) -> String {
    if photos.is_empty() {
        return "<p class=\"empty\">No photos of your children yet.</p>".to_owned();
    }

    let mut html = String::from(
        "<p class=\"note\">Each preview is made for you and carries your name. Your \
         children's faces are shown; a classmate's face only while their family agrees, and \
         every other face is covered. To get an original, ask for it: a code comes by SMS, \
         and the photo you download carries your name too.</p>\n<ul class=\"gallery\">\n",
    );
    for photo in photos {
        html.push_str(&gallery_item(photo, kids, timezone));
    }
    html.push_str("</ul>");
    html
}

fn gallery_item(photo: &GuardianPhoto, kids: &[ChildSummary], timezone: chrono_tz::Tz) -> String {
    let record = &photo.record;
    // Ids are UUIDs and times are digits and a zone's name: nothing here
    // needs escaping, but the habit costs nothing.
    let id = escape(&record.id.to_string());
    let taken = escape(&local_time(record.captured_at, timezone));
    let kept_until = retention::delete_after(record, timezone);
    let names = names_of(&photo.viewing.own_children(), kids);
    let covered = photo
        .viewing
        .faces
        .iter()
        .filter(|face| !face.uncovered)
        .count();
    let faces = match covered {
        0 => "no face covered".to_owned(),
        1 => "1 face covered".to_owned(),
        n => format!("{n} faces covered"),
    };
    let (alt, shows) = if names.is_empty() {
        (format!("Photo taken {taken}, {faces}"), String::new())
    } else {
        (
            format!("Photo of {names} taken {taken}, {faces}"),
            format!(" &middot; {names}"),
        )
    };
    let original = if photo.viewing.original_allowed() {
        ORIGINAL_FORM
    } else if photo.viewing.damaged {
        "<p class=\"note\">The original is not available: the photo arrived damaged.</p>\n"
    } else {
        "<p class=\"note\">The original is not available: not every child shown has \
         consent for originals.</p>\n"
    };
    format!(
        "<li class=\"photo\" data-photo-id=\"{id}\">\n\
         <img src=\"/api/photos/{id}/preview\" alt=\"{alt}\" loading=\"lazy\">\n\
         <p class=\"meta\">{taken}{shows} &middot; {faces} &middot; kept until {kept_until}</p>\n\
         {original}<p class=\"status\" role=\"status\" aria-live=\"polite\"></p>\n</li>\n"
    )
}

/// "Get the original" and the form for the code from the SMS.
const ORIGINAL_FORM: &str = r#"<button type="button" class="ask">Get the original</button>
<form class="code" method="post" action="/" hidden>
<label>Code from the SMS
<input name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" minlength="6" maxlength="6" required></label>
<button type="submit">Download</button>
</form>
"#;

/// The names of these children, escaped, as "Leo", "Leo and Ana" or
/// "Leo, Ana and Sara". An id that is not among `kids` is left out.
fn names_of(ids: &[Uuid], kids: &[ChildSummary]) -> String {
    let names: Vec<String> = ids
        .iter()
        .filter_map(|id| kids.iter().find(|kid| kid.id == *id))
        .map(|kid| escape(&kid.name))
        .collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// Escapes text for HTML element content and quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use guardian_protocol::FaceRect;

    use super::*;
    use crate::store::PhotoRecord;
    use crate::visibility::{ViewedFace, Viewing};

    fn kid(name: &str) -> ChildSummary {
        ChildSummary {
            id: Uuid::new_v4(),
            name: name.into(),
            classroom_id: Uuid::new_v4(),
            visible_to_classmates: Some(true),
            originals: Some(false),
        }
    }

    /// A photo showing these children of the viewer's, uncovered, with or
    /// without their consent to originals, and one unknown face.
    fn photo(children: &[Uuid], originals_consent: bool) -> GuardianPhoto {
        let at = Utc.with_ymd_and_hms(2025, 3, 4, 9, 30, 0).unwrap();
        let rect = FaceRect {
            x: 10,
            y: 10,
            width: 40,
            height: 40,
        };
        let mut faces: Vec<ViewedFace> = children
            .iter()
            .map(|id| ViewedFace {
                rect,
                child_id: Some(*id),
                own: true,
                uncovered: true,
                originals_consent,
            })
            .collect();
        faces.push(ViewedFace {
            rect,
            child_id: None,
            own: false,
            uncovered: false,
            originals_consent: false,
        });
        GuardianPhoto {
            record: PhotoRecord {
                id: Uuid::new_v4(),
                device_id: Uuid::new_v4(),
                classroom_id: Uuid::new_v4(),
                captured_at: at,
                received_at: at,
                device_sent_at: at,
                faces: 2,
                width: 640,
                height: 480,
                damaged: false,
                envelope_sha256: [0; 32],
            },
            viewing: Viewing {
                faces,
                damaged: false,
            },
        }
    }

    #[test]
    fn a_name_cannot_inject_markup() {
        let html = page("", Some("<script>alert('x')</script> & \"Co\""));
        assert!(!html.contains("<script>alert"));
        assert!(
            html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;Co&quot;")
        );
    }

    #[test]
    fn a_childs_name_cannot_inject_markup_and_switches_show_consent() {
        let html = consents(&[kid("<b>Leo</b>")], Viewer::Guardian);
        assert!(!html.contains("<b>"));
        assert!(html.contains("&lt;b&gt;Leo&lt;/b&gt;"));
        assert!(html.contains("name=\"visible_to_classmates\" checked>"));
        assert!(html.contains("name=\"originals\">"));
        assert_eq!(consents(&[], Viewer::Guardian), "");
    }

    #[test]
    fn a_guardian_may_export_their_child_and_an_admin_sees_no_export_link() {
        let leo = kid("Leo");
        let html = consents(std::slice::from_ref(&leo), Viewer::Guardian);
        assert!(html.contains(&format!(
            "<a class=\"export\" href=\"/api/children/{}/export\" download>\
             Download everything about Leo</a>",
            leo.id
        )));

        let html = consents(&[leo], Viewer::Admin);
        assert!(!html.contains("/export"));
        assert!(html.contains("name=\"originals\""));
    }

    #[test]
    fn get_the_original_is_offered_only_where_every_child_allows_it() {
        let leo = kid("Leo");
        let ana = kid("<i>Ana</i>");
        let kids = [leo, ana];
        let both = [kids[0].id, kids[1].id];

        let html = gallery(&[photo(&both, true)], &kids, chrono_tz::UTC);
        assert!(html.contains("class=\"ask\""));
        assert!(html.contains("Leo and &lt;i&gt;Ana&lt;/i&gt;"));
        assert!(html.contains("1 face covered"));
        assert!(!html.contains("<i>"));

        let html = gallery(&[photo(&both, false)], &kids, chrono_tz::UTC);
        assert!(!html.contains("class=\"ask\""));
        assert!(!html.contains("class=\"code\""));
        assert!(html.contains("The original is not available"));
        assert!(html.contains("loading=\"lazy\""));
    }

    #[test]
    fn the_gallery_shows_when_a_photo_was_taken_in_the_schools_time_zone() {
        let kids = [kid("Leo")];
        let mut photo = photo(&[kids[0].id], true);
        let html = gallery(
            std::slice::from_ref(&photo),
            &kids,
            chrono_tz::Europe::Madrid,
        );
        assert!(
            html.contains("taken 2025-03-04 10:30 CET (+01:00)"),
            "{html}"
        );
        assert!(!html.contains("UTC"), "{html}");

        // Summer time, and a day that is already the next one in Madrid.
        photo.record.captured_at = Utc.with_ymd_and_hms(2025, 6, 10, 22, 15, 0).unwrap();
        let html = gallery(&[photo], &kids, chrono_tz::Europe::Madrid);
        assert!(
            html.contains("taken 2025-06-11 00:15 CEST (+02:00)"),
            "{html}"
        );
    }

    #[test]
    fn names_read_as_a_list() {
        let kids = [kid("Leo"), kid("Ana"), kid("Sara")];
        let ids = |n: usize| kids[..n].iter().map(|kid| kid.id).collect::<Vec<_>>();
        assert_eq!(names_of(&ids(0), &kids), "");
        assert_eq!(names_of(&ids(1), &kids), "Leo");
        assert_eq!(names_of(&ids(2), &kids), "Leo and Ana");
        assert_eq!(names_of(&ids(3), &kids), "Leo, Ana and Sara");
        assert_eq!(names_of(&[Uuid::new_v4()], &kids), "");
    }

    #[test]
    fn the_review_page_offers_no_download() {
        let html = page(REVIEW, Some("Pablo"));
        assert!(!html.to_lowercase().contains("download"));
        assert!(!html.contains("<a "));
        assert!(html.contains("draggable=\"false\""));
        assert!(html.contains("aria-live=\"polite\""));
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        for main in [LOGIN_FORM, REVIEW] {
            let html = page(main, None);
            assert_eq!(html.matches("<script").count(), 1);
            assert!(html.contains("<script src=\"/static/app.js\" defer></script>"));
            assert!(!html.contains("<style"));
            assert!(!html.contains(" style="));
            assert!(!html.contains("onclick"));
            assert!(!html.contains("onerror"));
        }
    }
}
