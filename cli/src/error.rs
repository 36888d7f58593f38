//! The one error of the command line: a message a user can act on, printed as
//! `error: MESSAGE` with exit code 2 (clap's own usage errors exit 2 too).

use std::fmt;
use std::io;
use std::path::Path;

/// Why a command could not do its work.
#[derive(Debug)]
pub enum Error {
    /// A message for the user: a file that cannot be read, a policy that does not compile,
    /// a `--jwks` that names no issuer, ...
    Message(String),
    /// Writing the output failed.
    Output(io::Error),
}

impl Error {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self::Message(message.into())
    }

    /// An error about the file at `path`.
    pub fn file(path: &Path, message: impl fmt::Display) -> Self {
        Self::Message(format!("{}: {message}", path.display()))
    }

    /// Whether the reader of the output went away (`scopegate ... | head`): not worth a
    /// message.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Output(err) if err.kind() == io::ErrorKind::BrokenPipe)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Message(message) => f.write_str(message),
            Self::Output(err) => write!(f, "cannot write the output: {err}"),
        }
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        Self::Output(err)
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        if err.is_io() {
            Self::Output(io::Error::from(err))
        } else {
            Self::Message(format!("cannot print the JSON: {err}"))
        }
    }
}
