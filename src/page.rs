//! The status page that a browser gets at `/`: version, target, the last poll, failures by
//! reason, the mapping's metrics, links to the endpoints, and a picture of the recent polls.
//!
//! Owns the page's HTML ([`render`]) and its escaping ([`escape`]). It is rendered from the
//! snapshot's [`Status`] alone, so it does no I/O, and it is self-contained: inline style
//! attributes, an inline SVG, no script, no stylesheet, no image or link to anything outside
//! the exporter. Everything that comes from the target, the settings or the mapping is escaped.
//! Knows nothing about HTTP (`server.rs` decides who gets the page) or how the figures are
//! counted.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::VERSION;
use crate::http::http_date;
use crate::snapshot::{Poll, Snapshot, Status, HISTORY};

const OK: &str = "#2e7d32";
const FAILED: &str = "#c62828";
const MUTED: &str = "#666";
const CELL: &str = "padding: 0.15em 1.2em 0.15em 0; text-align: left; vertical-align: top";

/// The page for `snapshot` now; `fresh` is false once the poller has stopped publishing.
pub fn render(snapshot: &Snapshot, fresh: bool) -> String {
    render_at(&snapshot.status, fresh, SystemTime::now())
}

/// The page as it reads at `now`.
pub fn render_at(status: &Status, fresh: bool, now: SystemTime) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let refresh = status.interval.as_secs_f64().ceil().clamp(5.0, 300.0);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"refresh\" content=\"{refresh}\">\n\
         <title>status-exporter: {}</title>\n</head>\n",
        escape(&status.target)
    );
    out.push_str(
        "<body style=\"font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; \
         color: #222; background: #fff; max-width: 46em; margin: 1.5em auto; padding: 0 1em; \
         line-height: 1.45\">\n",
    );
    let _ = writeln!(
        out,
        "<h1 style=\"font-size: 1.4em; margin-bottom: 0.2em\">status-exporter</h1>\n\
         <p style=\"margin-top: 0; color: {MUTED}\">version {} · a Prometheus exporter for a \
         JSON status page · <a href=\"/metrics\">/metrics</a> · \
         <a href=\"/-/healthy\">/-/healthy</a> · <a href=\"/-/ready\">/-/ready</a></p>",
        escape(VERSION)
    );
    if !fresh {
        let _ = writeln!(
            out,
            "<p style=\"color: {FAILED}; font-weight: bold\">The poller has stopped \
             publishing: these figures are old, and the metrics say status_exporter_up 0 \
             (see the log).</p>"
        );
    }

    heading(&mut out, "Target");
    let _ = writeln!(
        out,
        "<p><code>{}</code>, polled every {}{}; {} {} so far.</p>",
        escape(&status.target),
        duration(status.interval),
        if status.delay > status.interval {
            format!(" (every {} while it fails)", duration(status.delay))
        } else {
            String::new()
        },
        status.polls,
        if status.polls == 1 { "poll" } else { "polls" }
    );

    heading(&mut out, "Last poll");
    match status.history.last() {
        None => out.push_str("<p>None yet.</p>\n"),
        Some(last) => {
            out.push_str("<table style=\"border-collapse: collapse\">\n");
            row(
                &mut out,
                "ended",
                &format!("{} ({})", escape(&date(last.ended)), ago(now, last.ended)),
            );
            row(&mut out, "took", &seconds(last.seconds));
            let result = match (last.failure, &status.failing) {
                (None, _) => format!("<span style=\"color: {OK}\">ok</span>"),
                (Some(reason), message) => format!(
                    "<span style=\"color: {FAILED}\">failed</span>: {}{}",
                    escape(reason),
                    message
                        .as_deref()
                        .map_or_else(String::new, |m| format!(" ({})", escape(m)))
                ),
            };
            row(&mut out, "result", &result);
            let success = match status.last_success {
                Some(at) => format!("{} ({})", escape(&date(at)), ago(now, at)),
                None => "none yet".into(),
            };
            row(&mut out, "last success", &success);
            out.push_str("</table>\n");
        }
    }

    heading(&mut out, "Recent polls");
    chart(&mut out, &status.history);

    heading(&mut out, "Failures by reason");
    let failed: u64 = status.failures.iter().map(|(_, count)| count).sum();
    let (some, none): (Vec<_>, Vec<_>) = status.failures.iter().partition(|(_, n)| *n > 0);
    if failed > 0 {
        out.push_str("<table style=\"border-collapse: collapse\">\n");
        for (reason, count) in &some {
            let _ = writeln!(
                out,
                "<tr><td style=\"{CELL}\"><code>{}</code></td>\
                 <td style=\"{CELL}; text-align: right\">{count}</td></tr>",
                escape(reason)
            );
        }
        out.push_str("</table>\n");
    }
    let others: Vec<String> = none
        .iter()
        .map(|(reason, _)| format!("<code>{}</code>", escape(reason)))
        .collect();
    let noun = if status.polls == 1 { "poll" } else { "polls" };
    if failed == 0 {
        let _ = writeln!(out, "<p>None: 0 of {} {noun} failed.</p>", status.polls);
    } else {
        let _ = writeln!(
            out,
            "<p style=\"color: {MUTED}\">{failed} of {} {noun} failed; none for {}.</p>",
            status.polls,
            others.join(", ")
        );
    }

    heading(&mut out, "Metrics");
    let _ = writeln!(
        out,
        "<p>Mapping: {} ({} {}), then the exporter's own <code>status_exporter_*</code> and the \
         process's <code>process_*</code>.</p>",
        escape(&status.mapping_source),
        status.metrics.len(),
        if status.metrics.len() == 1 {
            "metric"
        } else {
            "metrics"
        }
    );
    out.push_str("<table style=\"border-collapse: collapse\">\n");
    for (name, kind) in &status.metrics {
        let _ = writeln!(
            out,
            "<tr><td style=\"{CELL}\"><code>{}</code></td><td style=\"{CELL}\">{}</td></tr>",
            escape(name),
            escape(kind)
        );
    }
    out.push_str("</table>\n");
    let _ = writeln!(
        out,
        "<p style=\"color: {MUTED}; font-size: 0.9em; margin-top: 2em\">Prometheus and other \
         clients get the metrics at this address; a browser gets this page. Rendered {}.</p>\n\
         </body>\n</html>",
        escape(&date(now))
    );
    out
}

fn heading(out: &mut String, text: &str) {
    let _ = writeln!(
        out,
        "<h2 style=\"font-size: 1.1em; margin: 1.4em 0 0.4em\">{text}</h2>"
    );
}

/// A table row; `html` is already escaped.
fn row(out: &mut String, label: &str, html: &str) {
    let _ = writeln!(
        out,
        "<tr><th style=\"{CELL}; font-weight: normal; color: {MUTED}\">{label}</th>\
         <td style=\"{CELL}\">{html}</td></tr>"
    );
}

/// The last polls as an SVG bar chart: one bar per poll, its height the poll's duration
/// against the longest shown, newest on the right; failed polls red, with a mark above.
fn chart(out: &mut String, history: &[Poll]) {
    const WIDTH: usize = 600;
    const HEIGHT: usize = 120;
    const TOP: usize = 28;
    let slot = WIDTH / HISTORY;
    if history.is_empty() {
        out.push_str("<p>None yet.</p>\n");
        return;
    }
    let longest = history
        .iter()
        .map(|p| p.seconds)
        .fold(0.0f64, f64::max)
        .max(1e-6);
    let failed = history.iter().filter(|p| p.failure.is_some()).count();
    let _ = writeln!(
        out,
        "<svg width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         aria-label=\"Duration of the last {} polls, {failed} failed\" \
         style=\"display: block; max-width: 100%; height: auto\">",
        history.len()
    );
    let _ = writeln!(
        out,
        "<text x=\"0\" y=\"11\" font-size=\"11\" fill=\"{MUTED}\">last {} polls, longest {} · \
         <tspan fill=\"{OK}\">■</tspan> ok · <tspan fill=\"{FAILED}\">■</tspan> failed ({failed})\
         </text>",
        history.len(),
        seconds(longest)
    );
    let plot = (HEIGHT - TOP - 1) as f64;
    let first = (HISTORY - history.len().min(HISTORY)) * slot;
    for (i, poll) in history.iter().rev().take(HISTORY).rev().enumerate() {
        let x = first + i * slot + 1;
        let height = (poll.seconds / longest * plot).clamp(2.0, plot);
        let y = HEIGHT as f64 - 1.0 - height;
        let (fill, outcome) = match poll.failure {
            None => (OK, "ok".to_string()),
            Some(reason) => (FAILED, format!("failed: {}", escape(reason))),
        };
        let title = format!(
            "{}: {}, {outcome}",
            escape(&date(poll.ended)),
            seconds(poll.seconds)
        );
        let _ = write!(
            out,
            "<g><title>{title}</title><rect x=\"{x}\" y=\"{y:.1}\" width=\"{}\" height=\"{height:.1}\" \
             fill=\"{fill}\"/>",
            slot - 2
        );
        if poll.failure.is_some() {
            let _ = write!(
                out,
                "<rect x=\"{x}\" y=\"{}\" width=\"{}\" height=\"5\" fill=\"{FAILED}\"/>",
                TOP - 10,
                slot - 2
            );
        }
        out.push_str("</g>\n");
    }
    let _ = writeln!(
        out,
        "<line x1=\"0\" y1=\"{0}\" x2=\"{WIDTH}\" y2=\"{0}\" stroke=\"#999\" stroke-width=\"1\"/>\n</svg>",
        HEIGHT - 1
    );
}

/// `12.5 ms` or `1.25 s`.
fn seconds(seconds: f64) -> String {
    if seconds < 0.01 {
        format!("{:.2} ms", seconds * 1e3)
    } else if seconds < 1.0 {
        format!("{:.0} ms", seconds * 1e3)
    } else {
        format!("{seconds:.2} s")
    }
}

/// A configured duration: `5s`, `0.5s`.
fn duration(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// A time of day, as HTTP writes dates (UTC).
fn date(at: SystemTime) -> String {
    http_date(at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

/// How long before `now` `at` was: `3 s ago`, `5 min ago`.
fn ago(now: SystemTime, at: SystemTime) -> String {
    let secs = now.duration_since(at).map_or(0, |d| d.as_secs());
    match secs {
        0..=119 => format!("{secs} s ago"),
        120..=7199 => format!("{} min ago", secs / 60),
        _ => format!("{} h ago", secs / 3600),
    }
}

/// `text` with `&`, `<`, `>`, `"` and `'` as character references, so that it is text wherever
/// it goes in the page (an element or a quoted attribute); borrowed when nothing needs it.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        fn check(input: &str, expected: &str) {
            assert_eq!(escape(input), expected, "{input:?}");
        }
        check("", "");
        check("plain text: 1.0", "plain text: 1.0");
        check("<script>", "&lt;script&gt;");
        check("a & b", "a &amp; b");
        check("say \"hi\"", "say &quot;hi&quot;");
        check("it's", "it&#39;s");
        check("&amp;", "&amp;amp;");
        check("äöü <ü>", "äöü &lt;ü&gt;");
        assert!(matches!(escape("nothing"), Cow::Borrowed(_)));
    }

    fn status(history: Vec<Poll>) -> Status {
        Status {
            target: "http://host:8000/status?x=<b>&y=\"z\"".into(),
            mapping_source: "/etc/m<1>.json".into(),
            metrics: vec![("app_<x>".into(), "gauge")],
            interval: Duration::from_secs(5),
            delay: Duration::from_secs(5),
            polls: history.len() as u64,
            last_success: None,
            failing: Some("cannot connect: <refused>".into()),
            failures: vec![("connect", 2), ("timeout", 0)],
            history,
        }
    }

    #[test]
    fn text_from_outside_is_escaped_and_nothing_points_outside() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let history = (0..HISTORY + 5)
            .map(|i| Poll {
                ended: at,
                seconds: i as f64 / 100.0,
                failure: (i % 7 == 1).then_some("connect"),
            })
            .collect();
        let page = render_at(&status(history), false, at + Duration::from_secs(3));
        for raw in ["<b>", "\"z\"", "m<1>", "app_<x>", "<refused>"] {
            assert!(!page.contains(raw), "{raw} unescaped");
        }
        assert!(page.contains("http://host:8000/status?x=&lt;b&gt;&amp;y=&quot;z&quot;"));
        assert!(page.contains("cannot connect: &lt;refused&gt;"));
        assert!(page.contains("The poller has stopped publishing"));
        assert!(page.contains("3 s ago"));
        for outside in [
            "<script",
            "src=",
            "<link",
            "<style",
            "url(",
            "href=\"http",
            "@import",
        ] {
            assert!(!page.contains(outside), "{outside}");
        }
        // One bar per poll shown, at most HISTORY, the failed ones marked.
        assert_eq!(page.matches("<title>").count(), HISTORY + 1);
        let failed = (5..HISTORY + 5).filter(|i| i % 7 == 1).count();
        assert_eq!(
            page.matches(&format!("fill=\"{FAILED}\"/>")).count(),
            2 * failed
        );
    }

    #[test]
    fn a_page_before_the_first_poll() {
        let page = render_at(&status(Vec::new()), true, UNIX_EPOCH);
        assert!(page.contains("None yet."));
        assert!(!page.contains("<svg"));
    }

    #[test]
    fn durations_and_ages() {
        assert_eq!(seconds(0.00123), "1.23 ms");
        assert_eq!(seconds(0.25), "250 ms");
        assert_eq!(seconds(2.5), "2.50 s");
        let t = UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(ago(t, t), "0 s ago");
        assert_eq!(ago(t + Duration::from_secs(300), t), "5 min ago");
        assert_eq!(ago(t + Duration::from_secs(7300), t), "2 h ago");
        assert_eq!(ago(t, t + Duration::from_secs(5)), "0 s ago");
        assert_eq!(date(t), "Thu, 01 Jan 1970 00:16:40 GMT");
    }
}
