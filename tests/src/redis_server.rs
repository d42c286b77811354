//! A real `redis-server` for one test: its own free port, its own temp dir,
//! no persistence. Killed on drop, also when the test panics; it also dies
//! with the test process (PR_SET_PDEATHSIG), so none is ever left behind.
//! Never the shared Redis on 6379.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 right now (the OS picks it).
pub fn free_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local addr").port();
        if port != 6379 {
            return port;
        }
    }
}

/// Makes the child die with the test process, even on SIGKILL of the test.
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}

pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
    paused: bool,
}

static SERIAL: AtomicU32 = AtomicU32::new(0);

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Same, with extra `redis-server` arguments (e.g. `--requirepass x`).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let dir = std::env::temp_dir().join(format!(
            "rollcall-redis-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the Redis temp dir");
        let mut server = RedisServer {
            port: 0,
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
            paused: false,
        };
        // The port was free a moment ago; another process may take it
        // first, so try a few.
        for _ in 0..5 {
            server.port = free_port();
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    fn spawn(&mut self) -> bool {
        let bin = std::env::var("ROLLCALL_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let mut cmd = Command::new(&bin);
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--save")
            .arg("")
            .arg("--appendonly")
            .arg("no")
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        die_with_parent(&mut cmd);
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot run {bin}: {e} (install it: apt-get install -y redis-server)")
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = &mut self.child
                && let Ok(Some(_)) = child.try_wait()
            {
                self.child = None;
                return false; // exited: the port was taken
            }
            if self.answers() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        false
    }

    /// Whether something on the port answers a PING (PONG, or NOAUTH when
    /// a password is required).
    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 64];
        matches!(s.read(&mut buf), Ok(n) if n > 0 && (buf.starts_with(b"+PONG") || buf.starts_with(b"-NOAUTH")))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL): its data is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// Starts it again, empty, on the same port.
    pub fn restart(&mut self) {
        self.kill();
        assert!(
            self.spawn(),
            "redis-server did not restart on port {}",
            self.port
        );
    }

    /// Freezes it (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&mut self) {
        if let Some(pid) = self.pid() {
            // SAFETY: plain kill(2) on our own child.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGSTOP) };
            self.paused = true;
        }
    }

    /// Wakes it (SIGCONT).
    pub fn resume(&mut self) {
        if let Some(pid) = self.pid() {
            // SAFETY: plain kill(2) on our own child.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGCONT) };
            self.paused = false;
        }
    }
}

impl RedisServer {
    /// Runs one command on a fresh connection (2 s timeouts); `None` when
    /// it fails. For the harness' own checks and faults (CLIENT PAUSE,
    /// DEBUG SLEEP, SLOWLOG, REPLICAOF, CLUSTER INFO).
    pub fn command(&self, args: &[&str]) -> Option<redis::Value> {
        let client = redis::Client::open(self.url()).ok()?;
        let mut conn = client
            .get_connection_with_timeout(Duration::from_secs(2))
            .ok()?;
        conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query::<redis::Value>(&mut conn).ok()
    }

    /// Like [`RedisServer::command`], the reply as text (bulk or status).
    pub fn command_string(&self, args: &[&str]) -> Option<String> {
        match self.command(args)? {
            redis::Value::BulkString(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            redis::Value::SimpleString(s) => Some(s),
            redis::Value::VerbatimString { text, .. } => Some(text),
            redis::Value::Okay => Some("OK".into()),
            redis::Value::Int(i) => Some(i.to_string()),
            _ => None,
        }
    }

    /// Sends one command on a fresh connection without waiting for the
    /// reply (`DEBUG SLEEP` blocks its caller); the connection is closed
    /// by a thread once the reply comes.
    pub fn command_detached(&self, args: &[&str]) {
        let mut line = format!("*{}\r\n", args.len());
        for a in args {
            line.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to Redis");
        s.write_all(line.as_bytes()).expect("send the command");
        std::thread::spawn(move || {
            let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
            let mut buf = [0u8; 256];
            let _ = s.read(&mut buf);
        });
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
