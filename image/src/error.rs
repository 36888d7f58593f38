//! The one error of the image builder: a message a user can act on, printed as
//! `error: MESSAGE` with exit code 2.

use std::fmt;
use std::path::Path;

/// Why an image could not be written.
#[derive(Debug)]
pub struct Error(String);

impl Error {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// An error about the file or directory at `path`.
    pub fn file(path: &Path, message: impl fmt::Display) -> Self {
        Self(format!("{}: {message}", path.display()))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<oci_spec::OciSpecError> for Error {
    fn from(err: oci_spec::OciSpecError) -> Self {
        Self(format!("cannot build an OCI document: {err}"))
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Self(format!("cannot serialize an OCI document: {err}"))
    }
}
