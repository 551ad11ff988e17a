//! Where everything goes on a screen of a given size, and which key a touch lands on.
//! Drawing and touch input both ask `Layout::new`, so a key answers exactly where it is
//! drawn.
//!
//! Two sizes are designed for: 800x480 (the official 7" Raspberry Pi touchscreen) and
//! 480x320 (the common 3.5" TFT). Screens at least 640x400 get the roomy fonts and
//! spacing of the first, smaller ones the compact set of the second; everything else
//! scales with the screen.

use embedded_graphics::mono_font::iso_8859_1::{
    FONT_10X20, FONT_6X13, FONT_7X13, FONT_8X13, FONT_9X15, FONT_9X18_BOLD,
};
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;

use super::typeset::Face;

/// A key of the PIN keypad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeypadKey {
    Digit(u8),
    Erase,
    Ok,
}

/// The keypad key under `point` on a screen of `size`, if any. The keypad sits in the
/// same place whatever the state, so a touch needs only the screen size; the caller
/// ignores keys while the keypad is greyed out.
pub fn keypad_key_at(size: Size, point: Point) -> Option<KeypadKey> {
    Layout::new(size)
        .keys
        .iter()
        .find(|(_, area)| area.contains(point))
        .map(|(key, _)| *key)
}

/// The keys in reading order, as on a phone: 1 2 3 / 4 5 6 / 7 8 9 / erase 0 OK.
const KEY_ORDER: [KeypadKey; 12] = [
    KeypadKey::Digit(1),
    KeypadKey::Digit(2),
    KeypadKey::Digit(3),
    KeypadKey::Digit(4),
    KeypadKey::Digit(5),
    KeypadKey::Digit(6),
    KeypadKey::Digit(7),
    KeypadKey::Digit(8),
    KeypadKey::Digit(9),
    KeypadKey::Erase,
    KeypadKey::Digit(0),
    KeypadKey::Ok,
];

/// The fonts and spacing for one class of screen.
pub struct Style {
    /// Space between the screen's edge and its content.
    pub pad: u32,
    /// Space between neighbouring things: keys, lines of a block, blocks.
    pub gap: u32,
    pub radius: u32,
    pub caption: Face,
    pub title: Face,
    /// The one line of the withdrawn screen.
    pub headline: Face,
    pub body: Face,
    pub status: Face,
    pub key_digit: Face,
    pub key_word: Face,
    pub pin_dot: u32,
    pub pin_field_height: u32,
    pub status_height: u32,
    /// Preferred key width; narrower when the screen is.
    key_width: u32,
    /// Width of the photo column of the unlocked screen.
    photo_width: u32,
}

/// Roomy: the 7" 800x480 touchscreen, read from a step or two away.
const ROOMY: Style = Style {
    pad: 20,
    gap: 12,
    radius: 12,
    caption: Face::new(&FONT_9X15, 1),
    title: Face::new(&FONT_10X20, 2),
    headline: Face::new(&FONT_10X20, 2),
    body: Face::new(&FONT_10X20, 1),
    status: Face::new(&FONT_9X15, 1),
    key_digit: Face::new(&FONT_10X20, 2),
    key_word: Face::new(&FONT_10X20, 1),
    pin_dot: 18,
    pin_field_height: 60,
    status_height: 44,
    key_width: 108,
    photo_width: 340,
};

/// Compact: the 3.5" 480x320 screen, read at arm's length.
const COMPACT: Style = Style {
    pad: 10,
    gap: 8,
    radius: 8,
    caption: Face::new(&FONT_7X13, 1),
    title: Face::new(&FONT_9X18_BOLD, 1),
    headline: Face::new(&FONT_10X20, 2),
    body: Face::new(&FONT_8X13, 1),
    status: Face::new(&FONT_6X13, 1),
    key_digit: Face::new(&FONT_10X20, 2),
    key_word: Face::new(&FONT_8X13, 1),
    pin_dot: 12,
    pin_field_height: 40,
    status_height: 30,
    key_width: 72,
    photo_width: 200,
};

/// The places on one screen.
pub struct Layout {
    pub style: &'static Style,
    /// The whole screen.
    pub screen: Rectangle,
    /// The dark bar along the bottom edge.
    pub status_bar: Rectangle,
    /// Everything above the status bar, inside the padding.
    pub content: Rectangle,
    /// Locked: the column beside the keypad for the title, PIN field and notices.
    pub side: Rectangle,
    /// Locked: every key and where it is drawn.
    pub keys: [(KeypadKey, Rectangle); 12],
    /// Unlocked: the column for the teacher's name and the instructions.
    pub text_column: Rectangle,
    /// Unlocked: the column for the last photo.
    pub photo_column: Rectangle,
}

impl Layout {
    pub fn new(size: Size) -> Self {
        let style = if size.width >= 640 && size.height >= 400 {
            &ROOMY
        } else {
            &COMPACT
        };
        let screen = Rectangle::new(Point::zero(), size);

        // The status bar takes the bottom; the rest, inside the padding, is content.
        let status_height = style.status_height.min(size.height);
        let status_bar = Rectangle::new(
            Point::new(0, (size.height - status_height) as i32),
            Size::new(size.width, status_height),
        );
        let content = inset(
            Rectangle::new(
                Point::zero(),
                Size::new(size.width, size.height - status_height),
            ),
            style.pad,
        );

        // The keypad takes the right of the content, its full height split into four
        // rows; a key is never wider than a sixth of the content, so the side column
        // keeps at least half of it.
        let gap = style.gap;
        let key_height = content.size.height.saturating_sub(3 * gap) / 4;
        let key_width = style
            .key_width
            .min((content.size.width / 2).saturating_sub(2 * gap) / 3);
        let keypad_width = 3 * key_width + 2 * gap;
        let keypad_left = right(content) - keypad_width as i32;
        let keys = std::array::from_fn(|index| {
            let (row, column) = ((index / 3) as u32, (index % 3) as u32);
            let top_left = Point::new(
                keypad_left + (column * (key_width + gap)) as i32,
                content.top_left.y + (row * (key_height + gap)) as i32,
            );
            (
                KEY_ORDER[index],
                Rectangle::new(top_left, Size::new(key_width, key_height)),
            )
        });
        let side = Rectangle::new(
            content.top_left,
            Size::new(
                content
                    .size
                    .width
                    .saturating_sub(keypad_width + 2 * style.pad),
                content.size.height,
            ),
        );

        // Unlocked: the photo on the right, the words on the left.
        let photo_width = style.photo_width.min(content.size.width / 2);
        let photo_column = Rectangle::new(
            Point::new(right(content) - photo_width as i32, content.top_left.y),
            Size::new(photo_width, content.size.height),
        );
        let text_column = Rectangle::new(
            content.top_left,
            Size::new(
                content
                    .size
                    .width
                    .saturating_sub(photo_width + 2 * style.pad),
                content.size.height,
            ),
        );

        Layout {
            style,
            screen,
            status_bar,
            content,
            side,
            keys,
            text_column,
            photo_column,
        }
    }
}

/// `area` shrunk by `by` on every side.
pub fn inset(area: Rectangle, by: u32) -> Rectangle {
    Rectangle::new(
        area.top_left + Point::new_equal(by as i32),
        area.size.saturating_sub(Size::new_equal(2 * by)),
    )
}

/// The x just past the right edge of `area`.
pub fn right(area: Rectangle) -> i32 {
    area.top_left.x + area.size.width as i32
}

/// The y just below the bottom edge of `area`.
pub fn bottom(area: Rectangle) -> i32 {
    area.top_left.y + area.size.height as i32
}

/// The part of `area` from `y` down.
pub fn below(area: Rectangle, y: i32) -> Rectangle {
    let y = y.clamp(area.top_left.y, bottom(area));
    Rectangle::new(
        Point::new(area.top_left.x, y),
        Size::new(area.size.width, (bottom(area) - y) as u32),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZES: [Size; 2] = [Size::new(800, 480), Size::new(480, 320)];

    #[test]
    fn the_keys_lie_inside_the_content_and_do_not_overlap() {
        for size in SIZES {
            let layout = Layout::new(size);
            for (index, (key, area)) in layout.keys.iter().enumerate() {
                assert_eq!(
                    area.intersection(&layout.content),
                    *area,
                    "{key:?} at {size:?}"
                );
                assert!(area.intersection(&layout.side).is_zero_sized());
                for (other, other_area) in &layout.keys[index + 1..] {
                    assert!(
                        area.intersection(other_area).is_zero_sized(),
                        "{key:?} overlaps {other:?} at {size:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn keys_are_large_enough_to_touch() {
        // About 9 mm on both screens: 60 px at the 3.5" screen's 165 dpi.
        for size in SIZES {
            for (key, area) in Layout::new(size).keys {
                assert!(
                    area.size.width >= 60 && area.size.height >= 60,
                    "{key:?} is {:?} at {size:?}",
                    area.size
                );
            }
        }
    }
}
