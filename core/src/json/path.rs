//! Where a value sits in a JSON document, written the way a reader finds it:
//! `routes[2].mcp.rules[0]`, `roles.map["admin"][1]`, `.` for the document itself.

use alloc::string::String;
use core::fmt::{self, Write};

/// A position in a document, as a chain of steps from the root kept on the stack: making
/// one costs nothing, and only an error ever writes it out.
#[derive(Clone, Copy)]
pub(crate) struct At<'a> {
    parent: Option<&'a At<'a>>,
    step: Step<'a>,
}

#[derive(Clone, Copy)]
enum Step<'a> {
    Root,
    /// A member of an object whose members are named by the format (`issuers`).
    Field(&'a str),
    /// A member of an object whose names are the user's (`roles.map`).
    Key(&'a str),
    Index(usize),
}

impl<'a> At<'a> {
    /// The document itself.
    pub(crate) const ROOT: At<'static> = At {
        parent: None,
        step: Step::Root,
    };

    /// The member `name` of this object.
    pub(crate) fn field(&'a self, name: &'a str) -> At<'a> {
        self.child(Step::Field(name))
    }

    /// The member of this object named by the user `key`.
    pub(crate) fn key(&'a self, key: &'a str) -> At<'a> {
        self.child(Step::Key(key))
    }

    /// The element `index` of this array.
    pub(crate) fn index(&'a self, index: usize) -> At<'a> {
        self.child(Step::Index(index))
    }

    fn child(&'a self, step: Step<'a>) -> At<'a> {
        At {
            parent: Some(self),
            step,
        }
    }

    fn write(&self, out: &mut String) -> fmt::Result {
        let Some(parent) = self.parent else {
            return Ok(());
        };
        parent.write(out)?;
        match self.step {
            Step::Root => Ok(()),
            Step::Field(name) if out.is_empty() => out.write_str(name),
            Step::Field(name) => write!(out, ".{name}"),
            Step::Key(key) => write!(out, "[\"{key}\"]"),
            Step::Index(index) => write!(out, "[{index}]"),
        }
    }
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut path = String::new();
        self.write(&mut path)?;
        f.write_str(if path.is_empty() { "." } else { &path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn paths_read_like_the_document() {
        let root = At::ROOT;
        assert_eq!(root.to_string(), ".");
        let routes = root.field("routes");
        let route = routes.index(2);
        let mcp = route.field("mcp");
        assert_eq!(mcp.to_string(), "routes[2].mcp");
        let roles = root.field("roles");
        let map = roles.field("map");
        let admin = map.key("admin");
        assert_eq!(admin.index(1).to_string(), "roles.map[\"admin\"][1]");
        assert_eq!(root.index(0).to_string(), "[0]");
    }
}
