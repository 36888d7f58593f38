//! The README's demo command works: the demo binary starts Envoy with the filter in front of
//! the example API and gets the 200, 401 and 403 it shows.

use std::process::Command;

use scopegate_tests::harness::free_port;

#[test]
fn demo_shows_a_200_a_401_and_a_403() {
    let output = Command::new(env!("CARGO_BIN_EXE_demo"))
        .arg("--check")
        .args(["--port", &free_port().to_string()])
        .args(["--admin-port", &free_port().to_string()])
        .args(["--api-port", &free_port().to_string()])
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
    assert!(stdout.contains("export TOKEN='eyJ"), "{stdout}");
}
