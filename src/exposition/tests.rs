use super::*;

#[test]
fn escaping() {
    fn check(input: &str, quotes: bool, expected: &str) {
        let escaped = escape(input, quotes);
        assert_eq!(escaped, expected, "escape({input:?}, {quotes})");
        assert_eq!(
            matches!(escaped, Cow::Borrowed(_)),
            input == expected,
            "{input:?}"
        );
    }
    check("plain text", false, "plain text");
    check("", true, "");
    check(r"back\slash", false, r"back\\slash");
    check("new\nline", false, r"new\nline");
    check(r#"say "hi""#, false, r#"say "hi""#);
    check(r#"say "hi""#, true, r#"say \"hi\""#);
    check("a\\\"\n", true, r#"a\\\"\n"#);
    check("grüße ✓", true, "grüße ✓");
    check("tab\tand\rreturn", true, "tab\tand\rreturn");
}

#[test]
fn values() {
    fn check(value: f64, expected: &str) {
        let mut out = String::new();
        write_value(value, &mut out);
        assert_eq!(out, expected);
        if value.is_finite() {
            assert_eq!(out.parse::<f64>().unwrap(), value, "round trip of {out}");
        }
    }
    check(0.0, "0");
    check(-0.0, "-0");
    check(4.0, "4");
    check(104.914734, "104.914734");
    check(-3.5, "-3.5");
    check(0.1, "0.1");
    check(1e-5, "0.00001");
    check(1.5e-7, "1.5e-7");
    check(9007199254740993.0, "9007199254740992");
    check(1e17, "1e17");
    check(1.7976931348623157e308, "1.7976931348623157e308");
    check(5e-324, "5e-324");
    check(f64::NAN, "NaN");
    check(f64::INFINITY, "+Inf");
    check(f64::NEG_INFINITY, "-Inf");
}

/// The decimals written without the float formatter are what it writes: every value of up to
/// four decimal places around the edges (whole parts near 10^15, fractions of one unit in the
/// last place, zeros to strip), and a million random ones, of random magnitudes and places.
#[test]
fn short_decimals_are_what_the_float_formatter_writes() {
    let check = |value: f64| {
        let mut ours = Vec::new();
        write_value_bytes(value, &mut ours);
        let theirs = if value.fract() == 0.0 || !(1e-5..1e17).contains(&value.abs()) {
            return;
        } else {
            format!("{value}")
        };
        assert_eq!(String::from_utf8_lossy(&ours), theirs, "{value:e}");
    };
    for text in [
        "0.1",
        "0.2",
        "0.3",
        "1.5",
        "2.05",
        "99.95",
        "0.0001",
        "0.0005",
        "1.0001",
        "-0.25",
        "-7.125",
        "123456789012.345",
        "99999999999.9999",
        "999999999999999.9",
        "0.30000000000000004",
        "4503599627370495.5",
        "1.00005",
        "0.00015",
        "1e-5",
        "12345.6789",
    ] {
        check(text.parse().unwrap());
    }
    assert_eq!(short_decimal(1.5), Some((1, 5, 1)));
    assert_eq!(short_decimal(-99.95), Some((99, 95, 2)));
    assert_eq!(short_decimal(0.0005), Some((0, 5, 4)));
    assert_eq!(short_decimal(0.00005), None);
    assert_eq!(short_decimal(0.1 + 0.2), None);
    let mut rng = crate::rng::Rng::new(16);
    for _ in 0..1_000_000 {
        let places = rng.below(6) as i32;
        let digits = 1 + rng.below(16) as u32;
        let whole = rng.next() % 10u64.pow(digits);
        let value = whole as f64 / 10f64.powi(places);
        check(if rng.chance(50) { -value } else { value });
        check(f64::from_bits(rng.next() >> 2));
        check(rng.next() as f64 / 2f64.powi(rng.below(60) as i32));
    }
}

fn sample_families() -> Vec<Family> {
    let mut health = Family::new("app_health", "Health", Kind::StateSet);
    health.push(&[("app_health", "healthy")], 1.0);
    health.push(&[("app_health", "unhealthy")], 0.0);
    let mut info = Family::new("app_build_info", "Build \"of\" the\napp", Kind::Info);
    info.push(&[("commit", "ab\"c"), ("version", "1.2\\3")], 1.0);
    let mut disk = Family::new("disk_status", "Disk state", Kind::StateSet);
    disk.push(&[("disk", "a"), ("state", "ok")], 1.0);
    disk.push(&[("disk", "a"), ("state", "full")], 0.0);
    vec![
        Family::single("app_uptime", "Uptime", Kind::Gauge, 104.914734),
        health,
        disk,
        Family::single("jobs_total", "Jobs done", Kind::Counter, 7.0),
        info,
        Family::new("empty", "No samples", Kind::Gauge),
    ]
}

fn check_render(format: Format, expected: &str) {
    let mut out = String::new();
    render(&sample_families(), format, &mut out);
    assert_eq!(out, expected);
}

#[test]
fn text_format() {
    check_render(
        Format::Text,
        r#"# HELP app_uptime Uptime
# TYPE app_uptime gauge
app_uptime 104.914734
# HELP app_health Health
# TYPE app_health gauge
app_health{app_health="healthy"} 1
app_health{app_health="unhealthy"} 0
# HELP disk_status Disk state
# TYPE disk_status gauge
disk_status{disk="a",state="ok"} 1
disk_status{disk="a",state="full"} 0
# HELP jobs_total Jobs done
# TYPE jobs_total counter
jobs_total 7
# HELP app_build_info Build "of" the\napp
# TYPE app_build_info gauge
app_build_info{commit="ab\"c",version="1.2\\3"} 1
"#,
    );
}

#[test]
fn openmetrics_format() {
    check_render(
        Format::OpenMetrics,
        r#"# HELP app_uptime Uptime
# TYPE app_uptime gauge
app_uptime 104.914734
# HELP app_health Health
# TYPE app_health stateset
app_health{app_health="healthy"} 1
app_health{app_health="unhealthy"} 0
# HELP disk_status Disk state
# TYPE disk_status gauge
disk_status{disk="a",state="ok"} 1
disk_status{disk="a",state="full"} 0
# HELP jobs Jobs done
# TYPE jobs counter
jobs_total 7
# HELP app_build Build \"of\" the\napp
# TYPE app_build info
app_build_info{commit="ab\"c",version="1.2\\3"} 1
"#,
    );
}
