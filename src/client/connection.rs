//! Reaching the target: resolving its host (on a helper thread, so that a slow resolver cannot
//! outlast the deadline), asking the caller's policy about every address before connecting to
//! any, connecting, and the TLS handshake for https://. Every read and write of the
//! [`Connection`] ends by the fetch's deadline. Knows nothing about HTTP.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{Failure, Reason};
use crate::tls::Trust;

/// Lookups given up (their fetch's deadline passed) whose threads still wait for the resolver,
/// at most, in the whole process: past it a new lookup is refused, so that a resolver that never
/// answers cannot pile up threads. Lookups in progress are not limited (the callers are).
const MAX_ABANDONED: usize = 8;
/// Stack of a lookup thread: getaddrinfo's own needs, with room for glibc's NSS modules.
const LOOKUP_STACK: usize = 256 * 1024;

static ABANDONED: AtomicUsize = AtomicUsize::new(0);

/// A TCP connection whose every read and write ends by `deadline`.
pub struct Socket {
    tcp: TcpStream,
    deadline: Instant,
}

impl Socket {
    /// The time left, or a `TimedOut` error once it has run out.
    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        Ok(left)
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.set_read_timeout(Some(self.left()?))?;
        self.tcp.read(buf)
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.set_write_timeout(Some(self.left()?))?;
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A connection to the target: plain, or a TLS session over it.
pub enum Connection {
    Plain(Socket),
    #[cfg(feature = "https")]
    Tls(Box<crate::tls::Stream<Socket>>),
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Connection::Plain(socket) => socket.read(buf),
            #[cfg(feature = "https")]
            Connection::Tls(stream) => stream.read(buf),
        }
    }
}

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Connection::Plain(socket) => socket.write(buf),
            #[cfg(feature = "https")]
            Connection::Tls(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Connection::Plain(socket) => socket.flush(),
            #[cfg(feature = "https")]
            Connection::Tls(stream) => stream.flush(),
        }
    }
}

/// Connects to `host:port` by `deadline`: resolves the host, asks `allow` about every address
/// (the first refusal ends the fetch), tries the addresses in order, and for `https` completes
/// the TLS handshake with `trust`.
pub fn connect(
    host: &str,
    port: u16,
    https: bool,
    trust: &Trust,
    deadline: Instant,
    allow: &dyn Fn(SocketAddr) -> Result<(), Failure>,
) -> Result<Connection, Failure> {
    let addresses = resolve(host, port, deadline)?;
    for &address in &addresses {
        allow(address)?;
    }
    let mut last_error = None;
    let mut tcp = None;
    for &address in &addresses {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&address, left) {
            Ok(stream) => {
                tcp = Some(stream);
                break;
            }
            Err(e) => last_error = Some((address, e)),
        }
    }
    let Some(tcp) = tcp else {
        return Err(match last_error {
            Some((address, e)) if !is_timeout(&e) => {
                Failure::new(Reason::Connect, format!("{address}: {e}"))
            }
            _ => Failure::new(Reason::Timeout, "while connecting"),
        });
    };
    let _ = tcp.set_nodelay(true);
    let socket = Socket { tcp, deadline };
    if !https {
        return Ok(Connection::Plain(socket));
    }
    handshake(trust, host, socket)
}

#[cfg(feature = "https")]
fn handshake(trust: &Trust, host: &str, socket: Socket) -> Result<Connection, Failure> {
    use crate::tls::HandshakeError;
    match crate::tls::handshake(trust, host, socket) {
        Ok(stream) => Ok(Connection::Tls(Box::new(stream))),
        Err(HandshakeError::Tls(e)) => Err(Failure::new(Reason::Tls, e)),
        Err(HandshakeError::Io(e)) if is_timeout(&e) => {
            Err(Failure::new(Reason::Timeout, "during the TLS handshake"))
        }
        Err(HandshakeError::Io(e))
            if matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
            ) =>
        {
            Err(Failure::new(
                Reason::Tls,
                "the server closed the connection during the handshake (does it speak TLS on \
                 this port?)",
            ))
        }
        Err(HandshakeError::Io(e)) => Err(Failure::new(
            Reason::Tls,
            format!("the handshake failed: {e}"),
        )),
    }
}

/// In a build without HTTPS there is no https:// target: its URL is refused at start-up.
#[cfg(not(feature = "https"))]
fn handshake(_: &Trust, _: &str, _: Socket) -> Result<Connection, Failure> {
    Err(Failure::new(Reason::Tls, "this build has no HTTPS support"))
}

pub fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// The addresses of `host` (an IP address is its own), by `deadline`.
fn resolve(host: &str, port: u16, deadline: Instant) -> Result<Vec<SocketAddr>, Failure> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    look_up(host, port, deadline, |name, port| {
        (name, port).to_socket_addrs().map(|a| a.collect())
    })
}

/// Runs `lookup` (the system's resolver, or a test's) on a thread of its own and waits for it
/// until `deadline`.
fn look_up(
    host: &str,
    port: u16,
    deadline: Instant,
    lookup: fn(&str, u16) -> io::Result<Vec<SocketAddr>>,
) -> Result<Vec<SocketAddr>, Failure> {
    if ABANDONED.load(Ordering::Acquire) >= MAX_ABANDONED {
        return Err(Failure::new(
            Reason::Resolve,
            format!("{MAX_ABANDONED} earlier lookups are still waiting for the resolver"),
        ));
    }
    /// The lookup's result, once its thread has one; `abandoned` once its fetch gave up.
    #[derive(Default)]
    struct Slot {
        result: Option<io::Result<Vec<SocketAddr>>>,
        abandoned: bool,
    }
    let shared = Arc::new((Mutex::new(Slot::default()), Condvar::new()));
    let theirs = Arc::clone(&shared);
    let name = host.to_string();
    let spawned = std::thread::Builder::new()
        .name("resolve".into())
        .stack_size(LOOKUP_STACK)
        .spawn(move || {
            let result = lookup(&name, port);
            let (slot, done) = &*theirs;
            let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
            if slot.abandoned {
                ABANDONED.fetch_sub(1, Ordering::AcqRel);
            } else {
                slot.result = Some(result);
                done.notify_one();
            }
        });
    if let Err(e) = spawned {
        return Err(Failure::new(
            Reason::Resolve,
            format!("cannot start a thread for the lookup: {e}"),
        ));
    }
    let (slot, done) = &*shared;
    let slot = slot.lock().unwrap_or_else(|e| e.into_inner());
    let left = deadline.saturating_duration_since(Instant::now());
    let (mut slot, _) = done
        .wait_timeout_while(slot, left, |slot| slot.result.is_none())
        .unwrap_or_else(|e| e.into_inner());
    match slot.result.take() {
        Some(Ok(addresses)) if !addresses.is_empty() => Ok(addresses),
        Some(Ok(_)) => Err(Failure::new(Reason::Resolve, "no address for the host")),
        Some(Err(e)) => Err(Failure::new(Reason::Resolve, e.to_string())),
        None => {
            // Decided under the lock, so the thread either has not answered yet and will see
            // the flag, or has answered and `result` is not None.
            slot.abandoned = true;
            ABANDONED.fetch_add(1, Ordering::AcqRel);
            Err(Failure::new(
                Reason::Timeout,
                "while resolving the host name",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resolver that never answers leaves at most MAX_ABANDONED threads behind; once they
    /// end, lookups work again.
    #[test]
    fn lookups_given_up_on_are_bounded() {
        fn slow(_: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
            std::thread::sleep(Duration::from_millis(1500));
            Ok(vec![SocketAddr::from(([192, 0, 2, 1], port))])
        }
        fn fast(_: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
            Ok(vec![SocketAddr::from(([192, 0, 2, 2], port))])
        }
        let soon = || Instant::now() + Duration::from_millis(20);
        for _ in 0..MAX_ABANDONED {
            let got = look_up("slow.example", 80, soon(), slow).map_err(|f| f.to_string());
            assert_eq!(
                got,
                Err("no complete answer within TARGET_TIMEOUT_SECONDS (while resolving the host name)".into())
            );
        }
        let refused = look_up("any.example", 80, soon(), fast).map_err(|f| f.reason);
        assert_eq!(refused, Err(Reason::Resolve));
        let later = Instant::now() + Duration::from_secs(10);
        while ABANDONED.load(Ordering::Acquire) > 0 {
            assert!(Instant::now() < later, "the abandoned lookups never ended");
            std::thread::sleep(Duration::from_millis(20));
        }
        let got = look_up("any.example", 8000, soon() + Duration::from_secs(5), fast);
        assert_eq!(got, Ok(vec![SocketAddr::from(([192, 0, 2, 2], 8000))]));
    }
}
