//! The standard `process_*` metrics, named and described as the official client libraries do
//! on Linux (in the Python client's order), read from `/proc/self` at scrape time.
//!
//! Pure `parse_*` functions do the work and are tested on fixed text; [`read`] is the thin
//! part that reads the files (what cannot change, such as the clock tick and the boot time,
//! only once). A file that cannot be read (no /proc in a chroot or on another OS)
//! only leaves its metrics out. Knows nothing about the rest of the exporter.

use std::fs;

use crate::exposition::{Family, Kind};

/// The process metrics now. Never fails; metrics whose source is missing are left out.
pub fn read() -> Vec<Family> {
    let &Constants { ticks, page, boot } = constants();
    let stat = fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| parse_stat(&s));
    let limits = fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| parse_max_fds(&s));
    let open_fds = fs::read_dir("/proc/self/fd")
        .ok()
        .map(|dir| dir.count() as f64);

    let mut families = Vec::with_capacity(6);
    let mut add = |name: &str, help: &str, kind: Kind, value: Option<f64>| {
        if let Some(value) = value {
            families.push(Family::single(name, help, kind, value));
        }
    };
    add(
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        Kind::Gauge,
        stat.map(|s| s.vsize as f64),
    );
    add(
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        Kind::Gauge,
        stat.map(|s| s.rss_pages as f64 * page),
    );
    add(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        Kind::Gauge,
        stat.zip(boot)
            .map(|(s, boot)| boot as f64 + s.start_ticks as f64 / ticks),
    );
    add(
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        Kind::Counter,
        stat.map(|s| (s.utime + s.stime) as f64 / ticks),
    );
    add(
        "process_open_fds",
        "Number of open file descriptors.",
        Kind::Gauge,
        open_fds,
    );
    add(
        "process_max_fds",
        "Maximum number of open file descriptors.",
        Kind::Gauge,
        limits,
    );
    families
}

/// What does not change while the process runs, read at the first scrape.
struct Constants {
    /// Clock ticks per second (`/proc/self/stat` counts CPU time and the start in ticks).
    ticks: f64,
    /// Page size in bytes (the resident set is counted in pages).
    page: f64,
    /// Boot time, seconds since the epoch (the start time is counted from it).
    boot: Option<u64>,
}

fn constants() -> &'static Constants {
    static CONSTANTS: std::sync::OnceLock<Constants> = std::sync::OnceLock::new();
    CONSTANTS.get_or_init(|| {
        let auxv = fs::read("/proc/self/auxv").unwrap_or_default();
        let word = |key, default| parse_auxv(&auxv, key).filter(|&v| v > 0).unwrap_or(default);
        Constants {
            ticks: word(AT_CLKTCK, 100) as f64,
            page: word(AT_PAGESZ, 4096) as f64,
            boot: fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|s| parse_boot_time(&s)),
        }
    })
}

const AT_PAGESZ: u64 = 6;
const AT_CLKTCK: u64 = 17;

/// A value from the auxiliary vector (`/proc/self/auxv`: pairs of native-endian words).
fn parse_auxv(auxv: &[u8], key: u64) -> Option<u64> {
    const WORD: usize = std::mem::size_of::<usize>();
    let word = |bytes: &[u8]| -> u64 {
        let mut buf = [0u8; WORD];
        buf.copy_from_slice(bytes);
        usize::from_ne_bytes(buf) as u64
    };
    auxv.chunks_exact(2 * WORD)
        .map(|pair| (word(&pair[..WORD]), word(&pair[WORD..])))
        .find(|&(k, _)| k == key)
        .map(|(_, v)| v)
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Stat {
    utime: u64,
    stime: u64,
    start_ticks: u64,
    vsize: u64,
    rss_pages: u64,
}

/// Fields of `/proc/self/stat`. The command name (field 2) may hold spaces and parentheses,
/// so the fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<Stat> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state), so field N is fields[N - 3].
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        utime: field(14)?,
        stime: field(15)?,
        start_ticks: field(22)?,
        vsize: field(23)?,
        rss_pages: field(24)?,
    })
}

/// Boot time (`btime`) from `/proc/stat`, in seconds since the epoch.
fn parse_boot_time(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|line| line.strip_prefix("btime ")?.trim().parse().ok())
}

/// The soft limit of open files from `/proc/self/limits`.
fn parse_max_fds(limits: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    match soft {
        "unlimited" => Some(f64::INFINITY),
        n => n.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat() {
        fn check(text: &str, expected: Option<Stat>) {
            assert_eq!(parse_stat(text), expected, "{text}");
        }
        let tail = "S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 123456 9000000 512 18446744073709551615";
        let expected = Some(Stat {
            utime: 11,
            stime: 12,
            start_ticks: 123456,
            vsize: 9000000,
            rss_pages: 512,
        });
        check(&format!("42 (status-export) {tail}"), expected);
        check(&format!("42 (a) b) (c) {tail}"), expected);
        check("42 (x) S 1 2", None);
        check("", None);
    }

    #[test]
    fn proc_files() {
        assert_eq!(
            parse_boot_time("cpu 1 2 3\nbtime 1764150000\nprocesses 5\n"),
            Some(1764150000)
        );
        assert_eq!(parse_boot_time("cpu 1\n"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_max_fds(limits), Some(1024.0));
        assert_eq!(
            parse_max_fds("Max open files            unlimited            unlimited   files\n"),
            Some(f64::INFINITY)
        );
        let auxv: Vec<u8> = [6usize, 4096, 17, 100, 0, 0]
            .iter()
            .flat_map(|w| w.to_ne_bytes())
            .collect();
        assert_eq!(
            (
                parse_auxv(&auxv, AT_PAGESZ),
                parse_auxv(&auxv, AT_CLKTCK),
                parse_auxv(&auxv, 99)
            ),
            (Some(4096), Some(100), None)
        );
        assert_eq!(parse_auxv(&auxv[..5], AT_PAGESZ), None);
    }

    #[test]
    fn reads_this_process() {
        let names: Vec<String> = read().into_iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "process_virtual_memory_bytes",
                "process_resident_memory_bytes",
                "process_start_time_seconds",
                "process_cpu_seconds_total",
                "process_open_fds",
                "process_max_fds",
            ]
        );
    }
}
