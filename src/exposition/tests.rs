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
