//! The image measures the acceptance criteria are written in: detail as the
//! variance of the Laplacian, and PSNR outside the covers.

use std::path::Path;

use image::{imageops::FilterType, DynamicImage, GrayImage, ImageDecoder, ImageReader, RgbImage};

/// A box in some image's pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Region {
    pub fn from_json(value: &serde_json::Value) -> Region {
        let n = |i: usize| value[i].as_f64().expect("box number");
        Region {
            x: n(0),
            y: n(1),
            w: n(2),
            h: n(3),
        }
    }

    pub fn scaled(&self, factor: f64) -> Region {
        Region {
            x: self.x * factor,
            y: self.y * factor,
            w: self.w * factor,
            h: self.h * factor,
        }
    }

    /// Grown by `fraction` of its size on every side.
    pub fn grown(&self, fraction: f64) -> Region {
        Region {
            x: self.x - self.w * fraction,
            y: self.y - self.h * fraction,
            w: self.w * (1.0 + 2.0 * fraction),
            h: self.h * (1.0 + 2.0 * fraction),
        }
    }

    /// Grown by `pixels` on every side (shrunk if negative).
    pub fn grown_by(&self, pixels: f64) -> Region {
        Region {
            x: self.x - pixels,
            y: self.y - pixels,
            w: (self.w + 2.0 * pixels).max(0.0),
            h: (self.h + 2.0 * pixels).max(0.0),
        }
    }

    /// At least what the hub covers for this face box, in the same pixels:
    /// the box grown by a quarter of its size on the sides and below and by
    /// two fifths above (for the hair), as the device and the hub both do.
    /// They also round the cover out to whole 16-pixel JPEG blocks of the
    /// picture they draw on, so the real cover is a little larger still.
    pub fn hub_cover(&self) -> Region {
        let (side, top, bottom) = (0.25 * self.w, 0.40 * self.h, 0.25 * self.h);
        Region {
            x: self.x - side,
            y: self.y - top,
            w: self.w + 2.0 * side,
            h: self.h + top + bottom,
        }
    }

    /// Exactly what the hub paints grey for this face box (given in pixels
    /// of the `original` picture) on a picture of size `target`: the box
    /// grown as in [`Region::hub_cover`], clamped, scaled, and rounded out to
    /// whole 16-pixel JPEG blocks. Written here again, not taken from the
    /// hub, so the test checks the rule rather than repeating it.
    pub fn hub_cover_in(&self, original: (u32, u32), target: (u32, u32)) -> Region {
        const BLOCK: f64 = 16.0;
        let grown = self.hub_cover();
        let (sx, sy) = (
            f64::from(target.0) / f64::from(original.0),
            f64::from(target.1) / f64::from(original.1),
        );
        let (tw, th) = (f64::from(target.0), f64::from(target.1));
        let left = (grown.x.max(0.0) * sx).floor();
        let top = (grown.y.max(0.0) * sy).floor();
        let right = ((grown.x + grown.w).min(f64::from(original.0)) * sx).ceil();
        let bottom = ((grown.y + grown.h).min(f64::from(original.1)) * sy).ceil();
        let x0 = (left / BLOCK).floor() * BLOCK;
        let y0 = (top / BLOCK).floor() * BLOCK;
        let x1 = ((right / BLOCK).ceil() * BLOCK).min(tw);
        let y1 = ((bottom / BLOCK).ceil() * BLOCK).min(th);
        Region {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        }
    }

    /// The share of this region's area that lies inside `other`.
    pub fn share_inside(&self, other: Region) -> f64 {
        self.intersection(other)
            .map_or(0.0, |inside| inside.area() / self.area())
    }

    /// The part of this region inside `other`, if any.
    pub fn intersection(&self, other: Region) -> Option<Region> {
        let x0 = self.x.max(other.x);
        let y0 = self.y.max(other.y);
        let x1 = (self.x + self.w).min(other.x + other.w);
        let y1 = (self.y + self.h).min(other.y + other.h);
        (x1 > x0 && y1 > y0).then_some(Region {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        })
    }

    pub fn intersects(&self, other: Region) -> bool {
        self.x < other.x + other.w
            && other.x < self.x + self.w
            && self.y < other.y + other.h
            && other.y < self.y + self.h
    }

    pub fn contains(&self, x: f64, y: f64) -> bool {
        x >= self.x && y >= self.y && x < self.x + self.w && y < self.y + self.h
    }

    pub fn area(&self) -> f64 {
        self.w * self.h
    }
}

/// Decodes a file and turns it upright by its EXIF orientation.
pub fn load_upright(path: &Path) -> RgbImage {
    let mut decoder = ImageReader::open(path)
        .expect("open")
        .with_guessed_format()
        .expect("format")
        .into_decoder()
        .expect("decoder");
    let orientation = decoder.orientation().expect("orientation");
    let mut image = DynamicImage::from_decoder(decoder).expect("decode");
    image.apply_orientation(orientation);
    image.to_rgb8()
}

pub fn decode(bytes: &[u8]) -> RgbImage {
    image::load_from_memory(bytes).expect("decode").to_rgb8()
}

pub fn resize(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    image::imageops::resize(image, width, height, FilterType::Triangle)
}

/// Variance of the 4-neighbour Laplacian over the region's interior.
pub fn laplacian_variance(image: &RgbImage, region: Region) -> f64 {
    let gray: GrayImage = DynamicImage::ImageRgb8(image.clone()).to_luma8();
    let (width, height) = gray.dimensions();
    let x0 = region.x.max(1.0) as u32;
    let y0 = region.y.max(1.0) as u32;
    let x1 = ((region.x + region.w) as u32).min(width.saturating_sub(1));
    let y1 = ((region.y + region.h) as u32).min(height.saturating_sub(1));

    let mut values = Vec::new();
    for y in y0..y1 {
        for x in x0..x1 {
            let p = |dx: i64, dy: i64| {
                f64::from(gray.get_pixel((x as i64 + dx) as u32, (y as i64 + dy) as u32)[0])
            };
            values.push(p(-1, 0) + p(1, 0) + p(0, -1) + p(0, 1) - 4.0 * p(0, 0));
        }
    }
    if values.is_empty() {
        return 0.0;
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64
}

/// PSNR between two images of one size over the pixels `keep` accepts.
pub fn psnr_where(a: &RgbImage, b: &RgbImage, keep: impl Fn(u32, u32) -> bool) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let mut sum = 0.0;
    let mut count = 0u64;
    for (x, y, pixel) in a.enumerate_pixels() {
        if !keep(x, y) {
            continue;
        }
        let other = b.get_pixel(x, y);
        for channel in 0..3 {
            let d = f64::from(pixel[channel]) - f64::from(other[channel]);
            sum += d * d;
        }
        count += 3;
    }
    if count == 0 || sum == 0.0 {
        return f64::INFINITY;
    }
    let mse = sum / count as f64;
    10.0 * (255.0 * 255.0 / mse).log10()
}

/// Intersection over union of two regions.
pub fn iou(a: Region, b: Region) -> f64 {
    let x0 = a.x.max(b.x);
    let y0 = a.y.max(b.y);
    let x1 = (a.x + a.w).min(b.x + b.w);
    let y1 = (a.y + a.h).min(b.y + b.h);
    let inter = (x1 - x0).max(0.0) * (y1 - y0).max(0.0);
    inter / (a.area() + b.area() - inter)
}
