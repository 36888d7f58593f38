//! Regenerates the machine-made parts of the shared vectors (`scopegate_tests::vectors`
//! says which): the JWKS inside `examples/policy.json` and `tests/vectors/decisions.json`.
//! `tests/tests/vectors_current.rs` fails when the committed files are not what this writes.
//!
//! Run: `cargo run -p scopegate-tests --bin gen-vectors`

// A generator run by hand: a broken case file stops it with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;

use scopegate_tests::repo_root;
use scopegate_tests::vectors::{decisions, example_policy, json_text};

fn main() {
    let root = repo_root();
    let policy = example_policy(&root);
    fs::write(root.join("examples/policy.json"), &policy).expect("write examples/policy.json");
    let out = decisions(&root, &policy);
    fs::write(root.join("tests/vectors/decisions.json"), json_text(&out))
        .expect("write tests/vectors/decisions.json");
    eprintln!("wrote examples/policy.json and tests/vectors/decisions.json");
}
