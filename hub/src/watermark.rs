//! The visible watermark on an original photo delivered to a parent: who received it, from
//! which address, when, and under which access id, drawn into the pixels so that a copy
//! passed on still names the person it was released to.

use std::net::IpAddr;

use chrono::{DateTime, SecondsFormat, Utc};
use embedded_graphics::mono_font::iso_8859_1::{
    FONT_10X20, FONT_4X6, FONT_5X8, FONT_6X13_BOLD, FONT_7X13_BOLD, FONT_9X15_BOLD,
};
use embedded_graphics::mono_font::{MonoFont, MonoTextStyle};
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::{DrawTarget, OriginDimensions, Point, Size};
use embedded_graphics::text::{Baseline, Text};
use embedded_graphics::{Drawable, Pixel};
use image::{Rgb, RgbImage};
use uuid::Uuid;

/// The facts about one release of an original, drawn on it and written into its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewerMark {
    pub viewer_name: String,
    pub client_ip: IpAddr,
    pub at: DateTime<Utc>,
    pub access_id: Uuid,
}

impl ViewerMark {
    /// The access time in RFC 3339, UTC, whole seconds (`2025-03-01T10:22:33Z`): the one
    /// spelling used on the picture and in the metadata, so they can be matched by eye.
    pub fn timestamp(&self) -> String {
        self.at.to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// One sentence with every fact, for EXIF's ImageDescription and XMP's dc:description.
    pub fn description(&self) -> String {
        format!(
            "Guardian: delivered to {} at {}, {}, access {}",
            self.viewer_name,
            self.client_ip,
            self.timestamp(),
            self.access_id
        )
    }
}

/// Draws the visible watermark on an upright original, in place.
///
/// The mark is a few lines of light text with a dark outline on a half-transparent dark
/// band, so it reads on an almost white and an almost black photo alike. Its block spans a
/// little under half the photo's width and is repeated once in each quarter of the picture
/// (and once in the middle when there is room), so a crop that keeps any quarter still
/// carries one whole mark.
///
/// The built-in fonts cover ISO-8859-1 (Latin-1) only: any other character, for instance
/// in a Chinese or Arabic name, is drawn as `?`. Names longer than 60 characters are cut
/// and end in `...` on the picture. The metadata written by `metadata::encode_original`
/// always carries the exact, full name.
pub fn draw(image: &mut RgbImage, mark: &ViewerMark) {
    let (width, height) = image.dimensions();
    if width == 0 || height == 0 {
        return;
    }

    let (lines, layout) = choose_layout(width, height, mark);
    let glyphs = render_glyphs(&lines, layout.font);
    let outline = glyphs.dilated();

    for origin in layout.origins(width, height) {
        blend_block(image, origin, layout.factor, &glyphs, &outline);
    }
}

/// Draws the mark as one band along the bottom edge, for what is looked at on the
/// hub's page and not handed over as a file: previews and the teacher's review image.
/// The faces stay clear of text; the same facts are in the metadata. A photo too small
/// for a band gets the full mark of [`draw`].
pub fn draw_strip(image: &mut RgbImage, mark: &ViewerMark) {
    let (width, height) = image.dimensions();
    if width == 0 || height == 0 {
        return;
    }

    let Some((lines, font)) = strip_layout(width, height, mark) else {
        draw(image, mark);
        return;
    };
    let glyphs = render_glyphs(&lines, font);
    let outline = glyphs.dilated();
    let top = i64::from(height) - i64::from(glyphs.height);
    blend_block(image, (0, top), 1, &glyphs, &outline);
}

/// The largest share of the photo's height the bottom band may take.
const MAX_STRIP_SHARE: f64 = 0.15;

/// The largest font whose text, wrapped to the photo's width, makes a band no taller
/// than [`MAX_STRIP_SHARE`] of the photo.
fn strip_layout(
    width: u32,
    height: u32,
    mark: &ViewerMark,
) -> Option<(Vec<String>, &'static MonoFont<'static>)> {
    let mut name: String = mark.viewer_name.chars().take(MAX_NAME_CHARS).collect();
    if mark.viewer_name.chars().count() > MAX_NAME_CHARS {
        name.push_str("...");
    }
    let text = latin1(&format!(
        "Viewed by {name} - IP {} - {} - access {}",
        mark.client_ip,
        mark.timestamp(),
        mark.access_id
    ));

    FONTS.into_iter().find_map(|font| {
        let advance = font.character_size.width + font.character_spacing;
        let columns = (width.saturating_sub(2 * PADDING) / advance) as usize;
        if columns < WRAP_COLUMNS[WRAP_COLUMNS.len() - 1] {
            return None;
        }
        let lines = wrap(&text, columns);
        let (_, block_height) = block_size(font, &lines);
        (f64::from(block_height) <= f64::from(height) * MAX_STRIP_SHARE).then_some((lines, font))
    })
}

/// Lines are wrapped at the length of a UUID, so a block is always as wide as the access
/// id and the text size does not jump with the length of a name. Photos too small for
/// such a block even in the smallest font get narrower wraps (see [`choose_layout`]).
const WRAP_COLUMNS: [usize; 4] = [36, 24, 16, 12];

/// Longer names are cut on the picture; no phone screen shows more of them anyway.
const MAX_NAME_CHARS: usize = 60;

/// The largest share of the photo's width and height one block may take. Just under a
/// half, so two blocks fit side by side and every quarter of the photo holds a whole one.
const MAX_BLOCK_SHARE: f64 = 0.47;

/// The fonts to try, largest first; the first whose block fits the photo is scaled up.
const FONTS: [&MonoFont<'static>; 6] = [
    &FONT_10X20,
    &FONT_9X15_BOLD,
    &FONT_7X13_BOLD,
    &FONT_6X13_BOLD,
    &FONT_5X8,
    &FONT_4X6,
];

/// Empty font pixels around the text, for the outline and a little band beyond it.
const PADDING: u32 = 2;

const TEXT_COLOUR: Rgb<u8> = Rgb([255, 255, 255]);
const OUTLINE_COLOUR: Rgb<u8> = Rgb([0, 0, 0]);
/// How much of the photo shows through the band, out of 256: half, so the photo stays
/// recognisable while white text on it still stands out.
const BAND_SHOW_THROUGH: u16 = 128;

/// The lines and layout for one photo: repeated blocks of at most
/// `MAX_BLOCK_SHARE` of the photo when they fit, else one block as large as the
/// whole photo (a thumbnail), wrapping narrower before clipping any text.
fn choose_layout(width: u32, height: u32, mark: &ViewerMark) -> (Vec<String>, Layout) {
    for share in [MAX_BLOCK_SHARE, 1.0] {
        for columns in WRAP_COLUMNS {
            let lines = picture_lines(mark, columns);
            if let Some(layout) = Layout::fitting(width, height, &lines, share) {
                return (lines, layout);
            }
        }
    }

    // Nothing fits: the smallest font, clipped. A clipped mark still beats none.
    let lines = picture_lines(mark, WRAP_COLUMNS[WRAP_COLUMNS.len() - 1]);
    let layout = Layout::scaled(&FONT_4X6, &lines, 1);
    (lines, layout)
}

/// The text as drawn: Latin-1 only, the name cut, wrapped to `columns`.
fn picture_lines(mark: &ViewerMark, columns: usize) -> Vec<String> {
    let mut name: String = mark.viewer_name.chars().take(MAX_NAME_CHARS).collect();
    if mark.viewer_name.chars().count() > MAX_NAME_CHARS {
        // "..." rather than '…', which Latin-1 lacks.
        name.push_str("...");
    }

    let mut lines = Vec::new();
    lines.extend(wrap(&latin1(&format!("Viewed by {name}")), columns));
    lines.extend(wrap(&format!("IP {}", mark.client_ip), columns));
    lines.extend(wrap(&mark.timestamp(), columns));
    lines.extend(wrap(&format!("Access {}", mark.access_id), columns));
    lines
}

/// Replaces every character the ISO-8859-1 fonts cannot draw, and every control
/// character, with '?'.
fn latin1(text: &str) -> String {
    text.chars()
        .map(|c| match u32::from(c) {
            0x20..=0x7E | 0xA0..=0xFF => c,
            _ => '?',
        })
        .collect()
}

/// Wraps at spaces into lines of at most `columns` characters, breaking words that are
/// longer than a line.
fn wrap(text: &str, columns: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current: Vec<char> = Vec::new();

    for word in text.split(' ') {
        let word: Vec<char> = word.chars().collect();
        for piece in word.chunks(columns) {
            if current.is_empty() {
                current.extend(piece);
            } else if current.len() + 1 + piece.len() <= columns {
                current.push(' ');
                current.extend(piece);
            } else {
                lines.push(current.iter().collect());
                current = piece.to_vec();
            }
        }
    }
    if !current.is_empty() {
        lines.push(current.iter().collect());
    }
    lines
}

/// The font, the scale and the block size chosen for one photo.
struct Layout {
    font: &'static MonoFont<'static>,
    factor: u32,
    /// The block in photo pixels, after scaling.
    block_width: u32,
    block_height: u32,
}

impl Layout {
    /// The largest font whose block fits in `share` of the photo each way, scaled
    /// up as far as it still fits; `None` when even the smallest font does not.
    fn fitting(width: u32, height: u32, lines: &[String], share: f64) -> Option<Self> {
        let max_width = f64::from(width) * share;
        let max_height = f64::from(height) * share;
        let fits = |font: &MonoFont<'static>| {
            let (w, h) = block_size(font, lines);
            f64::from(w) <= max_width && f64::from(h) <= max_height
        };
        let font = FONTS.into_iter().find(|f| fits(f))?;

        let (natural_width, natural_height) = block_size(font, lines);
        let by_width = max_width / f64::from(natural_width);
        let by_height = max_height / f64::from(natural_height);
        // An integer factor keeps the bitmap font's pixels square and crisp.
        let factor = (by_width.min(by_height).floor() as u32).max(1);
        Some(Self::scaled(font, lines, factor))
    }

    fn scaled(font: &'static MonoFont<'static>, lines: &[String], factor: u32) -> Self {
        let (natural_width, natural_height) = block_size(font, lines);
        Layout {
            font,
            factor,
            block_width: natural_width * factor,
            block_height: natural_height * factor,
        }
    }

    /// Top-left corners of the blocks: one centred in each quarter, and one in the middle
    /// when it clears the others. A photo too small for two blocks across (or down) gets
    /// one column (or row) in the middle.
    fn origins(&self, width: u32, height: u32) -> Vec<(i64, i64)> {
        let (w, h) = (i64::from(width), i64::from(height));
        let (bw, bh) = (i64::from(self.block_width), i64::from(self.block_height));

        let centres = |side: i64, block: i64| {
            if 2 * block <= side {
                vec![side / 4, 3 * side / 4]
            } else {
                vec![side / 2]
            }
        };
        let columns = centres(w, bw);
        let rows = centres(h, bh);

        let mut origins = Vec::new();
        for &cy in &rows {
            for &cx in &columns {
                origins.push((cx - bw / 2, cy - bh / 2));
            }
        }
        // The middle block sits between the two rows; it fits when a block is at most a
        // quarter of the height, leaving a gap of at least one text line.
        if rows.len() == 2 && columns.len() == 2 && 4 * bh + 4 * i64::from(self.factor) <= h {
            origins.push((w / 2 - bw / 2, h / 2 - bh / 2));
        }
        origins
    }
}

/// The block's size in font pixels: the longest line and all lines, plus padding.
fn block_size(font: &MonoFont<'_>, lines: &[String]) -> (u32, u32) {
    let columns = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let columns = u32::try_from(columns).unwrap_or(u32::MAX);
    let advance = font.character_size.width + font.character_spacing;
    let rows = u32::try_from(lines.len()).unwrap_or(u32::MAX);
    (
        columns.saturating_mul(advance).saturating_add(2 * PADDING),
        rows.saturating_mul(font.character_size.height)
            .saturating_add(2 * PADDING),
    )
}

/// A one-bit canvas at font size that embedded-graphics draws the text into.
struct Mask {
    width: u32,
    height: u32,
    bits: Vec<bool>,
}

impl Mask {
    fn new(width: u32, height: u32) -> Self {
        let len = width as usize * height as usize;
        Mask {
            width,
            height,
            bits: vec![false; len],
        }
    }

    fn get(&self, x: i64, y: i64) -> bool {
        let inside =
            (0..i64::from(self.width)).contains(&x) && (0..i64::from(self.height)).contains(&y);
        inside && self.bits[(y * i64::from(self.width) + x) as usize]
    }

    /// Every pixel within one font pixel of the text (the text included): the outline
    /// that keeps white text legible on a light photo.
    fn dilated(&self) -> Mask {
        let mut out = Mask::new(self.width, self.height);
        for y in 0..i64::from(self.height) {
            for x in 0..i64::from(self.width) {
                let near = (-1..=1).any(|dy| (-1..=1).any(|dx| self.get(x + dx, y + dy)));
                out.bits[(y * i64::from(self.width) + x) as usize] = near;
            }
        }
        out
    }
}

impl OriginDimensions for Mask {
    fn size(&self) -> Size {
        Size::new(self.width, self.height)
    }
}

impl DrawTarget for Mask {
    type Color = BinaryColor;
    type Error = std::convert::Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(point, colour) in pixels {
            let (Ok(x), Ok(y)) = (u32::try_from(point.x), u32::try_from(point.y)) else {
                continue;
            };
            if x < self.width && y < self.height {
                self.bits[y as usize * self.width as usize + x as usize] = colour.is_on();
            }
        }
        Ok(())
    }
}

fn render_glyphs(lines: &[String], font: &MonoFont<'_>) -> Mask {
    let (width, height) = block_size(font, lines);
    let mut mask = Mask::new(width, height);
    let style = MonoTextStyle::new(font, BinaryColor::On);
    let padding = PADDING as i32;

    let mut y = padding;
    for line in lines {
        let position = Point::new(padding, y);
        // Drawing into a Mask cannot fail: its error type is Infallible.
        let Ok(_) = Text::with_baseline(line, position, style, Baseline::Top).draw(&mut mask);
        y += font.character_size.height as i32;
    }
    mask
}

/// Blends one block onto the photo with its top-left corner at `origin`, clipped to the
/// photo: text pixels white, outline pixels black, the rest of the block a darkened band.
fn blend_block(
    image: &mut RgbImage,
    origin: (i64, i64),
    factor: u32,
    glyphs: &Mask,
    outline: &Mask,
) {
    let (width, height) = (i64::from(image.width()), i64::from(image.height()));
    let factor = i64::from(factor);
    let block_width = i64::from(glyphs.width) * factor;
    let block_height = i64::from(glyphs.height) * factor;

    let y_range = origin.1.max(0)..(origin.1 + block_height).min(height);
    let x_range = origin.0.max(0)..(origin.0 + block_width).min(width);
    for y in y_range {
        let my = (y - origin.1) / factor;
        for x in x_range.clone() {
            let mx = (x - origin.0) / factor;
            // x and y lie inside the image, which the ranges above guarantee.
            let pixel = image.get_pixel_mut(x as u32, y as u32);
            *pixel = if glyphs.get(mx, my) {
                TEXT_COLOUR
            } else if outline.get(mx, my) {
                OUTLINE_COLOUR
            } else {
                let darken = |c: u8| (u16::from(c) * BAND_SHOW_THROUGH / 256) as u8;
                Rgb([darken(pixel[0]), darken(pixel[1]), darken(pixel[2])])
            };
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn a_strip_marks_only_the_bottom_of_a_preview() {
        for file in ["voc_2008_002470.jpg", "mde_meeting_room.jpg"] {
            let before = load(file);
            let mut after = before.clone();
            draw_strip(&mut after, &mark("Renée Ødegård-Çelik"));

            let (width, height) = before.dimensions();
            let changed_rows: Vec<u32> = (0..height)
                .filter(|&y| (0..width).any(|x| before.get_pixel(x, y) != after.get_pixel(x, y)))
                .collect();
            let first = *changed_rows.first().expect("the strip changes pixels");
            assert!(
                f64::from(height - first) <= f64::from(height) * MAX_STRIP_SHARE,
                "{file}: rows from {first} of {height} changed"
            );
        }
    }

    pub(crate) use guardian_e2e::testdata;

    pub(crate) fn load(file: &str) -> RgbImage {
        image::open(testdata(file))
            .unwrap_or_else(|e| panic!("cannot decode {file}: {e}"))
            .to_rgb8()
    }

    pub(crate) fn mark(name: &str) -> ViewerMark {
        ViewerMark {
            viewer_name: name.to_owned(),
            client_ip: "203.0.113.42".parse().expect("ip"),
            at: DateTime::parse_from_rfc3339("2025-03-01T10:22:33Z")
                .expect("time")
                .with_timezone(&Utc),
            access_id: Uuid::parse_str("6f1c2a9e-4b7d-4e21-9c3a-0d5e8f7a1b24").expect("uuid"),
        }
    }

    /// Saves a delivered JPEG under `target/test-artifacts/` so a person can look at it:
    /// `<stem>.jpg` as delivered, and `<stem>.png`, the same pixels at most 1600 px wide,
    /// for viewers that only show PNG. Returns the JPEG's path.
    pub(crate) fn save_artifact(stem: &str, jpeg: &[u8]) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
        std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
        let path = dir.join(format!("{stem}.jpg"));
        std::fs::write(&path, jpeg).expect("write test artifact");

        let decoded = image::load_from_memory(jpeg).expect("artifact decodes");
        let viewable = if decoded.width() > 1600 {
            decoded.resize(1600, 1600, image::imageops::FilterType::Triangle)
        } else {
            decoded
        };
        viewable
            .save(dir.join(format!("{stem}.png")))
            .expect("write PNG artifact");
        path
    }

    /// Inclusive corners of a box of pixels: left, top, right, bottom.
    type Bounds = (u32, u32, u32, u32);

    /// Pixels that differ from `before`, as a mask, and their bounding box.
    fn changed(before: &RgbImage, after: &RgbImage) -> (Vec<bool>, Option<Bounds>) {
        let mut mask = Vec::with_capacity(before.len() / 3);
        let mut bbox: Option<Bounds> = None;
        for (x, y, p) in before.enumerate_pixels() {
            let differs = p != after.get_pixel(x, y);
            mask.push(differs);
            if differs {
                bbox = Some(match bbox {
                    None => (x, y, x, y),
                    Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
                });
            }
        }
        (mask, bbox)
    }

    /// The longest run of changed pixels in any row: the width of one band.
    fn widest_band(mask: &[bool], width: u32) -> u32 {
        mask.chunks(width as usize)
            .map(|row| {
                let (mut best, mut run) = (0, 0);
                for &c in row {
                    run = if c { run + 1 } else { 0 };
                    best = best.max(run);
                }
                best
            })
            .max()
            .unwrap_or(0)
    }

    fn mean_luma(image: &RgbImage, x0: u32, y0: u32, x1: u32, y1: u32) -> f64 {
        let mut sum = 0.0;
        for y in y0..y1 {
            for x in x0..x1 {
                let p = image.get_pixel(x, y);
                sum += f64::from(p[0]) + f64::from(p[1]) + f64::from(p[2]);
            }
        }
        sum / 3.0 / f64::from((x1 - x0) * (y1 - y0))
    }

    #[test]
    fn the_mark_changes_light_and_dark_photos() {
        // A bright real photo, a dark real photo, and flat almost-white and almost-black.
        let cases = [
            ("astronaut_collins.png", load("astronaut_collins.png")),
            ("rocket_noface.jpg", load("rocket_noface.jpg")),
            (
                "almost white",
                RgbImage::from_pixel(800, 600, Rgb([250, 250, 250])),
            ),
            (
                "almost black",
                RgbImage::from_pixel(800, 600, Rgb([5, 5, 5])),
            ),
        ];
        for (label, before) in cases {
            let mut after = before.clone();
            draw(&mut after, &mark("Renée Ødegård-Çelik"));
            let (mask, bbox) = changed(&before, &after);
            let share = mask.iter().filter(|&&c| c).count() as f64 / mask.len() as f64;
            assert!(bbox.is_some(), "{label}: the mark changed nothing");
            // Five blocks of a little under a half by a sixth cover roughly a fifth to a
            // half of the picture, depending on its shape.
            assert!(
                (0.05..0.7).contains(&share),
                "{label}: {share:.2} of pixels changed"
            );

            // Both the white text and the black outline are there, whatever the photo.
            let white = after.pixels().filter(|p| **p == TEXT_COLOUR).count();
            let black = after.pixels().filter(|p| **p == OUTLINE_COLOUR).count();
            assert!(
                white > 500 && black > 500,
                "{label}: {white} text, {black} outline pixels"
            );
        }
    }

    #[test]
    fn the_text_scales_with_the_photo() {
        for (width, height) in [(4000, 3000), (320, 240)] {
            let before = RgbImage::from_pixel(width, height, Rgb([250, 250, 250]));
            let mut after = before.clone();
            draw(&mut after, &mark("Renée Ødegård-Çelik"));

            let (mask, bbox) = changed(&before, &after);
            let band = widest_band(&mask, width);
            let share = f64::from(band) / f64::from(width);
            assert!(
                (0.40..=0.60).contains(&share),
                "{width}x{height}: one block spans {share:.2} of the width"
            );
            // The repeated blocks reach from the left quarter to the right one.
            let (x0, _, x1, _) = bbox.expect("changed pixels");
            assert!(
                x0 < width / 10 && x1 > width - width / 10,
                "{width}x{height}: {bbox:?}"
            );
        }
    }

    #[test]
    fn every_quarter_of_the_photo_holds_a_whole_mark() {
        for (width, height) in [(4000, 3000), (3000, 4000), (640, 480), (320, 240)] {
            let (_, layout) = choose_layout(width, height, &mark("Renée Ødegård-Çelik"));
            let (bw, bh) = (
                i64::from(layout.block_width),
                i64::from(layout.block_height),
            );
            let origins = layout.origins(width, height);
            let (w, h) = (i64::from(width), i64::from(height));

            for (qx, qy) in [(0, 0), (w / 2, 0), (0, h / 2), (w / 2, h / 2)] {
                let whole = origins.iter().any(|&(x, y)| {
                    x >= qx && y >= qy && x + bw <= qx + w / 2 && y + bh <= qy + h / 2
                });
                assert!(
                    whole,
                    "{width}x{height}: quarter at ({qx}, {qy}) has no whole mark"
                );
            }
        }
    }

    #[test]
    fn the_band_darkens_a_white_photo_and_the_text_lightens_a_black_one() {
        let white = RgbImage::from_pixel(1600, 1200, Rgb([250, 250, 250]));
        let black = RgbImage::from_pixel(1600, 1200, Rgb([5, 5, 5]));
        let (_, layout) = choose_layout(1600, 1200, &mark("Ann"));
        let (x, y) = layout.origins(1600, 1200)[0];
        let (x0, y0) = (x as u32, y as u32);
        let (x1, y1) = (x0 + layout.block_width, y0 + layout.block_height);

        let mut on_white = white.clone();
        draw(&mut on_white, &mark("Ann"));
        assert!(mean_luma(&on_white, x0, y0, x1, y1) < 180.0);

        let mut on_black = black.clone();
        draw(&mut on_black, &mark("Ann"));
        let white_text = (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| (x, y)))
            .filter(|&(x, y)| *on_black.get_pixel(x, y) == TEXT_COLOUR)
            .count();
        let share = white_text as f64 / f64::from(layout.block_width * layout.block_height);
        eprintln!(
            "white text share on black: {share:.3}; band luma on white: {:.1}",
            mean_luma(&on_white, x0, y0, x1, y1)
        );
        assert!(share > 0.05, "only {share:.3} of the block is white text");
    }

    #[test]
    fn names_outside_latin1_become_question_marks_and_long_names_are_cut() {
        let lines = picture_lines(&mark("王测试"), WRAP_COLUMNS[0]);
        assert_eq!(lines[0], "Viewed by ???");

        let lines = picture_lines(&mark("Renée Ødegård-Çelik"), WRAP_COLUMNS[0]);
        assert_eq!(lines[0], "Viewed by Renée Ødegård-Çelik");
        assert_eq!(lines[1], "IP 203.0.113.42");
        assert_eq!(lines[2], "2025-03-01T10:22:33Z");
        assert_eq!(lines[3], "Access");
        assert_eq!(lines[4], "6f1c2a9e-4b7d-4e21-9c3a-0d5e8f7a1b24");

        let long = "x".repeat(200);
        let lines = picture_lines(&mark(&long), WRAP_COLUMNS[0]);
        let shown: String = lines
            .iter()
            .take_while(|l| !l.starts_with("IP "))
            .cloned()
            .collect();
        assert_eq!(shown, format!("Viewed by{}...", "x".repeat(60)));
        assert!(lines.iter().all(|l| l.chars().count() <= WRAP_COLUMNS[0]));

        // Control characters must not reach the font.
        assert_eq!(latin1("a\nb\u{7f}c"), "a?b?c");
    }

    #[test]
    fn a_thumbnail_gets_whole_marks_that_fit_inside_it() {
        // A 128 px photo is too small for 36-column blocks even in the smallest
        // font: the text wraps narrower, so no line is cut at the photo's edges.
        for (width, height) in [(128, 128), (160, 90), (90, 160)] {
            let (lines, layout) = choose_layout(width, height, &mark("Demo Parent"));
            for (x, y) in layout.origins(width, height) {
                assert!(x >= 0 && y >= 0, "{width}x{height}: a block starts outside");
                assert!(x + i64::from(layout.block_width) <= i64::from(width));
                assert!(y + i64::from(layout.block_height) <= i64::from(height));
            }
            assert!(lines.join(" ").contains("Demo Parent"), "{lines:?}");
        }
    }

    #[test]
    fn tiny_and_empty_photos_do_not_panic() {
        for (width, height) in [(0, 0), (1, 1), (10, 3000), (3000, 10), (100, 80)] {
            let mut image = RgbImage::from_pixel(width, height, Rgb([120, 120, 120]));
            draw(&mut image, &mark(&"名".repeat(500)));
        }
    }
}
