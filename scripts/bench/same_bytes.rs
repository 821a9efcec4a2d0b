//! A minimal HTTP/1.1 server on std alone, for scripts/bench.sh: it answers every request with
//! the same bytes, read once from a file at start-up, as fast as a server can: one thread per
//! connection, keep-alive, `TCP_NODELAY`, each response one `write` of a prebuilt head and
//! body. It is the ceiling /metrics is compared against (what serving those bytes from memory
//! costs on this machine); it parses nothing but the end of each request head, and is not part
//! of status-exporter.
//!
//! Usage: same_bytes FILE CONTENT_TYPE. Listens on 127.0.0.1, on a free port, which it prints
//! on the first line of stdout.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, file, content_type] = &args[..] else {
        eprintln!("usage: same_bytes FILE CONTENT_TYPE");
        std::process::exit(2);
    };
    let body = std::fs::read(file).expect("read the body");
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    let response: &'static [u8] = response.leak();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    println!("{}", listener.local_addr().expect("address").port());
    std::io::stdout().flush().expect("flush");
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || serve(stream, response));
    }
}

/// Answers each request head (up to its empty line) with `response`, until the client closes.
fn serve(mut stream: TcpStream, response: &[u8]) {
    let _ = stream.set_nodelay(true);
    let mut buf = [0u8; 16 * 1024];
    let mut filled = 0;
    loop {
        while let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
            if stream.write_all(response).is_err() {
                return;
            }
            buf.copy_within(end + 4..filled, 0);
            filled -= end + 4;
        }
        if filled == buf.len() {
            return;
        }
        match stream.read(&mut buf[filled..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
    }
}
