//! Child processes of the tests (the `rollcall` binary, the socketioxide
//! example): found or built with cargo, killed on drop.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

use crate::redis_server::die_with_parent;

/// `target/<profile>`, from the path of the running test binary
/// (`target/<profile>/deps/<test>-<hash>`).
pub fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

static BUILD: Mutex<bool> = Mutex::new(false);

/// Builds the `rollcall` binary (rollcall-cli) and the host's examples
/// once per test process (a no-op when they are fresh), so a test never
/// runs a stale binary.
fn build_host() {
    let mut built = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    if *built {
        return;
    }
    let dir = target_profile_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-q", "-p", "rollcall-cli", "-p", "rollcall-host"]);
    cmd.args(["--bins", "--examples"]);
    if dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    if let Some(target) = dir.parent() {
        cmd.arg("--target-dir").arg(target);
    }
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    let status = cmd.status().expect("run cargo build");
    assert!(status.success(), "cargo build of rollcall-cli failed");
    *built = true;
}

/// The built `rollcall` binary.
pub fn rollcall_bin() -> PathBuf {
    build_host();
    target_profile_dir().join("rollcall")
}

/// A built example of the host crate.
pub fn host_example(name: &str) -> PathBuf {
    build_host();
    target_profile_dir().join("examples").join(name)
}

/// Runs a command to completion with a deadline; kills it if it overruns.
pub fn run_with_deadline(cmd: &mut Command, deadline: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    die_with_parent(cmd);
    let child = cmd.spawn().expect("spawn");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(deadline) {
        Ok(out) => out.expect("wait for the child"),
        Err(_) => {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("{cmd:?} did not finish within {deadline:?}");
        }
    }
}

/// A long-running child, killed on drop.
pub struct ChildGuard {
    child: Option<Child>,
    /// Its stdout, one line at a time (read by a thread).
    pub lines: mpsc::Receiver<String>,
}

impl ChildGuard {
    pub fn spawn(cmd: &mut Command) -> ChildGuard {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        die_with_parent(cmd);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let stdout: ChildStdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        ChildGuard {
            child: Some(child),
            lines,
        }
    }

    /// Waits for a stdout line that satisfies `pick`; panics at the deadline.
    pub fn wait_line<T>(&self, deadline: Duration, mut pick: impl FnMut(&str) -> Option<T>) -> T {
        let end = std::time::Instant::now() + deadline;
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(t) = pick(&line) {
                        return t;
                    }
                }
                Err(_) => panic!("no expected line from the child within {deadline:?}"),
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Sends SIGTERM and waits (up to `deadline`) for the exit status.
    pub fn terminate(&mut self, deadline: Duration) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM, deadline)
    }

    /// Sends `signal` (SIGINT: a Ctrl-C) and waits (up to `deadline`) for
    /// the exit status.
    pub fn signal(&mut self, signal: libc::c_int, deadline: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("still running");
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        let end = std::time::Instant::now() + deadline;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if std::time::Instant::now() >= end {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the child did not exit within {deadline:?} of signal {signal}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
