//! A small, bounded HTTP/1.1 server on `std::net`: the accept loop, one thread per connection,
//! request framing (parsed with `httparse`), keep-alive and pipelining, timeouts, and the bytes of
//! each response.
//!
//! Everything a client controls is bounded: connections by [`Limits::max_connections`], memory
//! by a fixed read buffer of [`Limits::max_head_bytes`] per connection, and time by the header,
//! idle and write timeouts. It knows nothing about routes, metrics, content types or what the
//! handler does: the caller hands [`serve`] a function from [`Request`] to [`Response`], and this
//! file owns the framing headers (`Content-Length`, `Connection`, `Date`) around it.
//!
//! Deliberate choices, all answered with the error and `Connection: close`:
//! - request bodies are never given to the handler: a `Content-Length` body up to
//!   [`Limits::max_body_bytes`] is read and discarded, a larger one gets 413, and any
//!   `Transfer-Encoding` gets 411 (we take no chunked bodies);
//! - the target must be origin-form (`/path?query`) or absolute-form (`http://host/path`, reduced
//!   to its path); `OPTIONS *`, `CONNECT host:port`, HTTP/0.9 and anything else get 400;
//! - non-ASCII bytes in the target or in a header value get 400 (every value the handler sees is
//!   ASCII);
//! - a missing `Host` header is accepted (RFC 9112 asks for 400): the exporter serves a single
//!   host, and hand-written health checks often leave it out.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::log;

/// What the server allows a client. Every field bounds a resource a client could otherwise hold.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections served at once. Past it, a new connection gets a canned 503 written without
    /// blocking and is closed. Default 64: Prometheus keeps one connection per scraper, so a few
    /// scrapers and a person with curl use a handful; 64 threads cost about 64 × (stack touched
    /// + `max_head_bytes`), around 2 MiB.
    pub max_connections: usize,
    /// Request line plus headers, in bytes; also the size of each connection's read buffer.
    /// Past it: 414 when the request line alone does not fit, 431 otherwise, then close.
    /// Default 16 KiB: a Prometheus scrape sends about 300 bytes, and 16 KiB leaves room for a
    /// browser with cookies or a proxy's extra headers (nginx and Apache allow 8 KiB per line).
    pub max_head_bytes: usize,
    /// Time for a whole request head (and body, if any) to arrive, counted from its first byte,
    /// or from the accept for the first request of a connection: a slow client (slowloris) is
    /// answered 408 and dropped when it runs out. Default 10 s: a scraper sends its head in one
    /// packet, so only a very slow link comes near it, and it frees a held slot quickly.
    pub header_timeout: Duration,
    /// Time a keep-alive connection may sit between a response and the first byte of the next
    /// request; then it is closed without a word. Default 75 s (nginx's default): longer than
    /// Prometheus' default 1 minute scrape interval, so a scraper keeps its connection from one
    /// scrape to the next (Prometheus itself keeps idle connections 5 minutes) instead of paying
    /// a new handshake each time. Closing one earlier is harmless: the client reconnects.
    pub idle_timeout: Duration,
    /// Time to hand a whole response to the kernel; a client that does not read it is dropped.
    /// Default 10 s: Prometheus' default scrape timeout, after which it has given up anyway.
    pub write_timeout: Duration,
    /// Largest request body read (and discarded: no route takes one). A larger
    /// `Content-Length` gets 413 and close. Default 64 KiB: bodies are read through a small
    /// stack buffer, so this costs time (within `header_timeout`), never memory.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 64,
            max_head_bytes: 16 * 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            write_timeout: Duration::from_secs(10),
            max_body_bytes: 64 * 1024,
        }
    }
}

/// One request as the handler sees it, borrowed from the connection's read buffer.
#[derive(Debug)]
pub struct Request<'a> {
    /// As sent, case-sensitive (`GET`, `HEAD`, ...). The handler is called for `HEAD` too; the
    /// server drops the body it returns.
    pub method: &'a str,
    /// The target's path without the query string, not percent-decoded: `/metrics` for
    /// `GET /metrics?x=1` and for `GET http://host:9100/metrics`. Always starts with `/`.
    pub path: &'a str,
    headers: &'a [httparse::Header<'a>],
}

impl Request<'_> {
    /// The value of the first header called `name` (case-insensitive), without surrounding
    /// whitespace. Values are always ASCII: the server refuses any other request with 400.
    pub fn header(&self, name: &str) -> Option<&str> {
        let header = self
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))?;
        std::str::from_utf8(header.value).ok()
    }
}

/// What the handler answers. The server adds `Content-Length`, `Date`, and `Connection` when
/// needed, and drops any `Content-Length`, `Transfer-Encoding` or `Connection` the handler sets.
/// A status outside 200-599 is sent as 500; 204 and 304 are sent without a body. Control
/// characters in header values are replaced by spaces, so a value can never split the response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// Serves `listener` forever on the calling thread and never returns: no error ends the loop.
///
/// Each accepted connection gets `TCP_NODELAY` and its own thread (named `http`, with a
/// 256 KiB stack, which `handle` runs on) while fewer than `limits.max_connections` are
/// open; past that it is answered 503 from this thread without blocking. Failures of `accept`
/// (out of file descriptors, a client gone before the accept) and of thread creation are retried
/// or end only that connection, with at most one line on stderr per burst. A panic in `handle` is
/// answered 500 and the connection goes on; this relies on `panic = "unwind"`, the default.
pub fn serve<F>(listener: TcpListener, limits: Limits, handle: F) -> !
where
    F: Fn(&Request) -> Response + Send + Sync + 'static,
{
    // A listener left non-blocking would make every accept fail with WouldBlock.
    let _ = listener.set_nonblocking(false);
    let limits = Arc::new(limits);
    let handle = Arc::new(handle);
    let open = Arc::new(AtomicUsize::new(0));
    let mut accept_failures = Burst::default();
    let mut refusals = Burst::default();
    let mut spawn_failures = Burst::default();
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                // A client that reset before we accepted it, or a signal: nothing to wait for.
                if !matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                ) {
                    if accept_failures.starts() {
                        log::warn!("cannot accept connections: {e}; retrying");
                    }
                    thread::sleep(ACCEPT_RETRY);
                }
                continue;
            }
        };
        accept_failures.ends();
        // Only this thread increments `open`, so the count cannot grow between check and take.
        if open.load(Ordering::Acquire) >= limits.max_connections {
            if refusals.starts() {
                log::warn!(
                    "{} connections open, the limit; answering new ones 503",
                    limits.max_connections
                );
            }
            refuse(stream);
            continue;
        }
        refusals.ends();
        let _ = stream.set_nodelay(true);
        let accepted = Instant::now();
        let slot = Slot::take(&open);
        let limits = Arc::clone(&limits);
        let handle = Arc::clone(&handle);
        let spawned = thread::Builder::new()
            .name("http".to_string())
            .stack_size(STACK_BYTES)
            .spawn(move || {
                let _slot = slot;
                connection(stream, accepted, &limits, &*handle);
            });
        // On failure the closure is dropped here: that closes the stream and frees the slot.
        match spawned {
            Ok(_) => spawn_failures.ends(),
            Err(e) => {
                if spawn_failures.starts() {
                    log::warn!(
                        "cannot start a connection thread: {e}; \
                         closing new connections until one starts"
                    );
                }
            }
        }
    }
}

/// Stack of each connection thread, which the handler runs on. Only touched pages cost memory.
/// Not 64 KiB: the default panic hook needs 32-48 KiB to capture a backtrace when
/// `RUST_BACKTRACE` is set (measured: 32 KiB overflows and aborts the process), on top of what
/// the handler uses.
const STACK_BYTES: usize = 256 * 1024;
/// Pause after a failed accept (out of file descriptors, ...), so the loop does not spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);
/// Least time between two log lines about the same kind of trouble.
const LOG_INTERVAL: Duration = Duration::from_secs(60);
/// Headers in one request; more get 431. A scrape sends about 6.
const MAX_HEADERS: usize = 64;
/// How long a closing connection keeps reading (and dropping) what the client still sends, so
/// that the kernel closes with FIN and the client can read our last response, not a reset.
const LINGER: Duration = Duration::from_secs(1);
/// How much a closing connection reads at most while lingering.
const LINGER_BYTES: usize = 256 * 1024;
/// Written to connections past `max_connections`. Fits any empty socket buffer in one write.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
    Content-Type: text/plain; charset=utf-8\r\n\
    Content-Length: 24\r\n\
    Connection: close\r\n\
    \r\n\
    503 Service Unavailable\n";

/// A run of the same failure, logged once when it starts (and at most once per
/// [`LOG_INTERVAL`], so a failure that comes and goes does not flood the log).
#[derive(Default)]
struct Burst {
    on: bool,
    last_report: Option<Instant>,
}

impl Burst {
    /// Notes one failure; true when it starts a burst that should be logged.
    fn starts(&mut self) -> bool {
        if self.on {
            return false;
        }
        self.on = true;
        let due = self
            .last_report
            .map_or(true, |t| t.elapsed() >= LOG_INTERVAL);
        if due {
            self.last_report = Some(Instant::now());
        }
        due
    }

    fn ends(&mut self) {
        self.on = false;
    }
}

/// One counted connection; gives its place back when dropped, even by a panic.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(open: &Arc<AtomicUsize>) -> Slot {
        open.fetch_add(1, Ordering::AcqRel);
        Slot(Arc::clone(open))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Answers a connection past the limit from the accept thread without ever blocking on it.
fn refuse(stream: TcpStream) {
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let _ = (&stream).write(REFUSAL);
    // Read what the client already sent, so that closing sends FIN rather than a reset that
    // could discard the 503 (best effort: more may still be on its way).
    let mut scratch = [0u8; 1024];
    for _ in 0..8 {
        match (&stream).read(&mut scratch) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
}

/// Serves requests on one connection until either side closes or a limit is hit.
fn connection<F>(stream: TcpStream, accepted: Instant, limits: &Limits, handle: &F)
where
    F: Fn(&Request) -> Response,
{
    let mut buf = vec![0u8; limits.max_head_bytes.max(1)];
    // buf[..filled] holds bytes read but not consumed: the start of the next request(s).
    let mut filled = 0;
    // The first request must arrive within header_timeout of the accept.
    let mut deadline = after(accepted, limits.header_timeout);
    loop {
        // The head of the next request.
        let head_len = loop {
            match head_length(&buf[..filled]) {
                Head::Complete(n) => break n,
                Head::Invalid(status) => return finish(stream, status, false, limits),
                Head::Partial if filled == buf.len() => {
                    let status = if line_fits(&buf[..filled]) { 431 } else { 414 };
                    return finish(stream, status, false, limits);
                }
                Head::Partial => match read_some(&stream, &mut buf[filled..], deadline) {
                    Received::Data(n) => filled += n,
                    Received::TimedOut if filled > 0 => {
                        // Best effort: a slow client gets a reason, then is dropped at once.
                        let bytes = render(&error_response(408), false, Some("close"));
                        let _ = write_all(
                            &stream,
                            &bytes,
                            after(Instant::now(), LINGER.min(limits.write_timeout)),
                        );
                        return;
                    }
                    Received::TimedOut | Received::Closed => return,
                },
            }
        };

        let (response, close, consumed) =
            match answer(&stream, &buf[..filled], head_len, deadline, limits, handle) {
                Answer::Reply {
                    bytes,
                    close,
                    consumed,
                } => (bytes, close, consumed),
                Answer::Refuse { status, head_only } => {
                    return finish(stream, status, head_only, limits)
                }
                Answer::Drop => return,
            };

        if !write_all(
            &stream,
            &response,
            after(Instant::now(), limits.write_timeout),
        ) {
            return;
        }
        if close {
            return linger(stream);
        }
        buf.copy_within(consumed..filled, 0);
        filled -= consumed;
        if filled == 0 {
            // Idle until the next request starts, then give it header_timeout from there.
            match read_some(
                &stream,
                &mut buf,
                after(Instant::now(), limits.idle_timeout),
            ) {
                Received::Data(n) => filled = n,
                Received::TimedOut | Received::Closed => return,
            }
        }
        deadline = after(Instant::now(), limits.header_timeout);
    }
}

/// What to do after reading a complete head.
enum Answer {
    /// Write these bytes; close afterwards if `close`; drop `consumed` bytes from the buffer
    /// (the head and the part of the body that was buffered).
    Reply {
        bytes: Vec<u8>,
        close: bool,
        consumed: usize,
    },
    /// Answer this status and close.
    Refuse { status: u16, head_only: bool },
    /// Close without a word: the client went away or ran out of time.
    Drop,
}

/// Checks the request whose head is `buf[..head_len]` (`buf` is everything read so far), reads
/// and drops its body, and calls the handler.
fn answer<F>(
    stream: &TcpStream,
    buf: &[u8],
    head_len: usize,
    deadline: Instant,
    limits: &Limits,
    handle: &F,
) -> Answer
where
    F: Fn(&Request) -> Response,
{
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    // Parsed once more to borrow the request for the handler; cannot fail, as the same
    // bytes parsed complete above, but a bug here must not panic on client input.
    if !matches!(
        parsed.parse(&buf[..head_len]),
        Ok(httparse::Status::Complete(_))
    ) {
        return Answer::Refuse {
            status: 400,
            head_only: false,
        };
    }
    let head_only = parsed.method == Some("HEAD");
    let frame = match framing(&parsed, limits) {
        Ok(frame) => frame,
        Err(status) => return Answer::Refuse { status, head_only },
    };
    let Some(path) = parsed.path.and_then(path_of) else {
        return Answer::Refuse {
            status: 400,
            head_only,
        };
    };
    // Read and drop the body. Bytes already buffered are skipped in place; the rest is
    // read from the socket, never past the body, so pipelined requests stay intact.
    let buffered = (buf.len() - head_len).min(frame.body_len);
    let mut missing = frame.body_len - buffered;
    let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
    if missing > 0
        && frame.expect_continue
        && !write_all(stream, interim, after(Instant::now(), limits.write_timeout))
    {
        return Answer::Drop;
    }
    let mut scratch = [0u8; 4096];
    while missing > 0 {
        let want = missing.min(scratch.len());
        match read_some(stream, &mut scratch[..want], deadline) {
            Received::Data(n) => missing -= n,
            Received::TimedOut | Received::Closed => return Answer::Drop,
        }
    }
    let request = Request {
        method: parsed.method.unwrap_or(""),
        path,
        headers: parsed.headers,
    };
    let response = match panic::catch_unwind(AssertUnwindSafe(|| handle(&request))) {
        Ok(response) => response,
        Err(_) => error_response(500),
    };
    let connection = match (frame.close, frame.announce_keep_alive) {
        (true, _) => Some("close"),
        (false, true) => Some("keep-alive"),
        (false, false) => None,
    };
    let bytes = render(&response, head_only, connection);
    Answer::Reply {
        bytes,
        close: frame.close,
        consumed: head_len + buffered,
    }
}

/// Where parsing the bytes read so far stands.
#[derive(Debug, PartialEq)]
enum Head {
    /// The head is this many bytes long (leading empty lines included).
    Complete(usize),
    /// More bytes are needed.
    Partial,
    /// The bytes can never become a request we serve; answer this status and close.
    Invalid(u16),
}

fn head_length(bytes: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::Request::new(&mut headers).parse(bytes) {
        Ok(httparse::Status::Complete(n)) => Head::Complete(n),
        Ok(httparse::Status::Partial) => Head::Partial,
        Err(httparse::Error::TooManyHeaders) => Head::Invalid(431),
        Err(_) => Head::Invalid(400),
    }
}

/// Whether a full buffer holds a complete request line (so the headers are too long: 431)
/// rather than part of one (the target is too long: 414).
fn line_fits(bytes: &[u8]) -> bool {
    let start = bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(bytes.len());
    bytes[start..].contains(&b'\n')
}

/// How a request is framed and whether the connection stays open after it.
#[derive(Debug, PartialEq)]
struct Frame {
    body_len: usize,
    expect_continue: bool,
    /// Close after the response: asked by the client, or HTTP/1.0 without keep-alive.
    close: bool,
    /// HTTP/1.0 with `Connection: keep-alive`: the response must say it keeps the connection.
    announce_keep_alive: bool,
}

/// Checks what the server relies on in a parsed head; `Err` is the status to answer with
/// before closing.
fn framing(request: &httparse::Request, limits: &Limits) -> Result<Frame, u16> {
    let version = request.version.unwrap_or(0);
    if !request.path.unwrap_or("").is_ascii() || !request.headers.iter().all(|h| h.value.is_ascii())
    {
        return Err(400);
    }
    let mut body_len: Option<u64> = None;
    let (mut close, mut keep_alive, mut expect_continue) = (false, false, false);
    for header in request.headers.iter() {
        // ASCII checked above, so this is the whole value.
        let value = std::str::from_utf8(header.value).unwrap_or("");
        let name = header.name;
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(411);
        } else if name.eq_ignore_ascii_case("content-length") {
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(400);
            }
            // All digits: the only possible error is overflow, which is too large anyway.
            let len = value.parse::<u64>().unwrap_or(u64::MAX);
            if body_len.is_some_and(|seen| seen != len) {
                return Err(400);
            }
            body_len = Some(len);
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                close |= token.eq_ignore_ascii_case("close");
                keep_alive |= token.eq_ignore_ascii_case("keep-alive");
            }
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue = version == 1 && value.eq_ignore_ascii_case("100-continue");
        }
    }
    let body_len = body_len.unwrap_or(0);
    if body_len > limits.max_body_bytes as u64 {
        return Err(413);
    }
    Ok(Frame {
        // Fits: at most max_body_bytes, a usize.
        body_len: body_len as usize,
        expect_continue,
        close: close || (version == 0 && !keep_alive),
        announce_keep_alive: version == 0 && keep_alive && !close,
    })
}

/// The path of a request target without its query: origin-form as is, absolute-form
/// (`http://host/path`) without scheme and authority. `None` for any other form.
fn path_of(target: &str) -> Option<&str> {
    let path = if target.starts_with('/') {
        target
    } else {
        let scheme_len = ["http://", "https://"]
            .iter()
            .find(|s| {
                target
                    .get(..s.len())
                    .is_some_and(|t| t.eq_ignore_ascii_case(s))
            })?
            .len();
        let rest = &target[scheme_len..];
        match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
            _ => "/",
        }
    };
    Some(path.split('?').next().unwrap_or(path))
}

/// The whole response, head and body, as one buffer for one write. `head_only` leaves the body
/// out (HEAD) but keeps its `Content-Length`; `connection` is the `Connection` header, if any.
fn render(response: &Response, head_only: bool, connection: Option<&str>) -> Vec<u8> {
    use std::fmt::Write as _;
    let status = if (200..=599).contains(&response.status) {
        response.status
    } else {
        500
    };
    let bodyless = status == 204 || status == 304;
    let mut head = String::with_capacity(256);
    let _ = write!(head, "HTTP/1.1 {status} {}\r\n", reason(status));
    if let Ok(now) = SystemTime::now().duration_since(UNIX_EPOCH) {
        let _ = write!(head, "Date: {}\r\n", http_date(now.as_secs()));
    }
    for (name, value) in &response.headers {
        let owned = ["content-length", "transfer-encoding", "connection"];
        if owned.iter().any(|o| name.eq_ignore_ascii_case(o)) || !is_token(name) {
            continue;
        }
        head.push_str(name);
        head.push_str(": ");
        head.extend(
            value
                .chars()
                .map(|c| if c.is_control() && c != '\t' { ' ' } else { c }),
        );
        head.push_str("\r\n");
    }
    if !bodyless {
        let _ = write!(head, "Content-Length: {}\r\n", response.body.len());
    }
    if let Some(connection) = connection {
        let _ = write!(head, "Connection: {connection}\r\n");
    }
    head.push_str("\r\n");
    let body: &[u8] = if head_only || bodyless {
        &[]
    } else {
        &response.body
    };
    let mut bytes = Vec::with_capacity(head.len() + body.len());
    bytes.extend_from_slice(head.as_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// Whether `name` is an HTTP token (RFC 9110, section 5.6.2), as header names are: letters,
/// digits and ``!#$%&'*+-.^_`|~``, at least one.
pub fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The response the server itself sends for a status: the reason phrase as a short text body.
fn error_response(status: u16) -> Response {
    Response {
        status,
        headers: vec![("Content-Type", "text/plain; charset=utf-8".to_string())],
        body: format!("{status} {}\n", reason(status)).into_bytes(),
    }
}

/// The reason phrase of a status (RFC 9110); empty for one we do not list, which is valid.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) from seconds since the Unix epoch.
fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let (hour, minute, second) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's `civil_from_days`), in eras of
    // 400 years starting on March 1st of year 0.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {hour:02}:{minute:02}:{second:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
    )
}

/// `start + wait`, without the panic of `+` when a configured timeout is absurdly long: such a
/// wait is cut to a year.
fn after(start: Instant, wait: Duration) -> Instant {
    let year = Duration::from_secs(365 * 86_400);
    start.checked_add(wait.min(year)).unwrap_or(start)
}

/// The outcome of one read.
enum Received {
    Data(usize),
    /// The deadline passed first.
    TimedOut,
    /// End of stream or an error: either way the connection is over.
    Closed,
}

/// Reads what is available into `buf` (never empty), waiting until `deadline` at most.
fn read_some(stream: &TcpStream, buf: &mut [u8], deadline: Instant) -> Received {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Received::TimedOut;
        }
        if stream.set_read_timeout(Some(left)).is_err() {
            return Received::Closed;
        }
        match (&*stream).read(buf) {
            Ok(0) => return Received::Closed,
            Ok(n) => return Received::Data(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Received::Closed,
        }
    }
}

/// Writes all of `bytes` by `deadline`; false if the client did not take them in time or
/// went away. A response fits the socket buffer in one write unless it is large.
fn write_all(stream: &TcpStream, mut bytes: &[u8], deadline: Instant) -> bool {
    while !bytes.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_write_timeout(Some(left)).is_err() {
            return false;
        }
        match (&*stream).write(bytes) {
            Ok(0) => return false,
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return false,
        }
    }
    true
}

/// Answers `status` with `Connection: close`, then closes.
fn finish(stream: TcpStream, status: u16, head_only: bool, limits: &Limits) {
    let bytes = render(&error_response(status), head_only, Some("close"));
    if write_all(&stream, &bytes, after(Instant::now(), limits.write_timeout)) {
        linger(stream);
    }
}

/// Closes after a last response: stop sending, then read and drop what the client still sends
/// (bounded by [`LINGER`] and [`LINGER_BYTES`]) so that the close does not reset the
/// connection before the client has read the response.
fn linger(stream: TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut scratch = [0u8; 4096];
    let mut drained = 0;
    while drained < LINGER_BYTES {
        match read_some(&stream, &mut scratch, deadline) {
            Received::Data(n) => drained += n,
            Received::TimedOut | Received::Closed => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    /// No client call in these tests waits longer than this.
    const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

    fn test_limits() -> Limits {
        Limits {
            max_connections: 16,
            max_head_bytes: 1024,
            header_timeout: Duration::from_secs(3),
            idle_timeout: Duration::from_secs(3),
            write_timeout: Duration::from_secs(3),
            max_body_bytes: 100,
        }
    }

    /// A server on a fresh loopback port, serving [`echo`] on a background thread.
    fn start(limits: Limits) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        thread::spawn(move || serve(listener, limits, echo));
        addr
    }

    /// Answers "METHOD /path", plus the `X-Echo` header if sent; a few paths test edge cases.
    fn echo(request: &Request) -> Response {
        let plain = |status: u16, headers: Vec<(&'static str, String)>, body: &[u8]| Response {
            status,
            headers,
            body: body.to_vec(),
        };
        match request.path {
            "/panic" => panic!("handler panic, expected by the test"),
            "/huge" => plain(200, vec![], &vec![b'x'; 16 << 20]),
            "/framing" => plain(
                200,
                vec![
                    ("Content-Length", "999".to_string()),
                    ("connection", "keep-alive".to_string()),
                    ("X-Split", "a\r\nInjected: yes".to_string()),
                    ("Bad Name", "dropped".to_string()),
                ],
                b"ok",
            ),
            "/no-content" => plain(204, vec![], b"dropped"),
            "/status-42" => plain(42, vec![], b"ok"),
            _ => {
                let mut body = format!("{} {}", request.method, request.path);
                if let Some(value) = request.header("x-echo") {
                    body = format!("{body} x-echo={value}");
                }
                plain(
                    200,
                    vec![("Content-Type", "text/plain".to_string())],
                    body.as_bytes(),
                )
            }
        }
    }

    fn connect(addr: SocketAddr) -> TcpStream {
        let stream = TcpStream::connect(addr).expect("connect to the test server");
        stream
            .set_read_timeout(Some(CLIENT_TIMEOUT))
            .expect("set a read timeout");
        stream
            .set_write_timeout(Some(CLIENT_TIMEOUT))
            .expect("set a write timeout");
        stream
    }

    /// Everything the server sends until it closes, as text: CRLF shown as LF, the date as
    /// `<date>`, and a marker if the connection was reset or not closed in time.
    fn read_to_close(stream: &mut TcpStream) -> String {
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 4096];
        let end = loop {
            match stream.read(&mut chunk) {
                Ok(0) => break "",
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break "<not closed in time>"
                }
                Err(_) => break "<reset>",
            }
        };
        let text = String::from_utf8_lossy(&bytes).replace("\r\n", "\n");
        let lines: Vec<&str> = text
            .split('\n')
            .map(|l| {
                if l.starts_with("Date: ") {
                    "Date: <date>"
                } else {
                    l
                }
            })
            .collect();
        lines.join("\n") + end
    }

    /// Sends `request` on a new connection and returns the transcript until the server closes.
    fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut stream = connect(addr);
        stream.write_all(request).expect("send the request");
        read_to_close(&mut stream)
    }

    /// One response on a kept-alive connection, framed by its `Content-Length`: (head, body).
    fn read_response(stream: &mut TcpStream) -> (String, Vec<u8>) {
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .map_or(0, |v| v.parse().expect("a numeric Content-Length"));
                if bytes.len() >= end + 4 + length {
                    assert_eq!(bytes.len(), end + 4 + length, "bytes after the response");
                    return (head, bytes[end + 4..].to_vec());
                }
            }
            let n = stream
                .read(&mut chunk)
                .expect("a response before the timeout");
            assert!(
                n > 0,
                "closed mid-response after {:?}",
                String::from_utf8_lossy(&bytes)
            );
            bytes.extend_from_slice(&chunk[..n]);
        }
    }

    /// Polls until a new connection is served 200 (slots free up when a connection thread
    /// notices its client left); panics after CLIENT_TIMEOUT.
    fn wait_until_served(addr: SocketAddr) {
        let start = Instant::now();
        loop {
            let transcript = exchange(addr, b"GET /again HTTP/1.1\r\nConnection: close\r\n\r\n");
            if transcript.starts_with("HTTP/1.1 200 OK") {
                return;
            }
            assert!(
                start.elapsed() < CLIENT_TIMEOUT,
                "still refused: {transcript}"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn vm_rss_kib() -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// The whole transcript of `request` sent on its own connection.
    fn check(request: &str, expected: &str) {
        let addr = start(test_limits());
        assert_eq!(
            exchange(addr, request.as_bytes()),
            expected,
            "request {request:?}"
        );
    }

    /// The status line of a request the server refuses, and that it closes afterwards.
    fn check_refused(request: &[u8], status: &str) {
        let addr = start(test_limits());
        let transcript = exchange(addr, request);
        let first = transcript.lines().next().unwrap_or("");
        assert_eq!(
            first,
            format!("HTTP/1.1 {status}"),
            "request {:?}",
            String::from_utf8_lossy(request)
        );
        assert!(transcript.contains("\nConnection: close\n"), "{transcript}");
        assert!(
            !transcript.ends_with('>'),
            "not closed cleanly: {transcript}"
        );
    }

    #[test]
    fn get() {
        check(
            "GET /metrics?name=x HTTP/1.1\r\nHost: localhost\r\nX-Echo:  hi  \r\n\
             Connection: close\r\n\r\n",
            "HTTP/1.1 200 OK
Date: <date>
Content-Type: text/plain
Content-Length: 22
Connection: close

GET /metrics x-echo=hi",
        );
        // Header names match whatever their case; empty lines before a request are skipped.
        check(
            "\r\nGET / HTTP/1.1\r\nx-ECHO: 1\r\nconnection: Close\r\n\r\n",
            "HTTP/1.1 200 OK
Date: <date>
Content-Type: text/plain
Content-Length: 14
Connection: close

GET / x-echo=1",
        );
        // Absolute-form is reduced to its path.
        check(
            "GET http://example.com:9100/metrics?x HTTP/1.1\r\nConnection: close\r\n\r\n",
            "HTTP/1.1 200 OK
Date: <date>
Content-Type: text/plain
Content-Length: 12
Connection: close

GET /metrics",
        );
    }

    #[test]
    fn response_head_uses_crlf_and_a_valid_date() {
        let addr = start(test_limits());
        let mut stream = connect(addr);
        stream.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let (head, body) = read_response(&mut stream);
        assert!(!head.replace("\r\n", "").contains(['\r', '\n']), "{head:?}");
        let date = head
            .lines()
            .find_map(|l| l.strip_prefix("Date: "))
            .expect("a Date header");
        assert!(date.len() == 29 && date.ends_with(" GMT"), "{date:?}");
        assert_eq!(body, b"GET /");
    }

    #[test]
    fn head() {
        check(
            "HEAD /metrics HTTP/1.1\r\nConnection: close\r\n\r\n",
            "HTTP/1.1 200 OK
Date: <date>
Content-Type: text/plain
Content-Length: 13
Connection: close

",
        );
    }

    #[test]
    fn server_owns_framing_headers() {
        check(
            "GET /framing HTTP/1.1\r\nConnection: close\r\n\r\n",
            "HTTP/1.1 200 OK
Date: <date>
X-Split: a  Injected: yes
Content-Length: 2
Connection: close

ok",
        );
        check(
            "GET /no-content HTTP/1.1\r\nConnection: close\r\n\r\n",
            "HTTP/1.1 204 No Content
Date: <date>
Connection: close

",
        );
        check(
            "GET /status-42 HTTP/1.1\r\nConnection: close\r\n\r\n",
            "HTTP/1.1 500 Internal Server Error
Date: <date>
Content-Length: 2
Connection: close

ok",
        );
    }

    /// Linux delays an ACK by at least 40 ms (`TCP_DELACK_MIN`). A response written as two
    /// segments (head, then body) waits for it on every kept-alive round trip but the first few.
    const DELAYED_ACK: Duration = Duration::from_millis(40);

    /// The median of `times`.
    fn median(mut times: Vec<Duration>) -> Duration {
        times.sort();
        times[times.len() / 2]
    }

    #[test]
    fn a_response_is_one_buffer_for_one_write() {
        let response = Response {
            status: 200,
            headers: vec![("Content-Type", "text/plain".into())],
            body: b"the body".to_vec(),
        };
        let bytes = render(&response, false, None);
        let text = String::from_utf8(bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(body, "the body");
    }

    #[test]
    fn keep_alive_round_trips_never_wait_for_a_delayed_ack() {
        let addr = start(test_limits());
        let mut stream = connect(addr);
        let mut times = Vec::new();
        for i in 0..21 {
            let started = Instant::now();
            stream
                .write_all(format!("GET /{i} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
                .unwrap();
            let (head, body) = read_response(&mut stream);
            times.push(started.elapsed());
            assert!(
                head.starts_with("HTTP/1.1 200 OK\r\n") && !head.contains("Connection"),
                "{head}"
            );
            assert_eq!(body, format!("GET /{i}").as_bytes());
        }
        // Split responses would make nearly every round trip wait for a delayed ACK; on a busy
        // machine some round trips are slow for other reasons, so the median is compared.
        let median = median(times.clone());
        assert!(median < DELAYED_ACK, "median {median:?} of {times:?}");
    }

    #[test]
    fn pipelined_requests_are_answered_in_order() {
        check(
            "GET /a HTTP/1.1\r\n\r\n\
             HEAD /b HTTP/1.1\r\n\r\n\
             POST /c HTTP/1.1\r\nContent-Length: 14\r\n\r\nGET /not-this!\
             GET /d HTTP/1.1\r\nConnection: close\r\n\r\n\
             GET /after-close HTTP/1.1\r\n\r\n",
            "HTTP/1.1 200 OK
Date: <date>
Content-Type: text/plain
Content-Length: 6

GET /aHTTP/1.1 200 OK
Date: <date>
Content-Type: text/plain
Content-Length: 7

HTTP/1.1 200 OK
Date: <date>
Content-Type: text/plain
Content-Length: 7

POST /cHTTP/1.1 200 OK
Date: <date>
Content-Type: text/plain
Content-Length: 6
Connection: close

GET /d",
        );
    }

    #[test]
    fn body_arriving_later_is_read_and_discarded() {
        let addr = start(test_limits());
        let mut stream = connect(addr);
        stream
            .write_all(b"POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\n01234")
            .unwrap();
        thread::sleep(Duration::from_millis(20)); // the body arrives in two parts
        stream
            .write_all(b"56789GET /q HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let transcript = read_to_close(&mut stream);
        assert!(
            transcript.contains("\n\nPOST /pHTTP/1.1 200 OK\n")
                && transcript.ends_with("\n\nGET /q"),
            "{transcript}"
        );
    }

    #[test]
    fn expect_100_continue() {
        let addr = start(test_limits());
        let mut stream = connect(addr);
        stream
            .write_all(b"POST /e HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            .unwrap();
        let mut interim = [0u8; 25];
        stream.read_exact(&mut interim).unwrap();
        assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
        stream.write_all(b"hello").unwrap();
        assert_eq!(read_response(&mut stream).1, b"POST /e");
    }

    #[test]
    fn http_1_0() {
        check(
            "GET /old HTTP/1.0\r\n\r\n",
            "HTTP/1.1 200 OK
Date: <date>
Content-Type: text/plain
Content-Length: 8
Connection: close

GET /old",
        );
        check(
            "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n",
            "HTTP/1.1 200 OK
Date: <date>
Content-Type: text/plain
Content-Length: 6
Connection: keep-alive

GET /aHTTP/1.1 200 OK
Date: <date>
Content-Type: text/plain
Content-Length: 6
Connection: close

GET /b",
        );
    }

    #[test]
    fn malformed_requests_get_400_and_close() {
        check_refused(b"garbage\r\n\r\n", "400 Bad Request");
        check_refused(b"GET / HTTP/1.1 extra\r\n\r\n", "400 Bad Request");
        check_refused(b"GET  / HTTP/1.1\r\n\r\n", "400 Bad Request");
        check_refused(b"GET / HTTP/2.0\r\n\r\n", "400 Bad Request");
        check_refused(b"GET / FTP/1.1\r\n\r\n", "400 Bad Request");
        check_refused(b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", "400 Bad Request");
        check_refused(b"GET / HTTP/1.1\r\nNo-Colon\r\n\r\n", "400 Bad Request");
        check_refused(b"GET / HTTP/1.1\r\n folded: x\r\n\r\n", "400 Bad Request");
        check_refused(b"GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n", "400 Bad Request");
        check_refused(b"GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n", "400 Bad Request");
        check_refused(
            "GET / HTTP/1.1\r\nX: grüße\r\n\r\n".as_bytes(),
            "400 Bad Request",
        );
        check_refused(b"GET / HTTP/1.1\r\nX: \xff\r\n\r\n", "400 Bad Request");
        check_refused("GET /grüße HTTP/1.1\r\n\r\n".as_bytes(), "400 Bad Request");
        check_refused(b"OPTIONS * HTTP/1.1\r\n\r\n", "400 Bad Request");
        check_refused(
            b"CONNECT example.com:443 HTTP/1.1\r\n\r\n",
            "400 Bad Request",
        );
        check_refused(
            b"GET ftp://example.com/ HTTP/1.1\r\n\r\n",
            "400 Bad Request",
        );
        check_refused(
            b"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "400 Bad Request",
        );
        check_refused(
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "400 Bad Request",
        );
        check_refused(
            b"GET / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n",
            "400 Bad Request",
        );
        check_refused(
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            "400 Bad Request",
        ); // TLS
    }

    #[test]
    fn http_0_9_gets_400() {
        check_refused(b"GET /\r\n", "400 Bad Request");
        check_refused(b"GET /\r\n\r\n", "400 Bad Request");
    }

    #[test]
    fn bodies_we_do_not_take() {
        check_refused(
            b"POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n",
            "413 Content Too Large",
        );
        check_refused(
            b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "413 Content Too Large",
        );
        check_refused(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "411 Length Required",
        );
        check_refused(
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "411 Length Required",
        );
    }

    #[test]
    fn heads_over_the_limit() {
        let many_headers = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "A: b\r\n".repeat(MAX_HEADERS + 1)
        );
        check_refused(
            many_headers.as_bytes(),
            "431 Request Header Fields Too Large",
        );
        check_refused(
            format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "x".repeat(1024)).as_bytes(),
            "431 Request Header Fields Too Large",
        );
        check_refused(
            format!("GET /{} HTTP/1.1\r\n\r\n", "x".repeat(1024)).as_bytes(),
            "414 URI Too Long",
        );
    }

    #[test]
    fn endless_header_line_gets_431_and_memory_stays_flat() {
        let addr = start(test_limits());
        let rss_before = vm_rss_kib();
        let mut stream = connect(addr);
        let mut writer = stream.try_clone().unwrap();
        let sender = thread::spawn(move || {
            // Up to 256 MiB or 5 s: a server that buffers the line would grow by that much.
            let started = Instant::now();
            let chunk = [b'X'; 64 * 1024];
            let mut sent = 0usize;
            if writer.write_all(b"GET / HTTP/1.1\r\nX-Endless: ").is_err() {
                return sent;
            }
            while sent < 256 << 20 && started.elapsed() < CLIENT_TIMEOUT {
                match writer.write(&chunk) {
                    Ok(n) => sent += n,
                    Err(_) => break,
                }
            }
            sent
        });
        let transcript = read_to_close(&mut stream);
        assert!(
            transcript.starts_with("HTTP/1.1 431 Request Header Fields Too Large\n"),
            "{transcript}"
        );
        let sent = sender.join().unwrap();
        assert!(
            sent < 256 << 20,
            "the server kept reading: {sent} bytes went in"
        );
        if let (Some(before), Some(after)) = (rss_before, vm_rss_kib()) {
            // Other tests run alongside, so only a gross growth is a failure.
            assert!(
                after < before + 48 * 1024,
                "RSS grew from {before} KiB to {after} KiB"
            );
        }
    }

    /// Whether `transcript` ends with the server closing the connection (not the client's read
    /// timeout, nor a reset).
    fn closed_by_the_server(transcript: &str) -> bool {
        !transcript.ends_with('>')
    }

    #[test]
    fn header_timeout() {
        let timeout = Duration::from_millis(300);
        let addr = start(Limits {
            header_timeout: timeout,
            ..test_limits()
        });

        // A head that stops halfway gets 408 once the time is up, never before.
        let started = Instant::now();
        let transcript = exchange(addr, b"GET / HTTP/1.1\r\nHost: lo");
        let took = started.elapsed();
        assert!(
            transcript.starts_with("HTTP/1.1 408 Request Timeout\n")
                && closed_by_the_server(&transcript),
            "{transcript}"
        );
        assert!(took >= timeout, "answered after {took:?}");

        // Dripping a byte every 50 ms does not push the deadline back: the server closes the
        // connection while the client still has most of its 200 bytes (10 s) to send.
        let mut stream = connect(addr);
        let mut writer = stream.try_clone().unwrap();
        let dripper = thread::spawn(move || {
            let head = b"GET / HTTP/1.1\r\nX-Slow: "
                .iter()
                .chain([b'x'; 176].iter());
            let mut sent = 0;
            for &b in head {
                if writer.write_all(&[b]).is_err() {
                    break;
                }
                sent += 1;
                thread::sleep(Duration::from_millis(50));
            }
            sent
        });
        let transcript = read_to_close(&mut stream);
        assert!(
            transcript.starts_with("HTTP/1.1 408 Request Timeout\n")
                && closed_by_the_server(&transcript),
            "{transcript}"
        );
        drop(stream);
        let sent = dripper.join().unwrap();
        assert!(sent < 200, "the server waited for all {sent} bytes");

        // A connection that never sends anything is closed silently, not before the time.
        let started = Instant::now();
        let mut stream = connect(addr);
        assert_eq!(read_to_close(&mut stream), "");
        assert!(started.elapsed() >= timeout);
    }

    #[test]
    fn idle_timeout() {
        let timeout = Duration::from_millis(300);
        let addr = start(Limits {
            idle_timeout: timeout,
            ..test_limits()
        });
        let mut stream = connect(addr);
        // The idle time starts after the response, so after this.
        let started = Instant::now();
        stream.write_all(b"GET /1 HTTP/1.1\r\n\r\n").unwrap();
        read_response(&mut stream);
        // Closed silently by the server (the client's own timeout would show as a marker).
        assert_eq!(read_to_close(&mut stream), "");
        let took = started.elapsed();
        assert!(took >= timeout, "{took:?}");
    }

    #[test]
    fn connection_cap() {
        let addr = start(Limits {
            max_connections: 2,
            ..test_limits()
        });
        let mut held = Vec::new();
        for i in 0..2 {
            let mut stream = connect(addr);
            stream
                .write_all(format!("GET /held{i} HTTP/1.1\r\n\r\n").as_bytes())
                .unwrap();
            read_response(&mut stream);
            held.push(stream);
        }
        let transcript = exchange(addr, b"GET /third HTTP/1.1\r\n\r\n");
        assert_eq!(
            transcript,
            "HTTP/1.1 503 Service Unavailable
Content-Type: text/plain; charset=utf-8
Content-Length: 24
Connection: close

503 Service Unavailable
"
        );
        drop(held);
        wait_until_served(addr);
    }

    #[test]
    fn handler_panic_gets_500_and_frees_its_slot() {
        let addr = start(Limits {
            max_connections: 1,
            ..test_limits()
        });
        let mut stream = connect(addr);
        stream.write_all(b"GET /panic HTTP/1.1\r\n\r\n").unwrap();
        let (head, body) = read_response(&mut stream);
        assert!(
            head.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
            "{head}"
        );
        assert_eq!(body, b"500 Internal Server Error\n");
        // The same connection goes on, and once it closes the only slot is free again.
        stream
            .write_all(b"GET /next HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        assert!(read_to_close(&mut stream).ends_with("\n\nGET /next"));
        wait_until_served(addr);
    }

    #[test]
    fn client_that_does_not_read_is_dropped() {
        let addr = start(Limits {
            max_connections: 1,
            write_timeout: Duration::from_millis(300),
            ..test_limits()
        });
        let mut stream = connect(addr);
        stream.write_all(b"GET /huge HTTP/1.1\r\n\r\n").unwrap();
        // Never read: the server gives up writing and frees the only slot.
        wait_until_served(addr);
        drop(stream);
    }

    /// Panics seen on connection threads (named `http`) other than the one `echo` makes on
    /// purpose, from the moment [`watch_panics`] is first called, by any test in this binary.
    static UNEXPECTED_PANICS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

    /// Installs (once) a panic hook that records unexpected panics of connection threads, then
    /// hands every panic to the hook that was there before.
    fn watch_panics() {
        static INSTALLED: std::sync::Once = std::sync::Once::new();
        INSTALLED.call_once(|| {
            let previous = panic::take_hook();
            panic::set_hook(Box::new(move |info| {
                let message = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                let on_connection = thread::current().name() == Some("http");
                if on_connection && !message.contains("expected by the test") {
                    let location = info.location().map(|l| l.to_string()).unwrap_or_default();
                    if let Ok(mut panics) = UNEXPECTED_PANICS.lock() {
                        panics.push(format!("{message} at {location}"));
                    }
                }
                previous(info);
            }));
        });
    }

    /// A request built from pieces that reach every path of the server: methods, targets in
    /// every form, versions, framing and connection headers, bodies, pipelining.
    fn random_requests(rng: &mut crate::rng::Rng) -> Vec<u8> {
        let mut bytes = Vec::new();
        for _ in 0..1 + rng.below(3) {
            let method = rng.pick(&[
                "GET", "HEAD", "POST", "PUT", "OPTIONS", "CONNECT", "get", "X",
            ]);
            let target = rng.pick(&[
                "/",
                "/a",
                "/x?y=%41",
                "/%zz",
                "/%",
                "/?/",
                "//",
                "http://h:1/p?q",
                "HTTPS://h",
                "*",
                "h:443",
                "/a b",
            ]);
            let version = rng.pick(&[
                " HTTP/1.1",
                " HTTP/1.1",
                " HTTP/1.1",
                " HTTP/1.0",
                " HTTP/2",
                "",
            ]);
            bytes.extend_from_slice(format!("{method} {target}{version}\r\n").as_bytes());
            let mut body = 0;
            for _ in 0..rng.below(5) {
                let header = rng.pick(&[
                    "Host: x",
                    "Connection: close",
                    "Connection: keep-alive, Close",
                    "Content-Length: 3",
                    "Content-Length: 0",
                    "Content-Length: 99999999999999999999",
                    "Content-Length: -1",
                    "Transfer-Encoding: chunked",
                    "Expect: 100-continue",
                    "X-Echo: v",
                    "X-Empty:",
                    "Accept: */*",
                ]);
                if header == "Content-Length: 3" {
                    body = 3;
                }
                bytes.extend_from_slice(header.as_bytes());
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"\r\n");
            for _ in 0..body {
                bytes.push(rng.pick(b"ab\r\n"));
            }
        }
        bytes
    }

    /// Any bytes from a client: never a panic, only well-formed responses or a plain close,
    /// and the server goes on serving. 2,000 cases, each on its own connection that we close
    /// after sending (so that each ends at once): random bytes (HTTP words and all 256 byte
    /// values), and random requests, pipelined or not, with random changes.
    #[test]
    fn any_bytes_from_a_client_never_panic_the_server() {
        use crate::rng::Rng;
        watch_panics();
        let addr = start(test_limits());
        const WORDS: &[&str] = &[
            "GET ",
            "HEAD ",
            "/",
            " HTTP/1.1",
            "\r\n",
            "\r\n\r\n",
            "\n",
            "Content-Length: ",
            "Transfer-Encoding: chunked",
            "Connection: close",
            "Expect: 100-continue",
            ":",
            " ",
            "\t",
            "7",
            "99999999999999999999",
            "%",
            "?",
            "*",
            "http://",
            "\0",
            "\u{7f}",
            "ü",
        ];
        let mut rng = Rng::new(42);
        let mut answered = 0;
        for case in 0..2000 {
            let mut bytes: Vec<u8> = Vec::new();
            if case % 3 == 0 {
                for _ in 0..rng.below(40) {
                    if rng.chance(70) {
                        bytes.extend_from_slice(rng.pick(WORDS).as_bytes());
                    } else {
                        bytes.push(rng.next() as u8);
                    }
                }
            } else {
                bytes = random_requests(&mut rng);
                for _ in 0..rng.below(3) {
                    let at = rng.below(bytes.len() + 1);
                    match rng.below(4) {
                        0 if at < bytes.len() => bytes[at] = rng.next() as u8,
                        1 => bytes.insert(at, rng.pick(b"\r\n: \0%\xff\t")),
                        2 => bytes.truncate(at),
                        _ => {
                            let word = rng.pick(WORDS).as_bytes();
                            bytes.splice(at..at, word.iter().copied());
                        }
                    }
                }
            }
            let mut stream = connect(addr);
            let _ = stream.write_all(&bytes);
            let _ = stream.shutdown(Shutdown::Write);
            let transcript = read_to_close(&mut stream);
            let shown = || {
                format!(
                    "case {case}: {:?} got {transcript:?}",
                    String::from_utf8_lossy(&bytes)
                )
            };
            assert!(!transcript.ends_with("<not closed in time>"), "{}", shown());
            let transcript = transcript.strip_suffix("<reset>").unwrap_or(&transcript);
            assert!(
                transcript.is_empty() || transcript.starts_with("HTTP/1.1 "),
                "{}",
                shown()
            );
            // Every status line is one this server writes.
            for line in transcript.lines().filter(|l| l.starts_with("HTTP/1.1 ")) {
                let status: u16 = line[9..].get(..3).and_then(|s| s.parse().ok()).unwrap_or(0);
                let known = status == 100
                    || ((200..600).contains(&status)
                        && line[12..] == format!(" {}", reason(status)));
                assert!(known, "{line:?} in {}", shown());
                answered += usize::from(status == 200);
            }
        }
        wait_until_served(addr);
        let panics = UNEXPECTED_PANICS.lock().unwrap().clone();
        assert!(panics.is_empty(), "connection threads panicked: {panics:?}");
        // The generator reaches the handler, not only the parser's refusals.
        assert!(answered > 150, "only {answered} requests answered 200");
    }

    #[test]
    fn absurd_timeouts_do_not_panic() {
        let forever = Duration::MAX;
        let limits = Limits {
            header_timeout: forever,
            idle_timeout: forever,
            write_timeout: forever,
            ..test_limits()
        };
        let transcript = exchange(
            start(limits),
            b"GET /x HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert!(transcript.ends_with("\n\nGET /x"), "{transcript}");
    }

    #[test]
    fn paths() {
        fn check(target: &str, expected: Option<&str>) {
            assert_eq!(path_of(target), expected, "{target:?}");
        }
        check("/", Some("/"));
        check("/metrics?name[]=a&b", Some("/metrics"));
        check("/a?b?c", Some("/a"));
        check("/%2e%2e/x", Some("/%2e%2e/x"));
        check("http://example.com/metrics?x", Some("/metrics"));
        check("HTTPS://example.com:9100", Some("/"));
        check("http://example.com?x=/y", Some("/"));
        check("*", None);
        check("example.com:443", None);
        check("ftp://example.com/", None);
    }

    #[test]
    fn dates() {
        fn check(secs: u64, expected: &str) {
            assert_eq!(http_date(secs), expected, "{secs}");
        }
        check(0, "Thu, 01 Jan 1970 00:00:00 GMT");
        check(784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT");
        check(951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT");
        check(951_868_799, "Tue, 29 Feb 2000 23:59:59 GMT");
        check(4_107_542_399, "Sun, 28 Feb 2100 23:59:59 GMT");
        check(253_402_300_799, "Fri, 31 Dec 9999 23:59:59 GMT");
    }
}
