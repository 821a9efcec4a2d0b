//! The test harness, shared by both integration-test crates (`tests/it`, which a plain `cargo
//! test` runs, and `tests/external`, the tests that need tools from outside Rust): a real target
//! server and the real exporter binary, both on 127.0.0.1 with ports chosen by the kernel.
//!
//! - [`Target`] is an HTTP server whose answer the test sets ([`Reply`]) and changes while the
//!   exporter runs; it records every request it receives, and can be stopped ([`Target::stop`]).
//! - [`Exporter`] runs the binary built by cargo with a clean environment
//!   ([`Exporter::start`]), or any command that ends up running it, such as `chroot` or `sh`
//!   ([`Exporter::spawn`]); finds its port from the start-up log line (never a fixed port or a
//!   fixed sleep) and kills it when dropped. Every failed wait panics with the exporter's stderr
//!   so far.
//! - [`get`] is a small HTTP/1.1 client over a raw `TcpStream`.
//! - [`examples`] lists the example triads of `scripts/mappings` and [`serve_example`] serves
//!   one through the exporter.
//! - [`prometheus`] runs a real Prometheus server; [`formats`] is the strict checker of both
//!   exposition formats; [`random`] makes the property tests' random documents and mappings;
//!   [`elf`] reads what a binary needs to start.
//! - Small helpers: [`tool`] finds an installed program, [`temp_dir`] makes a fresh directory,
//!   [`free_ports`] finds ports for programs that cannot report the one they bound, [`run`] runs
//!   a command to its end.

// Each crate uses its own part of the harness.
#![allow(dead_code)]

pub mod elf;
pub mod formats;
pub mod prometheus;
pub mod random;

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The tutorial application's status document.
pub const TUTORIAL_DOC: &str = include_str!("../../scripts/mappings/tutorial/document.json");

/// The metrics the tutorial document gives with the built-in mapping, in text format 0.0.4:
/// the golden output shipped with the example.
pub const TUTORIAL_TEXT: &str = include_str!("../../scripts/mappings/tutorial/expected.prom");

/// What the target answers to every request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with this JSON body.
    Json(String),
    /// This status, content type and body.
    Status(u16, &'static str, String),
    /// These bytes, as they are, then close.
    Raw(Vec<u8>),
    /// A 200 whose headers announce no length and whose body never ends.
    Endless,
    /// A status line, then a header line that never ends.
    EndlessHeader,
    /// Accept the connection, read the request, never answer (until the test ends).
    Hang,
    /// 200 with this JSON body after this delay: a slow device.
    Slow(Duration, String),
}

/// One request the target received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    /// Header names lowercased.
    pub headers: HashMap<String, String>,
    /// When the request's head had arrived.
    pub at: Instant,
}

pub struct Target {
    pub addr: SocketAddr,
    reply: Arc<Mutex<Reply>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    stopped: Arc<std::sync::atomic::AtomicBool>,
}

impl Target {
    /// Starts a target on 127.0.0.1:0 that answers `reply` until told otherwise.
    pub fn start(reply: Reply) -> Target {
        Target::start_on(
            TcpListener::bind("127.0.0.1:0").expect("bind a loopback port"),
            reply,
        )
    }

    /// Starts a target that answers `reply` on `listener` (an IPv6 one, for instance).
    pub fn start_on(listener: TcpListener, reply: Reply) -> Target {
        let addr = listener.local_addr().expect("local address");
        let reply = Arc::new(Mutex::new(reply));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (r, s, stop) = (Arc::clone(&reply), Arc::clone(&seen), Arc::clone(&stopped));
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break; // the listener closes: later connections are refused
                }
                let (r, s) = (Arc::clone(&r), Arc::clone(&s));
                thread::spawn(move || answer(stream, &r, &s));
            }
        });
        Target {
            addr,
            reply,
            seen,
            stopped,
        }
    }

    /// Stops listening, as a target that went down: once this returns, connections to
    /// [`Target::addr`] are refused. Answers already under way finish.
    pub fn stop(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        // Wakes the accepting thread, which sees the flag and drops the listener.
        let _ = TcpStream::connect(self.addr);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(self.addr).is_ok() {
            assert!(Instant::now() < deadline, "{} still accepts", self.addr);
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn set(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn answer(stream: TcpStream, reply: &Mutex<Reply>, seen: &Mutex<Vec<Seen>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    seen.lock().unwrap().push(Seen {
        path,
        headers,
        at: Instant::now(),
    });
    let reply = reply.lock().unwrap().clone();
    let mut out = &stream;
    let respond = |out: &mut &TcpStream, status: u16, content_type: &str, body: &str| {
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = out.write_all(head.as_bytes());
        let _ = out.write_all(body.as_bytes());
    };
    match reply {
        Reply::Json(body) => respond(&mut out, 200, "application/json", &body),
        Reply::Slow(delay, body) => {
            thread::sleep(delay);
            respond(&mut out, 200, "application/json", &body)
        }
        Reply::Status(status, content_type, body) => respond(&mut out, status, content_type, &body),
        Reply::Raw(bytes) => {
            let _ = out.write_all(&bytes);
        }
        Reply::Endless => endless(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n[",
            b'1',
        ),
        Reply::EndlessHeader => endless(out, b"HTTP/1.1 200 OK\r\nX-Long: ", b'x'),
        Reply::Hang => {
            thread::sleep(Duration::from_secs(30));
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// Writes `head`, then 64 MiB of `filler` or until the reader goes away. Bounded: the exporter
/// stops reading long before this ends.
fn endless(mut out: &TcpStream, head: &[u8], filler: u8) {
    let _ = out.write_all(head);
    let chunk = vec![filler; 64 * 1024];
    for _ in 0..1024 {
        if out.write_all(&chunk).is_err() {
            break;
        }
    }
}

/// The example mapping folders under `scripts/mappings`, each with mapping.json,
/// document.json and expected.prom.
pub fn examples() -> Vec<PathBuf> {
    let root = repo().join("scripts/mappings");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("mapping.json").is_file())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 5, "examples in {}: {dirs:?}", root.display());
    dirs
}

/// An exporter with the example's mapping in front of a target serving its document.
pub fn serve_example(dir: &Path) -> (Target, Exporter) {
    let target = Target::start(Reply::Json(
        std::fs::read_to_string(dir.join("document.json")).unwrap(),
    ));
    let mapping = dir.join("mapping.json");
    let exporter = Exporter::start(
        &[
            "--target-url",
            &target.url("/"),
            "--config-file",
            mapping.to_str().unwrap(),
        ],
        &[],
    );
    (target, exporter)
}

/// The Accept header Prometheus 2.42 (Debian 12) sends with its scrapes. `life_of_a_target`
/// uses the header the installed Prometheus really sends.
pub const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// One scrape of an exporter serving `example`, once it has polled, with the `Accept` header
/// Prometheus sends.
pub fn scrape_example_as_prometheus(example: &Path) -> Response {
    let (_target, exporter) = serve_example(example);
    exporter.wait_for_line("status_exporter_up 1");
    get(
        exporter.addr,
        "GET",
        "/metrics",
        &[("Accept", PROMETHEUS_ACCEPT)],
    )
}

/// A running exporter binary.
pub struct Exporter {
    child: Child,
    pub addr: SocketAddr,
    stderr: Arc<Log>,
}

/// What the exporter wrote to stderr, read from its pipe by whoever looks first: a background
/// thread that keeps the pipe from filling, or a test asking for the lines. Both drain the pipe
/// under one lock, without blocking, so the lines a test sees include every byte the exporter
/// had written when it asked: a test that saw the effect of an event (a response, a scrape)
/// also sees the log line written before it.
pub struct Log {
    pipe: std::fs::File,
    read: Mutex<LogState>,
}

#[derive(Default)]
struct LogState {
    lines: Vec<String>,
    /// The start of a line not yet ended.
    partial: Vec<u8>,
    closed: bool,
}

impl Log {
    fn new(pipe: std::process::ChildStderr) -> Log {
        use std::os::fd::{AsRawFd, OwnedFd};
        let pipe = std::fs::File::from(OwnedFd::from(pipe));
        let fd = pipe.as_raw_fd();
        // SAFETY: fcntl on a descriptor this process owns, with no memory argument.
        let nonblocking = unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
        };
        assert!(
            nonblocking,
            "O_NONBLOCK on the stderr pipe: {}",
            io::Error::last_os_error()
        );
        Log {
            pipe,
            read: Mutex::new(LogState::default()),
        }
    }

    /// Reads what the pipe holds now into lines; returns the state, locked.
    fn drain(&self) -> std::sync::MutexGuard<'_, LogState> {
        let mut state = self.read.lock().unwrap_or_else(|e| e.into_inner());
        let mut chunk = [0u8; 4096];
        while !state.closed {
            match (&self.pipe).read(&mut chunk) {
                Ok(0) => state.closed = true,
                Ok(n) => {
                    state.partial.extend_from_slice(&chunk[..n]);
                    while let Some(end) = state.partial.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = state.partial.drain(..=end).collect();
                        let text = String::from_utf8_lossy(&line[..end]).into_owned();
                        state.lines.push(text);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break, // WouldBlock: all read
            }
        }
        state
    }

    /// Every line so far (a last line without its line feed once the pipe is closed).
    fn lines(&self) -> Vec<String> {
        let state = self.drain();
        let mut lines = state.lines.clone();
        if state.closed && !state.partial.is_empty() {
            lines.push(String::from_utf8_lossy(&state.partial).into_owned());
        }
        lines
    }

    /// Keeps the pipe from filling until it closes: wakes when it has something to read.
    fn follow(&self) {
        use std::os::fd::AsRawFd;
        let mut poll = libc::pollfd {
            fd: self.pipe.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        while !self.drain().closed {
            // SAFETY: one pollfd that lives across the call.
            unsafe { libc::poll(&mut poll, 1, 100) };
        }
    }
}

/// The exporter binary cargo built for these tests (for the host: dynamically linked).
pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_status-exporter"))
}

/// The root of the repository, for the files under `scripts/`.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A `Command` for the binary with none of the exporter's variables inherited.
pub fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(binary());
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command.args(args).envs(env.iter().copied());
    command
}

impl Exporter {
    /// Starts the exporter on 127.0.0.1 with a free port, polling every 0.2 s unless `env`
    /// says otherwise, and waits (at most 10 s) for its start-up line.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Exporter {
        let mut full_env = vec![
            ("POLLING_INTERVAL_SECONDS", "0.2"),
            ("EXPORTER_PORT", "0"),
            ("LISTEN_ADDRESS", "127.0.0.1"),
        ];
        full_env.extend_from_slice(env);
        Exporter::spawn(command(args, &full_env), Duration::from_secs(10))
    }

    /// Starts `command` (the exporter, or a program that runs it: `chroot`, `sh`, qemu) with
    /// stdin and stdout closed, and waits at most `patience` for the exporter's start-up line,
    /// `... listening on ADDR; ...`, which gives [`Exporter::addr`].
    pub fn spawn(mut command: Command, patience: Duration) -> Exporter {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let pipe = child.stderr.take().expect("stderr is piped");
        let stderr = Arc::new(Log::new(pipe));
        let follower = Arc::clone(&stderr);
        thread::spawn(move || follower.follow());
        let deadline = Instant::now() + patience;
        loop {
            let found = stderr.lines().iter().find_map(|l| {
                let rest = l.split("listening on ").nth(1)?;
                rest.split(';').next()?.parse::<SocketAddr>().ok()
            });
            if let Some(addr) = found {
                return Exporter {
                    child,
                    addr,
                    stderr,
                };
            }
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                thread::sleep(Duration::from_millis(100)); // let the last lines arrive
                let why = match exited {
                    Some(status) => format!("exited with {status} before listening"),
                    None => format!("no start-up line within {patience:?}"),
                };
                panic!("{command:?}: {why}:\n{}", stderr.lines().join("\n"));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits at most `patience` until /-/ready answers 200: the first poll of the target
    /// succeeded.
    pub fn wait_ready(&self, patience: Duration) {
        let deadline = Instant::now() + patience;
        while try_get(self.addr, "GET", "/-/ready", &[])
            .map(|r| r.status)
            .ok()
            != Some(200)
        {
            if Instant::now() > deadline {
                self.fail(&format!("/-/ready not 200 within {patience:?}"));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Panics with `message` and everything the exporter wrote to stderr.
    pub fn fail(&self, message: &str) -> ! {
        thread::sleep(Duration::from_millis(100)); // let the last lines arrive
        panic!(
            "{message}\n--- exporter stderr ---\n{}",
            self.stderr().join("\n")
        )
    }

    /// The exporter's stderr lines so far: every line it had written when this was called.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lines()
    }

    /// GET /metrics, expecting 200, returning the body.
    pub fn scrape(&self) -> String {
        let response = get(self.addr, "GET", "/metrics", &[]);
        assert_eq!(
            response.status,
            200,
            "scrape failed: {response:?}\nstderr:\n{}",
            self.stderr().join("\n")
        );
        // In every scrape: the target's metrics are there exactly when the last poll succeeded.
        let up = value(&response.body, "status_exporter_up");
        let app = !app_part(&response.body).is_empty();
        assert_eq!(
            up == Some(1.0),
            app,
            "status_exporter_up {up:?} with the target's metrics {}:\n{}",
            if app { "present" } else { "absent" },
            response.body
        );
        response.body
    }

    /// Scrapes until `ready` holds for the body (at most 10 s), and returns that body.
    pub fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let body = self.scrape();
            if ready(&body) {
                return body;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; last scrape:\n{body}\nstderr:\n{}",
                    self.stderr().join("\n")
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the value of `series` is at least `min` (counters can pass any one value
    /// between two scrapes), and returns that body.
    pub fn wait_for_at_least(&self, series: &str, min: f64) -> String {
        self.wait_for(&format!("{series} >= {min}"), |body| {
            value(body, series).is_some_and(|v| v >= min)
        })
    }

    /// Waits until the scrape holds `line` (a whole line).
    pub fn wait_for_line(&self, line: &str) -> String {
        self.wait_for(line, |body| body.lines().any(|l| l == line))
    }

    /// The value of the sample `series` (name with labels, as printed) in the current scrape.
    pub fn value(&self, series: &str) -> Option<f64> {
        value(&self.scrape(), series)
    }

    /// Waits until `polls` more polls have completed.
    pub fn wait_polls(&self, polls: u32) {
        let now = self.value("status_exporter_polls_total").unwrap_or(0.0);
        let target = now + f64::from(polls);
        self.wait_for(&format!("{polls} more polls"), |body| {
            value(body, "status_exporter_polls_total").is_some_and(|v| v >= target)
        });
    }

    /// Stderr lines containing `text`.
    pub fn log_lines(&self, text: &str) -> Vec<String> {
        self.stderr()
            .into_iter()
            .filter(|l| l.contains(text))
            .collect()
    }

    /// Waits at most `patience` for a stderr line containing `text`, and returns the first.
    pub fn wait_for_log(&self, text: &str, patience: Duration) -> String {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(line) = self.log_lines(text).into_iter().next() {
                return line;
            }
            if Instant::now() > deadline {
                self.fail(&format!("no log line with {text:?} within {patience:?}"));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `series` in an exposition body.
pub fn value(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        match rest {
            "+Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            v => v.parse().ok(),
        }
    })
}

/// The target's part of a scrape: everything before the exporter's own metrics.
pub fn app_part(body: &str) -> &str {
    body.find("# HELP status_exporter_")
        .map_or(body, |i| &body[..i])
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names lowercased.
    pub headers: HashMap<String, String>,
    pub body: String,
}

/// One request on a new connection (`Connection: close`), with a 10 s limit.
pub fn get(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    try_get(addr, method, path, headers)
        .unwrap_or_else(|e| panic!("{method} {path} on {addr}: {e}"))
}

/// [`get`], or the error that kept it from reading a response.
pub fn try_get(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> io::Result<Response> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request += &format!("{name}: {value}\r\n");
    }
    request += "\r\n";
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    Ok(parse_response(&raw))
}

pub fn parse_response(raw: &[u8]) -> Response {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_string(),
    }
}

/// A fresh empty directory under the target dir, named after the test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}

/// Replaces the file at `path` with `content` the way editors and config tools do, so that a
/// reader sees the old file or the new one, never half of it: written beside it, then renamed
/// over it. Tests that change a file the exporter watches write it this way, unless they test a
/// half-written file on purpose.
pub fn write_atomically(path: &Path, content: impl AsRef<[u8]>) {
    let mut name = path.file_name().expect("a file name").to_os_string();
    name.push(".new");
    let new = path.with_file_name(name);
    std::fs::write(&new, content).expect("write the new version");
    std::fs::rename(&new, path).expect("rename the new version over the old");
}

/// The path of a tool, on PATH or in an sbin directory (chroot is in /usr/sbin, which a
/// non-login PATH may lack), or a panic that names the Debian package to install. Tests that
/// need a tool fail rather than skip, so CI cannot pass without them. Only the tests of
/// `tests/external` use tools.
pub fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let sbin = [PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")];
    std::env::split_paths(&path)
        .chain(sbin)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: apt-get install {package} (scripts/test.sh does this)")
        })
}

/// Ports on 127.0.0.1 that were free a moment ago, for programs that cannot report the port
/// they bound (Prometheus). All are held open together, so that they differ.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: [TcpListener; N] = std::array::from_fn(|_| {
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port")
    });
    listeners.map(|l| l.local_addr().expect("local address").port())
}

/// Runs `command` to its end with stdin closed, collecting its output.
pub fn run(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// HTTPS targets: a private CA and a TLS server, both from the openssl CLI. Used by the HTTPS
// tests of the `https` build (tests/external/tls.rs), and by tests/external/ship.rs in any build,
// for the static HTTPS binaries it builds.

/// A private CA and a server certificate it signed, for 127.0.0.1 and localhost, as PEM files.
pub struct Pki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Makes a private CA and a server certificate in `dir` with the openssl CLI (EC P-256, valid
/// for two days).
pub fn private_ca(dir: &std::path::Path) -> Pki {
    let openssl = tool("openssl", "openssl");
    let run = |args: &[&str]| {
        let output = Command::new(&openssl)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .expect("run openssl");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(&[
        &["req", "-x509", "-new", "-days", "2"][..],
        &key,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=status-exporter test CA",
        ],
        &["-addext", "basicConstraints=critical,CA:TRUE"],
        &["-addext", "keyUsage=critical,keyCertSign"],
    ]
    .concat());
    run(&[
        &["req", "-new"][..],
        &key,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
    )
    .expect("write server.ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
    Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}

/// An HTTPS target: `openssl s_server -WWW` on 127.0.0.1 with a free port, serving the files
/// of a directory (HTTP/1.0, closed after each answer), killed when dropped.
pub struct TlsTarget {
    child: Child,
    pub addr: SocketAddr,
}

impl TlsTarget {
    /// Starts serving the files of `root` (`GET /status` answers the file `status`) with the
    /// server certificate of `pki`; waits for the port.
    pub fn start(pki: &Pki, root: &std::path::Path) -> TlsTarget {
        let mut child = Command::new(tool("openssl", "openssl"))
            .args(["s_server", "-WWW", "-accept", "127.0.0.1:0"])
            .arg("-cert")
            .arg(&pki.cert)
            .arg("-key")
            .arg(&pki.key)
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start openssl s_server");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("ACCEPT ") {
                    let _ = tx.send(addr.parse::<SocketAddr>());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(addr)) => TlsTarget { child, addr },
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("openssl s_server did not say where it listens: {other:?}");
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
}

impl Drop for TlsTarget {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Hardening (tests/it/hardening.rs): the exporter watched from outside, through /proc/PID.

impl Exporter {
    /// The exporter's process id, for `/proc/PID/status` (memory, threads) and `/proc/PID/fd`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The most resident memory the exporter has had so far (`VmHWM`), KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap_or_else(|e| self.fail(&format!("/proc/PID/status: {e} (has it died?)")));
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| self.fail("no VmHWM in /proc/PID/status"))
    }

    /// Sends `signal` (`libc::SIGHUP`, ...) to the exporter.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory effects; the pid is our child's, not yet waited for.
        let sent = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(sent, 0, "kill: {}", io::Error::last_os_error());
    }

    /// Whether the exporter is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .try_wait()
            .expect("look at the exporter")
            .is_none()
    }

    /// Waits at most `patience` for the exporter to end, and returns how it ended and how
    /// long it took.
    pub fn wait_exit(&mut self, patience: Duration) -> (std::process::ExitStatus, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("look at the exporter") {
                return (status, start.elapsed());
            }
            if start.elapsed() > patience {
                self.fail(&format!("still running after {patience:?}"));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A connection to `addr` from the loopback address `source` (127.0.0.2, 127.0.0.3, ...: Linux
/// routes all of 127.0.0.0/8 to the loopback interface), so that a test can be several
/// clients, as the server's per-address limit sees them. std connects only from the address
/// the kernel picks.
pub fn connect_from(source: Ipv4Addr, addr: SocketAddr) -> io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    fn sockaddr(ip: Ipv4Addr, port: u16) -> libc::sockaddr_in {
        libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(ip).to_be(),
            },
            sin_zero: [0; 8],
        }
    }
    let SocketAddr::V4(target) = addr else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "IPv4 only"));
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor this function owns; on success it is handed
    // to a TcpStream, which closes it; on failure it is closed here.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let local = sockaddr(source, 0);
        let remote = sockaddr(*target.ip(), target.port());
        let bound = libc::bind(fd, std::ptr::addr_of!(local).cast(), len) == 0;
        if !bound || libc::connect(fd, std::ptr::addr_of!(remote).cast(), len) != 0 {
            let error = io::Error::last_os_error();
            libc::close(fd);
            return Err(error);
        }
        Ok(TcpStream::from_raw_fd(fd))
    }
}

/// The loopback address 127.0.0.`n` (n from 2: 127.0.0.1 is every other test's).
pub fn loopback(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, n)
}

/// Makes a FIFO (named pipe) at `path`.
pub fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("a path without NUL");
    // SAFETY: a valid NUL-terminated path.
    let made = unsafe { libc::mkfifo(name.as_ptr(), 0o600) };
    assert_eq!(
        made,
        0,
        "mkfifo {}: {}",
        path.display(),
        io::Error::last_os_error()
    );
}

/// The concatenation of the gzip members in `bytes` (as Go's and Python's readers take them),
/// each checked against its CRC-32 and length; panics on anything else.
pub fn gunzip(mut bytes: &[u8]) -> Vec<u8> {
    use miniz_oxide::inflate::stream::{inflate, InflateState};
    use miniz_oxide::{DataFormat, MZFlush, MZStatus};
    let mut out = Vec::new();
    while !bytes.is_empty() {
        assert!(
            bytes.len() > 18 && bytes[..4] == [0x1f, 0x8b, 8, 0],
            "not a gzip member without flags: {:?}",
            &bytes[..bytes.len().min(10)]
        );
        bytes = &bytes[10..];
        let mut state = InflateState::new_boxed(DataFormat::Raw);
        let mut member = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let result = inflate(&mut state, bytes, &mut chunk, MZFlush::None);
            bytes = &bytes[result.bytes_consumed..];
            member.extend_from_slice(&chunk[..result.bytes_written]);
            match result.status {
                Ok(MZStatus::StreamEnd) => break,
                Ok(_) => assert!(
                    result.bytes_consumed > 0 || result.bytes_written > 0,
                    "truncated gzip member"
                ),
                Err(e) => panic!("invalid deflate data: {e:?}"),
            }
        }
        let (crc, len) = (&bytes[..4], &bytes[4..8]);
        assert_eq!(crc, crc32(&member).to_le_bytes(), "CRC-32 of a member");
        assert_eq!(
            len,
            (member.len() as u32).to_le_bytes(),
            "length of a member"
        );
        bytes = &bytes[8..];
        out.extend_from_slice(&member);
    }
    out
}

/// CRC-32 as gzip computes it, bit by bit (the exporter's table version is what is tested).
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                0xEDB8_8320 ^ (crc >> 1)
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// One request on a new connection (`Connection: close`); the status, the headers (names
/// lowercased) and the body as bytes (a gzip body is not text).
pub fn get_bytes(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, HashMap<String, String>, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("connect to the exporter");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set a timeout");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request += &format!("{name}: {value}\r\n");
    }
    request += "\r\n";
    stream
        .write_all(request.as_bytes())
        .expect("send a request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the response");
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {:?}", String::from_utf8_lossy(&raw)));
    let response = parse_response(&raw[..end + 4]);
    (response.status, response.headers, raw[end + 4..].to_vec())
}

/// Held by the tests that load the machine (floods, documents of many MiB, mappings of
/// 100,000 metrics), so that only one of them runs at a time in a test binary.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Waits for the other heavy tests of this binary, and keeps them waiting until dropped.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    // A failed heavy test must not fail the next one too.
    HEAVY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
