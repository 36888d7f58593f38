//! Where a JSON path is in the text: line and column, for editors and SARIF.

/// One step of a path: a member name or an array index.
#[derive(Debug, PartialEq, Eq)]
enum Step<'p> {
    Key(&'p str),
    Index(usize),
}

/// `routes[3].require.any_of[0]` as steps; `.` is the document.
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = match part.find('[') {
            Some(at) => (&part[..at], &part[at..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Step::Key(key));
        }
        while let Some(close) = rest.find(']') {
            if let Ok(index) = rest[1..close].parse() {
                out.push(Step::Index(index));
            }
            rest = &rest[close + 1..];
        }
    }
    out
}

/// The 1-based line and column of the value at `path` in `text`, or of the deepest part of
/// it that exists; `None` when the text is not JSON enough to walk.
pub fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut at = skip_ws(bytes, 0);
    for step in steps(path) {
        match (step, bytes.get(at)?) {
            (Step::Key(key), b'{') => match member(bytes, at, key) {
                Some(value) => at = value,
                None => break,
            },
            (Step::Index(index), b'[') => match element(bytes, at, index) {
                Some(value) => at = value,
                None => break,
            },
            _ => break,
        }
    }
    let line = text[..at].matches('\n').count() + 1;
    let column = at - text[..at].rfind('\n').map_or(0, |n| n + 1) + 1;
    Some((line, column))
}

fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(|b| b.is_ascii_whitespace()) {
        at += 1;
    }
    at
}

/// The end of the string starting at `at` (on its `"`), and its raw contents.
fn string(bytes: &[u8], at: usize) -> Option<(usize, &[u8])> {
    let mut i = at + 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return Some((i + 1, &bytes[at + 1..i])),
            _ => i += 1,
        }
    }
    None
}

/// The end of the value starting at `at`. Iterative, so no input overflows the stack.
fn skip_value(bytes: &[u8], at: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = at;
    loop {
        match bytes.get(i)? {
            b'"' => i = string(bytes, i)?.0,
            b'{' | b'[' => {
                depth += 1;
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                i += 1;
            }
            _ if depth == 0 => {
                while bytes
                    .get(i)
                    .is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace())
                {
                    i += 1;
                }
                return Some(i);
            }
            _ => i += 1,
        }
        if depth == 0 {
            return Some(i);
        }
    }
}

/// The start of member `key`'s value in the object at `at`.
fn member(bytes: &[u8], at: usize, key: &str) -> Option<usize> {
    let mut i = skip_ws(bytes, at + 1);
    while bytes.get(i)? == &b'"' {
        let (end, name) = string(bytes, i)?;
        i = skip_ws(bytes, end);
        if bytes.get(i)? != &b':' {
            return None;
        }
        let value = skip_ws(bytes, i + 1);
        if name == key.as_bytes() {
            return Some(value);
        }
        i = skip_ws(bytes, skip_value(bytes, value)?);
        if bytes.get(i)? == &b',' {
            i = skip_ws(bytes, i + 1);
        }
    }
    None
}

/// The start of element `index` of the array at `at`.
fn element(bytes: &[u8], at: usize, index: usize) -> Option<usize> {
    let mut i = skip_ws(bytes, at + 1);
    for _ in 0..index {
        if bytes.get(i)? == &b']' {
            return None;
        }
        i = skip_ws(bytes, skip_value(bytes, i)?);
        if bytes.get(i)? != &b',' {
            return None;
        }
        i = skip_ws(bytes, i + 1);
    }
    (bytes.get(i)? != &b']').then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_paths() {
        let text = "{\n  \"a\": {\"b\": [1, {\"c\": \"x\\\"]\"}, [3]]},\n  \"routes\": [\n    {\"path\": \"/x\"}\n  ]\n}";
        assert_eq!(locate(text, "."), Some((1, 1)));
        assert_eq!(locate(text, "a"), Some((2, 8)));
        assert_eq!(locate(text, "a.b[1].c"), Some((2, 24)));
        assert_eq!(locate(text, "a.b[2]"), Some((2, 33)));
        assert_eq!(locate(text, "routes[0].path"), Some((4, 14)));
        // What does not exist: the deepest part that does.
        assert_eq!(locate(text, "routes[5].path"), Some((3, 13)));
        assert_eq!(locate("[[[[", "a"), Some((1, 1)));
    }
}
