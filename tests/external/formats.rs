//! The strict format checkers of `tests/harness/formats.rs` agree with the real parsers:
//! `promtool check metrics` (Prometheus' Go parser of the text format) and the OpenMetrics
//! parser of the official Python client (Debian's `python3-prometheus-client`), on the
//! hand-written documents and on a sample of the random outputs of the property tests.

use std::io::Write;
use std::process::{Command, Stdio};

use status_exporter::exposition;

use crate::harness::formats::{
    check_openmetrics, check_text, BAD_OPENMETRICS, BAD_TEXT, GOOD_OPENMETRICS, GOOD_TEXT,
};
use crate::harness::random::run_case;
use crate::harness::tool;

/// The checkers agree with the real parsers: on the hand-written documents above, and on
/// a sample of random outputs (names made unique per case, so that all of them can be
/// checked as one document by each tool).
#[test]
fn checkers_agree_with_promtool_and_the_python_client() {
    for &doc in GOOD_TEXT {
        assert_eq!(promtool(doc), Ok(()), "{doc:?}");
    }
    for &(doc, refused) in BAD_TEXT {
        if refused {
            assert!(promtool(doc).is_err(), "promtool accepted {doc:?}");
        }
    }
    let mut documents: Vec<String> = GOOD_OPENMETRICS.iter().map(|d| d.to_string()).collect();
    documents.extend(BAD_OPENMETRICS.iter().map(|(d, _)| d.to_string()));
    let mut all_text = String::new();
    let mut all_openmetrics = String::new();
    for seed in 0..300 {
        let case = run_case(1_000_000 + seed, &format!("c{seed}_"));
        if let Some((text, openmetrics)) = case.rendered {
            all_text.push_str(&text);
            all_openmetrics.push_str(openmetrics.strip_suffix(exposition::EOF).unwrap());
        }
    }
    all_openmetrics.push_str(exposition::EOF);
    assert_eq!(check_text(&all_text), Ok(()));
    assert_eq!(check_openmetrics(&all_openmetrics), Ok(()));
    assert_eq!(promtool(&all_text), Ok(()));
    documents.push(all_openmetrics);
    let verdicts = python_openmetrics(&documents);
    for (doc, verdict) in GOOD_OPENMETRICS.iter().zip(&verdicts) {
        assert_eq!(verdict, &Ok(()), "{doc:?}");
    }
    for ((doc, refused), verdict) in BAD_OPENMETRICS
        .iter()
        .zip(&verdicts[GOOD_OPENMETRICS.len()..])
    {
        if *refused {
            assert!(verdict.is_err(), "the Python client accepted {doc:?}");
        }
    }
    assert_eq!(verdicts.last(), Some(&Ok(())), "the random sample");
}

/// Runs `promtool check metrics` on `exposition`: Err with its output on a parse error.
/// Lint remarks (exit status 3, e.g. "no help text") are not errors of the format.
fn promtool(exposition: &str) -> Result<(), String> {
    let output = run_tool(
        Command::new(tool("promtool", "prometheus")).args(["check", "metrics"]),
        exposition.as_bytes(),
        "promtool (apt-get install prometheus; scripts/test.sh does this)",
    );
    match output.status.code() {
        Some(0 | 3) => Ok(()),
        _ => Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )),
    }
}

/// The OpenMetrics parser of the official Python client on each document: one verdict each.
fn python_openmetrics(documents: &[String]) -> Vec<Result<(), String>> {
    // Each document comes as its length in bytes, a line feed, then the document.
    const SCRIPT: &str = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
data = sys.stdin.buffer.read()
while data:
    length, _, data = data.partition(b"\n")
    doc, data = data[:int(length)].decode("utf-8"), data[int(length):]
    try:
        list(text_string_to_metric_families(doc))
        print("ok")
    except Exception as e:
        print("error: " + repr(e).replace("\n", " "))
"#;
    let output = run_tool(
        Command::new("/usr/bin/python3").args(["-c", SCRIPT]),
        documents
            .iter()
            .map(|d| format!("{}\n{d}", d.len()))
            .collect::<String>()
            .as_bytes(),
        "python3 with prometheus_client (apt-get install python3-prometheus-client; scripts/test.sh does this)",
    );
    assert!(
        output.status.success(),
        "the OpenMetrics parser failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let verdicts: Vec<Result<(), String>> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| {
            if l == "ok" {
                Ok(())
            } else {
                Err(l.to_string())
            }
        })
        .collect();
    assert_eq!(verdicts.len(), documents.len(), "one verdict per document");
    verdicts
}

fn run_tool(command: &mut Command, input: &[u8], install: &str) -> std::process::Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {install}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().expect("wait for the tool");
    let _ = writer.join();
    output
}
