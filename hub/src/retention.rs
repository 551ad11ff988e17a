//! How long photos are kept: the school year rule and the purge.
//!
//! A school year runs from 1 September to 31 August in the school's time zone.
//! A photo belongs to the school year of its capture time when the device's
//! clock was good when it sent the photo (at most [`MAX_CLOCK_SKEW`] off the
//! hub's), else to the school year of the time the hub received it: a device
//! with a wrong clock could otherwise keep a photo for years or lose it at once.
//!
//! The photo is kept through its `delete_after` day, the 30th day after its
//! school year ends (30 September for a year ending 31 August), and purged by
//! a run on any later day. A photo of 10 June 2025 belongs to the year ending
//! 31 August 2025, is shown to parents with `delete_after` 2025-09-30 and is
//! purged from 1 October 2025.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::json;
use uuid::Uuid;

use crate::audit::{Actor, AuditEvent, AuditKind};
use crate::store::{PhotoRecord, StoreError};
use crate::Hub;

/// The school's time zone when none is configured.
pub const DEFAULT_TIMEZONE: Tz = chrono_tz::Europe::Madrid;

/// Days a photo is kept after its school year ends.
pub const DAYS_AFTER_YEAR_END: i64 = 30;

/// The largest device clock error at which the capture time is trusted.
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// The configured zone is not in the IANA time zone database.
    #[error("unknown time zone {0:?}; use an IANA name such as Europe/Madrid (GUARDIAN_TIMEZONE or --timezone)")]
    UnknownTimezone(String),

    /// A photo could not be removed; the photos purged before it stay purged
    /// and a later run retries the rest.
    #[error("cannot purge photo {id}: {source}")]
    Purge { id: Uuid, source: StoreError },

    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one purge run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purged {
    /// The photos removed, in the order they were removed.
    pub photos: Vec<Uuid>,
    /// How many photos were kept.
    pub kept: usize,
}

/// Reads a time zone name such as `Europe/Madrid`.
pub fn parse_timezone(name: &str) -> Result<Tz, RetentionError> {
    name.trim()
        .parse::<Tz>()
        .map_err(|_| RetentionError::UnknownTimezone(name.to_owned()))
}

/// The last day (31 August) of the school year that holds `day`.
pub fn school_year_end(day: NaiveDate) -> NaiveDate {
    let end_year = if day.month() >= 9 {
        day.year() + 1
    } else {
        day.year()
    };
    // 31 August exists in every year chrono can represent but the last one.
    NaiveDate::from_ymd_opt(end_year, 8, 31).unwrap_or(NaiveDate::MAX)
}

/// The moment that decides a photo's school year: its capture time when the
/// device's clock was good, else its receipt time.
pub fn reference_time(photo: &PhotoRecord) -> DateTime<Utc> {
    if photo.clock_skew().abs() <= MAX_CLOCK_SKEW {
        photo.captured_at
    } else {
        photo.received_at
    }
}

/// The school year a photo belongs to, by its last day.
pub fn photo_year_end(photo: &PhotoRecord, zone: Tz) -> NaiveDate {
    school_year_end(reference_time(photo).with_timezone(&zone).date_naive())
}

/// The last day a photo is kept; a run on any later day purges it.
pub fn delete_after(photo: &PhotoRecord, zone: Tz) -> NaiveDate {
    let end = photo_year_end(photo, zone);
    end.checked_add_signed(Duration::days(DAYS_AFTER_YEAR_END))
        .unwrap_or(NaiveDate::MAX)
}

/// How often `serve` runs the purge by itself. A run purges only what is due,
/// so running it more often than daily costs a scan and catches the new day
/// soon after midnight in any time zone.
pub const PURGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// How old stored bytes with no record must be before a run removes them;
/// far longer than storing one photo takes.
pub const STRAY_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Runs the purge as the hub, at start-up and then every [`PURGE_INTERVAL`],
/// until the task is dropped, and clears sealed bytes that no record names
/// (see [`crate::store::PhotoStore::remove_strays`]). A failed run is logged
/// and retried next time.
pub async fn purge_periodically(hub: std::sync::Arc<Hub>) {
    let mut ticker = tokio::time::interval(PURGE_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let hub = hub.clone();
        let run = tokio::task::spawn_blocking(move || {
            let today = today(&hub);
            let purged = purge(&hub, today, Actor::Hub);
            match hub.store.remove_strays(STRAY_AGE) {
                Ok(0) => {}
                Ok(strays) => tracing::info!(strays, "removed sealed files that no photo names"),
                Err(error) => tracing::error!(%error, "cannot remove stray sealed files"),
            }
            purged
        })
        .await;

        match run {
            Ok(Ok(purged)) if !purged.photos.is_empty() => tracing::info!(
                purged = purged.photos.len(),
                kept = purged.kept,
                "retention purged photos past their school year"
            ),
            Ok(Ok(_)) => tracing::debug!("retention: nothing due"),
            Ok(Err(error)) => {
                tracing::error!(%error, "retention purge failed; retrying at the next run")
            }
            Err(error) => {
                tracing::error!(%error, "retention purge panicked; retrying at the next run")
            }
        }
    }
}

/// Whether a run on `today` (the school's date) purges the photo.
pub fn is_due(photo: &PhotoRecord, zone: Tz, today: NaiveDate) -> bool {
    today > delete_after(photo, zone)
}

/// Today's date in the school's time zone, by the hub's clock.
pub fn today(hub: &Hub) -> NaiveDate {
    hub.clock.now().with_timezone(&hub.timezone).date_naive()
}

/// Purges every photo that is due on `today`: its row, the original requests
/// and downloads that point at it, and its sealed file, with one
/// `photo_purged` audit entry per photo written in the same transaction.
pub fn purge(hub: &Hub, today: NaiveDate, by: Actor) -> Result<Purged, RetentionError> {
    let photos = hub.store.all()?;
    let mut purged = Purged {
        photos: Vec::new(),
        kept: 0,
    };

    for photo in photos {
        if !is_due(&photo, hub.timezone, today) {
            purged.kept += 1;
            continue;
        }

        let end = photo_year_end(&photo, hub.timezone);
        let event = AuditEvent::new(AuditKind::PhotoPurged, by)
            .subject(photo.id)
            .detail(json!({
                "classroom_id": photo.classroom_id,
                "school_year": school_year_name(end),
                "delete_after": delete_after(&photo, hub.timezone).to_string(),
                "today": today.to_string(),
            }));
        hub.delete_photo(photo.id, &event)
            .map_err(|source| RetentionError::Purge {
                id: photo.id,
                source,
            })?;
        tracing::info!(photo_id = %photo.id, "photo purged by retention");
        purged.photos.push(photo.id);
    }
    Ok(purged)
}

/// A school year as people write it: `2024-2025` for the year ending 31
/// August 2025.
pub fn school_year_name(end: NaiveDate) -> String {
    format!("{}-{}", end.year() - 1, end.year())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn photo(captured: &str, received: &str, device_sent: &str) -> PhotoRecord {
        PhotoRecord {
            id: Uuid::new_v4(),
            device_id: Uuid::new_v4(),
            classroom_id: Uuid::new_v4(),
            captured_at: at(captured),
            received_at: at(received),
            device_sent_at: at(device_sent),
            faces: 0,
            width: 1,
            height: 1,
            damaged: false,
            envelope_sha256: [0; 32],
        }
    }

    fn good_clock(captured: &str) -> PhotoRecord {
        photo(captured, captured, captured)
    }

    #[test]
    fn august_31_ends_the_year_and_september_1_starts_the_next() {
        assert_eq!(school_year_end(day("2025-08-31")), day("2025-08-31"));
        assert_eq!(school_year_end(day("2025-09-01")), day("2026-08-31"));
        assert_eq!(school_year_end(day("2025-01-01")), day("2025-08-31"));
        assert_eq!(school_year_end(day("2024-12-31")), day("2025-08-31"));
    }

    #[test]
    fn a_june_photo_is_kept_through_september_30_and_due_on_october_1() {
        let june = good_clock("2025-06-10T10:00:00Z");
        assert_eq!(delete_after(&june, DEFAULT_TIMEZONE), day("2025-09-30"));
        assert!(!is_due(&june, DEFAULT_TIMEZONE, day("2025-09-30")));
        assert!(is_due(&june, DEFAULT_TIMEZONE, day("2025-10-01")));
    }

    #[test]
    fn a_photo_of_august_31_belongs_to_the_ending_year() {
        let last_day = good_clock("2025-08-31T12:00:00Z");
        assert_eq!(delete_after(&last_day, DEFAULT_TIMEZONE), day("2025-09-30"));
    }

    #[test]
    fn late_evening_utc_on_august_31_is_already_september_in_madrid() {
        // 22:30 UTC is 00:30 on 1 September in Madrid (UTC+2 in summer).
        let photo = good_clock("2025-08-31T22:30:00Z");
        assert_eq!(photo_year_end(&photo, DEFAULT_TIMEZONE), day("2026-08-31"));
        assert_eq!(delete_after(&photo, DEFAULT_TIMEZONE), day("2026-09-30"));

        // The same instant is still 31 August in UTC and in New York.
        assert_eq!(photo_year_end(&photo, chrono_tz::UTC), day("2025-08-31"));
        let new_york = parse_timezone("America/New_York").unwrap();
        assert_eq!(photo_year_end(&photo, new_york), day("2025-08-31"));
    }

    #[test]
    fn a_device_with_a_skewed_clock_is_judged_by_receipt_time() {
        // The device thought it was June 2024; the hub got it in October 2025.
        let skewed = photo(
            "2024-06-10T10:00:00Z",
            "2025-10-02T10:00:00Z",
            "2024-06-10T10:01:00Z",
        );
        assert_eq!(reference_time(&skewed), skewed.received_at);
        assert_eq!(delete_after(&skewed, DEFAULT_TIMEZONE), day("2026-09-30"));
    }

    #[test]
    fn a_skew_of_exactly_five_minutes_still_trusts_the_capture_time() {
        let five = photo(
            "2025-06-10T10:00:00Z",
            "2025-10-02T10:05:00Z",
            "2025-10-02T10:00:00Z",
        );
        assert_eq!(reference_time(&five), five.captured_at);

        let ahead = photo(
            "2025-06-10T10:00:00Z",
            "2025-10-02T10:00:00Z",
            "2025-10-02T10:05:01Z",
        );
        assert_eq!(reference_time(&ahead), ahead.received_at);
    }

    #[test]
    fn unknown_time_zones_are_refused_with_the_setting_named() {
        let error = parse_timezone("Europe/Atlantis").unwrap_err().to_string();
        assert!(error.contains("Europe/Atlantis"), "{error}");
        assert!(error.contains("GUARDIAN_TIMEZONE"), "{error}");
        assert_eq!(parse_timezone("Europe/Madrid").unwrap(), DEFAULT_TIMEZONE);
    }

    #[test]
    fn school_years_are_named_by_both_calendar_years() {
        assert_eq!(school_year_name(day("2025-08-31")), "2024-2025");
    }
}
