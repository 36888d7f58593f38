//! One module per command: its arguments (`Args`, clap derive; the doc comment is the
//! command's help) and `run`, which writes to `out` and returns the exit code.

pub mod challenge;
pub mod check;
pub mod completions;
pub mod decide;
pub mod demo;
pub mod explain;
pub mod import;
pub mod lint;
pub mod next;
pub mod scopes;
