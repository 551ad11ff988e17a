//! Draws a `ScreenState` onto any embedded-graphics target: the PIN keypad while locked,
//! the last photo while unlocked, a banner for a problem and the status bar below.
//!
//! The look is deliberately quiet: one light background, dark text, colour only where
//! it means something (green to go ahead, amber to wait, red for a fault).

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{
    Circle, PrimitiveStyle, PrimitiveStyleBuilder, Rectangle, RoundedRectangle, StrokeAlignment,
};
use image::imageops;

use super::layout::{below, bottom, inset, KeypadKey, Layout};
use super::state::{ClockStatus, HubLink, Language, LastCapture, LockView, Problem, ScreenState};
use super::text::{self, fill};
use super::typeset::{fit, wrap, Pen};

const BACKGROUND: Rgb888 = Rgb888::new(0xF6, 0xF4, 0xEF);
const SURFACE: Rgb888 = Rgb888::new(0xFF, 0xFF, 0xFF);
const LINE: Rgb888 = Rgb888::new(0xCF, 0xCB, 0xC2);
const TEXT: Rgb888 = Rgb888::new(0x1E, 0x2A, 0x33);
const MUTED: Rgb888 = Rgb888::new(0x5C, 0x66, 0x70);
const ACCENT: Rgb888 = Rgb888::new(0x2E, 0x6B, 0x4F);
const ACCENT_TINT: Rgb888 = Rgb888::new(0xE2, 0xF0, 0xE7);
const ERROR: Rgb888 = Rgb888::new(0xB3, 0x26, 0x1E);
const ERROR_TINT: Rgb888 = Rgb888::new(0xFB, 0xE4, 0xE1);
const WARNING: Rgb888 = Rgb888::new(0xC9, 0x8A, 0x00);
const WARNING_TINT: Rgb888 = Rgb888::new(0xFD, 0xF0, 0xD5);
const KEY_OFF: Rgb888 = Rgb888::new(0xE7, 0xE4, 0xDE);
const KEY_OFF_LINE: Rgb888 = Rgb888::new(0xDA, 0xD6, 0xCE);
const KEY_OFF_TEXT: Rgb888 = Rgb888::new(0xA1, 0x9C, 0x93);
const PHOTO_FRAME: Rgb888 = Rgb888::new(0xE9, 0xE6, 0xE0);
/// The margin of frame colour around the last photo.
const THUMBNAIL_BORDER: u32 = 4;
const STATUS_BACKGROUND: Rgb888 = Rgb888::new(0x24, 0x31, 0x3B);
const STATUS_TEXT: Rgb888 = Rgb888::new(0xEE, 0xF1, 0xF3);
const DOT_GOOD: Rgb888 = Rgb888::new(0x5C, 0xC0, 0x8A);
const DOT_WAIT: Rgb888 = Rgb888::new(0xE8, 0xB2, 0x3A);
const DOT_BAD: Rgb888 = Rgb888::new(0xEF, 0x6B, 0x5E);
const DOT_NEUTRAL: Rgb888 = Rgb888::new(0x9A, 0xA5, 0xAE);
const REVOKED_BACKGROUND: Rgb888 = Rgb888::new(0x6E, 0x1C, 0x1C);
const REVOKED_TEXT: Rgb888 = Rgb888::new(0xFF, 0xFF, 0xFF);
const REVOKED_BODY: Rgb888 = Rgb888::new(0xF6, 0xDC, 0xDC);

/// Draws one whole frame for `state`, sized to the target.
pub fn draw<D>(state: &ScreenState, target: &mut D) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let layout = Layout::new(target.bounding_box().size);

    // A withdrawn device does nothing for the class any more, so nothing else is shown
    // that could suggest otherwise.
    if state.problem == Some(Problem::Revoked) {
        return draw_revoked(state, &layout, target);
    }

    target.clear(BACKGROUND)?;
    match &state.lock {
        LockView::Locked {
            digits_entered,
            wrong_attempts,
            retry_in_secs,
        } => {
            let locked = Locked {
                digits: *digits_entered,
                wrong_attempts: *wrong_attempts,
                retry_in_secs: *retry_in_secs,
            };
            draw_locked(state, &locked, &layout, target)?;
        }
        LockView::Unlocked {
            teacher,
            locks_in_secs,
        } => draw_unlocked(state, teacher, *locks_in_secs, &layout, target)?,
    }

    draw_status_bar(state, &layout, target)
}

/// The locked view's numbers, gathered to keep `draw_locked`'s arguments few.
struct Locked {
    digits: usize,
    wrong_attempts: u32,
    retry_in_secs: Option<u64>,
}

fn draw_locked<D>(
    state: &ScreenState,
    locked: &Locked,
    layout: &Layout,
    target: &mut D,
) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let style = layout.style;
    let language = state.language;
    let side = layout.side;
    let width = side.size.width;
    let gap = style.gap as i32;
    let mut y = side.top_left.y;

    // A problem goes first: with no PINs yet, nothing below it can help.
    if let Some(problem) = state.problem {
        y = draw_banner(problem, language, layout, below(side, y), target)? + 2 * gap;
    }

    // Where this is, then what to do.
    let caption = fit(&state.classroom, &style.caption, width);
    Pen::new(&style.caption, MUTED).line(target, &caption, side, y)?;
    y += style.caption.line_step() + gap / 2;

    let title = wrap(text::locked_title(language), &style.title, width, 2);
    y = Pen::new(&style.title, TEXT).lines(target, &title, side, y)? + gap;

    // Before the hub has sent any PIN there is nothing to type, so the screen does not
    // ask for one; the banner above says what to do instead.
    let pins_known = state.problem != Some(Problem::NoPins);
    if pins_known {
        let prompt = wrap(text::enter_pin(language), &style.body, width, 2);
        y = Pen::new(&style.body, TEXT).lines(target, &prompt, side, y)? + gap;

        // The PIN field shows one dot per digit typed, never the digits.
        let field = Rectangle::new(
            Point::new(side.top_left.x, y),
            Size::new(width, style.pin_field_height),
        );
        draw_pin_field(locked.digits, field, layout, target)?;
        y = bottom(field) + gap;
    }

    // Why the keypad may be closed: first what happened, then how long to wait.
    if locked.wrong_attempts > 0 {
        let notice = if locked.wrong_attempts == 1 {
            text::wrong_pin_once(language).to_string()
        } else {
            fill(text::wrong_pin_times(language), locked.wrong_attempts)
        };
        let lines = wrap(&notice, &style.body, width, 2);
        y = Pen::new(&style.body, ERROR).lines(target, &lines, side, y)? + gap / 2;
    }
    if let Some(secs) = locked.retry_in_secs {
        let notice = fill(text::retry_in(language), secs);
        let lines = wrap(&notice, &style.body, width, 2);
        Pen::new(&style.body, TEXT).lines(target, &lines, side, y)?;
    }

    // While the wait runs, or before any PIN exists, a key press can do nothing, and the
    // keypad says so by its colour.
    let open = locked.retry_in_secs.is_none() && pins_known;
    draw_keypad(language, open, layout, target)
}

fn draw_pin_field<D>(
    digits: usize,
    field: Rectangle,
    layout: &Layout,
    target: &mut D,
) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let style = layout.style;
    rounded(field, style.radius)
        .into_styled(outlined(SURFACE, LINE))
        .draw(target)?;

    // Past what fits, more digits show no more dots; PINs are far shorter than that.
    let dot = style.pin_dot;
    let spacing = dot;
    let room = field.size.width.saturating_sub(2 * style.pad) / (dot + spacing);
    let shown = u32::try_from(digits).unwrap_or(u32::MAX).min(room);
    if shown == 0 {
        return Ok(());
    }

    let row_width = shown * dot + (shown - 1) * spacing;
    let left = field.top_left.x + (field.size.width.saturating_sub(row_width) / 2) as i32;
    let top = field.center().y - (dot / 2) as i32;
    for index in 0..shown {
        let x = left + (index * (dot + spacing)) as i32;
        Circle::new(Point::new(x, top), dot)
            .into_styled(PrimitiveStyle::with_fill(TEXT))
            .draw(target)?;
    }
    Ok(())
}

fn draw_keypad<D>(
    language: Language,
    open: bool,
    layout: &Layout,
    target: &mut D,
) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let style = layout.style;
    for (key, area) in layout.keys {
        let (fill_colour, line_colour, text_colour) = match (open, key) {
            (false, _) => (KEY_OFF, KEY_OFF_LINE, KEY_OFF_TEXT),
            (true, KeypadKey::Ok) => (ACCENT, ACCENT, SURFACE),
            (true, _) => (SURFACE, LINE, TEXT),
        };
        rounded(area, style.radius)
            .into_styled(outlined(fill_colour, line_colour))
            .draw(target)?;

        // Digits and "OK" are big; the erase word is longer, so it is set smaller.
        let (label, face) = match key {
            KeypadKey::Digit(digit) => (digit.to_string(), &style.key_digit),
            KeypadKey::Erase => (text::key_erase(language).to_string(), &style.key_word),
            KeypadKey::Ok => (text::key_ok(language).to_string(), &style.key_digit),
        };
        let label = fit(&label, face, area.size.width.saturating_sub(8));
        let top = area.center().y - (face.line_height() / 2) as i32;
        Pen::new(face, text_colour)
            .centred()
            .line(target, &label, area, top)?;
    }
    Ok(())
}

fn draw_unlocked<D>(
    state: &ScreenState,
    teacher: &str,
    locks_in_secs: u64,
    layout: &Layout,
    target: &mut D,
) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let style = layout.style;
    let language = state.language;
    let gap = style.gap as i32;
    let mut top = layout.content.top_left.y;

    if let Some(problem) = state.problem {
        top = draw_banner(problem, language, layout, layout.content, target)? + 2 * gap;
    }

    // The words: who is signed in, what to do, and for how long.
    let column = below(layout.text_column, top);
    let width = column.size.width;
    let mut y = top;
    let caption = fit(&state.classroom, &style.caption, width);
    Pen::new(&style.caption, MUTED).line(target, &caption, column, y)?;
    y += style.caption.line_step() + gap / 2;

    let name = wrap(teacher, &style.title, width, 2);
    y = Pen::new(&style.title, TEXT).lines(target, &name, column, y)? + 2 * gap;

    // What to do next, unless a problem means the button cannot work; the banner then
    // says what to do instead.
    let can_capture = !matches!(
        state.problem,
        Some(Problem::CameraMissing | Problem::DiskFull)
    );
    if can_capture {
        let area = below(column, y);
        y = draw_call_to_action(text::take_photo(language), layout, area, target)? + 2 * gap;
    }

    let locks_in = fill(text::locks_in(language), minutes_seconds(locks_in_secs));
    let locks_in = fit(&locks_in, &style.body, width);
    Pen::new(&style.body, MUTED).line(target, &locks_in, column, y)?;

    draw_last_capture(state, below(layout.photo_column, top), layout, target)
}

/// The instruction that matters most on the unlocked screen, in a tinted box; returns
/// the y just below the box.
fn draw_call_to_action<D>(
    words: &str,
    layout: &Layout,
    area: Rectangle,
    target: &mut D,
) -> Result<i32, D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let style = layout.style;
    let face = &style.body;
    let padding = style.gap;
    let lines = wrap(words, face, area.size.width.saturating_sub(2 * padding), 3);
    let height = lines.len() as u32 * face.line_step() as u32 + 2 * padding;
    let panel = Rectangle::new(area.top_left, Size::new(area.size.width, height));
    rounded(panel, style.radius)
        .into_styled(outlined(ACCENT_TINT, ACCENT))
        .draw(target)?;

    // The line step's air sits below each line; half of the last one goes above the
    // first, so the words look centred in the box.
    let words_area = inset(panel, padding);
    let top = words_area.top_left.y + (face.line_height() / 10) as i32;
    Pen::new(face, ACCENT).lines(target, &lines, words_area, top)?;
    Ok(bottom(panel))
}

/// The last photo, small, with its time and how many faces were covered; or a quiet
/// empty frame before the first photo.
fn draw_last_capture<D>(
    state: &ScreenState,
    column: Rectangle,
    layout: &Layout,
    target: &mut D,
) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let style = layout.style;
    let language = state.language;
    let width = column.size.width;
    let step = style.body.line_step();

    // At most a 4:3 frame, shorter when the two caption lines would not fit under it,
    // and shorter still to hug a wide photo, so the captions sit right below it.
    let captions = 2 * step as u32 + style.gap;
    let most = Size::new(
        width,
        (width * 3 / 4).min(column.size.height.saturating_sub(captions)),
    );
    let thumbnail = state.last_capture.as_ref().map(|capture| {
        let room = most.saturating_sub(Size::new_equal(2 * THUMBNAIL_BORDER));
        fitted(capture.preview.dimensions(), room)
    });
    let height = thumbnail.map_or(most.height, |size| size.height + 2 * THUMBNAIL_BORDER);
    let frame = Rectangle::new(column.top_left, Size::new(width, height.min(most.height)));
    rounded(frame, style.radius / 2)
        .into_styled(PrimitiveStyle::with_fill(PHOTO_FRAME))
        .draw(target)?;

    let (Some(capture), Some(size)) = (&state.last_capture, thumbnail) else {
        let words = fit(text::no_photo_yet(language), &style.body, width);
        let top = frame.center().y - (style.body.line_height() / 2) as i32;
        return Pen::new(&style.body, MUTED)
            .centred()
            .line(target, &words, frame, top);
    };
    let spot = Rectangle::with_center(frame.center(), size);
    draw_thumbnail(&capture.preview, spot, target)?;

    let mut y = bottom(frame) + style.gap as i32;
    let when = fill(text::last_photo_at(language), &capture.at_local);
    let when = fit(&when, &style.body, width);
    Pen::new(&style.body, MUTED).line(target, &when, column, y)?;
    y += step;

    let faces = fit(&faces_covered(capture, language), &style.body, width);
    Pen::new(&style.body, TEXT).line(target, &faces, column, y)
}

fn faces_covered(capture: &LastCapture, language: Language) -> String {
    match capture.faces {
        0 => text::faces_none(language).to_string(),
        1 => text::faces_one(language).to_string(),
        n => fill(text::faces_many(language), n),
    }
}

/// The largest size with the shape of `image` that fits in `room`; never enlarged, as
/// the preview is already far larger than any screen's thumbnail.
fn fitted((width, height): (u32, u32), room: Size) -> Size {
    if width == 0 || height == 0 {
        return Size::zero();
    }
    let scale = f64::min(
        f64::from(room.width) / f64::from(width),
        f64::from(room.height) / f64::from(height),
    )
    .min(1.0);
    let side = |length: u32| (f64::from(length) * scale).round() as u32;
    Size::new(side(width), side(height))
}

/// The preview scaled to exactly `spot`. The box filter of `thumbnail` averages the
/// pixels it drops, so the small copy does not shimmer; the screen redraws rarely, so
/// scaling on every frame costs little.
fn draw_thumbnail<D>(
    preview: &image::RgbImage,
    spot: Rectangle,
    target: &mut D,
) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    if spot.is_zero_sized() {
        return Ok(());
    }

    let to_colour = |p: &image::Rgb<u8>| Rgb888::new(p[0], p[1], p[2]);
    if preview.dimensions() == (spot.size.width, spot.size.height) {
        return target.fill_contiguous(&spot, preview.pixels().map(to_colour));
    }
    let small = imageops::thumbnail(preview, spot.size.width, spot.size.height);
    target.fill_contiguous(&spot, small.pixels().map(to_colour))
}

/// A problem in a tinted box with a round mark, its words wrapped to fit; returns the
/// y just below the box.
fn draw_banner<D>(
    problem: Problem,
    language: Language,
    layout: &Layout,
    area: Rectangle,
    target: &mut D,
) -> Result<i32, D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let style = layout.style;
    let face = &style.body;
    // A busy camera clears up by itself; every other problem needs someone to act.
    let (tint, mark) = match problem {
        Problem::CameraBusy => (WARNING_TINT, WARNING),
        _ => (ERROR_TINT, ERROR),
    };

    // The mark is a circle a little taller than a line, left of the words.
    let mark_size = face.line_height() + style.gap;
    let padding = style.gap;
    let words_left = area.top_left.x + (padding + mark_size + padding) as i32;
    let words_width = area.size.width.saturating_sub(3 * padding + mark_size);
    let lines = wrap(text::problem(problem, language), face, words_width, 4);
    let words_height = lines.len() as u32 * face.line_step() as u32;
    let height = words_height.max(mark_size) + 2 * padding;

    let banner = Rectangle::new(area.top_left, Size::new(area.size.width, height));
    rounded(banner, style.radius)
        .into_styled(outlined(tint, mark))
        .draw(target)?;

    let mark_area = Rectangle::new(
        Point::new(
            area.top_left.x + padding as i32,
            banner.center().y - (mark_size / 2) as i32,
        ),
        Size::new_equal(mark_size),
    );
    Circle::new(mark_area.top_left, mark_size)
        .into_styled(PrimitiveStyle::with_fill(mark))
        .draw(target)?;
    let bang_top = mark_area.center().y - (face.line_height() / 2) as i32;
    Pen::new(face, SURFACE)
        .centred()
        .line(target, "!", mark_area, bang_top)?;

    let words_area = Rectangle::new(
        Point::new(words_left, banner.top_left.y),
        Size::new(words_width, height),
    );
    let words_top = banner.center().y - (words_height / 2) as i32;
    Pen::new(face, TEXT).lines(target, &lines, words_area, words_top)?;
    Ok(bottom(banner))
}

/// The whole screen says the device was withdrawn and whom to ask; the classroom name
/// stays so IT knows which device this is.
fn draw_revoked<D>(state: &ScreenState, layout: &Layout, target: &mut D) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let style = layout.style;
    let language = state.language;
    target.clear(REVOKED_BACKGROUND)?;

    let area = inset(layout.screen, 2 * style.pad);
    let width = area.size.width;
    let title = wrap(text::revoked_title(language), &style.headline, width, 2);
    let body = wrap(text::revoked_body(language), &style.body, width, 6);
    let caption = fit(&state.classroom, &style.caption, width);

    // The block of title, words and classroom sits in the middle of the screen.
    let gap = 2 * style.gap as i32;
    let height = title.len() as i32 * style.headline.line_step()
        + gap
        + body.len() as i32 * style.body.line_step()
        + gap
        + style.caption.line_step();
    let mut y = area.center().y - height / 2;
    y = Pen::new(&style.headline, REVOKED_TEXT)
        .centred()
        .lines(target, &title, area, y)?
        + gap;
    y = Pen::new(&style.body, REVOKED_BODY)
        .centred()
        .lines(target, &body, area, y)?
        + gap;
    Pen::new(&style.caption, REVOKED_BODY)
        .centred()
        .line(target, &caption, area, y)
}

/// Photos waiting, the link to the school and the clock, each a coloured dot and a few
/// words, along the bottom.
fn draw_status_bar<D>(state: &ScreenState, layout: &Layout, target: &mut D) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let style = layout.style;
    let language = state.language;
    let bar = layout.status_bar;
    bar.into_styled(PrimitiveStyle::with_fill(STATUS_BACKGROUND))
        .draw(target)?;

    let outbox = match state.outbox_len {
        0 => (DOT_GOOD, text::outbox_empty(language).to_string()),
        1 => (DOT_WAIT, text::outbox_one(language).to_string()),
        n => (DOT_WAIT, fill(text::outbox_many(language), n)),
    };
    let hub = match &state.hub {
        HubLink::Connected => (DOT_GOOD, text::hub_connected(language).to_string()),
        HubLink::Connecting => (DOT_WAIT, text::hub_connecting(language).to_string()),
        HubLink::Offline { since_local } => (
            DOT_BAD,
            fill(text::hub_offline_since(language), since_local),
        ),
    };
    // An unset clock is worth knowing but not the teacher's to fix, and photos still
    // reach the school, so it is grey rather than amber.
    let clock = match state.clock {
        ClockStatus::Synced => (DOT_GOOD, text::clock_synced(language).to_string()),
        ClockStatus::Unknown => (DOT_NEUTRAL, text::clock_unknown(language).to_string()),
    };

    // Each cell is as wide as its words; the space left over goes between the cells,
    // so the first starts at the left edge and the last ends at the right. On a screen
    // too narrow for all three, each gets its share of the width and is shortened.
    let face = &style.status;
    let dot = face.line_height() * 2 / 3;
    let dot_room = dot + style.gap / 2 + 2;
    let cells = [outbox, hub, clock];
    let natural: Vec<u32> = cells
        .iter()
        .map(|(_, words)| dot_room + face.text_width(words))
        .collect();
    let room = bar.size.width.saturating_sub(2 * style.pad);
    let total: u32 = natural.iter().sum();
    let (widths, spacing): (Vec<u32>, u32) = if total <= room {
        (natural, (room - total) / 2)
    } else {
        let shares = natural
            .iter()
            .map(|w| (u64::from(room) * u64::from(*w) / u64::from(total)) as u32)
            .collect();
        (shares, 0)
    };

    let centre_y = bar.center().y;
    let pen = Pen::new(face, STATUS_TEXT);
    let mut left = bar.top_left.x + style.pad as i32;
    for ((colour, words), width) in cells.into_iter().zip(widths) {
        Circle::new(Point::new(left, centre_y - (dot / 2) as i32), dot)
            .into_styled(PrimitiveStyle::with_fill(colour))
            .draw(target)?;

        let words_area = Rectangle::new(
            Point::new(left + dot_room as i32, bar.top_left.y),
            Size::new(width.saturating_sub(dot_room), bar.size.height),
        );
        let words = fit(&words, face, words_area.size.width);
        let top = centre_y - (face.line_height() / 2) as i32;
        pen.line(target, &words, words_area, top)?;
        left += (width + spacing) as i32;
    }
    Ok(())
}

/// "4:05" for 245 seconds.
fn minutes_seconds(secs: u64) -> String {
    format!("{}:{:02}", secs / 60, secs % 60)
}

fn rounded(area: Rectangle, radius: u32) -> RoundedRectangle {
    RoundedRectangle::with_equal_corners(area, Size::new_equal(radius))
}

/// A filled shape with a two-pixel border drawn inside its edge, so bordered and plain
/// shapes of one size line up.
fn outlined(fill_colour: Rgb888, line_colour: Rgb888) -> PrimitiveStyle<Rgb888> {
    PrimitiveStyleBuilder::new()
        .fill_color(fill_colour)
        .stroke_color(line_colour)
        .stroke_width(2)
        .stroke_alignment(StrokeAlignment::Inside)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screen::canvas::Canvas;
    use crate::screen::layout::{keypad_key_at, right};

    const SIZES: [Size; 2] = [Size::new(800, 480), Size::new(480, 320)];

    fn locked_screen_state() -> ScreenState {
        ScreenState {
            language: Language::En,
            classroom: "Aula 3B".into(),
            lock: LockView::Locked {
                digits_entered: 0,
                wrong_attempts: 0,
                retry_in_secs: None,
            },
            last_capture: None,
            outbox_len: 0,
            hub: HubLink::Connected,
            clock: ClockStatus::Synced,
            problem: None,
        }
    }

    fn locked_screen(size: Size) -> Canvas {
        let mut canvas = Canvas::new(size);
        let Ok(()) = draw(&locked_screen_state(), &mut canvas);
        canvas
    }

    fn colour_at(canvas: &Canvas, point: Point) -> Rgb888 {
        let pixel = canvas.image().get_pixel(point.x as u32, point.y as u32);
        Rgb888::new(pixel[0], pixel[1], pixel[2])
    }

    #[test]
    fn a_touch_in_the_centre_of_each_drawn_key_finds_that_key() {
        for size in SIZES {
            let canvas = locked_screen(size);
            for (key, area) in Layout::new(size).keys {
                assert_eq!(keypad_key_at(size, area.center()), Some(key), "{size:?}");

                // The key is drawn there: its face shows just above the label, and the
                // background just outside its left edge.
                let above_label = Point::new(area.center().x, area.top_left.y + 6);
                let expected = if key == KeypadKey::Ok {
                    ACCENT
                } else {
                    SURFACE
                };
                assert_eq!(
                    colour_at(&canvas, above_label),
                    expected,
                    "{key:?} at {size:?}"
                );
                let outside = Point::new(area.top_left.x - 2, area.center().y);
                assert_eq!(
                    colour_at(&canvas, outside),
                    BACKGROUND,
                    "{key:?} at {size:?}"
                );
            }
        }
    }

    #[test]
    fn a_screen_too_small_for_the_layout_is_drawn_clipped_without_panicking() {
        let unlocked = LockView::Unlocked {
            teacher: "Ana Ruiz".into(),
            locks_in_secs: 10,
        };
        for size in [
            Size::new(0, 0),
            Size::new(10, 10),
            Size::new(100, 40),
            Size::new(320, 240),
        ] {
            for (lock, problem) in [
                (
                    LockView::Locked {
                        digits_entered: 9,
                        wrong_attempts: 2,
                        retry_in_secs: Some(5),
                    },
                    Some(Problem::NoPins),
                ),
                (unlocked.clone(), Some(Problem::CameraBusy)),
                (unlocked.clone(), Some(Problem::Revoked)),
            ] {
                let state = ScreenState {
                    lock,
                    problem,
                    last_capture: Some(LastCapture {
                        preview: image::RgbImage::new(3, 1),
                        faces: 0,
                        at_local: "10:42".into(),
                    }),
                    ..locked_screen_state()
                };
                let Ok(()) = draw(&state, &mut Canvas::new(size));
            }
        }
    }

    #[test]
    fn a_touch_outside_the_keys_finds_none() {
        for size in SIZES {
            let layout = Layout::new(size);
            let keys = layout.keys;
            let gap = layout.style.gap as i32;
            let between_1_and_2 = Point::new(right(keys[0].1) + gap / 2, keys[0].1.center().y);
            let between_1_and_4 = Point::new(keys[0].1.center().x, bottom(keys[0].1) + gap / 2);
            let misses = [
                Point::new(0, 0),
                layout.side.center(),
                layout.status_bar.center(),
                between_1_and_2,
                between_1_and_4,
                Point::new(-1, -1),
                Point::new(size.width as i32, size.height as i32),
            ];
            for point in misses {
                assert_eq!(keypad_key_at(size, point), None, "{point:?} at {size:?}");
            }
        }
    }

    #[test]
    fn countdowns_read_as_minutes_and_seconds() {
        assert_eq!(minutes_seconds(0), "0:00");
        assert_eq!(minutes_seconds(65), "1:05");
        assert_eq!(minutes_seconds(600), "10:00");
    }

    #[test]
    fn face_counts_read_naturally() {
        let capture = |faces| LastCapture {
            preview: image::RgbImage::new(1, 1),
            faces,
            at_local: "10:42".into(),
        };
        assert_eq!(
            faces_covered(&capture(0), Language::En),
            "No faces to cover"
        );
        assert_eq!(faces_covered(&capture(1), Language::Es), "1 cara tapada");
        assert_eq!(
            faces_covered(&capture(29), Language::Es),
            "29 caras tapadas"
        );
    }
}
