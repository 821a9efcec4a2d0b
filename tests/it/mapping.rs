//! Mapping files through the real binary: the example triads, `--render`, `--check-config`,
//! serving a file's mapping, the OpenMetrics of every example held to the specification, and
//! reloading a mapping file while running.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::formats::check_openmetrics;
use crate::harness::{
    self, app_part, command, examples, serve_example, temp_dir, value, write_atomically, Exporter,
    Reply, Target,
};

fn render(mapping: &Path, document: &Path) -> (String, String) {
    let output = command(
        &[
            "--config-file",
            mapping.to_str().unwrap(),
            "--render",
            document.to_str().unwrap(),
        ],
        &[],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}: {stderr}",
        mapping.display()
    );
    (String::from_utf8(output.stdout).unwrap(), stderr)
}

/// Each example is a triad: the document an application serves, the mapping, and the exact
/// exposition expected.
#[test]
fn example_triads_render_exactly() {
    for dir in examples() {
        let (out, stderr) = render(&dir.join("mapping.json"), &dir.join("document.json"));
        let expected = fs::read_to_string(dir.join("expected.prom"))
            .unwrap_or_else(|e| panic!("{}/expected.prom: {e}", dir.display()));
        assert_eq!(out, expected, "{}", dir.display());
        assert_eq!(
            stderr,
            "",
            "{}: every sample of the example maps",
            dir.display()
        );
    }
}

/// The served exposition of each example equals its `--render` output, so the triads test
/// the running exporter too.
#[test]
fn examples_are_served_as_rendered() {
    for dir in examples() {
        let (_target, exporter) = serve_example(&dir);
        let body = exporter.wait_for_line("status_exporter_up 1");
        assert_eq!(
            app_part(&body),
            fs::read_to_string(dir.join("expected.prom")).unwrap(),
            "{}",
            dir.display()
        );
    }
}

#[test]
fn the_builtin_mapping_is_the_shipped_tutorial_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mappings/tutorial");
    let output = command(
        &["--render", dir.join("document.json").to_str().unwrap()],
        &[],
    )
    .output()
    .unwrap();
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        fs::read_to_string(dir.join("expected.prom")).unwrap()
    );
}

#[test]
fn render_reads_stdin_and_reports_skipped_samples() {
    let mut child = command(&["--render", "-"], &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"current_requests": 2, "health": "sick"}"#)
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout.starts_with("# HELP app_requests_current Current requests\n# TYPE app_requests_current gauge\napp_requests_current 2\n"), "{stdout}");
    assert!(
        stderr.contains(
            r#"app_health: 1 sample(s) skipped, first: /health: "sick" is not one of the states"#
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("app_uptime: 1 sample(s) skipped, first: /total_uptime: missing"),
        "{stderr}"
    );

    let output = command(&["--render", "/nonexistent.json"], &[])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--render: cannot read /nonexistent.json")
    );
}

#[test]
fn check_config_summarises_or_names_the_error() {
    let dir = temp_dir("check_config");
    let good =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mappings/elasticsearch/mapping.json");
    let output = command(
        &["--check-config", "--config-file", good.to_str().unwrap()],
        &[("EXPORTER_PORT", "9100")],
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.starts_with("settings are valid\n"), "{stdout}");
    assert!(
        stdout.contains("listen:        all interfaces port 9100"),
        "{stdout}"
    );
    assert!(
        stdout.contains("elasticsearch_cluster_health_status (enum of 3) from \"/status\""),
        "{stdout}"
    );

    let bad = dir.join("bad.json");
    fs::write(
        &bad,
        r#"{"metrics": [{"name": "queue_depth", "help": "h", "path": "/q", "lables": {}}]}"#,
    )
    .unwrap();
    let output = command(
        &["--check-config", "--config-file", bad.to_str().unwrap()],
        &[],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr,
        format!("error: {}: metrics[0] \"queue_depth\": unknown field \"lables\" (fields are: name, help, type, path, count, exists, each, where, labels, label, states, value_map, regex, parse, units, scale, missing)\n", bad.display())
    );
    // The same error stops the exporter from starting.
    let output = command(&["--config-file", bad.to_str().unwrap()], &[])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn mapping_file_is_reloaded_when_it_changes() {
    let dir = temp_dir("reload");
    let file = dir.join("mapping.json");
    let first = r#"{"metrics": [{"name": "app_requests_current", "help": "Current requests", "path": "/current_requests"}]}"#;
    let second = r#"{"metrics": [{"name": "pending", "help": "Pending requests", "path": "/pending_requests"},
        {"name": "app_health", "help": "Health", "type": "enum", "path": "/health", "states": ["healthy", "unhealthy"]}]}"#;
    fs::write(&file, first).unwrap();
    let target = Target::start(Reply::Json(crate::harness::TUTORIAL_DOC.into()));
    let exporter = Exporter::start(
        &[
            "--target-url",
            &target.url("/status"),
            "--config-file",
            file.to_str().unwrap(),
        ],
        &[],
    );
    let body = exporter.wait_for_line("status_exporter_up 1");
    assert_eq!(app_part(&body), "# HELP app_requests_current Current requests\n# TYPE app_requests_current gauge\napp_requests_current 4\n");
    assert_eq!(
        value(&body, "status_exporter_config_last_reload_successful"),
        Some(1.0)
    );

    write_atomically(&file, second);
    let body = exporter.wait_for_line("pending 0");
    assert_eq!(
        app_part(&body),
        "# HELP pending Pending requests\n# TYPE pending gauge\npending 0\n# HELP app_health Health\n# TYPE app_health gauge\n\
         app_health{app_health=\"healthy\"} 1\napp_health{app_health=\"unhealthy\"} 0\n"
    );
    assert!(body.contains("status_exporter_mapping_errors_total{metric=\"pending\"} 0\n"));
    assert!(!body.contains("metric=\"app_requests_current\""));
    assert_eq!(
        exporter.log_lines("mapping reloaded").len(),
        1,
        "{:?}",
        exporter.stderr()
    );

    // A broken file: the previous mapping stays, the gauge says so, one log line.
    write_atomically(
        &file,
        r#"{"metrics": [{"name": "x", "help": "h", "path": "/x", "typo": 1}]}"#,
    );
    let body = exporter.wait_for_line("status_exporter_config_last_reload_successful 0");
    assert!(body.contains("\npending 0\n"), "{body}");
    exporter.wait_polls(3);
    let warnings = exporter.log_lines("mapping not reloaded");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("metrics[0] \"x\": unknown field \"typo\""),
        "{}",
        warnings[0]
    );

    // Broken again in another way: reported again, with its own error.
    write_atomically(&file, r#"{"metrics": []}"#);
    exporter.wait_for("the second broken version reported", |_| {
        exporter.log_lines("mapping not reloaded").len() == 2
    });
    let warnings = exporter.log_lines("mapping not reloaded");
    assert!(
        warnings[1].contains(r#""metrics" is empty"#),
        "{}",
        warnings[1]
    );

    // Fixed again.
    write_atomically(&file, first);
    exporter.wait_for_line("status_exporter_config_last_reload_successful 1");
    exporter.wait_for_line("app_requests_current 4");
    assert_eq!(exporter.log_lines("mapping not reloaded").len(), 2);
}

/// A mapping file saved the way a shell redirect or a truncating editor saves it: emptied, then
/// written, with the exporter looking in between. The half-written file is not reported (it has
/// not settled); only the finished file is, with its own error, and when it is fixed it loads.
#[test]
fn a_mapping_file_caught_half_written_is_not_reported() {
    let dir = temp_dir("half-written");
    let file = dir.join("mapping.json");
    let good = r#"{"metrics": [{"name": "app_requests_current", "help": "Current requests", "path": "/current_requests"}]}"#;
    let typo = r#"{"metrics": [{"name": "x", "help": "h", "path": "/x", "typo": 1}]}"#;
    let target = Target::start(Reply::Json(crate::harness::TUTORIAL_DOC.into()));
    // The pause between the two writes must be shorter than the time a file takes to settle
    // (1 s); a machine so busy that it was not is retried, as nothing could be concluded.
    for attempt in 1..=3 {
        fs::write(&file, good).unwrap();
        let exporter = Exporter::start(
            &[
                "--target-url",
                &target.url("/status"),
                "--config-file",
                file.to_str().unwrap(),
            ],
            &[("POLLING_INTERVAL_SECONDS", "0.1")],
        );
        exporter.wait_for_line("status_exporter_up 1");
        let started = Instant::now();
        let mut writer = fs::File::create(&file).unwrap(); // emptied
        writer.write_all(&typo.as_bytes()[..20]).unwrap();
        // About three polls see the half-written file.
        std::thread::sleep(Duration::from_millis(300));
        writer.write_all(&typo.as_bytes()[20..]).unwrap();
        drop(writer);
        if started.elapsed() >= Duration::from_millis(900) {
            eprintln!("attempt {attempt}: the pause took {:?}", started.elapsed());
            continue;
        }
        exporter.wait_for_line("status_exporter_config_last_reload_successful 0");
        exporter.wait_polls(3);
        let warnings = exporter.log_lines("mapping not reloaded");
        assert_eq!(warnings.len(), 1, "{:?}", exporter.stderr());
        assert!(
            warnings[0].contains("metrics[0] \"x\": unknown field \"typo\""),
            "{}",
            warnings[0]
        );
        write_atomically(&file, good);
        exporter.wait_for_line("status_exporter_config_last_reload_successful 1");
        return;
    }
    panic!("the machine was too busy for the test in 3 attempts");
}

/// What the OpenMetrics specification asks beyond what Prometheus's parser enforces, and the
/// Python client's parser (the tutorial exporter's library) does: a stateset's state label is
/// named after the family, the samples of a counter or info family carry its suffix; checked
/// on every example as Prometheus scrapes it, by the strict checker of `harness/formats.rs`.
#[test]
fn openmetrics_of_every_example_follows_the_spec_beyond_prometheus() {
    for example in examples() {
        let response = harness::scrape_example_as_prometheus(&example);
        assert_eq!(
            check_openmetrics(&response.body),
            Ok(()),
            "{}:\n{}",
            example.display(),
            response.body
        );
    }
}
