//! Choosing the mode to open a camera in, from the modes it offers.
//!
//! MJPEG is preferred: the camera has already compressed it, so a still is sealed exactly
//! as the camera took it and USB carries less. YUYV comes next, then grey. Within the
//! chosen format the largest size not above the configured maximum wins: more pixels per
//! face for the detector, but no more than the Pi can decode and detect in good time.

use std::collections::BTreeMap;

use super::{CameraError, OpenedFormat, PixelFormat};

/// The formats this device reads, best first.
const PREFERENCE: [PixelFormat; 3] = [PixelFormat::Mjpeg, PixelFormat::Yuyv, PixelFormat::Grey];

/// The largest frame to ask a camera for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxSize {
    pub width: u32,
    pub height: u32,
}

impl Default for MaxSize {
    /// Full HD: what classroom USB cameras commonly give, and what CenterFace handles on a
    /// Pi within a few seconds.
    fn default() -> Self {
        MaxSize {
            width: 1920,
            height: 1080,
        }
    }
}

/// One mode a camera offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The format, if it is one this device reads.
    pub format: Option<PixelFormat>,
    /// The camera's own name for the format, for messages (`"NV12"`).
    pub name: String,
    pub width: u32,
    pub height: u32,
}

/// Picks the mode to open: the most preferred format that has a size within `max`, at
/// its largest such size (by pixel count, then width).
pub fn choose(offers: &[Offer], max: MaxSize) -> Result<OpenedFormat, CameraError> {
    let fits = |offer: &&Offer| offer.width <= max.width && offer.height <= max.height;

    for wanted in PREFERENCE {
        let best = offers
            .iter()
            .filter(|offer| offer.format == Some(wanted))
            .filter(fits)
            .filter(|offer| offer.width > 0 && offer.height > 0)
            .max_by_key(|offer| {
                (
                    u64::from(offer.width) * u64::from(offer.height),
                    offer.width,
                )
            });
        if let Some(best) = best {
            return Ok(OpenedFormat {
                format: wanted,
                width: best.width,
                height: best.height,
            });
        }
    }

    Err(CameraError::NoUsableFormat {
        offered: summary(offers),
    })
}

/// Each offered format once, with its largest size: `"NV12 up to 1920x1080"`.
fn summary(offers: &[Offer]) -> Vec<String> {
    let mut largest: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for offer in offers {
        let size = largest.entry(offer.name.as_str()).or_default();
        if u64::from(offer.width) * u64::from(offer.height) > u64::from(size.0) * u64::from(size.1)
        {
            *size = (offer.width, offer.height);
        }
    }
    largest
        .into_iter()
        .map(|(name, (width, height))| format!("{name} up to {width}x{height}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(format: Option<PixelFormat>, name: &str, width: u32, height: u32) -> Offer {
        Offer {
            format,
            name: name.into(),
            width,
            height,
        }
    }

    fn mjpeg(width: u32, height: u32) -> Offer {
        offer(Some(PixelFormat::Mjpeg), "MJPEG", width, height)
    }

    fn yuyv(width: u32, height: u32) -> Offer {
        offer(Some(PixelFormat::Yuyv), "YUYV", width, height)
    }

    fn grey(width: u32, height: u32) -> Offer {
        offer(Some(PixelFormat::Grey), "GREY", width, height)
    }

    fn opened(format: PixelFormat, width: u32, height: u32) -> OpenedFormat {
        OpenedFormat {
            format,
            width,
            height,
        }
    }

    #[test]
    fn mjpeg_is_preferred_over_larger_yuyv() {
        let offers = [
            yuyv(1920, 1080),
            grey(1920, 1080),
            mjpeg(1280, 720),
            mjpeg(640, 480),
        ];
        let chosen = choose(&offers, MaxSize::default()).unwrap();
        assert_eq!(chosen, opened(PixelFormat::Mjpeg, 1280, 720));
    }

    #[test]
    fn the_largest_size_within_the_maximum_is_chosen() {
        let offers = [
            mjpeg(640, 480),
            mjpeg(3840, 2160),
            mjpeg(1920, 1080),
            mjpeg(2592, 1944),
        ];
        let chosen = choose(&offers, MaxSize::default()).unwrap();
        assert_eq!(chosen, opened(PixelFormat::Mjpeg, 1920, 1080));

        let small = MaxSize {
            width: 1280,
            height: 960,
        };
        assert_eq!(
            choose(&offers, small).unwrap(),
            opened(PixelFormat::Mjpeg, 640, 480)
        );
    }

    #[test]
    fn a_format_with_no_size_within_the_maximum_gives_way_to_the_next() {
        let offers = [mjpeg(3840, 2160), yuyv(640, 480), yuyv(320, 240)];
        let chosen = choose(&offers, MaxSize::default()).unwrap();
        assert_eq!(chosen, opened(PixelFormat::Yuyv, 640, 480));
    }

    #[test]
    fn c34_a_camera_offering_only_yuyv_640x480_opens_in_it() {
        let chosen = choose(&[yuyv(640, 480)], MaxSize::default()).unwrap();
        assert_eq!(chosen, opened(PixelFormat::Yuyv, 640, 480));
    }

    #[test]
    fn c34_a_camera_offering_only_grey_opens_in_grey() {
        let chosen = choose(&[grey(752, 480), grey(640, 480)], MaxSize::default()).unwrap();
        assert_eq!(chosen, opened(PixelFormat::Grey, 752, 480));
    }

    #[test]
    fn a_camera_offering_only_unread_formats_has_no_usable_format() {
        let offers = [
            offer(None, "NV12", 1920, 1080),
            offer(None, "NV12", 640, 480),
            offer(None, "RAWRGB", 320, 240),
        ];
        let error = choose(&offers, MaxSize::default()).unwrap_err();
        let CameraError::NoUsableFormat { offered } = &error else {
            panic!("expected no usable format, got {error:?}");
        };
        assert_eq!(offered, &["NV12 up to 1920x1080", "RAWRGB up to 320x240"]);
        assert!(
            error.to_string().contains("NV12 up to 1920x1080"),
            "{error}"
        );
    }

    #[test]
    fn a_camera_offering_nothing_has_no_usable_format() {
        let error = choose(&[], MaxSize::default()).unwrap_err();
        assert!(matches!(error, CameraError::NoUsableFormat { .. }));
    }
}
