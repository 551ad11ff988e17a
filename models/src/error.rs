//! Errors from loading a face detector and from running it on an image.

/// The cause carried inside an error, whatever library raised it.
pub type BoxedCause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A face detector could not be built.
///
/// The models are embedded in the binary, so these point at a broken build rather than at
/// anything the user did.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The embedded model bytes could not be parsed.
    #[error(
        "the embedded {model} model could not be loaded: {cause}; rebuild guardian-models \
         after running models/fetch-models.sh to restore the model file"
    )]
    Load {
        /// Which model, e.g. `"centerface"`.
        model: &'static str,
        /// What the model parser reported.
        #[source]
        cause: BoxedCause,
    },
}

/// A face detector failed on one image.
///
/// The photo was not checked for faces: callers must treat it as possibly containing faces
/// (for example by covering the whole preview), never as a photo without faces.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The model could not be prepared for this image size.
    #[error(
        "{model} could not be prepared for a {width}x{height} input: {cause}; cover the whole \
         photo and report this image size to the developers"
    )]
    Prepare {
        /// Which model, e.g. `"centerface"`.
        model: &'static str,
        /// Width of the model input in pixels.
        width: u32,
        /// Height of the model input in pixels.
        height: u32,
        /// What the inference library reported.
        #[source]
        cause: BoxedCause,
    },

    /// Running the model failed or it produced output of an unexpected shape.
    #[error(
        "{model} failed on a {width}x{height} image: {cause}; cover the whole photo and \
         report this image to the developers"
    )]
    Inference {
        /// Which model, e.g. `"centerface"`.
        model: &'static str,
        /// Width of the image in pixels.
        width: u32,
        /// Height of the image in pixels.
        height: u32,
        /// What went wrong.
        #[source]
        cause: BoxedCause,
    },
}
