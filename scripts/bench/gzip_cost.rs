//! What gzip costs the poller, for scripts/bench.sh: compresses each file given (a scrape body,
//! as the poller compresses a snapshot's text) with the exporter's own `gzip::member`, several
//! times, and prints for each its size, its compressed size and the best time of one
//! compression. Not part of the shipped binary.
//!
//! Usage: cargo run --release --example gzip_cost -- FILE...

use std::time::{Duration, Instant};

use status_exporter::gzip;

fn main() {
    for file in std::env::args().skip(1) {
        let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
        let mut best = Duration::MAX;
        let mut size = 0;
        for _ in 0..10 {
            let started = Instant::now();
            size = gzip::member(&data).len();
            best = best.min(started.elapsed());
        }
        println!(
            "{file} {} {size} {:.1}",
            data.len(),
            best.as_secs_f64() * 1000.0
        );
    }
}
