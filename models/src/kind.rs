//! Choosing a detector by name, e.g. from configuration.

use std::fmt;
use std::str::FromStr;

use crate::error::ModelError;
use crate::face::FaceDetector;
use crate::{CenterFace, RustFace};

/// The available face detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DetectorKind {
    /// CenterFace (CNN, tract-onnx): the better detector, and the default.
    #[default]
    CenterFace,
    /// rustface (SeetaFace frontal cascade).
    RustFace,
}

impl DetectorKind {
    /// Every detector, in order of preference.
    pub const ALL: [DetectorKind; 2] = [DetectorKind::CenterFace, DetectorKind::RustFace];

    /// The name used in configuration: `"centerface"` or `"rustface"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DetectorKind::CenterFace => "centerface",
            DetectorKind::RustFace => "rustface",
        }
    }
}

impl fmt::Display for DetectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A detector name that is neither `centerface` nor `rustface`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown face detector {0:?}; use \"centerface\" or \"rustface\"")]
pub struct UnknownDetector(pub String);

impl FromStr for DetectorKind {
    type Err = UnknownDetector;

    /// Accepts the names case-insensitively, ignoring surrounding spaces.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        DetectorKind::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownDetector(s.to_string()))
    }
}

/// Builds a detector of the given kind.
pub fn detector(kind: DetectorKind) -> Result<Box<dyn FaceDetector>, ModelError> {
    Ok(match kind {
        DetectorKind::CenterFace => Box::new(CenterFace::new()?),
        DetectorKind::RustFace => Box::new(RustFace::new()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_display_and_from_str() {
        for kind in DetectorKind::ALL {
            assert_eq!(kind.to_string().parse::<DetectorKind>(), Ok(kind));
        }
        assert_eq!(" RustFace ".parse(), Ok(DetectorKind::RustFace));
    }

    #[test]
    fn an_unknown_name_is_refused_with_the_valid_ones() {
        let err = "opencv".parse::<DetectorKind>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown face detector \"opencv\"; use \"centerface\" or \"rustface\""
        );
    }

    #[test]
    fn detector_builds_each_kind_with_its_name() {
        for kind in DetectorKind::ALL {
            assert_eq!(detector(kind).unwrap().name(), kind.as_str());
        }
    }
}
