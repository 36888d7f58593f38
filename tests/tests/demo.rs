//! The README's demo command works end to end: the demo binary starts the IdP, Envoy with
//! the filter (its keys fetched from the IdP), the example API and the SPA on free ports,
//! gets the 200, 401 and 403 it shows, and runs the browser story in headless Chromium
//! (`tests/e2e/story.mjs`, Playwright): sign in, read allowed and write refused by the
//! pre-check, the write scope asked for and granted, the write through Envoy, and the
//! role-less user's 403 with its challenge explained. Screenshots: `tests/output/e2e/`.

use std::process::Command;

use scopegate_tests::harness::free_port;
use scopegate_tests::repo_root;

#[test]
fn demo_tells_the_whole_story_in_a_browser() {
    let screenshots = repo_root().join("tests/output/e2e");
    let _ = std::fs::remove_dir_all(&screenshots);
    let output = Command::new(env!("CARGO_BIN_EXE_demo"))
        .arg("--check")
        .args(["--port", &free_port().to_string()])
        .args(["--admin-port", &free_port().to_string()])
        .args(["--api-port", &free_port().to_string()])
        .args(["--idp-port", &free_port().to_string()])
        .args(["--spa-port", &free_port().to_string()])
        .arg("--screenshots")
        .arg(&screenshots)
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("GET /api/resources -> 200"), "{stdout}");
    assert!(stdout.contains("GET /api/resources -> 401"), "{stdout}");
    assert!(stdout.contains("POST /api/resources -> 403"), "{stdout}");
    assert!(
        stdout.contains(r#"error="insufficient_scope", scope="resource:write""#),
        "{stdout}"
    );
    // The browser story: every step passed, and there were steps.
    assert!(!stdout.contains("not ok"), "{stdout}");
    let summary = stdout
        .lines()
        .find_map(|line| line.strip_prefix("e2e: "))
        .unwrap_or_else(|| panic!("no e2e summary:\n{stdout}"));
    assert!(summary.ends_with(" passed, 0 failed"), "{stdout}");
    assert!(!summary.starts_with("0 "), "{stdout}");
    assert!(
        stdout.contains("idp: refused resource:write to bob"),
        "{stdout}"
    );
    // `scopegate explain` on bob's real token, its keys fetched from the demo IdP.
    for line in [
        "explain: POST /api/resources -> 403 insufficient_scope (insufficient scope)",
        "explain:   (signature checked with keys fetched from http://127.0.0.1:",
        "explain:   routes[3] /api/resources [POST]: chosen",
        "explain:   resource:write",
        "explain:   - `resource:write` is granted by role `resource-admin` (roles.map)",
        "explain:   - request scope=\"",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    for shot in [
        "1-alice-read-only.png",
        "2-alice-wrote.png",
        "3-bob-403.png",
    ] {
        let size = std::fs::metadata(screenshots.join(shot)).map_or(0, |m| m.len());
        assert!(size > 10_000, "screenshot {shot}: {size} bytes");
    }
}
