//! The classroom device's kiosk screen: what it shows (`state`), the words (`text`),
//! where things go (`layout`), drawing a frame (`draw`) into memory (`canvas`) and
//! copying it to the display (`framebuffer`).

pub mod canvas;
pub mod draw;
pub mod framebuffer;
pub mod layout;
pub mod state;
pub mod text;
mod typeset;

#[cfg(test)]
mod snapshots;
