//! Hardening (issue 7): no client can take the exporter down. Abusive requests, malformed and
//! mutated requests, slow clients, a flood of 1,000 connections, running out of descriptors, a
//! soak of 100,000 scrapes, and basic authentication.
//!
//! Every test runs the real binary and watches it from outside through `/proc/PID`: resident
//! memory (`VmRSS`), `Threads`, and the entries of `/proc/PID/fd`. Each prints its figures
//! (`cargo test hardening -- --nocapture`). The limits are the server's
//! defaults (`http::Limits`), which are not settings: at most 64 connections, 16 KiB of request
//! head, 10 s for a request head to arrive, 75 s for an idle keep-alive connection, 10 s to hand
//! over a response. The tests that wait for the 10 s header deadline run alongside each other;
//! the 75 s idle deadline is tested in `src/http/tests.rs` (`idle_timeout`) with a short limit.
//!
//! The two tests that load the machine (the soak and the 1,000 connections) take [`HEAVY`] so
//! that they never run at the same time, which keeps timing-sensitive tests of other modules
//! that run next to them honest.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use status_exporter::rng::Rng;

use crate::harness::{self, Exporter, Reply, Target, TUTORIAL_DOC};

/// The resident memory no client may push the exporter past.
const RSS_LIMIT_KIB: u64 = 16 * 1024;
/// The server's default deadline for a request head (`http::Limits::header_timeout`).
const HEADER_DEADLINE: Duration = Duration::from_secs(10);
/// The server's default connection cap (`http::Limits::max_connections`).
const MAX_CONNECTIONS: u64 = 64;
/// The connections one client address may hold (`http::Limits::max_connections_per_address`).
const PER_ADDRESS: u64 = 16;
/// No read of a test client waits longer than this.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);
/// "At once", for an answer that a client stuck behind others would get only when their header
/// deadline frees a slot: well under that deadline, with room for a loaded machine.
const AT_ONCE: Duration = Duration::from_secs(5);

/// The exporter polling a tutorial target (an in-process one, so that the exporter's threads
/// and descriptors are only its own) every `interval` seconds.
fn exporter(interval: &str) -> (Target, Exporter) {
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let exporter = Exporter::start(
        &[],
        &[
            ("TARGET_URL", &target.url("/status")),
            ("POLLING_INTERVAL_SECONDS", interval),
        ],
    );
    exporter.wait_for_line("app_requests_current 4");
    (target, exporter)
}

// ---------------------------------------------------------------------------------------------
// The process seen from outside.

/// What the exporter holds at one moment.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Usage {
    rss_kib: u64,
    threads: u64,
    fds: u64,
}

fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e} (has the exporter died?)"));
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status:\n{status}"))
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
        .count() as u64;
    Usage {
        rss_kib: field("VmRSS:"),
        threads: field("Threads:"),
        fds,
    }
}

/// Usage without the moments when the poller or a scrape briefly holds a descriptor: the
/// least threads and descriptors (and the most memory) seen in ten looks over 200 ms.
fn settled_usage(pid: u32) -> Usage {
    let mut settled = usage(pid);
    for _ in 0..9 {
        thread::sleep(Duration::from_millis(20));
        let now = usage(pid);
        settled.rss_kib = settled.rss_kib.max(now.rss_kib);
        settled.threads = settled.threads.min(now.threads);
        settled.fds = settled.fds.min(now.fds);
    }
    settled
}

/// Waits (at most `within`) until `ready` holds for the exporter's usage; returns that usage and
/// how long it took, or panics with the last usage seen.
fn wait_for_usage(
    exporter: &Exporter,
    what: &str,
    within: Duration,
    ready: impl Fn(&Usage) -> bool,
) -> (Usage, Duration) {
    let started = Instant::now();
    loop {
        let now = usage(exporter.pid());
        if ready(&now) {
            return (now, started.elapsed());
        }
        if started.elapsed() > within {
            panic!(
                "{what}: not within {within:?}; last seen {now:?}\nstderr:\n{}",
                exporter.stderr().join("\n")
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The highest resident memory seen while it runs: looks every 2 ms from its own thread.
struct PeakRss {
    stop: Arc<AtomicBool>,
    sampler: thread::JoinHandle<u64>,
}

impl PeakRss {
    fn start(pid: u32) -> PeakRss {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let sampler = thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(usage(pid).rss_kib);
                thread::sleep(Duration::from_millis(2));
            }
            peak.max(usage(pid).rss_kib)
        });
        PeakRss { stop, sampler }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.sampler.join().expect("the RSS sampler does not panic")
    }
}

/// Asserts that the exporter is alive, has never panicked, and answers a scrape at once.
fn assert_still_serving(exporter: &Exporter) {
    let started = Instant::now();
    let body = exporter.scrape();
    assert!(body.contains("app_requests_current 4"), "{body}");
    assert!(
        started.elapsed() < AT_ONCE,
        "a scrape took {:?}",
        started.elapsed()
    );
    let panics = exporter.log_lines("panicked");
    assert!(panics.is_empty(), "the exporter panicked: {panics:?}");
}

// ---------------------------------------------------------------------------------------------
// Clients.

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the exporter");
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream
}

/// A keep-alive HTTP/1.1 client that reads responses framed by `Content-Length`.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// One response: status, head (without the status line's CRLF split), body.
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        Client {
            stream: connect(addr),
            buf: Vec::with_capacity(64 * 1024),
        }
    }

    fn send(&mut self, request: &[u8]) {
        self.stream.write_all(request).expect("send a request");
    }

    /// Reads the next response (not the answer to a HEAD request, which has no body).
    fn answer(&mut self) -> io::Result<Answer> {
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let status = head
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP/1.1 response: {head:?}"));
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
        while self.buf.len() < head_end + length {
            self.fill()?;
        }
        let body = self.buf[head_end..head_end + length].to_vec();
        self.buf.drain(..head_end + length);
        Ok(Answer { status, head, body })
    }

    fn get(&mut self, path: &str, accept: &str) -> io::Result<Answer> {
        let request = format!("GET {path} HTTP/1.1\r\nHost: exporter\r\nAccept: {accept}\r\n\r\n");
        self.send(request.as_bytes());
        self.answer()
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk)? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
        }
    }
}

/// How a connection ended when read to its end.
#[derive(Debug, PartialEq)]
enum End {
    /// The server closed it (FIN or reset).
    Closed,
    /// Still open when the client gave up waiting.
    TimedOut,
}

/// Reads until the server closes (or `CLIENT_TIMEOUT`), keeping at most `keep` bytes.
fn read_to_end(stream: &mut TcpStream, keep: usize) -> (Vec<u8>, End) {
    let mut kept = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return (kept, End::Closed),
            Ok(n) => {
                let room = keep.saturating_sub(kept.len()).min(n);
                kept.extend_from_slice(&chunk[..room]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return (kept, End::TimedOut)
            }
            Err(_) => return (kept, End::Closed),
        }
    }
}

/// The status codes of the responses in a transcript, in order.
fn statuses(transcript: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(transcript);
    // Every response starts the transcript or follows a line end (each body ends with one).
    text.match_indices("HTTP/1.1 ")
        .filter(|(i, _)| *i == 0 || text[..*i].ends_with('\n'))
        .filter_map(|(i, m)| text[i + m.len()..].get(..3)?.parse().ok())
        .collect()
}

/// Sends `bytes` on a new connection without closing our side, and reads what comes back
/// until the server closes or `CLIENT_TIMEOUT` passes.
fn exchange(addr: SocketAddr, bytes: &[u8]) -> (Vec<u8>, End) {
    let mut stream = connect(addr);
    // The server may close before taking everything: that is an answer too.
    let _ = stream.write_all(bytes);
    read_to_end(&mut stream, 1 << 20)
}

// ---------------------------------------------------------------------------------------------
// Tests.

/// What one abusive client saw.
struct Abuse {
    transcript: String,
    end: End,
    sent: usize,
    peak_rss_kib: u64,
}

/// Sends `prefix`, then `filler` again and again (until the answer comes, `total` bytes went
/// out, or 10 s pass) on one connection, while reading the answer and watching memory.
fn abuse(exporter: &Exporter, prefix: &[u8], filler: &[u8], total: usize) -> Abuse {
    let peak = PeakRss::start(exporter.pid());
    let mut stream = connect(exporter.addr);
    let mut writer = stream.try_clone().expect("clone the stream");
    let answered = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&answered);
    let (prefix, filler) = (prefix.to_vec(), filler.to_vec());
    let sender = thread::spawn(move || {
        let started = Instant::now();
        if writer.write_all(&prefix).is_err() {
            return prefix.len();
        }
        let mut sent = prefix.len();
        while sent < total && !stop.load(Ordering::Relaxed) && started.elapsed() < HEADER_DEADLINE {
            match writer.write(&filler) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        sent
    });
    let mut kept = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let end = loop {
        match stream.read(&mut chunk) {
            Ok(0) => break End::Closed,
            Ok(n) => {
                let room = (64 * 1024usize).saturating_sub(kept.len()).min(n);
                kept.extend_from_slice(&chunk[..room]);
                if kept.windows(4).any(|w| w == b"\r\n\r\n") {
                    answered.store(true, Ordering::Relaxed);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break End::TimedOut
            }
            Err(_) => break End::Closed,
        }
    };
    answered.store(true, Ordering::Relaxed);
    let sent = sender.join().expect("the sender does not panic");
    Abuse {
        transcript: String::from_utf8_lossy(&kept).into_owned(),
        end,
        sent,
        peak_rss_kib: peak.stop(),
    }
}

#[test]
fn abusive_requests_are_cut_off_in_bounded_memory() {
    let (_target, exporter) = exporter("0.2");
    let before = settled_usage(exporter.pid());
    let headers: Vec<u8> = b"X-Header: value\r\n".repeat(4096);
    let body_chunk = [b'0'; 64 * 1024];
    let line_chunk = [b'a'; 64 * 1024];
    // name, prefix, filler, bytes at most, expected status line
    type Case<'a> = (&'a str, &'a [u8], &'a [u8], usize, &'a str);
    let cases: [Case; 7] = [
        (
            "an endless header line",
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Endless: ",
            &line_chunk,
            256 << 20,
            "HTTP/1.1 431 Request Header Fields Too Large",
        ),
        (
            "thousands of headers",
            b"GET /metrics HTTP/1.1\r\n",
            &headers,
            64 << 20,
            "HTTP/1.1 431 Request Header Fields Too Large",
        ),
        (
            "a request line of megabytes",
            b"GET /",
            &line_chunk,
            64 << 20,
            "HTTP/1.1 414 URI Too Long",
        ),
        (
            "a huge request body",
            b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n",
            &body_chunk,
            1 << 30,
            "HTTP/1.1 413 Content Too Large",
        ),
        (
            "a body of 10^30 bytes",
            b"PUT / HTTP/1.1\r\nContent-Length: 1000000000000000000000000000000\r\n\r\n",
            &body_chunk,
            1 << 30,
            "HTTP/1.1 413 Content Too Large",
        ),
        (
            "an endless chunked body",
            b"POST /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            &body_chunk,
            1 << 30,
            "HTTP/1.1 411 Length Required",
        ),
        (
            "an endless method",
            b"G",
            &line_chunk,
            64 << 20,
            "HTTP/1.1 414 URI Too Long",
        ),
    ];
    let mut report = Vec::new();
    for (name, prefix, filler, total, expected) in cases {
        let started = Instant::now();
        let seen = abuse(&exporter, prefix, filler, total);
        let took = started.elapsed();
        assert!(
            seen.transcript.starts_with(expected) && seen.transcript.contains("Connection: close"),
            "{name}: expected {expected}, got {:?} ({:?})",
            seen.transcript,
            seen.end
        );
        assert_eq!(seen.end, End::Closed, "{name}: the connection stayed open");
        assert!(
            seen.sent < total,
            "{name}: the exporter took all {total} bytes"
        );
        assert!(
            seen.peak_rss_kib < RSS_LIMIT_KIB,
            "{name}: resident memory reached {} KiB",
            seen.peak_rss_kib
        );
        // Cut off by a size limit, not by the header deadline.
        assert!(took < HEADER_DEADLINE, "{name}: took {took:?}");
        report.push(format!(
            "{name}: {expected} after {} KiB sent, peak RSS {} KiB, {took:?}",
            seen.sent / 1024,
            seen.peak_rss_kib
        ));
        assert_still_serving(&exporter);
    }
    // A body within the limit (64 KiB) is read, dropped, and the request answered.
    let mut client = Client::connect(exporter.addr);
    let mut request = b"GET /metrics HTTP/1.1\r\nContent-Length: 65536\r\n\r\n".to_vec();
    request.extend_from_slice(&[b'x'; 65536]);
    client.send(&request);
    assert_eq!(client.answer().unwrap().status, 200);
    assert_eq!(client.get("/-/healthy", "*/*").unwrap().status, 200);
    drop(client);

    let (after, _) = wait_for_usage(
        &exporter,
        "threads and descriptors back to where they were",
        Duration::from_secs(5),
        |now| now.threads == before.threads && now.fds <= before.fds,
    );
    eprintln!(
        "abuse: before {before:?}, after {after:?}\n  {}",
        report.join("\n  ")
    );
}

#[test]
fn malformed_requests_get_a_status_or_a_close_never_a_panic() {
    let (_target, exporter) = exporter("0.2");
    let addr = exporter.addr;
    // Each is answered with this status and then closed by the exporter.
    let refused: &[(&[u8], u16)] = &[
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1 extra\r\n\r\n", 400),
        (b"GET  /metrics HTTP/1.1\r\n\r\n", 400),
        (b"GET /metrics\r\n", 400),     // HTTP/0.9
        (b"GET /metrics\r\n\r\n", 400), // HTTP/0.9
        (b"GET /metrics HTTP/0.9\r\n\r\n", 400),
        (b"GET /metrics HTTP/2.0\r\n\r\n", 400),
        (
            b"GET /metrics HTTP/1.1\r\nX: gr\xc3\xbc\xc3\x9fe\r\n\r\n",
            400,
        ),
        (b"GET /metrics HTTP/1.1\r\nAccept: \xff\xfe\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nX\xc3\xbc: a\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nX: a\x00b\r\n\r\n", 400),
        (b"GET /m\xc3\xa9trics HTTP/1.1\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400),
        (
            b"GET /metrics HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            400,
        ),
        (b"G\x01T /metrics HTTP/1.1\r\n\r\n", 400),
        (b"OPTIONS * HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT example.com:443 HTTP/1.1\r\n\r\n", 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400), // a TLS ClientHello
        (b"\x00\x00\x00\x00\r\n\r\n", 400),
        (
            b"POST /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            411,
        ),
    ];
    for &(request, expected) in refused {
        let (transcript, end) = exchange(addr, request);
        assert_eq!(
            (statuses(&transcript).first().copied(), &end),
            (Some(expected), &End::Closed),
            "{:?} got {:?}",
            String::from_utf8_lossy(request),
            String::from_utf8_lossy(&transcript)
        );
    }

    // Each is answered with these statuses, in order (we close our side after sending).
    let answered: &[(&[u8], &[u16])] = &[
        (b"GET /metr%ZZics HTTP/1.1\r\n\r\n", &[404]),
        (b"GET /metrics%2F HTTP/1.1\r\n\r\n", &[404]),
        (b"GET /%00%%%zz HTTP/1.1\r\n\r\n", &[404]),
        (b"GET /metrics?%ZZ=%%%&&=&a[]=%00 HTTP/1.1\r\n\r\n", &[200]),
        (b"GET http://host:9877/metrics?x HTTP/1.1\r\n\r\n", &[200]),
        (b"get /metrics HTTP/1.1\r\n\r\n", &[405]),
        (b"\r\n\r\nGET /-/healthy HTTP/1.1\r\n\r\n", &[200]),
        (
            b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text;q=NaN;version=\",;;=,*/*;q=-1\r\n\r\n",
            &[200],
        ),
        (b"GET /metrics HTTP/1.0\r\n\r\n", &[200]),
        (b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", &[405]),
        // Pipelined: answered in order, a HEAD without its body, then the close asked for.
        (
            b"GET /metrics HTTP/1.1\r\n\r\nGET /-/healthy HTTP/1.1\r\n\r\nHEAD /metrics HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\nConnection: close\r\n\r\nGET /-/ready HTTP/1.1\r\n\r\n",
            &[200, 200, 200, 404],
        ),
        // Pipelined with garbage in the middle: what comes before is answered, then 400 and close.
        (
            b"GET /-/healthy HTTP/1.1\r\n\r\nBAD REQUEST\r\n\r\nGET /-/healthy HTTP/1.1\r\n\r\n",
            &[200, 400],
        ),
        (
            b"POST /-/healthy HTTP/1.1\r\nContent-Length: 16\r\n\r\nGET /x HTTP/1.1\r\nGET /-/ready HTTP/1.1\r\n\r\n",
            &[405, 200],
        ),
    ];
    for &(request, expected) in answered {
        let mut stream = connect(addr);
        stream.write_all(request).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let (transcript, end) = read_to_end(&mut stream, 1 << 20);
        assert_eq!(
            (statuses(&transcript), end),
            (expected.to_vec(), End::Closed),
            "{:?} got {:?}",
            String::from_utf8_lossy(request),
            String::from_utf8_lossy(&transcript)
        );
    }

    // Mutations of valid requests: never a panic, always a status or a plain close.
    let seeds: [&[u8]; 4] = [
        b"GET /metrics HTTP/1.1\r\nHost: localhost:9877\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n\r\n",
        b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /-/ready HTTP/1.1\r\n\r\n",
        b"POST /metrics HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\nbody",
        b"GET http://[::1]:9877/metrics?a=%41 HTTP/1.1\r\nAccept: text/plain;q=0.9\r\n\r\n",
    ];
    let mut rng = Rng::new(7);
    for case in 0..400 {
        let mut bytes = seeds[case % seeds.len()].to_vec();
        for _ in 0..1 + rng.below(6) {
            mutate(&mut rng, &mut bytes);
        }
        let mut stream = connect(addr);
        let _ = stream.write_all(&bytes);
        let _ = stream.shutdown(Shutdown::Write);
        let (transcript, end) = read_to_end(&mut stream, 1 << 20);
        assert_eq!(end, End::Closed, "{:?}", String::from_utf8_lossy(&bytes));
        assert!(
            transcript.is_empty() || transcript.starts_with(b"HTTP/1.1 "),
            "{:?} got {:?}",
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(&transcript)
        );
    }
    assert_still_serving(&exporter);
}

#[test]
fn slow_clients_are_dropped_at_the_header_deadline() {
    let (_target, exporter) = exporter("0.2");
    let base = settled_usage(exporter.pid());
    let addr = exporter.addr;
    let started = Instant::now();

    // A scraper that keeps its connection: idle between scrapes, which is not slow.
    let mut scraper = Client::connect(addr);
    assert_eq!(scraper.get("/metrics", "*/*").unwrap().status, 200);

    // Connects and sends nothing.
    let silent = thread::spawn(move || {
        let mut stream = connect(addr);
        let (got, end) = read_to_end(&mut stream, 1024);
        (got, end, started.elapsed())
    });
    // Sends half a request head, then nothing.
    let half = thread::spawn(move || {
        let mut stream = connect(addr);
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: ex")
            .unwrap();
        let (got, end) = read_to_end(&mut stream, 1024);
        (got, end, started.elapsed())
    });
    // Sends a header line one byte every 200 ms: each byte arrives in time, the head never.
    let drip = thread::spawn(move || {
        let mut stream = connect(addr);
        let mut writer = stream.try_clone().unwrap();
        let dripper = thread::spawn(move || {
            let head = b"GET /metrics HTTP/1.1\r\nX-Slow: ";
            for &byte in head.iter().chain([b'x'; 100].iter()) {
                if writer.write_all(&[byte]).is_err() {
                    break;
                }
                thread::sleep(Duration::from_millis(200));
            }
        });
        let (got, end) = read_to_end(&mut stream, 1024);
        dripper.join().unwrap();
        (got, end, started.elapsed())
    });
    // Asks for 5,000 scrapes in a row and reads none of them: the exporter's writes stall once
    // the socket buffers are full (about 10 MB on loopback; the answers are 18 MB).
    let mut unread = connect(addr);
    let mut writer = unread.try_clone().unwrap();
    let requests = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(5000);
    let flood = thread::spawn(move || writer.write_all(&requests).is_ok());

    // Wait for the four to be served, then for them to go: only the scraper's thread is left.
    wait_for_usage(
        &exporter,
        "slow connections accepted",
        Duration::from_secs(5),
        |now| now.threads == base.threads + 5,
    );
    let (after, dropped_after) = wait_for_usage(
        &exporter,
        "slow connections dropped",
        HEADER_DEADLINE + Duration::from_secs(8),
        |now| now.threads == base.threads + 1,
    );

    for (name, client, expected) in [
        ("silent", silent, ""),
        ("half a head", half, "HTTP/1.1 408 Request Timeout"),
        ("dripping", drip, "HTTP/1.1 408 Request Timeout"),
    ] {
        let (got, end, took) = client.join().unwrap();
        let got = String::from_utf8_lossy(&got);
        assert!(
            got.starts_with(expected) && (expected.is_empty() || got.contains("Connection: close")),
            "{name}: {got:?}"
        );
        assert_eq!(end, End::Closed, "{name}");
        assert!(
            took >= HEADER_DEADLINE - Duration::from_millis(500)
                && took < HEADER_DEADLINE + Duration::from_secs(5),
            "{name}: dropped after {took:?}"
        );
    }
    // The reader that never read was dropped too: what it finds is part of the answers, then
    // the end of the connection (not all 5,000 answers and a connection waiting for more).
    let (kept, end) = read_to_end(&mut unread, usize::MAX);
    let answers = kept.windows(9).filter(|w| w == b"HTTP/1.1 ").count();
    assert_eq!(end, End::Closed);
    assert!(answers > 0 && answers < 5000, "{answers} answers");
    let _ = flood.join();

    // The idle scraper outlived the header deadline, and its connection still serves.
    assert_eq!(scraper.get("/metrics", "*/*").unwrap().status, 200);
    assert!(after.fds <= base.fds + 2, "base {base:?}, after {after:?}");
    eprintln!(
        "slow clients: base {base:?}, all dropped after {:?} ({dropped_after:?} of waiting), \
         then {after:?}; the unread client got {answers} of 5000 answers",
        started.elapsed()
    );
    assert_still_serving(&exporter);
}

#[test]
fn a_thousand_connections_neither_stop_scrapes_nor_grow_the_exporter() {
    let _heavy = harness::heavy();
    let (_target, exporter) = exporter("0.2");
    let addr = exporter.addr;
    // Each connection is a descriptor in this process too (the exporter holds at most 64).
    // Below ~2,200 allowed descriptors, fewer connections are opened, leaving room for the
    // tests that run alongside; still far more than the exporter holds.
    let allowed = open_files_limit();
    let count = if allowed >= 2200 {
        1000
    } else {
        allowed.saturating_sub(400).clamp(200, 1000) as usize
    };
    // The flood comes from three other addresses than the scrapers'.
    let flooders = [
        harness::loopback(2),
        harness::loopback(3),
        harness::loopback(4),
    ];

    // A scraper connected before the flood, like Prometheus with its kept-alive connection.
    let mut scraper = Client::connect(addr);
    assert_eq!(scraper.get("/metrics", "*/*").unwrap().status, 200);
    let base = settled_usage(exporter.pid());

    let peak = PeakRss::start(exporter.pid());
    let flood_started = Instant::now();
    let mut flood = Vec::with_capacity(count);
    for i in 0..count {
        let source = flooders[i % flooders.len()];
        let mut stream = harness::connect_from(source, addr).expect("connect to the exporter");
        if i % 2 == 1 {
            // Half of them start a request and never finish it.
            let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
        }
        flood.push(stream);
    }
    let opened_in = flood_started.elapsed();

    // While they are open: the exporter holds at most the cap (the scraper's connection is one).
    let (during, _) = wait_for_usage(
        &exporter,
        "the cap reached",
        Duration::from_secs(5),
        |now| now.threads >= base.threads + MAX_CONNECTIONS - 2,
    );
    // A closed connection's thread may not have ended yet: a few more for a moment.
    assert!(
        during.threads <= base.threads + MAX_CONNECTIONS + 3,
        "base {base:?}, during {during:?}"
    );
    assert!(
        during.fds <= base.fds + MAX_CONNECTIONS + 8,
        "base {base:?}, during {during:?}"
    );

    // The scraper's connection, which waits between scrapes, was not closed to make room for
    // the flood (whose addresses are over their share): it is served at once...
    let asked = Instant::now();
    let answer = scraper.get("/metrics", "*/*").unwrap();
    let kept_alive_latency = asked.elapsed();
    assert_eq!(answer.status, 200);
    assert!(kept_alive_latency < AT_ONCE, "{kept_alive_latency:?}");

    // ... and so is a new one from the scraper's address, under its share: it takes the place
    // of a connection of the flood...
    let asked = Instant::now();
    let fresh = harness::get(addr, "GET", "/metrics", &[]);
    let new_latency = asked.elapsed();
    assert_eq!(fresh.status, 200, "{fresh:?}");
    assert!(new_latency < AT_ONCE, "{new_latency:?}");

    // ... while one more from a flooding address, over its share and all of whose connections
    // are in the middle of a request by now, is refused at once, cheaply. Two things can let
    // it in instead, each only once per connection of the flood: a connection of its address
    // whose first bytes the server has not read yet still counts as waiting and gives way; and
    // a slot left free (by the new scrape above, or by a newcomer served and gone) is taken
    // by whoever comes. So before each try the other flooding addresses fill any free slot
    // with an unfinished request of their own (over their share, they take no other's place),
    // and a newcomer served means one waiting connection fewer: the tries end, within as many
    // as there are slots, with a refusal, each answered at once.
    let mut refusal_latency = Duration::ZERO;
    let mut answers = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        for source in &flooders[1..] {
            if let Ok(mut stream) = harness::connect_from(*source, addr) {
                let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
                flood.push(stream);
            }
        }
        thread::sleep(Duration::from_millis(200));
        let asked = Instant::now();
        let mut stream = harness::connect_from(flooders[0], addr).unwrap();
        stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let (transcript, _) = read_to_end(&mut stream, 1024);
        refusal_latency = asked.elapsed();
        assert!(refusal_latency < AT_ONCE, "{refusal_latency:?}");
        answers.extend(statuses(&transcript));
        if answers.last() == Some(&503) {
            break;
        }
    }
    assert_eq!(answers.last(), Some(&503), "{answers:?}");
    let peak_rss_kib = peak.stop();
    assert!(peak_rss_kib < RSS_LIMIT_KIB, "peak RSS {peak_rss_kib} KiB");

    // Once they go away, the exporter is back where it was.
    drop(flood);
    let (after, _) = wait_for_usage(
        &exporter,
        "back to the base",
        Duration::from_secs(5),
        |now| now.threads == base.threads && now.fds <= base.fds,
    );
    assert_eq!(scraper.get("/metrics", "*/*").unwrap().status, 200);
    eprintln!(
        "{count} connections opened in {opened_in:?}: base {base:?}, during {during:?} \
         (peak RSS {peak_rss_kib} KiB), after {after:?}; kept-alive scrape {kept_alive_latency:?}, \
         new scrape {new_latency:?}, refusal {refusal_latency:?}"
    );
    assert_still_serving(&exporter);
}

#[test]
fn clients_that_hold_every_slot_cannot_lock_out_a_scraper() {
    // The attack of issue 12: 64 kept-alive connections without credentials, from 8
    // addresses (8 each, within the per-address limit), each answered 401 and kept open.
    let dir = harness::temp_dir("hardening-every-slot");
    let users = dir.join("users");
    std::fs::write(&users, "prometheus:s3cret\n").unwrap();
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let exporter = Exporter::start(
        &[],
        &[
            ("TARGET_URL", &target.url("/status")),
            ("WEB_BASIC_AUTH_FILE", users.to_str().unwrap()),
        ],
    );
    let addr = exporter.addr;
    let good = ("Authorization", "Basic cHJvbWV0aGV1czpzM2NyZXQ=");
    assert_eq!(harness::get(addr, "GET", "/metrics", &[good]).status, 200);
    let base = settled_usage(exporter.pid());
    let mut holders = Vec::new();
    for i in 0..MAX_CONNECTIONS as usize {
        let source = harness::loopback(2 + (i % 8) as u8);
        let stream = harness::connect_from(source, addr).expect("connect to the exporter");
        stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
        let mut client = Client {
            stream,
            buf: Vec::new(),
        };
        assert_eq!(client.get("/metrics", "*/*").unwrap().status, 401);
        holders.push(client);
    }
    let (during, _) = wait_for_usage(
        &exporter,
        "every slot held",
        Duration::from_secs(5),
        |now| now.threads >= base.threads + MAX_CONNECTIONS,
    );
    // A scraper with credentials gets its scrape on a new connection, at once: the connection
    // that has waited longest for a request makes room.
    let asked = Instant::now();
    let scrape = harness::get(addr, "GET", "/metrics", &[good]);
    let latency = asked.elapsed();
    assert_eq!(scrape.status, 200, "{scrape:?}");
    assert!(scrape.body.contains("app_requests_current 4"));
    assert!(latency < AT_ONCE, "{latency:?}");
    // The first holder was closed to make room; the others go on.
    let closed = holders[0].get("/metrics", "*/*");
    assert!(closed.is_err(), "the oldest holder still served");
    assert_eq!(holders[1].get("/metrics", "*/*").unwrap().status, 401);
    eprintln!(
        "64 kept-alive holders: base {base:?}, during {during:?}; a scraper's new connection \
         answered in {latency:?}"
    );
    drop(holders);
    assert_still_serving_with(&exporter, good.1);
}

#[test]
fn one_client_address_gives_way_to_others_at_the_cap() {
    let _heavy = harness::heavy();
    let (_target, exporter) = exporter("0.2");
    let addr = exporter.addr;
    let base = settled_usage(exporter.pid());
    let hog = harness::loopback(20);
    // One address takes every slot, each with a request it never finishes.
    let mut held = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        let mut stream = harness::connect_from(hog, addr).unwrap();
        stream.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
        held.push(stream);
    }
    let (during, _) = wait_for_usage(
        &exporter,
        "every slot taken by one address",
        Duration::from_secs(5),
        |now| now.threads >= base.threads + MAX_CONNECTIONS,
    );
    // Nothing tells from outside when the server has read the first bytes of each request
    // (which makes the connection busy): a moment for that.
    thread::sleep(Duration::from_millis(500));
    // One more from that address is refused at once: none of its connections waits.
    let mut refused = harness::connect_from(hog, addr).unwrap();
    refused.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    let asked = Instant::now();
    refused.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    let (transcript, end) = read_to_end(&mut refused, 1024);
    assert_eq!((statuses(&transcript), end), (vec![503], End::Closed));
    assert!(asked.elapsed() < AT_ONCE, "{:?}", asked.elapsed());
    // Clients from three other addresses, 16 each, get their scrapes at once: the address over
    // its share gives back slots until it holds its 16.
    let mut clients = Vec::new();
    let mut slowest = Duration::ZERO;
    for i in 0..3 * PER_ADDRESS {
        let source = harness::loopback(21 + (i / PER_ADDRESS) as u8);
        let stream = harness::connect_from(source, addr).unwrap();
        stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
        let mut client = Client {
            stream,
            buf: Vec::new(),
        };
        let asked = Instant::now();
        assert_eq!(client.get("/metrics", "*/*").unwrap().status, 200);
        slowest = slowest.max(asked.elapsed());
        clients.push(client);
    }
    assert!(slowest < AT_ONCE, "{slowest:?}");
    let after = usage(exporter.pid());
    assert!(
        after.threads <= base.threads + MAX_CONNECTIONS + 3,
        "base {base:?}, during {during:?}, after {after:?}"
    );
    // The hog gave back all but its share.
    // Closed to make room: an end of stream at once. Still open: nothing to read (the header
    // deadline, which would end them with 408, is seconds away).
    let closed = held
        .iter()
        .filter(|stream| {
            let mut stream: &TcpStream = stream;
            stream
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            match stream.read(&mut [0u8; 64]) {
                Ok(n) => n == 0,
                Err(e) => !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ),
            }
        })
        .count();
    eprintln!(
        "one address with every slot: base {base:?}, during {during:?}, after 48 others came \
         {after:?} (slowest scrape {slowest:?}); {closed} of its connections closed"
    );
    assert_eq!(closed as u64, MAX_CONNECTIONS - PER_ADDRESS);
    drop(held);
    drop(clients);
    assert_still_serving(&exporter);
}

#[test]
fn clients_that_never_read_share_one_copy_of_the_body() {
    let _heavy = harness::heavy();
    // About 1.4 MB of exposition from 2,000 series with long label values: a large body from a
    // document that takes little to map, so that the memory measured is the serving's.
    let name = "x".repeat(640);
    let items: Vec<String> = (0..2000)
        .map(|i| format!(r#"{{"name": "{name}{i}", "value": {i}}}"#))
        .collect();
    let target = Target::start(Reply::Json(format!(
        r#"{{"items": [{}]}}"#,
        items.join(",")
    )));
    let dir = harness::temp_dir("hardening-never-read");
    let mapping = dir.join("mapping.json");
    std::fs::write(
        &mapping,
        r#"{"metrics": [{"name": "item_value", "help": "Item value", "each": "/items",
                         "labels": {"item": "/name"}, "path": "/value"}]}"#,
    )
    .unwrap();
    let exporter = Exporter::start(
        &[],
        &[
            ("TARGET_URL", &target.url("/status")),
            ("CONFIG_FILE", mapping.to_str().unwrap()),
            ("POLLING_INTERVAL_SECONDS", "30"),
        ],
    );
    exporter.wait_ready(Duration::from_secs(10));
    let body_bytes = exporter.scrape().len() as u64;
    assert!(body_bytes > 1_300_000, "{body_bytes}");
    let base = settled_usage(exporter.pid());

    // 64 clients, from 64 addresses so that the per-address limit leaves them all in, each
    // asking for the metrics once and reading nothing: every answer waits in its thread.
    let peak = PeakRss::start(exporter.pid());
    let mut clients = Vec::new();
    for i in 0..MAX_CONNECTIONS as u8 {
        let mut stream = harness::connect_from(harness::loopback(100 + i), exporter.addr).unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        clients.push(stream);
    }
    let (during, _) = wait_for_usage(
        &exporter,
        "64 connections served",
        Duration::from_secs(5),
        |now| now.threads >= base.threads + MAX_CONNECTIONS,
    );
    // Their writes are blocked (the write deadline is 10 s): watch them for two seconds.
    thread::sleep(Duration::from_secs(2));
    let peak_kib = peak.stop();
    let limit_kib = RSS_LIMIT_KIB + body_bytes / 1024;
    eprintln!(
        "64 clients that never read a {body_bytes}-byte body: base {base:?}, during {during:?}, \
         peak RSS {peak_kib} KiB (limit {limit_kib} KiB)"
    );
    assert!(
        peak_kib <= limit_kib,
        "peak RSS {peak_kib} KiB, more than {limit_kib} KiB"
    );
    drop(clients);
    let body = exporter.scrape();
    assert!(body.contains("item_value{item=\""), "{}", &body[..200]);
}
#[test]
fn running_out_of_descriptors_pauses_accepting_and_never_ends_it() {
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    // 24 descriptors: the standard three, the listener and a few for polling and /proc leave
    // room for about 16 connections, far below the connection cap.
    let exporter = limited_exporter(24, &target.url("/status"));
    let addr = exporter.addr;
    let mut hogs: Vec<TcpStream> = (0..40).map(|_| connect(addr)).collect();
    // One more, with a whole request: it waits in the kernel's queue while accept fails.
    let mut waiting = connect(addr);
    waiting
        .write_all(b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while exporter.log_lines("cannot accept connections").is_empty() {
        assert!(
            Instant::now() < deadline,
            "accept never failed:\n{}",
            exporter.stderr().join("\n")
        );
        thread::sleep(Duration::from_millis(20));
    }
    // Out of descriptors: the exporter keeps running and retries.
    thread::sleep(Duration::from_millis(300)); // several retries (every 50 ms) happen here
                                               // The kernel keeps descriptors below the limit; a connection thread holds one each.
    let held = usage(exporter.pid());
    assert!(held.threads < 24, "{held:?}");
    // The hogs go; the waiting request is accepted and answered.
    for hog in &mut hogs {
        let _ = hog.shutdown(Shutdown::Both);
    }
    drop(hogs);
    let (transcript, end) = read_to_end(&mut waiting, 1 << 20);
    assert_eq!(end, End::Closed);
    assert_eq!(
        statuses(&transcript).first(),
        Some(&200),
        "{}\nstderr:\n{}",
        String::from_utf8_lossy(&transcript),
        exporter.stderr().join("\n")
    );
    let response = harness::get(addr, "GET", "/metrics", &[]);
    assert_eq!(response.status, 200);
    let lines = exporter.log_lines("cannot accept connections");
    assert_eq!(lines.len(), 1, "one line per burst: {lines:?}");
    assert!(lines[0].contains("retrying"), "{lines:?}");
    assert!(
        exporter.log_lines("panicked").is_empty(),
        "{}",
        exporter.stderr().join("\n")
    );
    eprintln!("out of descriptors: {held:?}; logged: {}", lines[0]);
}

#[test]
fn soak_100000_scrapes_leak_nothing() {
    const CONNECTIONS: usize = 16;
    const SCRAPES: usize = 100_000;
    const WARM_UP: usize = 500; // per connection
    let _heavy = harness::heavy();
    let (_target, exporter) = exporter("0.1");
    let idle = settled_usage(exporter.pid());
    let addr = exporter.addr;

    // Each client thread: warm up, wait for the baseline, scrape its share, wait for the end
    // measurement, then close.
    let barrier = Arc::new(std::sync::Barrier::new(CONNECTIONS + 1));
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let mut client = Client::connect(addr);
                let scrape = |client: &mut Client, n: usize| {
                    let openmetrics = n % 2 == 1;
                    let accept = if openmetrics {
                        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
                    } else {
                        "text/plain;version=0.0.4"
                    };
                    let answer = client.get("/metrics", accept).expect("a scrape");
                    assert_eq!(answer.status, 200, "{}", answer.head);
                    if n % 1000 == 0 {
                        let body = String::from_utf8(answer.body).unwrap();
                        assert!(body.starts_with("# HELP app_requests_current"), "{body}");
                        assert_eq!(body.ends_with("# EOF\n"), openmetrics);
                    }
                };
                for n in 0..WARM_UP {
                    scrape(&mut client, n);
                }
                barrier.wait(); // warmed up
                barrier.wait(); // baseline taken
                for n in (i..SCRAPES).step_by(CONNECTIONS) {
                    scrape(&mut client, n);
                }
                barrier.wait(); // all done
                barrier.wait(); // end taken
            })
        })
        .collect();
    barrier.wait();
    let polls_before = exporter.value("status_exporter_polls_total").unwrap();
    let start = settled_usage(exporter.pid());
    let started = Instant::now();
    barrier.wait();
    barrier.wait();
    let took = started.elapsed();
    let end = settled_usage(exporter.pid());
    let polls = exporter.value("status_exporter_polls_total").unwrap() - polls_before;
    barrier.wait();
    for client in clients {
        client.join().expect("a client thread failed");
    }
    let (closed, _) = wait_for_usage(
        &exporter,
        "threads and descriptors back to idle",
        Duration::from_secs(5),
        |now| now.threads == idle.threads && now.fds <= idle.fds,
    );
    eprintln!(
        "soak: {SCRAPES} scrapes over {CONNECTIONS} connections in {took:?} ({:.0}/s) while \
         {polls} polls ran; idle {idle:?}, start {start:?}, end {end:?}, closed {closed:?}",
        SCRAPES as f64 / took.as_secs_f64()
    );
    assert!(polls > 0.0, "the poller did not run during the soak");
    assert!(
        end.rss_kib <= start.rss_kib + 2048,
        "RSS grew from {} KiB to {} KiB",
        start.rss_kib,
        end.rss_kib
    );
    assert_eq!(end.threads, start.threads, "start {start:?}, end {end:?}");
    assert!(end.fds <= start.fds, "start {start:?}, end {end:?}");
    assert!(end.rss_kib < RSS_LIMIT_KIB, "{end:?}");
    assert_still_serving(&exporter);
}

#[test]
fn basic_auth_guards_the_metrics_and_follows_its_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = harness::temp_dir("hardening-basic-auth");
    let users = dir.join("users");
    let write_users = |content: &str| {
        // Written aside and renamed, as an editor or a config tool does: never half a file.
        let new = dir.join("users.new");
        std::fs::write(&new, content).unwrap();
        std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::rename(&new, &users).unwrap();
    };
    write_users("# who may scrape\nprometheus:s3cret\n");
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let users_path = users.to_str().unwrap();
    let exporter = Exporter::start(
        &[],
        &[
            ("TARGET_URL", &target.url("/status")),
            ("WEB_BASIC_AUTH_FILE", users_path),
        ],
    );
    let addr = exporter.addr;
    assert_eq!(
        exporter
            .log_lines(&format!("basic auth: users from {users_path}"))
            .len(),
        1,
        "{:?}",
        exporter.stderr()
    );
    assert!(exporter.log_lines("readable by every user").is_empty());
    let basic = |credentials: &str| format!("Basic {credentials}");
    let good = basic("cHJvbWV0aGV1czpzM2NyZXQ="); // prometheus:s3cret
    let wrong = basic("cHJvbWV0aGV1czp3cm9uZw=="); // prometheus:wrong
    let scrape = |path: &str, authorization: Option<&str>| {
        let headers: Vec<(&str, &str)> = authorization
            .map(|a| ("Authorization", a))
            .into_iter()
            .collect();
        harness::get(addr, "GET", path, &headers)
    };
    // Ready (a poll has succeeded): asked without credentials, as orchestrators do.
    let deadline = Instant::now() + Duration::from_secs(10);
    while scrape("/-/ready", None).status != 200 {
        assert!(Instant::now() < deadline, "never ready");
        thread::sleep(Duration::from_millis(20));
    }

    // Without credentials, or with wrong ones: 401 and the challenge, no metrics.
    for authorization in [
        None,
        Some(wrong.as_str()),
        Some("Bearer cHJvbWV0aGV1czpzM2NyZXQ="),
    ] {
        for path in ["/metrics", "/"] {
            let response = scrape(path, authorization);
            assert_eq!(
                response.status, 401,
                "{path} {authorization:?}: {response:?}"
            );
            assert_eq!(
                response.headers.get("www-authenticate").map(String::as_str),
                Some(r#"Basic realm="status-exporter", charset="UTF-8""#)
            );
            assert!(!response.body.contains("app_requests"), "{response:?}");
        }
    }
    let head = harness::get(addr, "HEAD", "/metrics", &[]);
    assert_eq!((head.status, head.body.as_str()), (401, ""));
    // With them: the metrics. The health endpoints never ask.
    let response = scrape("/metrics", Some(&good));
    assert_eq!(response.status, 200, "{response:?}");
    assert!(response.body.contains("app_requests_current 4"));
    assert_eq!(scrape("/", Some(&good)).status, 200);
    assert_eq!(scrape("/-/healthy", None).status, 200);
    assert_eq!(scrape("/-/ready", None).status, 200);

    // A changed file is read once it has settled (1 s): until `authorization` gets `status`,
    // `meanwhile` must hold at every scrape.
    let until = |authorization: &str, status: u16, meanwhile: &dyn Fn()| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while scrape("/metrics", Some(authorization)).status != status {
            meanwhile();
            assert!(
                Instant::now() < deadline,
                "never {status} for {authorization}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    };

    // A new password next to the old one, then the old one removed: no restart, no gap.
    let new = basic("cHJvbWV0aGV1czpuM3ctYW5kLWxvbmdlcg=="); // prometheus:n3w-and-longer
    write_users("prometheus:s3cret\nprometheus:n3w-and-longer\n");
    until(&new, 200, &|| {
        assert_eq!(scrape("/metrics", Some(&good)).status, 200)
    });
    assert_eq!(scrape("/metrics", Some(&good)).status, 200);
    write_users("prometheus:n3w-and-longer\nother:pw\n");
    until(&good, 401, &|| {
        assert_eq!(scrape("/metrics", Some(&new)).status, 200)
    });
    assert_eq!(scrape("/metrics", Some(&new)).status, 200);
    assert_eq!(scrape("/metrics", Some(&basic("b3RoZXI6cHc="))).status, 200); // other:pw
    assert_eq!(exporter.log_lines("users reloaded from").len(), 2);

    // A broken file, then none at all: the last good users stay, and each is reported once,
    // with its own error.
    write_users("prometheus n3w-and-longer\n");
    let reported = |count: usize| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while exporter.log_lines("previous users stay").len() < count {
            assert_eq!(scrape("/metrics", Some(&new)).status, 200);
            assert!(Instant::now() < deadline, "{:?}", exporter.stderr());
            thread::sleep(Duration::from_millis(20));
        }
    };
    reported(1);
    std::fs::remove_file(&users).unwrap();
    reported(2);
    assert_eq!(scrape("/metrics", Some(&new)).status, 200);
    assert_eq!(scrape("/metrics", Some(&good)).status, 401);
    let warnings = exporter.log_lines("previous users stay");
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    // Each version read holds passwords in plain text: one warning each, naming the lines.
    let plain = exporter.log_lines("in plain text");
    assert_eq!(plain.len(), 3, "{plain:?}");
    assert!(
        plain[2].ends_with(
            ": lines 1, 2 hold a password in plain text; store bcrypt hashes instead (htpasswd -B)"
        ),
        "{plain:?}"
    );
    assert!(
        warnings[0].contains("line 1: no colon") && warnings[0].contains("previous users stay"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].contains("No such file") && warnings[1].contains("previous users stay"),
        "{warnings:?}"
    );
    assert!(
        exporter.stderr().iter().all(|l| !l.contains("n3w")),
        "a password in the log: {:?}",
        exporter.stderr()
    );
    write_users("prometheus:s3cret\n");
    until(&good, 200, &|| {});
    assert_still_serving_with(&exporter, &good);

    // Start-up: a missing file stops the exporter (exit 2); a file all users can read is
    // served, with a warning.
    let output = harness::command(&[], &[("WEB_BASIC_AUTH_FILE", "/nonexistent/users")])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: WEB_BASIC_AUTH_FILE: /nonexistent/users: cannot read it: No such file or directory (os error 2)\n"
    );
    std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = Exporter::start(
        &["--web-basic-auth-file", users_path],
        &[("TARGET_URL", &target.url("/status"))],
    );
    assert_eq!(
        open.log_lines("is readable by every user of this host; chmod o-r it")
            .len(),
        1
    );
    assert_eq!(harness::get(open.addr, "GET", "/metrics", &[]).status, 401);
}

/// [`assert_still_serving`] for an exporter that asks for credentials.
fn assert_still_serving_with(exporter: &Exporter, authorization: &str) {
    let response = harness::get(
        exporter.addr,
        "GET",
        "/metrics",
        &[("Authorization", authorization)],
    );
    assert_eq!(response.status, 200, "{response:?}");
    assert!(exporter.log_lines("panicked").is_empty());
}

// ---------------------------------------------------------------------------------------------
// Helpers of single tests.

/// The soft limit on open files of this process (which children inherit).
fn open_files_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("read /proc/self/limits");
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|soft| soft.parse().ok())
        .unwrap_or(1024)
}

/// The exporter under `ulimit -n LIMIT` (set by `sh`, which then execs the binary), for the
/// one test that needs a descriptor limit of its own.
fn limited_exporter(limit: u32, target_url: &str) -> Exporter {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -n {limit} && exec \"$0\""))
        .arg(harness::binary())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TARGET_URL", target_url)
        .env("POLLING_INTERVAL_SECONDS", "0.2")
        .env("EXPORTER_PORT", "0")
        .env("LISTEN_ADDRESS", "127.0.0.1");
    Exporter::spawn(command, Duration::from_secs(10))
}

/// One random change: a byte replaced, inserted or removed, a piece duplicated or cut, or a
/// byte that matters to HTTP (CR, LF, colon, space, NUL, %, a non-ASCII byte) put in.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    const SPECIAL: &[u8] = b"\r\n: \x00%?/\xff\x80\t\"";
    let at = rng.below(bytes.len() + 1);
    match rng.below(6) {
        0 if at < bytes.len() => bytes[at] = rng.next() as u8,
        1 => bytes.insert(at, SPECIAL[rng.below(SPECIAL.len())]),
        2 if at < bytes.len() => {
            bytes.remove(at);
        }
        3 => {
            let end = (at + rng.below(16)).min(bytes.len());
            let piece = bytes[at..end].to_vec();
            bytes.splice(at..at, piece);
        }
        4 => bytes.truncate(at),
        _ => {
            let end = (at + 1 + rng.below(8)).min(bytes.len());
            bytes.splice(at..end, b"%zz".iter().copied());
        }
    }
}
