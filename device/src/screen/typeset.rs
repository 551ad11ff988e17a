//! Setting text on the screen: the bitmap fonts at whole-pixel magnification, word
//! wrapping and shortening to a width, and drawing one line inside a box.
//!
//! The largest ISO 8859-1 font of embedded-graphics is 10x20 pixels, which is small for a
//! title read from across a desk; magnifying it by whole pixels keeps the glyphs sharp.

use embedded_graphics::mono_font::{MonoFont, MonoTextStyle};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use embedded_graphics::text::{Baseline, Text};

/// What a text is shortened with when it does not fit. Three dots, because "…" is not
/// in the fonts.
const ELLIPSIS: &str = "...";

/// A font at a whole-pixel magnification.
#[derive(Clone, Copy)]
pub struct Face {
    pub font: &'static MonoFont<'static>,
    pub scale: u32,
}

/// Where a line sits across its box.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Center,
}

impl Face {
    pub const fn new(font: &'static MonoFont<'static>, scale: u32) -> Self {
        Face { font, scale }
    }

    /// The advance from one character to the next.
    pub fn char_width(&self) -> u32 {
        (self.font.character_size.width + self.font.character_spacing) * self.scale
    }

    pub fn line_height(&self) -> u32 {
        self.font.character_size.height * self.scale
    }

    /// The distance from one line's top to the next: the glyph height and a little
    /// air, so accents on capitals do not touch the line above.
    pub fn line_step(&self) -> i32 {
        (self.line_height() + self.line_height() / 5) as i32
    }

    pub fn text_width(&self, text: &str) -> u32 {
        let chars = u32::try_from(text.chars().count()).unwrap_or(u32::MAX);
        chars.saturating_mul(self.char_width())
    }

    /// How many characters fit in `width`.
    fn chars_in(&self, width: u32) -> usize {
        // A face always has a width: fonts have at least one pixel per glyph and the
        // scale is at least one; max(1) keeps a bad constant from dividing by zero.
        (width / self.char_width().max(1)) as usize
    }
}

/// `text` on one line of at most `width` pixels, ending in "..." when shortened.
pub fn fit(text: &str, face: &Face, width: u32) -> String {
    let room = face.chars_in(width);
    if text.chars().count() <= room {
        return text.to_string();
    }
    shorten(text, room)
}

/// `text` broken at spaces into lines of at most `width` pixels; at most `max_lines`
/// lines, the last one shortened with "..." when the text goes on. A word longer than a
/// line is cut.
pub fn wrap(text: &str, face: &Face, width: u32, max_lines: usize) -> Vec<String> {
    let room = face.chars_in(width).max(1);
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();

    for word in text.split_whitespace() {
        let word_len = word.chars().count();
        let line_len = line.chars().count();
        if line.is_empty() {
            line = word.to_string();
        } else if line_len + 1 + word_len <= room {
            line.push(' ');
            line.push_str(word);
        } else {
            lines.push(std::mem::take(&mut line));
            line = word.to_string();
        }

        // A word wider than the whole line is cut into pieces that fit.
        while line.chars().count() > room {
            let head: String = line.chars().take(room).collect();
            let tail: String = line.chars().skip(room).collect();
            lines.push(head);
            line = tail;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }

    if lines.len() > max_lines {
        let rest = lines.split_off(max_lines.saturating_sub(1)).join(" ");
        lines.push(shorten(&rest, room));
        lines.truncate(max_lines);
    }
    lines
}

/// `text` cut to `room` characters including the "..." it always ends with. The cut
/// goes after a whole word where one fits, so a name is not left with half a word.
fn shorten(text: &str, room: usize) -> String {
    let keep = room.saturating_sub(ELLIPSIS.len());
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= keep {
        return format!("{}{ELLIPSIS}", text.trim_end());
    }

    let cut: String = chars[..keep].iter().collect();
    let word_ends_here = chars[keep].is_whitespace();
    let kept = match cut.rfind(' ') {
        Some(space) if !word_ends_here && space > 0 => &cut[..space],
        _ => cut.as_str(),
    };
    format!("{}{ELLIPSIS}", kept.trim_end())
}

/// How a piece of text is set: a face, a colour and where lines sit across their box.
#[derive(Clone, Copy)]
pub struct Pen<'a> {
    pub face: &'a Face,
    colour: Rgb888,
    align: Align,
}

impl<'a> Pen<'a> {
    /// A pen that sets lines against the left edge of their box.
    pub fn new(face: &'a Face, colour: Rgb888) -> Self {
        Pen {
            face,
            colour,
            align: Align::Left,
        }
    }

    /// The same pen, setting lines in the middle of their box.
    pub fn centred(self) -> Self {
        Pen {
            align: Align::Center,
            ..self
        }
    }

    /// Draws one line with its top at `top`, across `area`. The text is not shortened
    /// here; callers fit it first.
    pub fn line<D>(
        &self,
        target: &mut D,
        text: &str,
        area: Rectangle,
        top: i32,
    ) -> Result<(), D::Error>
    where
        D: DrawTarget<Color = Rgb888>,
    {
        let face = self.face;
        let left = match self.align {
            Align::Left => area.top_left.x,
            Align::Center => {
                let spare = area.size.width.saturating_sub(face.text_width(text));
                area.top_left.x + (spare / 2) as i32
            }
        };

        let style = MonoTextStyle::new(face.font, self.colour);
        if face.scale == 1 {
            Text::with_baseline(text, Point::new(left, top), style, Baseline::Top).draw(target)?;
            return Ok(());
        }

        let mut magnified = Magnified {
            target,
            origin: Point::new(left, top),
            scale: face.scale,
        };
        Text::with_baseline(text, Point::zero(), style, Baseline::Top).draw(&mut magnified)?;
        Ok(())
    }

    /// Draws lines one below the other from `top`; returns the y just below the last
    /// glyphs, without the air under them.
    pub fn lines<D>(
        &self,
        target: &mut D,
        lines: &[String],
        area: Rectangle,
        top: i32,
    ) -> Result<i32, D::Error>
    where
        D: DrawTarget<Color = Rgb888>,
    {
        let step = self.face.line_step();
        let mut y = top;
        for line in lines {
            self.line(target, line, area, y)?;
            y += step;
        }
        Ok(y - (step - self.face.line_height() as i32))
    }
}

/// A view of a target in which every pixel drawn becomes a `scale` x `scale` square,
/// placed relative to `origin`.
struct Magnified<'a, D> {
    target: &'a mut D,
    origin: Point,
    scale: u32,
}

impl<D: DrawTarget<Color = Rgb888>> Dimensions for Magnified<'_, D> {
    fn bounding_box(&self) -> Rectangle {
        let outer = self.target.bounding_box();
        let scale = self.scale as i32;
        Rectangle::new(
            (outer.top_left - self.origin) / scale,
            outer.size / self.scale,
        )
    }
}

impl<D: DrawTarget<Color = Rgb888>> DrawTarget for Magnified<'_, D> {
    type Color = Rgb888;
    type Error = D::Error;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        let square = Size::new_equal(self.scale);
        for Pixel(point, color) in pixels {
            let top_left = self.origin + point * self.scale as i32;
            self.target
                .fill_solid(&Rectangle::new(top_left, square), color)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_graphics::mono_font::iso_8859_1::FONT_10X20;

    const FACE: Face = Face::new(&FONT_10X20, 1);

    #[test]
    fn a_short_text_is_kept_whole() {
        assert_eq!(fit("Aula 3B", &FACE, 100), "Aula 3B");
    }

    #[test]
    fn a_long_text_is_shortened_with_dots_to_the_width() {
        let fitted = fit("María José Fernández", &FACE, 100);
        assert_eq!(fitted, "María...");
        assert!(FACE.text_width(&fitted) <= 100);
    }

    #[test]
    fn wrapping_breaks_at_spaces() {
        let lines = wrap("Cámara no encontrada: compruebe el cable", &FACE, 200, 5);
        assert_eq!(lines, ["Cámara no", "encontrada:", "compruebe el cable"]);
    }

    #[test]
    fn wrapping_cuts_a_word_longer_than_the_line() {
        let lines = wrap("abcdefghijkl", &FACE, 50, 5);
        assert_eq!(lines, ["abcde", "fghij", "kl"]);
    }

    #[test]
    fn wrapping_past_the_last_line_ends_in_dots() {
        let lines = wrap("one two three four five six", &FACE, 100, 2);
        assert_eq!(lines, ["one two", "three..."]);
    }

    #[test]
    fn a_magnified_pixel_covers_a_square() {
        let mut canvas = crate::screen::canvas::Canvas::new(Size::new(8, 8));
        let mut magnified = Magnified {
            target: &mut canvas,
            origin: Point::new(2, 2),
            scale: 3,
        };
        Pixel(Point::new(1, 0), Rgb888::WHITE)
            .draw(&mut magnified)
            .expect("drawing on a canvas cannot fail");

        let white: Vec<(u32, u32)> = canvas
            .image()
            .enumerate_pixels()
            .filter(|(_, _, p)| p.0 == [255, 255, 255])
            .map(|(x, y, _)| (x, y))
            .collect();
        let expected: Vec<(u32, u32)> = (2..5).flat_map(|y| (5..8).map(move |x| (x, y))).collect();
        assert_eq!(white, expected);
    }
}
