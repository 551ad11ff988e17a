//! Where photos come from: a directory the camera writes into (`dir:PATH`) or
//! one file (`file:PATH`), and reading a photo file with its size limit.

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use guardian_protocol::MAX_ORIGINAL_BYTES;
use sha2::{Digest, Sha256};

/// A file modified this recently may still be being written by the camera; it
/// is left for the next scan rather than captured half-written.
pub const SETTLE_TIME: Duration = Duration::from_secs(1);

/// File name endings taken as photos, compared case-insensitively.
const PHOTO_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// Where the device finds photos to capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Every `.jpg`, `.jpeg` and `.png` file directly in this directory.
    Dir(PathBuf),
    /// This one file.
    File(PathBuf),
}

/// A source setting that names no known kind of source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("source {0:?} is not understood; write dir:PATH for a directory or file:PATH for one file")]
pub struct BadSource(String);

/// A source that cannot be listed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The directory or file is missing or unreadable.
    #[error("cannot read the source {path}: {source}; check that it exists and is readable")]
    Unreadable { path: PathBuf, source: io::Error },

    /// `dir:` names something that is not a directory, or `file:` a directory.
    #[error("the source {path} is not a {expected}; use {hint}")]
    WrongKind {
        path: PathBuf,
        expected: &'static str,
        hint: &'static str,
    },
}

/// A photo file found by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub path: PathBuf,
    pub len: u64,
    pub modified: SystemTime,
}

impl Candidate {
    /// Whether the file has not changed for [`SETTLE_TIME`].
    pub fn is_settled(&self, now: SystemTime) -> bool {
        // A modification time in the future (a clock step) counts as settled:
        // waiting for it could take forever.
        now.duration_since(self.modified)
            .map_or(true, |age| age >= SETTLE_TIME)
    }
}

impl FromStr for Source {
    type Err = BadSource;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (kind, path) = text.split_once(':').ok_or_else(|| BadSource(text.into()))?;
        if path.is_empty() {
            return Err(BadSource(text.into()));
        }

        match kind {
            "dir" => Ok(Source::Dir(PathBuf::from(path))),
            "file" => Ok(Source::File(PathBuf::from(path))),
            _ => Err(BadSource(text.into())),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Dir(path) => write!(f, "dir:{}", path.display()),
            Source::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

impl Source {
    /// Checks at start-up that the source exists and is of the kind named.
    pub fn check(&self) -> Result<(), SourceError> {
        let (path, want_dir) = match self {
            Source::Dir(path) => (path, true),
            Source::File(path) => (path, false),
        };
        let metadata = std::fs::metadata(path).map_err(|source| SourceError::Unreadable {
            path: path.clone(),
            source,
        })?;

        match (want_dir, metadata.is_dir()) {
            (true, false) => Err(SourceError::WrongKind {
                path: path.clone(),
                expected: "directory",
                hint: "file:PATH for a single file",
            }),
            (false, true) => Err(SourceError::WrongKind {
                path: path.clone(),
                expected: "file",
                hint: "dir:PATH for a directory",
            }),
            _ => Ok(()),
        }
    }

    /// The photo files in the source now, in file name order.
    pub fn list(&self) -> Result<Vec<Candidate>, SourceError> {
        match self {
            Source::File(path) => Ok(candidate(path.clone())?.into_iter().collect()),
            Source::Dir(dir) => {
                let unreadable = |source| SourceError::Unreadable {
                    path: dir.clone(),
                    source,
                };
                let mut names = Vec::new();
                for entry in std::fs::read_dir(dir).map_err(unreadable)? {
                    let entry = entry.map_err(unreadable)?;
                    if is_photo_name(&entry.file_name()) {
                        names.push(entry.file_name());
                    }
                }
                names.sort();

                let mut found = Vec::with_capacity(names.len());
                for name in names {
                    // A file removed between listing and now is simply gone; one that
                    // cannot be read (a symlink loop, no permission) is skipped so that
                    // it does not hold back every other photo in the folder.
                    match candidate(dir.join(name)) {
                        Ok(Some(candidate)) => found.push(candidate),
                        Ok(None) => {}
                        Err(error) => tracing::warn!(%error, "skipping a source file"),
                    }
                }
                Ok(found)
            }
        }
    }
}

/// Whether a file name ends in `.jpg`, `.jpeg` or `.png`, in any case.
pub fn is_photo_name(name: &OsStr) -> bool {
    Path::new(name)
        .extension()
        .and_then(OsStr::to_str)
        .is_some_and(|ext| {
            PHOTO_EXTENSIONS
                .iter()
                .any(|known| ext.eq_ignore_ascii_case(known))
        })
}

/// The candidate for a regular file, `None` if it vanished or is not a file.
fn candidate(path: PathBuf) -> Result<Option<Candidate>, SourceError> {
    let metadata = match std::fs::metadata(&path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(SourceError::Unreadable { path, source }),
    };
    if !metadata.is_file() {
        return Ok(None);
    }

    let modified = metadata
        .modified()
        .map_err(|source| SourceError::Unreadable {
            path: path.clone(),
            source,
        })?;
    Ok(Some(Candidate {
        path,
        len: metadata.len(),
        modified,
    }))
}

/// A photo file read into memory, with the SHA-256 of its content.
pub struct PhotoFile {
    pub bytes: Vec<u8>,
    pub content_sha256: [u8; 32],
}

/// Why a photo file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file is larger than the device may seal.
    #[error(
        "the file is {size} bytes, over the limit of {limit} bytes for one photo; \
         lower the camera's resolution or JPEG quality"
    )]
    TooLarge {
        size: u64,
        limit: usize,
        content_sha256: [u8; 32],
    },

    /// The file could not be opened or read.
    #[error("cannot read the file: {0}; check its permissions")]
    Io(#[from] io::Error),
}

/// Reads a photo file, keeping at most [`MAX_ORIGINAL_BYTES`] in memory; a
/// larger file is still hashed to the end, so it can be remembered as refused.
pub fn read_photo(path: &Path) -> Result<PhotoFile, ReadError> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut bytes = Vec::new();
    let mut size: u64 = 0;
    let mut chunk = vec![0u8; 64 * 1024];

    loop {
        let read = match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error.into()),
        };
        hasher.update(&chunk[..read]);
        size += read as u64;
        if bytes.len() <= MAX_ORIGINAL_BYTES {
            bytes.extend_from_slice(&chunk[..read]);
        }
    }

    let content_sha256 = hasher.finalize().into();
    if size > MAX_ORIGINAL_BYTES as u64 {
        return Err(ReadError::TooLarge {
            size,
            limit: MAX_ORIGINAL_BYTES,
            content_sha256,
        });
    }
    Ok(PhotoFile {
        bytes,
        content_sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn sources_parse_from_dir_and_file_settings() {
        assert_eq!("dir:/a/b".parse(), Ok(Source::Dir("/a/b".into())));
        assert_eq!("file:x.jpg".parse(), Ok(Source::File("x.jpg".into())));
        assert_eq!("dir:C:/odd".parse(), Ok(Source::Dir("C:/odd".into())));
        for bad in ["", "dir:", "/a/b", "camera:0", "DIR:/a"] {
            assert!(bad.parse::<Source>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn a_dir_lists_only_photo_files_in_name_order() {
        let dir = TempDir::new();
        for name in [
            "b.JPG",
            "a.png",
            "c.jpeg",
            "notes.txt",
            "d.Jpeg",
            "e.jpg.tmp",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("f.jpg")).unwrap();

        let listed: Vec<String> = Source::Dir(dir.path().to_path_buf())
            .list()
            .unwrap()
            .into_iter()
            .map(|c| c.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(listed, ["a.png", "b.JPG", "c.jpeg", "d.Jpeg"]);
    }

    #[test]
    fn a_source_of_the_wrong_kind_or_missing_is_refused_at_start() {
        let dir = TempDir::new();
        let file = dir.path().join("a.jpg");
        std::fs::write(&file, b"x").unwrap();

        assert!(Source::Dir(dir.path().to_path_buf()).check().is_ok());
        assert!(Source::File(file.clone()).check().is_ok());
        assert!(matches!(
            Source::Dir(file).check(),
            Err(SourceError::WrongKind { .. })
        ));
        assert!(matches!(
            Source::Dir(dir.path().join("missing")).check(),
            Err(SourceError::Unreadable { .. })
        ));
    }

    #[test]
    fn an_oversized_file_is_refused_but_still_hashed() {
        let dir = TempDir::new();
        let path = dir.path().join("big.jpg");
        let content = vec![7u8; MAX_ORIGINAL_BYTES + 1];
        std::fs::write(&path, &content).unwrap();

        match read_photo(&path) {
            Err(ReadError::TooLarge {
                size,
                content_sha256,
                ..
            }) => {
                assert_eq!(size, content.len() as u64);
                assert_eq!(content_sha256, <[u8; 32]>::from(Sha256::digest(&content)));
            }
            other => panic!("expected TooLarge, got {:?}", other.err()),
        }

        let small = dir.path().join("small.jpg");
        std::fs::write(&small, b"photo").unwrap();
        let read = read_photo(&small).unwrap();
        assert_eq!(read.bytes, b"photo");
        assert_eq!(
            read.content_sha256,
            <[u8; 32]>::from(Sha256::digest(b"photo"))
        );
    }

    #[test]
    fn a_file_being_written_is_not_settled() {
        let now = SystemTime::now();
        let candidate = |age: Duration| Candidate {
            path: "a.jpg".into(),
            len: 1,
            modified: now - age,
        };
        assert!(!candidate(Duration::ZERO).is_settled(now));
        assert!(candidate(SETTLE_TIME).is_settled(now));
        let future = Candidate {
            modified: now + Duration::from_secs(60),
            ..candidate(Duration::ZERO)
        };
        assert!(future.is_settled(now));
    }
}
