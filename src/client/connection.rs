//! Reaching the target: resolving its host (on a helper thread, so that a slow resolver cannot
//! outlast the deadline), asking the caller's policy about every address before connecting to
//! any, connecting, and the TLS handshake for https://. Every read and write of the
//! [`Connection`] ends by the fetch's deadline. Knows nothing about HTTP.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{Failure, Reason};
use crate::tls::Trust;

/// Host-name lookups that may run at once, in the whole process. A lookup that outlasts its
/// fetch's deadline goes on on its thread until the resolver gives up; this bounds how many
/// such threads a resolver that never answers can leave behind.
const MAX_LOOKUPS: usize = 8;
/// Stack of a lookup thread: getaddrinfo's own needs, with room for glibc's NSS modules.
const LOOKUP_STACK: usize = 256 * 1024;

static LOOKUPS: AtomicUsize = AtomicUsize::new(0);

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
    if LOOKUPS.fetch_add(1, Ordering::AcqRel) >= MAX_LOOKUPS {
        LOOKUPS.fetch_sub(1, Ordering::AcqRel);
        return Err(Failure::new(
            Reason::Resolve,
            format!("{MAX_LOOKUPS} earlier lookups are still waiting for the resolver"),
        ));
    }
    /// Gives the lookup's place back when its thread ends, or when it cannot start.
    struct Lookup;
    impl Drop for Lookup {
        fn drop(&mut self) {
            LOOKUPS.fetch_sub(1, Ordering::AcqRel);
        }
    }
    let lookup = Lookup;
    let (sender, receiver) = mpsc::channel();
    let name = host.to_string();
    let spawned = std::thread::Builder::new()
        .name("resolve".into())
        .stack_size(LOOKUP_STACK)
        .spawn(move || {
            let _lookup = lookup;
            let result = (name.as_str(), port)
                .to_socket_addrs()
                .map(|addresses| addresses.collect::<Vec<_>>());
            let _ = sender.send(result);
        });
    if let Err(e) = spawned {
        return Err(Failure::new(
            Reason::Resolve,
            format!("cannot start a thread for the lookup: {e}"),
        ));
    }
    let left = deadline.saturating_duration_since(Instant::now());
    match receiver.recv_timeout(left) {
        Ok(Ok(addresses)) if !addresses.is_empty() => Ok(addresses),
        Ok(Ok(_)) => Err(Failure::new(Reason::Resolve, "no address for the host")),
        Ok(Err(e)) => Err(Failure::new(Reason::Resolve, e.to_string())),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(Failure::new(
            Reason::Timeout,
            "while resolving the host name",
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(Failure::new(
            Reason::Resolve,
            "the lookup ended without an answer",
        )),
    }
}
