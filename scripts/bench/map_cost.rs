//! What mapping a document costs, for scripts/bench.sh: reads the document once, applies the
//! mapping to it 30 times in a loop (into the same buffers, as the poller does), and prints the
//! shortest and the median time of one application, in ms. The poll durations of the same run
//! are read against it: they add the fetch and a thread waking from sleep, and a machine whose
//! other work slows the exporter down slows this loop down as much. Not part of the shipped
//! binary.
//!
//! Usage: map_cost DOCUMENT MAPPING_FILE

use std::time::Instant;

use status_exporter::mapping;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, document, mapping_file] = &args[..] else {
        eprintln!("usage: map_cost DOCUMENT MAPPING_FILE");
        std::process::exit(2);
    };
    let document = std::fs::read(document).unwrap_or_else(|e| panic!("{document}: {e}"));
    let text =
        std::fs::read_to_string(mapping_file).unwrap_or_else(|e| panic!("{mapping_file}: {e}"));
    let mapping = mapping::parse(&text).unwrap_or_else(|e| panic!("{mapping_file}: {e}"));
    let mut applied = mapping::Applied::default();
    let mut times: Vec<f64> = (0..30)
        .map(|_| {
            let started = Instant::now();
            mapping::apply_into(&mapping, &document, usize::MAX, &mut applied)
                .unwrap_or_else(|e| panic!("{e}"));
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!("{:.1} {:.1}", times[0], times[times.len() / 2]);
}
