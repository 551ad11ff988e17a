//! Face detection for Guardian: two detectors behind one [`FaceDetector`] trait, and the
//! safe photo decoding they rely on.
//!
//! * [`CenterFace`]: a small CNN run with tract. The better detector: finds small,
//!   turned and partly hidden faces. The default.
//! * [`RustFace`]: the SeetaFace frontal cascade. Faster on small photos, weaker on small
//!   or turned faces.
//! * [`photo::decode_upright`]: JPEG/PNG bytes to upright RGB, with size limits checked
//!   before decoding and broken files flagged.
//!
//! Both models are embedded in the binary (see `models/*/SOURCE.md`), so nothing is loaded
//! from disk at run time.
//!
//! ```no_run
//! use guardian_models::{detector, photo, DetectorKind};
//!
//! let bytes = std::fs::read("photo.jpg")?;
//! let photo = photo::decode_upright(&bytes, &photo::DecodeLimits::default())?;
//! let mut faces = detector(DetectorKind::CenterFace)?;
//! for face in faces.detect(&photo.image)? {
//!     println!("face at {},{} size {}x{}", face.x, face.y, face.width, face.height);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod centerface;
pub mod cover;
pub mod embedded;
mod error;
mod face;
mod kind;
pub mod photo;
mod rustface;

pub use crate::centerface::CenterFace;
pub use crate::error::{BoxedCause, DetectError, ModelError};
pub use crate::face::{FaceBox, FaceDetector};
pub use crate::kind::{detector, DetectorKind, UnknownDetector};
pub use crate::rustface::RustFace;
