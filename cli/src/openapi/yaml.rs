//! YAML to `serde_json::Value`, from yaml-rust2's event parser, with limits: nesting depth,
//! and a budget of nodes and scalar bytes that counts every alias expansion, so that a
//! "billion laughs" document is refused quickly and in bounded memory.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// How deep mappings and sequences may nest (serde_json's own limit for JSON).
pub const MAX_DEPTH: usize = 128;
/// Nodes the document may produce, alias expansions and anchored copies included.
pub const MAX_NODES: usize = 2_000_000;
/// Bytes of scalars the document may produce, alias expansions included.
pub const MAX_SCALAR_BYTES: usize = 256 << 20;

/// A value, and what producing one more copy of it costs.
struct Anchored {
    value: Value,
    nodes: usize,
    bytes: usize,
    depth: usize,
}

enum Frame {
    Seq {
        items: Vec<Value>,
        anchor: usize,
        start: Cost,
    },
    Map {
        map: Map<String, Value>,
        key: Option<String>,
        anchor: usize,
        start: Cost,
    },
}

/// The budget spent when a collection started, and its depth, to cost its anchored copy.
#[derive(Clone, Copy)]
struct Cost {
    nodes: usize,
    bytes: usize,
}

struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    nodes: usize,
    bytes: usize,
    /// The deepest nesting below each open frame (for anchored copies).
    depths: Vec<usize>,
    done: Option<Value>,
}

/// Parses the first document of `text`. Errors say the line and column.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        bytes: 0,
        depths: Vec::new(),
        done: None,
    };
    loop {
        let (event, mark) = parser.next_token().map_err(|err| {
            let mark = err.marker();
            format!("{} (YAML)", at(mark, err.info()))
        })?;
        match event {
            Event::StreamEnd => break,
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
            Event::DocumentStart => {
                if builder.done.is_some() {
                    return Err(at(
                        &mark,
                        "a second YAML document: an OpenAPI file holds one",
                    ));
                }
            }
            other => builder.event(other, &mark)?,
        }
    }
    builder
        .done
        .ok_or_else(|| String::from("the YAML file holds no document"))
}

fn at(mark: &Marker, message: &str) -> String {
    format!("line {}, column {}: {message}", mark.line(), mark.col() + 1)
}

impl Builder {
    fn event(&mut self, event: Event, mark: &Marker) -> Result<(), String> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                self.spend(1, text.len(), mark)?;
                let is_key = matches!(self.stack.last(), Some(Frame::Map { key: None, .. }));
                let value = if is_key {
                    Value::String(text)
                } else {
                    let plain = style == TScalarStyle::Plain;
                    let forced_string = tag
                        .as_ref()
                        .is_some_and(|t| t.handle == "tag:yaml.org,2002:" && t.suffix == "str");
                    if plain && !forced_string {
                        resolve_plain(text)
                    } else {
                        Value::String(text)
                    }
                };
                if anchor > 0 {
                    let bytes = scalar_bytes(&value);
                    self.spend(1, bytes, mark)?;
                    self.anchors.insert(
                        anchor,
                        Anchored {
                            value: value.clone(),
                            nodes: 1,
                            bytes,
                            depth: 0,
                        },
                    );
                }
                self.push(value, 0, mark)
            }
            Event::Alias(id) => {
                let Some(anchored) = self.anchors.get(&id) else {
                    return Err(at(mark, "an alias to an unknown anchor"));
                };
                let (nodes, bytes, depth) = (anchored.nodes, anchored.bytes, anchored.depth);
                if self.stack.len() + depth > MAX_DEPTH {
                    return Err(at(
                        mark,
                        &format!("nested deeper than {MAX_DEPTH} levels (through an alias)"),
                    ));
                }
                self.spend(nodes, bytes, mark)?;
                let value = self
                    .anchors
                    .get(&id)
                    .map_or(Value::Null, |anchored| anchored.value.clone());
                self.push(value, depth, mark)
            }
            Event::SequenceStart(anchor, _) => self.open(
                Frame::Seq {
                    items: Vec::new(),
                    anchor,
                    start: self.cost(),
                },
                mark,
            ),
            Event::MappingStart(anchor, _) => self.open(
                Frame::Map {
                    map: Map::new(),
                    key: None,
                    anchor,
                    start: self.cost(),
                },
                mark,
            ),
            Event::SequenceEnd | Event::MappingEnd => self.close(mark),
            _ => Ok(()),
        }
    }

    fn cost(&self) -> Cost {
        Cost {
            nodes: self.nodes,
            bytes: self.bytes,
        }
    }

    fn spend(&mut self, nodes: usize, bytes: usize, mark: &Marker) -> Result<(), String> {
        self.nodes = self.nodes.saturating_add(nodes);
        self.bytes = self.bytes.saturating_add(bytes);
        if self.nodes > MAX_NODES {
            return Err(at(
                mark,
                &format!(
                    "the YAML expands to more than {MAX_NODES} nodes (aliases counted each time \
                     they are used): refused as a likely alias bomb"
                ),
            ));
        }
        if self.bytes > MAX_SCALAR_BYTES {
            return Err(at(
                mark,
                &format!(
                    "the YAML expands to more than {} MiB of text (aliases counted each time \
                     they are used): refused as a likely alias bomb",
                    MAX_SCALAR_BYTES >> 20
                ),
            ));
        }
        Ok(())
    }

    fn open(&mut self, frame: Frame, mark: &Marker) -> Result<(), String> {
        if matches!(self.stack.last(), Some(Frame::Map { key: None, .. })) {
            return Err(at(
                mark,
                "a mapping or sequence as a mapping key is not supported",
            ));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(at(mark, &format!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.spend(1, 0, mark)?;
        self.stack.push(frame);
        self.depths.push(0);
        Ok(())
    }

    fn close(&mut self, mark: &Marker) -> Result<(), String> {
        let (Some(frame), Some(inner)) = (self.stack.pop(), self.depths.pop()) else {
            return Err(at(mark, "an end without a start"));
        };
        let depth = inner + 1;
        let (value, anchor, start) = match frame {
            Frame::Seq {
                items,
                anchor,
                start,
            } => (Value::Array(items), anchor, start),
            Frame::Map {
                map, anchor, start, ..
            } => (Value::Object(map), anchor, start),
        };
        if anchor > 0 {
            let nodes = self.nodes - start.nodes + 1;
            let bytes = self.bytes - start.bytes;
            // The anchored copy is memory too: it counts once more.
            self.spend(nodes, bytes, mark)?;
            self.anchors.insert(
                anchor,
                Anchored {
                    value: value.clone(),
                    nodes,
                    bytes,
                    depth,
                },
            );
        }
        self.push(value, depth, mark)
    }

    /// Adds a finished value (`depth` levels deep) to the open collection.
    fn push(&mut self, value: Value, depth: usize, mark: &Marker) -> Result<(), String> {
        if let Some(parent) = self.depths.last_mut() {
            *parent = (*parent).max(depth);
        }
        match self.stack.last_mut() {
            None => self.done = Some(value),
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map { map, key, .. }) => match key.take() {
                None => {
                    *key = Some(match value {
                        Value::String(text) => text,
                        Value::Array(_) | Value::Object(_) => {
                            return Err(at(
                                mark,
                                "a mapping or sequence as a mapping key is not supported",
                            ))
                        }
                        other => other.to_string(),
                    });
                }
                Some(name) => {
                    map.insert(name, value);
                }
            },
        }
        Ok(())
    }
}

fn scalar_bytes(value: &Value) -> usize {
    match value {
        Value::String(text) => text.len(),
        _ => 0,
    }
}

/// YAML 1.2 core schema: null, booleans, integers and floats; anything else a string.
fn resolve_plain(text: String) -> Value {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(number) = integer(&text) {
        return Value::Number(number);
    }
    if is_float(&text) {
        if let Some(number) = text.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(number);
        }
    }
    Value::String(text)
}

fn integer(text: &str) -> Option<Number> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = if let Some(hex) = digits.strip_prefix("0x") {
        (16, hex)
    } else if let Some(octal) = digits.strip_prefix("0o") {
        (8, octal)
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative {
        let value = i64::try_from(magnitude).ok()?.checked_neg()?;
        Some(Number::from(value))
    } else {
        Some(Number::from(magnitude))
    }
}

fn is_float(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(split) => (&body[..split], Some(&body[split + 1..])),
        None => (body, None),
    };
    let mut parts = mantissa.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let fraction = parts.next();
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = digits(whole)
        && fraction.is_none_or(digits)
        && !(whole.is_empty() && fraction.is_none_or(str::is_empty));
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn scalars_resolve_as_yaml_1_2_core() {
        let value = parse(
            "a: 1\nb: '1'\nc: true\nd: ~\ne: 1.5e3\nf: 0x1F\ng: 1.2.3\n200: x\nh: !!str 12\n",
        )
        .unwrap();
        assert_eq!(
            value,
            serde_json::json!({"a": 1, "b": "1", "c": true, "d": null, "e": 1500.0, "f": 31,
                               "g": "1.2.3", "200": "x", "h": "12"})
        );
    }

    #[test]
    fn aliases_expand_and_bombs_are_refused() {
        let value = parse("a: &x [1, 2]\nb: *x\n").unwrap();
        assert_eq!(value["b"], serde_json::json!([1, 2]));
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..12 {
            let prev = format!("*a{}", level - 1);
            let list = [prev.as_str(); 10].join(", ");
            bomb.push_str(&format!("a{level}: &a{level} [{list}]\n"));
        }
        let err = parse(&bomb).unwrap_err();
        assert!(err.contains("alias bomb"), "{err}");
    }

    #[test]
    fn depth_is_limited() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(parse(&deep).unwrap_err().contains("deeper than 128"));
    }
}
