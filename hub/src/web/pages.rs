//! The parents' page: `GET /`, rendered on the hub, and its two static files.
//!
//! Without a session it is a login form; with a guardian's, their children
//! with a switch per consent, then the gallery of covered previews, each with
//! "Get the original" and a field for the SMS code. The
//! script (`static/app.js`) only calls the JSON API; there is no inline script
//! or style, so the Content-Security-Policy can forbid both.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use tracing::instrument;

use super::client_ip::ClientIp;
use super::consents::{summary, ChildSummary};
use super::error::ApiError;
use super::photos::{list_for, rfc3339, GuardianPhoto};
use super::session::MaybeSession;
use super::{blocking, AppState};
use crate::accounts::Role;
use crate::{children, retention};

const APP_JS: &str = include_str!("static/app.js");
const APP_CSS: &str = include_str!("static/app.css");

/// `GET /`: the login form or the gallery.
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
    if account.role != Role::Guardian {
        return Ok(Html(page(&not_yet(account.role), Some(&account.name))));
    }

    let hub = state.hub.clone();
    let (kids, photos) = blocking(move || {
        let parent = hub
            .accounts
            .parent(account.id)?
            .ok_or(ApiError::WrongRole)?;
        let kids = children::of_guardian(&hub, parent.id)?
            .into_iter()
            .map(|child| summary(&hub, child, true))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((kids, list_for(&hub, &parent, ip, "page")?))
    })
    .await?;
    let main = format!(
        "{}\n{}",
        consents(&kids),
        gallery(&photos, state.hub.timezone)
    );
    Ok(Html(page(&main, Some(&account.name))))
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

/// What a teacher or an admin sees for now: their pages come with photo review.
fn not_yet(role: Role) -> String {
    format!(
        "<p class=\"note\">You are signed in as {}. The review and consent pages for \
         your role are not in this version of the hub yet.</p>",
        match role {
            Role::Admin => "an administrator",
            Role::Teacher => "a teacher",
            Role::Guardian => "a parent",
        }
    )
}

/// A guardian's children, each with a switch per consent. Nothing is shown
/// for a parent with no child linked yet.
fn consents(kids: &[ChildSummary]) -> String {
    if kids.is_empty() {
        return String::new();
    }

    let mut html = String::from(
        "<section class=\"children\">\n<h2>Your children</h2>\n\
         <p class=\"note\">Until you say yes, the answer is no. You can change your mind at \
         any time; it takes effect at once.</p>\n<ul>\n",
    );
    for kid in kids {
        let name = escape(&kid.name);
        let checked = |granted: Option<bool>| {
            if granted == Some(true) {
                " checked"
            } else {
                ""
            }
        };
        // Writing to a String cannot fail.
        let _ = write!(
            html,
            "<li class=\"child\" data-child-id=\"{id}\">\n<h3>{name}</h3>\n\
             <label class=\"consent\"><input type=\"checkbox\" name=\"visible_to_classmates\"{visible}> \
             Other families of the class may see {name}'s face</label>\n\
             <label class=\"consent\"><input type=\"checkbox\" name=\"originals\"{originals}> \
             Originals showing {name}'s face may be given out</label>\n\
             <p class=\"status\" role=\"status\" aria-live=\"polite\"></p>\n</li>\n",
            id = escape(&kid.id.to_string()),
            visible = checked(kid.visible_to_classmates),
            originals = checked(kid.originals),
        );
    }
    html.push_str("</ul>\n</section>");
    html
}

fn gallery(photos: &[GuardianPhoto], timezone: chrono_tz::Tz) -> String {
    if photos.is_empty() {
        return "<p class=\"empty\">No photos yet.</p>".to_owned();
    }

    let mut html = String::from(
        "<p class=\"note\">Faces are covered in these previews. To get an original, \
         ask for it: a code comes by SMS, and the photo you download carries your name.</p>\n\
         <ul class=\"gallery\">\n",
    );
    for GuardianPhoto {
        record: photo,
        viewing,
    } in photos
    {
        // Ids are UUIDs and times are RFC 3339: nothing here needs escaping,
        // but the habit costs nothing.
        let id = escape(&photo.id.to_string());
        let taken = escape(
            &rfc3339(photo.captured_at)
                .replace('T', " ")
                .replace('Z', " UTC"),
        );
        let covered = viewing.faces.iter().filter(|face| !face.uncovered).count();
        let faces = match covered {
            0 => "no face covered".to_owned(),
            1 => "1 face covered".to_owned(),
            n => format!("{n} faces covered"),
        };
        let ask = if viewing.original_allowed() {
            "<button type=\"button\" class=\"ask\">Get the original</button>"
        } else {
            "<p class=\"note\">The original is not available: not every child shown has consent for originals.</p>"
        };
        let kept_until = retention::delete_after(photo, timezone);
        // Writing to a String cannot fail.
        let _ = write!(
            html,
            "<li class=\"photo\" data-photo-id=\"{id}\">\n\
             <img src=\"/api/photos/{id}/preview\" alt=\"Photo taken {taken}, {faces}\" loading=\"lazy\">\n\
             <p class=\"meta\">{taken} &middot; {faces} &middot; kept until {kept_until}</p>\n\
             {ask}\n\
             <form class=\"code\" method=\"post\" action=\"/\" hidden>\n\
             <label>Code from the SMS\n\
             <input name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" \
             pattern=\"[0-9]{{6}}\" minlength=\"6\" maxlength=\"6\" required></label>\n\
             <button type=\"submit\">Download</button>\n</form>\n\
             <p class=\"status\" role=\"status\" aria-live=\"polite\"></p>\n</li>\n"
        );
    }
    html.push_str("</ul>");
    html
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
    use super::*;

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
        let kid = ChildSummary {
            id: uuid::Uuid::new_v4(),
            name: "<b>Leo</b>".into(),
            classroom_id: uuid::Uuid::new_v4(),
            visible_to_classmates: Some(true),
            originals: Some(false),
        };
        let html = consents(&[kid]);
        assert!(!html.contains("<b>"));
        assert!(html.contains("&lt;b&gt;Leo&lt;/b&gt;"));
        assert!(html.contains("name=\"visible_to_classmates\" checked>"));
        assert!(html.contains("name=\"originals\">"));
        assert_eq!(consents(&[]), "");
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let html = page(LOGIN_FORM, None);
        assert_eq!(html.matches("<script").count(), 1);
        assert!(html.contains("<script src=\"/static/app.js\" defer></script>"));
        assert!(!html.contains("<style"));
        assert!(!html.contains(" style="));
        assert!(!html.contains("onclick"));
    }
}
