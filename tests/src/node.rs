//! A rollcall node as its own OS process (the `fault_node` binary, or any
//! program that speaks its line protocol): spawn, drive, SIGKILL, SIGSTOP /
//! SIGCONT, SIGTERM. Killed on drop, and with the test process.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rollcall_core::Event;

use crate::redis_server::die_with_parent;

/// How to start a node process.
#[derive(Debug, Clone)]
pub struct NodeArgs {
    /// `--redis URL`, or several seeds: `--cluster URL,URL`.
    pub redis: Vec<String>,
    pub cluster: bool,
    pub prefix: String,
    pub node: String,
    pub ttl_ms: u64,
    pub heartbeat_ms: u64,
    pub reap_ms: u64,
    pub slice: u32,
    pub users: u64,
    pub op_timeout_ms: Option<u64>,
    /// `--max-write-fields N` (default: the core's).
    pub max_write_fields: Option<u32>,
}

impl NodeArgs {
    pub fn new(redis: &str, prefix: &str, node: &str) -> NodeArgs {
        NodeArgs {
            redis: vec![redis.to_owned()],
            cluster: false,
            prefix: prefix.to_owned(),
            node: node.to_owned(),
            ttl_ms: 2_000,
            heartbeat_ms: 500,
            reap_ms: 500,
            slice: 1_000,
            users: 1_000,
            op_timeout_ms: None,
            max_write_fields: None,
        }
    }

    pub fn to_args(&self) -> Vec<String> {
        let mut a = vec![
            if self.cluster { "--cluster" } else { "--redis" }.to_owned(),
            self.redis.join(","),
            "--prefix".into(),
            self.prefix.clone(),
            "--node".into(),
            self.node.clone(),
            "--ttl".into(),
            self.ttl_ms.to_string(),
            "--heartbeat".into(),
            self.heartbeat_ms.to_string(),
            "--reap".into(),
            self.reap_ms.to_string(),
            "--slice".into(),
            self.slice.to_string(),
            "--users".into(),
            self.users.to_string(),
        ];
        if let Some(ms) = self.op_timeout_ms {
            a.push("--op-timeout".into());
            a.push(ms.to_string());
        }
        if let Some(n) = self.max_write_fields {
            a.push("--max-write-fields".into());
            a.push(n.to_string());
        }
        a
    }
}

/// A running node process.
pub struct NodeProc {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    events: Arc<Mutex<Vec<Event>>>,
    pub node: String,
}

impl NodeProc {
    /// Starts `program` with `args` and waits for its `ready` line.
    pub fn spawn(program: impl AsRef<Path>, args: &NodeArgs) -> NodeProc {
        let mut cmd = Command::new(program.as_ref());
        cmd.args(args.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        die_with_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", program.as_ref()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(json) = line.strip_prefix("event ") {
                    match serde_json::from_str::<Event>(json) {
                        Ok(e) => sink.lock().unwrap_or_else(|p| p.into_inner()).push(e),
                        Err(e) => eprintln!("node printed a bad event {json:?}: {e}"),
                    }
                } else if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut p = NodeProc {
            child: Some(child),
            stdin,
            lines,
            events,
            node: args.node.clone(),
        };
        p.expect("ready", Duration::from_secs(30));
        p
    }

    /// Sends one command line.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("the node is running");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("node {}: write {line:?}: {e}", self.node));
    }

    /// Waits for the next line starting with `prefix` (other lines are
    /// skipped); returns the rest of it.
    pub fn expect(&mut self, prefix: &str, deadline: Duration) -> String {
        let end = Instant::now() + deadline;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.trim().to_owned();
                    }
                }
                Err(_) => {
                    let exited = self.exited();
                    panic!(
                        "node {}: no line {prefix:?} within {deadline:?} (exited: {exited:?})",
                        self.node
                    )
                }
            }
        }
    }

    /// Sends a command and waits for its `ok <word>` answer.
    pub fn call(&mut self, line: &str, deadline: Duration) -> String {
        let word = line.split_whitespace().next().unwrap_or("").to_owned();
        self.send(line);
        self.expect(&format!("ok {word}"), deadline)
    }

    /// Connects sockets `from..to`.
    pub fn open(&mut self, from: u64, to: u64) {
        self.call(&format!("open {from} {to}"), Duration::from_secs(120));
    }

    /// Disconnects the held sockets in `from..to`.
    pub fn close(&mut self, from: u64, to: u64) {
        self.call(&format!("close {from} {to}"), Duration::from_secs(120));
    }

    /// The socket numbers it holds.
    pub fn held(&mut self) -> Vec<u64> {
        self.send("held");
        let rest = self.expect("held", Duration::from_secs(30));
        let list = rest.split_whitespace().nth(1).unwrap_or("");
        list.split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().expect("a socket number"))
            .collect()
    }

    /// Every event it printed so far.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(pid as libc::pid_t, sig) };
        }
    }

    /// `kill -9`: the node dies without a word.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.stdin = None;
    }

    /// SIGSTOP: frozen, connections open.
    pub fn stop(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT.
    pub fn cont(&self) {
        self.signal(libc::SIGCONT);
    }

    /// Whether it exited, and how.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        match &mut self.child {
            Some(c) => c.try_wait().ok().flatten(),
            None => None,
        }
    }

    /// Still running (not exited, not killed).
    pub fn alive(&mut self) -> bool {
        self.child.is_some() && self.exited().is_none()
    }

    /// SIGTERM: a clean shutdown; waits for `closed` and the exit.
    pub fn terminate(&mut self, deadline: Duration) {
        self.signal(libc::SIGTERM);
        self.expect("closed", deadline);
        self.wait_exit(deadline);
    }

    /// The `shutdown` command: waits for `closed` and the exit.
    pub fn shutdown(&mut self, deadline: Duration) {
        self.send("shutdown");
        self.expect("closed", deadline);
        self.wait_exit(deadline);
    }

    fn wait_exit(&mut self, deadline: Duration) {
        let end = Instant::now() + deadline;
        while self.exited().is_none() {
            assert!(Instant::now() < end, "node {} did not exit", self.node);
            std::thread::sleep(Duration::from_millis(10));
        }
        self.child = None;
        self.stdin = None;
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.cont();
        self.kill9();
    }
}
