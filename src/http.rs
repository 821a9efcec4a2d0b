//! A small, bounded HTTP/1.1 server on `std::net`: the accept loop, one thread per connection,
//! request framing (parsed with `httparse`), keep-alive and pipelining, timeouts, and the bytes of
//! each response.
//!
//! Everything a client controls is bounded: connections by [`Limits::max_connections`], memory
//! by a fixed read buffer of [`Limits::max_head_bytes`] per connection, and time by the header,
//! idle and write timeouts. It knows nothing about routes, metrics, content types or what the
//! handler does: the caller hands [`serve`] a function from [`Request`] to [`Response`], and this
//! file owns the framing headers (`Content-Length`, `Connection`, `Date`) around it. It also
//! holds the HTTP token charset ([`is_token`]), which `config.rs` checks header names against.
//!
//! Another thread stops the server through its [`Control`]: new connections are closed at once,
//! connections waiting for a request are closed, and the responses in flight are finished,
//! each with `Connection: close`, for at most a grace period (`Control::stop`, for SIGTERM).
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

use std::io::{self, IoSlice, Read, Write};
use std::net::{IpAddr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::log;

/// What the server allows a client. Every field bounds a resource a client could otherwise hold.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections served at once. At the cap, a new connection takes the place of another,
    /// which is closed without a word (see `max_connections_per_address` for which); when none
    /// can make room, the new one gets a canned 503, written without blocking, and is closed.
    /// Default 64: Prometheus keeps one connection per scraper, so a few scrapers and a person
    /// with curl use a handful; 64 threads cost about 64 × (stack touched + `max_head_bytes`),
    /// around 2 MiB.
    pub max_connections: usize,
    /// The share of the connections one client address is sure to keep (IPv6: one /64
    /// network, as one host usually has a whole /64). Below `max_connections` an address may
    /// hold more. At the cap, a new connection from an address under its share takes the place
    /// of a connection of an address over its share (one waiting for a request, else the
    /// oldest, even in the middle of a request), or else of the connection that has waited
    /// longest for a request (a kept-alive one between requests, or one that has sent nothing);
    /// a new connection from an address at its share can only take the place of one of its own
    /// that waits. So no address holds more than its share against others, a client with no
    /// slot always gets one from a client with many, and one that waits idle gives way.
    /// Default 16: a host with two Prometheus replicas, an agent and a person with curl uses a
    /// handful (behind a reverse proxy on the same host, every client is one address, which
    /// still gets all 64 while no other address needs one).
    pub max_connections_per_address: usize,
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
            max_connections_per_address: 16,
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
    /// The query string after `?`, not percent-decoded; empty when there is none.
    pub query: &'a str,
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
    pub body: Body,
}

/// A response body: parts sent one after the other, with the head, in one vectored write. A
/// shared part (a snapshot's rendered text) is written from where it is: no response copies it,
/// and neither does making a part of a `Vec`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Body(pub Vec<Arc<Vec<u8>>>);

impl Body {
    /// Its length in bytes, all parts together.
    pub fn len(&self) -> usize {
        self.0.iter().map(|part| part.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Body {
        Body(vec![Arc::new(bytes)])
    }
}

/// What another thread may do to a running server: stop it (see [`Control::stop`]). A clone
/// acts on the same server.
#[derive(Clone)]
pub struct Control(Arc<Open>);

impl Default for Control {
    fn default() -> Control {
        Control(Arc::new(Open {
            connections: Mutex::new(Vec::new()),
            epoch: Instant::now(),
            stopping: AtomicBool::new(false),
        }))
    }
}

impl Control {
    /// Stops the server: from now on a new connection is closed as soon as it is accepted, a
    /// connection waiting for a request is closed, and a request being read or answered is
    /// finished, its response with `Connection: close`. Returns once no response is in flight,
    /// or once `grace` has passed, with the number of responses still in flight then.
    pub fn stop(&self, grace: Duration) -> usize {
        let open = &self.0;
        open.stopping.store(true, Ordering::Release);
        let deadline = after(Instant::now(), grace);
        loop {
            let busy = {
                let connections = open
                    .connections
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                for connection in connections.iter() {
                    let since = connection.waiting.load(Ordering::Acquire);
                    if since != BUSY && since != CLOSED {
                        // Lost only to the connection starting a request: it is busy then.
                        let closed = connection.waiting.compare_exchange(
                            since,
                            CLOSED,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        );
                        if closed.is_ok() {
                            let _ = connection.stream.shutdown(Shutdown::Both);
                        }
                    }
                }
                connections
                    .iter()
                    .filter(|c| c.waiting.load(Ordering::Acquire) == BUSY)
                    .count()
            };
            if busy == 0 || Instant::now() >= deadline {
                return busy;
            }
            thread::sleep(STOP_CHECK);
        }
    }

    fn stopping(&self) -> bool {
        self.0.stopping.load(Ordering::Acquire)
    }
}

/// How often [`Control::stop`] looks whether the responses in flight are done.
const STOP_CHECK: Duration = Duration::from_millis(10);

/// Serves `listener` forever on the calling thread and never returns: no error ends the loop.
///
/// Each accepted connection gets `TCP_NODELAY` and its own thread (named `http`, with a
/// 256 KiB stack, which `handle` runs on). At `limits.max_connections` (or
/// `limits.max_connections_per_address` for the client's address) the connection that has
/// waited longest for a request makes room (see [`Limits::max_connections`]); when none waits,
/// the new one is answered 503 from this thread without blocking. Failures of `accept` (out of
/// file descriptors, a client gone before the accept) and of thread creation are retried or end
/// only that connection, with at most one line on stderr per burst. A panic in `handle` (a bug:
/// no request reaches one) ends the process in the release build (`panic = "abort"`).
/// Once `control` is stopped, every connection accepted is closed at once.
pub fn serve<F>(listener: TcpListener, limits: Limits, control: Control, handle: F) -> !
where
    F: Fn(&Request) -> Response + Send + Sync + 'static,
{
    // A listener left non-blocking would make every accept fail with WouldBlock.
    let _ = listener.set_nonblocking(false);
    let limits = Arc::new(limits);
    let handle = Arc::new(handle);
    let open = Arc::clone(&control.0);
    let mut accept_failures = Burst::default();
    let mut refusals = Burst::default();
    let mut spawn_failures = Burst::default();
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
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
        if control.stopping() {
            drop(stream);
            continue;
        }
        let accepted = Instant::now();
        let Some(slot) = Slot::take(&open, stream, address_group(peer.ip()), &limits) else {
            if refusals.starts() {
                log::warn!(
                    "connection limit reached ({} in all, {} per client address) and every \
                     connection busy; answering new ones 503",
                    limits.max_connections,
                    limits.max_connections_per_address
                );
            }
            continue;
        };
        refusals.ends();
        let limits = Arc::clone(&limits);
        let handle = Arc::clone(&handle);
        let spawned = thread::Builder::new()
            .name("http".to_string())
            .stack_size(STACK_BYTES)
            .spawn(move || connection(&slot, accepted, &limits, &*handle));
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
        let due = self.last_report.is_none_or(|t| t.elapsed() >= LOG_INTERVAL);
        if due {
            self.last_report = Some(Instant::now());
        }
        due
    }

    fn ends(&mut self) {
        self.on = false;
    }
}

/// The connections being served, shared by the accept loop (which adds them and picks one to
/// close at the cap) and the connection threads (which say when they wait and remove
/// themselves). The lock is held only to add, pick or remove.
struct Open {
    connections: Mutex<Vec<Arc<Connection>>>,
    /// The time `Connection::waiting` counts from.
    epoch: Instant,
    /// The server is stopping ([`Control::stop`]): finish the responses in flight, take no
    /// new request.
    stopping: AtomicBool,
}

/// One connection being served.
struct Connection {
    stream: TcpStream,
    /// Its client's address group (`address_group`), for the per-address limit.
    group: IpAddr,
    /// [`BUSY`] while a request is being read or answered; [`CLOSED`] once the accept loop
    /// chose it to make room; otherwise 1 + the milliseconds from `Open::epoch` to when it
    /// began waiting for a request.
    waiting: AtomicU64,
}

const BUSY: u64 = 0;
const CLOSED: u64 = u64::MAX;

impl Connection {
    /// Marks the connection as waiting for a request from now on.
    fn wait(&self, open: &Open) {
        let since = open
            .epoch
            .elapsed()
            .as_millis()
            .min(u128::from(u64::MAX - 2)) as u64
            + 1;
        let _ = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (now != CLOSED).then_some(since)
            });
    }

    /// Marks the connection as busy with a request; false if it was closed to make room.
    fn work(&self) -> bool {
        self.waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (now != CLOSED).then_some(BUSY)
            })
            .is_ok()
    }
}

/// One served connection: its place among the open ones, given back when dropped (even by a
/// panic), which closes the stream.
struct Slot {
    open: Arc<Open>,
    connection: Arc<Connection>,
}

impl Slot {
    /// Takes a place for `stream` if the limits allow, closing another connection if that makes
    /// room (see [`Limits::max_connections_per_address`]); None after answering `stream` 503.
    fn take(open: &Arc<Open>, stream: TcpStream, group: IpAddr, limits: &Limits) -> Option<Slot> {
        let mut connections = open
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let counted: Vec<&Arc<Connection>> = connections
            .iter()
            .filter(|c| c.waiting.load(Ordering::Acquire) != CLOSED)
            .collect();
        let held = |g: IpAddr| counted.iter().filter(|c| c.group == g).count();
        let share = limits.max_connections_per_address.max(1);
        let room = if counted.len() < limits.max_connections.max(1) {
            true
        } else if held(group) >= share {
            // At its share: only its own connection that waits for a request can make room.
            close(&counted, |c| c.group == group, false)
        } else {
            // Under its share: first an address over its share gives back a connection, one
            // that waits, else its oldest; else the one waiting longest of all.
            close(&counted, |c| held(c.group) > share, true) || close(&counted, |_| true, false)
        };
        if !room {
            drop(connections);
            refuse(stream);
            return None;
        }
        let _ = stream.set_nodelay(true);
        let connection = Arc::new(Connection {
            stream,
            group,
            waiting: AtomicU64::new(BUSY),
        });
        connection.wait(open);
        connections.push(Arc::clone(&connection));
        Some(Slot {
            open: Arc::clone(open),
            connection,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut connections = self
            .open
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        connections.retain(|c| !Arc::ptr_eq(c, &self.connection));
    }
}

/// Closes, among the `connections` that `eligible` allows, the one that has waited longest for
/// a request, or if none waits and `or_busy`, the oldest (the list is in the order they came);
/// false if none could be closed. Its thread sees the close at its next read or write and
/// ends, which removes it from the list.
fn close(
    connections: &[&Arc<Connection>],
    eligible: impl Fn(&Connection) -> bool,
    or_busy: bool,
) -> bool {
    loop {
        let waiting = connections
            .iter()
            .filter(|c| eligible(c))
            .map(|c| (c, c.waiting.load(Ordering::Acquire)))
            .filter(|&(_, since)| since != BUSY && since != CLOSED)
            .min_by_key(|&(_, since)| since);
        let Some((connection, since)) = waiting else {
            break;
        };
        // Lost only to the connection's thread starting a request: look again.
        if connection
            .waiting
            .compare_exchange(since, CLOSED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let _ = connection.stream.shutdown(Shutdown::Both);
            return true;
        }
    }
    let oldest = connections.iter().find(|c| eligible(c));
    match oldest {
        Some(connection) if or_busy => {
            connection.waiting.store(CLOSED, Ordering::Release);
            let _ = connection.stream.shutdown(Shutdown::Both);
            true
        }
        _ => false,
    }
}

/// What the per-address limit counts as one client: an IPv4 address (IPv4-mapped IPv6 ones
/// included), or the /64 network of an IPv6 address.
fn address_group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(network.into())
            }
        },
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

/// Serves requests on one connection until either side closes, a limit is hit, or the accept
/// loop closes it to make room while it waits for a request.
fn connection<F>(slot: &Slot, accepted: Instant, limits: &Limits, handle: &F)
where
    F: Fn(&Request) -> Response,
{
    let stream = &slot.connection.stream;
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
                Head::Partial => match read_some(stream, &mut buf[filled..], deadline) {
                    // The first bytes of the first request: no longer waiting for one.
                    Received::Data(_) if filled == 0 && !slot.connection.work() => return,
                    Received::Data(n) => filled += n,
                    Received::TimedOut if filled > 0 => {
                        // Best effort: a slow client gets a reason, then is dropped at once.
                        let (head, body) = render(&error_response(408), false, Some("close"));
                        let _ = write_all(
                            stream,
                            &head,
                            &body,
                            after(Instant::now(), LINGER.min(limits.write_timeout)),
                        );
                        return;
                    }
                    Received::TimedOut | Received::Closed => return,
                },
            }
        };

        let stopping = slot.open.stopping.load(Ordering::Acquire);
        let (head, body, close, consumed) = match answer(
            stream,
            &buf[..filled],
            head_len,
            deadline,
            limits,
            stopping,
            handle,
        ) {
            Answer::Reply {
                head,
                body,
                close,
                consumed,
            } => (head, body, close, consumed),
            Answer::Refuse { status, head_only } => {
                return finish(stream, status, head_only, limits)
            }
            Answer::Drop => return,
        };

        if !write_all(
            stream,
            &head,
            &body,
            after(Instant::now(), limits.write_timeout),
        ) {
            return;
        }
        if slot.open.stopping.load(Ordering::Acquire) {
            // The process ends as soon as no response is in flight: no lingering.
            return;
        }
        if close {
            return linger(stream);
        }
        buf.copy_within(consumed..filled, 0);
        filled -= consumed;
        if filled == 0 {
            // Idle until the next request starts, then give it header_timeout from there. While
            // idle, the accept loop may close the connection to make room for a new one.
            slot.connection.wait(&slot.open);
            match read_some(stream, &mut buf, after(Instant::now(), limits.idle_timeout)) {
                Received::Data(n) if slot.connection.work() => filled = n,
                Received::Data(_) | Received::TimedOut | Received::Closed => return,
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
        head: Vec<u8>,
        body: Body,
        close: bool,
        consumed: usize,
    },
    /// Answer this status and close.
    Refuse { status: u16, head_only: bool },
    /// Close without a word: the client went away or ran out of time.
    Drop,
}

/// Checks the request whose head is `buf[..head_len]` (`buf` is everything read so far), reads
/// and drops its body, and calls the handler; the response closes the connection if the
/// request asks so or the server is `stopping`.
fn answer<F>(
    stream: &TcpStream,
    buf: &[u8],
    head_len: usize,
    deadline: Instant,
    limits: &Limits,
    stopping: bool,
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
    let Some((path, query)) = parsed.path.and_then(path_of) else {
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
        && !write_all(
            stream,
            interim,
            &Body::default(),
            after(Instant::now(), limits.write_timeout),
        )
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
        query,
        headers: parsed.headers,
    };
    let response = handle(&request);
    let close = frame.close || stopping;
    let connection = match (close, frame.announce_keep_alive) {
        (true, _) => Some("close"),
        (false, true) => Some("keep-alive"),
        (false, false) => None,
    };
    let (head, body) = render(&response, head_only, connection);
    Answer::Reply {
        head,
        body,
        close,
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

/// The path and the query (after `?`, empty when none) of a request target: origin-form as
/// is, absolute-form (`http://host/path?query`) without scheme and authority. `None` for any
/// other form.
fn path_of(target: &str) -> Option<(&str, &str)> {
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
            Some(i) => return Some(("/", &rest[i + 1..])),
            None => "/",
        }
    };
    Some(path.split_once('?').unwrap_or((path, "")))
}

/// The response's head, and its body (shared, not copied), for one vectored write.
/// `head_only` leaves the body out (HEAD) but keeps its `Content-Length`; `connection` is the
/// `Connection` header, if any.
fn render(response: &Response, head_only: bool, connection: Option<&str>) -> (Vec<u8>, Body) {
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
    let body = if head_only || bodyless {
        Body::default()
    } else {
        response.body.clone()
    };
    (head.into_bytes(), body)
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
        body: format!("{status} {}\n", reason(status)).into_bytes().into(),
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
pub fn http_date(secs: u64) -> String {
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

/// Writes `head` and then every part of `body` by `deadline`; false if the client did not take
/// them in time or went away. All of it goes to the kernel in one vectored write when the
/// socket buffer has room (a response is one segment, never a small write followed by a wait
/// for the client's delayed ACK); a large response takes several.
fn write_all(stream: &TcpStream, head: &[u8], body: &Body, deadline: Instant) -> bool {
    let parts: Vec<&[u8]> = std::iter::once(head)
        .chain(body.0.iter().map(|part| &part[..]))
        .filter(|part| !part.is_empty())
        .collect();
    // parts[index][offset..] is the first byte not written yet.
    let (mut index, mut offset) = (0, 0);
    while index < parts.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_write_timeout(Some(left)).is_err() {
            return false;
        }
        let slices: Vec<IoSlice> = std::iter::once(&parts[index][offset..])
            .chain(parts[index + 1..].iter().copied())
            .map(IoSlice::new)
            .collect();
        match (&*stream).write_vectored(&slices) {
            Ok(0) => return false,
            Ok(mut n) => {
                while index < parts.len() && n >= parts[index].len() - offset {
                    n -= parts[index].len() - offset;
                    index += 1;
                    offset = 0;
                }
                offset += n;
            }
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
fn finish(stream: &TcpStream, status: u16, head_only: bool, limits: &Limits) {
    let (head, body) = render(&error_response(status), head_only, Some("close"));
    if write_all(
        stream,
        &head,
        &body,
        after(Instant::now(), limits.write_timeout),
    ) {
        linger(stream);
    }
}

/// Closes after a last response: stop sending, then read and drop what the client still sends
/// (bounded by [`LINGER`] and [`LINGER_BYTES`]) so that the close does not reset the
/// connection before the client has read the response.
fn linger(stream: &TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut scratch = [0u8; 4096];
    let mut drained = 0;
    while drained < LINGER_BYTES {
        match read_some(stream, &mut scratch, deadline) {
            Received::Data(n) => drained += n,
            Received::TimedOut | Received::Closed => return,
        }
    }
}

#[cfg(test)]
mod tests;
