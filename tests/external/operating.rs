//! Operating the exporter with the tools operators use: a users file written by `htpasswd -B`
//! (Debian's apache2-utils) guards the metrics, and `scripts/screenshot.sh` makes the picture
//! of the status page with Debian's headless Chromium. scripts/test.sh installs both; a missing
//! tool fails its test with the package to install.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::harness::{binary, get, repo, run, temp_dir, tool, Exporter, Reply, Target};

/// Runs `htpasswd` with `args` in `dir`, expecting success.
fn htpasswd(dir: &Path, args: &[&str]) {
    let out = run(Command::new(tool("htpasswd", "apache2-utils"))
        .args(args)
        .current_dir(dir));
    assert!(
        out.status.success(),
        "htpasswd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn htpasswd_bcrypt_users_guard_the_metrics() {
    let dir = temp_dir("external-htpasswd");
    // Two costs, as operators make them: the default (5) and a higher one; then a user whose
    // password is changed by htpasswd in place.
    htpasswd(&dir, &["-B", "-b", "-c", "users", "prometheus", "s3cret"]);
    htpasswd(
        &dir,
        &[
            "-B",
            "-C",
            "8",
            "-b",
            "users",
            "grafana",
            "an0ther pass:word",
        ],
    );
    htpasswd(&dir, &["-B", "-b", "users", "old", "x"]);
    let users = dir.join("users");
    let text = std::fs::read_to_string(&users).unwrap();
    assert_eq!(text.matches(":$2y$").count(), 3, "{text}");
    let target = Target::start(Reply::Json(crate::harness::TUTORIAL_DOC.into()));
    let exporter = Exporter::start(
        &[
            "--target-url",
            &target.url("/status"),
            "--web-basic-auth-file",
            users.to_str().unwrap(),
        ],
        &[],
    );
    exporter.wait_ready(Duration::from_secs(10));
    let basic = |user: &str, password: &str| {
        let pair = format!("{user}:{password}");
        format!("Basic {}", base64(pair.as_bytes()))
    };
    let status = |authorization: &str| {
        get(
            exporter.addr,
            "GET",
            "/metrics",
            &[("Authorization", authorization)],
        )
        .status
    };
    for _ in 0..2 {
        assert_eq!(status(&basic("prometheus", "s3cret")), 200);
        assert_eq!(status(&basic("grafana", "an0ther pass:word")), 200);
        assert_eq!(status(&basic("old", "x")), 200);
        assert_eq!(status(&basic("prometheus", "s3cret ")), 401);
        assert_eq!(status(&basic("grafana", "an0ther pass")), 401);
        assert_eq!(status(&basic("nobody", "s3cret")), 401);
    }
    assert!(
        exporter.log_lines("plain text").is_empty(),
        "{:?}",
        exporter.stderr()
    );
    // htpasswd removes a user; after SIGHUP, that user is refused, though let in before.
    htpasswd(&dir, &["-D", "users", "old"]);
    exporter.signal(libc::SIGHUP);
    exporter.wait_for_log("SIGHUP: users reloaded", Duration::from_secs(10));
    assert_eq!(status(&basic("old", "x")), 401);
    assert_eq!(status(&basic("prometheus", "s3cret")), 200);
}

/// Standard base64 with padding, for the `Authorization` header.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

#[test]
fn the_screenshot_script_makes_a_small_picture_of_the_page() {
    tool("chromium", "chromium");
    let dir = temp_dir("external-screenshot");
    let out = dir.join("page.png");
    let result = run(Command::new("bash")
        .arg(repo().join("scripts/screenshot.sh"))
        .arg(&out)
        .env("STATUS_EXPORTER", binary()));
    assert!(
        result.status.success(),
        "screenshot.sh: {}{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    let png = std::fs::read(&out).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    // The IHDR chunk: width and height, big-endian, at bytes 16 and 20.
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (820, 1000));
    assert!(png.len() < 100 * 1024, "{} bytes", png.len());
    // The committed picture is as small.
    let committed = std::fs::metadata(repo().join("docs/landing-page.png")).unwrap();
    assert!(committed.len() < 100 * 1024, "{}", committed.len());
}
