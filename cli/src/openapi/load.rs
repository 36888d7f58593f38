//! Reading the document: a size limit, JSON or YAML told apart by content.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde_json::Value;

use super::yaml;

/// The largest document read.
pub const MAX_BYTES: u64 = 64 << 20;

/// Reads and parses the document at `path`; errors do not name the file.
pub fn read(path: &Path) -> Result<Value, String> {
    let file = File::open(path).map_err(|err| err.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| err.to_string())?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(format!("larger than {} MiB", MAX_BYTES >> 20));
    }
    let text = String::from_utf8(bytes).map_err(|err| {
        format!(
            "not UTF-8 text (byte {}): OpenAPI documents are JSON or YAML",
            err.utf8_error().valid_up_to()
        )
    })?;
    parse(&text)
}

/// JSON when the text starts with `{` (after white space and a byte-order mark), else YAML.
pub fn parse(text: &str) -> Result<Value, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|err| {
            format!(
                "line {}, column {}: {} (JSON)",
                err.line(),
                err.column(),
                json_message(&err)
            )
        })
    } else {
        yaml::parse(text)
    }
}

/// serde_json's message without its own ` at line L column C` tail.
fn json_message(err: &serde_json::Error) -> String {
    let message = err.to_string();
    match message.rfind(" at line ") {
        Some(end) => message[..end].to_owned(),
        None => message,
    }
}
