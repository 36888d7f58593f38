//! What `explain` is given: a token, header lines, or a 401/403 answer, from options or
//! standard input.

use std::io::{IsTerminal, Read};

use scopegate_core::{parse_challenges, Challenge};
use serde_json::Value;

use crate::error::Error;

/// Standard input or an answer file larger than this is refused.
const MAX_INPUT: u64 = 1024 * 1024;

/// The request headers `explain` takes, by name (lower case) and value.
#[derive(Debug, Default)]
pub struct Given {
    /// Header lines, lower-case names.
    pub headers: Vec<(String, String)>,
    /// A 401/403 answer, if one was given.
    pub answer: Option<Answer>,
}

/// A gateway's 401 or 403, as pasted: status line, headers, JSON body, any of them.
#[derive(Debug, Default)]
pub struct Answer {
    /// The status, if the status line was given.
    pub status: Option<u16>,
    /// The `Bearer` challenge's parameters.
    pub challenge: Option<Challenge>,
    /// The JSON body.
    pub body: Option<Value>,
}

impl Answer {
    /// A parameter of the challenge, or the body member of that name.
    pub fn param(&self, name: &str) -> Option<String> {
        self.challenge
            .as_ref()
            .and_then(|c| c.param(name))
            .map(str::to_owned)
            .or_else(|| {
                let value = self.body.as_ref()?.get(name)?;
                value.as_str().map(str::to_owned)
            })
    }

    /// The scopes the answer says are missing: the body's `missing`, else the challenge's
    /// `scope`.
    pub fn missing(&self) -> Vec<String> {
        let from = self
            .body
            .as_ref()
            .and_then(|b| b.get("missing"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| self.param("scope"));
        from.map(|s| {
            scopegate_core::client::split_scopes(&s)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
    }
}

/// Reads text from `source` (`-`: standard input), at most [`MAX_INPUT`] bytes.
pub fn read_text(source: &str) -> Result<String, Error> {
    let mut text = String::new();
    let read = if source == "-" {
        std::io::stdin()
            .take(MAX_INPUT + 1)
            .read_to_string(&mut text)
    } else {
        std::fs::File::open(source).and_then(|f| f.take(MAX_INPUT + 1).read_to_string(&mut text))
    };
    let name = if source == "-" {
        "standard input"
    } else {
        source
    };
    read.map_err(|err| Error::new(format!("{name}: {err}")))?;
    if text.len() as u64 > MAX_INPUT {
        return Err(Error::new(format!("{name}: larger than {MAX_INPUT} bytes")));
    }
    Ok(text)
}

/// Standard input, when it is not a terminal.
pub fn stdin_text() -> Result<Option<String>, Error> {
    if std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let text = read_text("-")?;
    Ok((!text.trim().is_empty()).then_some(text))
}

/// Sorts pasted text into a token, header lines, or an answer.
pub fn classify(text: &str, given: &mut Given) -> Result<(), Error> {
    let trimmed = text.trim();
    let lower = trimmed.to_ascii_lowercase();
    let is_answer = lower.starts_with("http/")
        || lower.contains("www-authenticate:")
        || trimmed.starts_with('{');
    if is_answer {
        given.answer = Some(parse_answer(trimmed)?);
        return Ok(());
    }
    if trimmed.lines().count() == 1 && !trimmed.contains(':') {
        given
            .headers
            .push(("authorization".into(), bearer(trimmed)));
        return Ok(());
    }
    for line in trimmed.lines().filter(|l| !l.trim().is_empty()) {
        given.headers.push(header_line(line)?);
    }
    Ok(())
}

/// `Name: value` as a header pair with a lower-case name.
pub fn header_line(line: &str) -> Result<(String, String), Error> {
    let Some((name, value)) = line.split_once(':') else {
        return Err(Error::new(format!(
            "`{}` is not a header line: write `Name: value`, as in `Authorization: Bearer eyJ…`",
            line.chars().take(60).collect::<String>()
        )));
    };
    Ok((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
}

/// A token as an `Authorization` value, `Bearer ` added when missing.
pub fn bearer(token: &str) -> String {
    let token = token.trim();
    let has_scheme = token.starts_with("Bearer ") || token.starts_with("DPoP ");
    if has_scheme {
        token.to_owned()
    } else {
        format!("Bearer {token}")
    }
}

/// An answer: an optional status line, header lines, a blank line, a JSON body.
pub fn parse_answer(text: &str) -> Result<Answer, Error> {
    let text = text.replace("\r\n", "\n");
    let (head, body) = if text.starts_with('{') {
        ("", text.as_str())
    } else {
        text.split_once("\n\n").unwrap_or((text.as_str(), ""))
    };
    finish(Answer::default(), head, body)
}

fn finish(mut answer: Answer, head: &str, body: &str) -> Result<Answer, Error> {
    for line in head.lines() {
        let line = line.trim();
        if line.to_ascii_lowercase().starts_with("http/") {
            answer.status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok());
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("www-authenticate") {
            continue;
        }
        let challenges = parse_challenges(value.trim())
            .map_err(|err| Error::new(format!("the answer's WWW-Authenticate: {err}")))?;
        answer.challenge = challenges.into_iter().find(|c| {
            c.scheme.eq_ignore_ascii_case("bearer") || c.scheme.eq_ignore_ascii_case("dpop")
        });
    }
    let body = body.trim();
    if !body.is_empty() {
        let value: Value = serde_json::from_str(body)
            .map_err(|err| Error::new(format!("the answer's body is not JSON: {err}")))?;
        answer.body = Some(value);
    }
    if answer.challenge.is_none() && answer.body.is_none() {
        return Err(Error::new(
            "the answer has neither a WWW-Authenticate header nor a JSON body to explain",
        ));
    }
    Ok(answer)
}
