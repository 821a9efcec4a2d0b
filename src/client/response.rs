//! Reading the target's answer from a connection: the head (status line and headers), parsed
//! with `httparse` and bounded by our own count of its bytes whatever line endings the target
//! uses, and the body, framed by `Content-Length`, by chunks, or by the end of the connection,
//! bounded by the caller's limit. Works on any [`Read`]: the connection bounds the time of each
//! read. Knows nothing about requests, redirects or addresses.

use std::io::{self, Read};

use super::{io_failure, Failure, Reason};

/// Limit for the status line and headers together (interim `1xx` heads included), bytes.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Headers in one head; more is `too_large`. A web server sends about 10.
const MAX_HEADERS: usize = 100;
/// Limit for one chunk-size line (size, extensions, line end), bytes.
const MAX_CHUNK_LINE: usize = 4096;
/// Bytes asked of the connection in one read.
const READ_SIZE: usize = 16 * 1024;

/// The parts of a response head that the client uses.
#[derive(Debug, PartialEq)]
pub struct Head {
    pub status: u16,
    /// The `Location` header, as sent: bytes, since it may hold non-ASCII ones.
    pub location: Option<Vec<u8>>,
    /// The `Content-Encoding` header, if any.
    pub content_encoding: Option<String>,
    framing: Framing,
}

/// How the body is delimited (RFC 9112, section 6.3).
#[derive(Debug, PartialEq)]
enum Framing {
    Length(u64),
    Chunked,
    /// Until the server closes the connection.
    Close,
    /// `Transfer-Encoding` other than `chunked` alone: the body cannot be read.
    Unsupported(String),
    /// Two `Content-Length` values that differ, or one that is not a number.
    BadLength,
}

/// A connection with a buffer: `buf[start..end]` holds bytes read but not yet used; the rest of
/// `buf` is room for the next read (zeroed once, when the buffer grows).
pub struct Reader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Reader<R> {
        Reader {
            inner,
            buf: Vec::new(),
            start: 0,
            end: 0,
        }
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
    }

    /// Reads more bytes into the buffer; false at the end of the stream. A TLS session that
    /// ends without `close_notify` ends the stream too: the framing decides whether the body
    /// is complete.
    fn fill(&mut self) -> io::Result<bool> {
        if self.end == self.buf.len() {
            // Room first by moving the pending bytes to the front, else by growing.
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                self.buf.resize(self.buf.len() + READ_SIZE, 0);
            }
        }
        let n = read_retrying(&mut self.inner, &mut self.buf[self.end..])?;
        self.end += n;
        Ok(n > 0)
    }

    /// Moves bytes into `body` until it holds `until` bytes or the stream ends: first the
    /// buffered ones, then straight from the connection. Returns false at the end of the stream.
    fn read_into(&mut self, body: &mut Vec<u8>, until: usize) -> io::Result<bool> {
        while body.len() < until {
            let pending = self.pending();
            if !pending.is_empty() {
                let n = pending.len().min(until - body.len());
                body.extend_from_slice(&pending[..n]);
                self.consume(n);
                continue;
            }
            // Grow by doubling, but never past `until`.
            let want = (until - body.len()).min(4 * READ_SIZE);
            if body.capacity() - body.len() < want {
                let capacity = (body.capacity() * 2).max(body.len() + want).min(until);
                body.reserve_exact(capacity - body.len());
            }
            let len = body.len();
            body.resize(len + want, 0);
            let read = read_retrying(&mut self.inner, &mut body[len..]);
            body.truncate(len + *read.as_ref().unwrap_or(&0));
            if read? == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The next line (without its line end, LF or CRLF), at most `max` bytes with the line end;
    /// None when the stream ends first.
    fn line(&mut self, max: usize) -> Result<Option<Vec<u8>>, LineError> {
        loop {
            if let Some(i) = self.pending().iter().position(|&b| b == b'\n') {
                if i + 1 > max {
                    return Err(LineError::TooLong);
                }
                let line = &self.pending()[..i];
                let line = line.strip_suffix(b"\r").unwrap_or(line).to_vec();
                self.consume(i + 1);
                return Ok(Some(line));
            }
            if self.pending().len() >= max {
                return Err(LineError::TooLong);
            }
            if !self.fill().map_err(LineError::Io)? {
                return Ok(None);
            }
        }
    }
}

enum LineError {
    TooLong,
    Io(io::Error),
}

fn read_retrying(inner: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match inner.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
            other => return other,
        }
    }
}

/// Reads the head of the final response (skipping interim `1xx` ones), leaving the body's
/// first bytes in the buffer.
pub fn read_head<R: Read>(reader: &mut Reader<R>) -> Result<Head, Failure> {
    // Bytes of the head(s) read so far and consumed: leading empty lines, interim heads.
    let mut counted = 0;
    // How far the buffer has been searched for the end of the head.
    let mut scanned: usize = 0;
    loop {
        while let Some(b'\r' | b'\n') = reader.pending().first() {
            reader.consume(1);
            counted += 1;
            scanned = scanned.saturating_sub(1);
        }
        let end = head_end(reader.pending(), scanned.saturating_sub(2));
        let too_large = match end {
            Some(end) => counted + end > MAX_HEAD_BYTES,
            None => counted + reader.pending().len() >= MAX_HEAD_BYTES,
        };
        if too_large {
            let what = match reader.pending().contains(&b'\n') {
                true => "headers",
                false => "status line",
            };
            return Err(Failure::new(
                Reason::TooLarge,
                format!("{what} over {MAX_HEAD_BYTES} bytes"),
            ));
        }
        let Some(end) = end else {
            scanned = reader.pending().len();
            match reader.fill() {
                Ok(true) => continue,
                Ok(false) if counted + reader.pending().len() == 0 => {
                    return Err(Failure::new(
                        Reason::InvalidResponse,
                        "no HTTP status line: the connection closed without an answer",
                    ))
                }
                Ok(false) => {
                    return Err(Failure::new(
                        Reason::InvalidResponse,
                        "the connection closed before the end of the headers",
                    ))
                }
                Err(e) => return Err(io_failure(&e, "while reading the headers")),
            }
        };
        let head = parse_head(&reader.pending()[..end])?;
        reader.consume(end);
        counted += end;
        scanned = 0;
        // 101 would switch protocols: not an answer we can use, reported as its status.
        if (100..200).contains(&head.status) && head.status != 101 {
            continue;
        }
        return Ok(head);
    }
}

/// The length of the head at the start of `bytes` (up to and including the empty line that
/// ends it, LF or CRLF), searching from `from`.
fn head_end(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len()).find_map(|i| match bytes[i..] {
        [b'\n', b'\n', ..] => Some(i + 2),
        [b'\n', b'\r', b'\n', ..] => Some(i + 3),
        _ => None,
    })
}

/// Parses a complete head.
fn parse_head(bytes: &[u8]) -> Result<Head, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(Failure::new(
                Reason::InvalidResponse,
                "the headers do not end",
            ))
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Failure::new(
                Reason::TooLarge,
                format!("more than {MAX_HEADERS} headers"),
            ))
        }
        Err(httparse::Error::HeaderValue) => return Err(bad_header_value(bytes)),
        Err(httparse::Error::Version | httparse::Error::Status) => {
            let line = bytes.split(|&b| b == b'\n').next().unwrap_or(b"");
            let line = String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
            return Err(Failure::new(
                Reason::InvalidResponse,
                format!(
                    "no HTTP status line: the answer starts with \"{}\"",
                    line.trim_end()
                ),
            ));
        }
        Err(e) => {
            return Err(Failure::new(
                Reason::InvalidResponse,
                format!("malformed headers: {e}"),
            ))
        }
    }
    let status = response.code.unwrap_or(0);
    let value = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim().to_string();
    let location = value("location").map(|v| v.trim_ascii().to_vec());
    let content_encoding = value("content-encoding").map(text);
    let all = |name: &str| -> Vec<String> {
        response
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .flat_map(|h| {
                text(h.value)
                    .split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let framing = if status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::Length(0)
    } else {
        let codings = all("transfer-encoding");
        let lengths = all("content-length");
        if !codings.is_empty() {
            if codings == ["chunked"] {
                Framing::Chunked
            } else {
                Framing::Unsupported(codings.join(", "))
            }
        } else if !lengths.is_empty() {
            let numbers: Vec<Option<u64>> = lengths
                .iter()
                .map(|l| {
                    let digits = !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit());
                    // All digits: the only error is overflow, which is too large anyway.
                    digits.then(|| l.parse().unwrap_or(u64::MAX))
                })
                .collect();
            match numbers[0] {
                Some(n) if numbers.iter().all(|&m| m == Some(n)) => Framing::Length(n),
                _ => Framing::BadLength,
            }
        } else {
            Framing::Close
        }
    };
    Ok(Head {
        status,
        location,
        content_encoding,
        framing,
    })
}

/// The failure for a head that `httparse` refused because of a byte in a header value: a
/// control character. In a `Location` it is a redirect that is not followed (a bare CR copied
/// into the next request line would split it); elsewhere a malformed response.
fn bad_header_value(head: &[u8]) -> Failure {
    let bad = |b: &u8| b.is_ascii_control() && *b != b'\t';
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if !value.iter().any(bad) {
            continue;
        }
        let name = String::from_utf8_lossy(name);
        let value = String::from_utf8_lossy(value);
        if name.trim().eq_ignore_ascii_case("location") {
            return Failure::new(
                Reason::Redirect,
                format!(
                    "a Location with a control character in it ({})",
                    value.trim()
                ),
            );
        }
        return Failure::new(
            Reason::InvalidResponse,
            format!("the {} header has a control character in it", name.trim()),
        );
    }
    Failure::new(
        Reason::InvalidResponse,
        "malformed headers: invalid header value",
    )
}

/// Reads the body that `head` announces, at most `max` bytes, into `body` (emptied first: the
/// memory of an earlier body, so that a poll of the same document touches no new memory).
pub fn read_body<R: Read>(
    reader: &mut Reader<R>,
    head: &Head,
    max: usize,
    mut body: Vec<u8>,
) -> Result<Vec<u8>, Failure> {
    body.clear();
    let too_large = || {
        Failure::new(
            Reason::TooLarge,
            format!("more than TARGET_MAX_BYTES ({max} bytes)"),
        )
    };
    let reading = |e: io::Error| io_failure(&e, "while reading the body");
    match &head.framing {
        Framing::Length(n) if *n > max as u64 => Err(Failure::new(
            Reason::TooLarge,
            format!("{n} bytes, more than TARGET_MAX_BYTES ({max})"),
        )),
        Framing::Length(n) => {
            // At most `max`, a usize.
            let n = *n as usize;
            body.reserve_exact(n);
            if !reader.read_into(&mut body, n).map_err(reading)? {
                return Err(Failure::new(
                    Reason::InvalidResponse,
                    format!("body truncated: {} of {n} bytes", body.len()),
                ));
            }
            Ok(body)
        }
        Framing::Close => {
            reader
                .read_into(&mut body, max.saturating_add(1))
                .map_err(reading)?;
            if body.len() > max {
                return Err(too_large());
            }
            Ok(body)
        }
        Framing::Chunked => read_chunked(reader, max, body),
        Framing::Unsupported(codings) => Err(Failure::new(
            Reason::InvalidResponse,
            format!("Transfer-Encoding {codings:?} is not supported (only chunked)"),
        )),
        Framing::BadLength => Err(Failure::new(
            Reason::InvalidResponse,
            "Content-Length is not one number",
        )),
    }
}

/// Decodes a chunked body (RFC 9112, section 7.1), at most `max` bytes of data; chunk-size
/// lines and trailers are bounded too.
fn read_chunked<R: Read>(
    reader: &mut Reader<R>,
    max: usize,
    mut body: Vec<u8>,
) -> Result<Vec<u8>, Failure> {
    let invalid =
        |what: &str| Failure::new(Reason::InvalidResponse, format!("bad chunking: {what}"));
    let truncated = || invalid("the body ends before its last chunk");
    let line = |reader: &mut Reader<R>, max_line: usize, what: &str| match reader.line(max_line) {
        Ok(Some(line)) => Ok(line),
        Ok(None) => Err(truncated()),
        Err(LineError::TooLong) => Err(invalid(&format!("{what} over {max_line} bytes"))),
        Err(LineError::Io(e)) => Err(io_failure(&e, "while reading the body")),
    };
    loop {
        let size_line = line(reader, MAX_CHUNK_LINE, "a chunk-size line")?;
        let digits = size_line
            .split(|&b| b == b';')
            .next()
            .unwrap_or(b"")
            .trim_ascii();
        let size = std::str::from_utf8(digits)
            .ok()
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|d| u64::from_str_radix(d, 16).ok())
            .ok_or_else(|| {
                let shown = String::from_utf8_lossy(&size_line[..size_line.len().min(40)]);
                invalid(&format!("\"{shown}\" is not a chunk size"))
            })?;
        if size == 0 {
            break;
        }
        if size > (max - body.len()) as u64 {
            return Err(Failure::new(
                Reason::TooLarge,
                format!("more than TARGET_MAX_BYTES ({max} bytes)"),
            ));
        }
        let until = body.len() + size as usize;
        if !reader
            .read_into(&mut body, until)
            .map_err(|e| io_failure(&e, "while reading the body"))?
        {
            return Err(truncated());
        }
        match reader.line(2) {
            Ok(Some(end)) if end.is_empty() => {}
            Ok(None) => return Err(truncated()),
            Err(LineError::Io(e)) => return Err(io_failure(&e, "while reading the body")),
            Ok(Some(_)) | Err(LineError::TooLong) => {
                return Err(invalid("a chunk longer than its size"))
            }
        }
    }
    // Trailers, up to the empty line; read and dropped.
    let mut trailers = 0;
    loop {
        let trailer = line(reader, MAX_HEAD_BYTES, "a trailer")?;
        if trailer.is_empty() {
            return Ok(body);
        }
        trailers += trailer.len() + 2;
        if trailers > MAX_HEAD_BYTES {
            return Err(Failure::new(
                Reason::TooLarge,
                format!("trailers over {MAX_HEAD_BYTES} bytes"),
            ));
        }
    }
}
