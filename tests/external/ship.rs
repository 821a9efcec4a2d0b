//! Shipping: what `scripts/` delivers, tested the way an operator meets it.
//!
//! - The static musl binaries of `scripts/build-static.sh` ask for no interpreter and no shared
//!   library, and serve a scrape from an empty root directory as user 65534, which is what the
//!   `FROM scratch` image of `scripts/Dockerfile` is; the aarch64 one under qemu. In that root,
//!   without a CA bundle, the HTTPS build with built-in roots checks a target's certificate
//!   against them, and the plain HTTPS build says how to get a bundle.
//! - The systemd units pass `systemd-analyze verify` and keep a low exposure score.
//! - A real Prometheus with `scripts/prometheus.yml` scrapes the exporter.
//!
//! Needs root (for chroot), the rustup targets x86_64-unknown-linux-musl and
//! aarch64-unknown-linux-musl, and the Debian packages systemd, qemu-user-static, prometheus,
//! openssl and musl-tools (the C compiler for ring in the HTTPS builds); scripts/test.sh installs
//! them. A missing tool fails its test with the package to install: nothing here skips.
//! Each static target is built once per test run (release, LTO: slow), into `target/ship`.
//!
//! The exporter, temporary directories, tools and Prometheus come from the shared harness
//! (`tests/harness`); the exporter in an empty root is started through
//! `chroot` with [`Exporter::spawn`].

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::harness::elf::read_elf;
use crate::harness::prometheus::{wait_within, Prometheus};
use crate::harness::{
    binary, private_ca, repo, run, temp_dir, tool, try_get, Exporter, TlsTarget, TUTORIAL_DOC,
};

const X86_64: &str = "x86_64-unknown-linux-musl";
const AARCH64: &str = "aarch64-unknown-linux-musl";

/// ELF `e_machine` values.
const EM_X86_64: u64 = 62;
const EM_AARCH64: u64 = 183;

/// Limit for start-up and first poll; generous, since qemu emulates the aarch64 binary.
const PATIENCE: Duration = Duration::from_secs(60);

/// The demo target's `requests_current`, under the name the built-in mapping gives it.
const DEMO_METRIC: &str = "app_requests_current";

#[test]
fn x86_64_binary_is_static() {
    check_static(&static_binary(X86_64), EM_X86_64);
}

#[test]
fn aarch64_binary_is_static() {
    check_static(&static_binary(AARCH64), EM_AARCH64);
}

#[test]
fn x86_64_binary_serves_from_an_empty_root() {
    let root = empty_root("ship-root-x86_64");
    add(&root, &static_binary(X86_64), "status-exporter");
    check_serves_from(&root, &["/status-exporter"]);
}

/// The HTTPS build that scripts/build-static.sh makes next to the plain x86-64 one.
#[test]
fn x86_64_https_binary_is_static_and_serves_from_an_empty_root() {
    let plain = static_binary(X86_64);
    let target_dir = plain
        .ancestors()
        .nth(3)
        .expect("TARGET_DIR/TARGET/release/binary");
    let https = target_dir
        .join("https")
        .join(X86_64)
        .join("release/status-exporter");
    check_static(&https, EM_X86_64);
    let root = empty_root("ship-root-x86_64-https");
    add(&root, &https, "status-exporter");
    check_serves_from(&root, &["/status-exporter"]);
}

/// The HTTPS variants on a host without a CA bundle (an empty root, as OpenWrt without
/// `ca-bundle`, or a `FROM scratch` image). The build with built-in roots starts, says that it
/// uses them, and checks the target's certificate against them: a private CA's is refused as an
/// unknown issuer, so the handshake was reached. The plain HTTPS build says that there is no CA
/// bundle and how to fix it, and every poll fails with that reason.
#[test]
fn x86_64_https_variants_without_a_ca_bundle() {
    let chroot = tool("chroot", "coreutils");
    let target_dir = static_binary(X86_64)
        .ancestors()
        .nth(3)
        .expect("TARGET_DIR/TARGET/release/binary")
        .to_path_buf();
    let dir = temp_dir("ship-no-ca-bundle");
    let pki = private_ca(&dir);
    let www = dir.join("www");
    fs::create_dir_all(&www).unwrap();
    fs::write(www.join("status"), TUTORIAL_DOC).unwrap();
    let tls = TlsTarget::start(&pki, &www);
    for (features, startup, failing) in [
        (
            "https-builtin-roots",
            "; CA: the built-in Mozilla roots (",
            "TLS failed: invalid peer certificate: UnknownIssuer; set TARGET_CA_FILE",
        ),
        (
            "https",
            "; CA: none: the system has no CA bundle (/etc/ssl/certs/ca-certificates.crt and the \
             other usual paths do not exist); install the system's CA certificates",
            "TLS failed: no CA certificates to check it against: the system has no CA bundle",
        ),
    ] {
        let binary = target_dir
            .join(features)
            .join(X86_64)
            .join("release/status-exporter");
        check_static(&binary, EM_X86_64);
        let root = empty_root(&format!("ship-root-{features}"));
        add(&root, &binary, "status-exporter");
        let mut command = Command::new(&chroot);
        command
            .env_clear()
            .arg("--userspec=65534:65534")
            .arg(&root)
            .arg("/status-exporter")
            .args(["--target-url", &tls.url("/status")])
            .args(["--exporter-port", "0", "--listen-address", "127.0.0.1"])
            .args(["--polling-interval-seconds", "0.5"]);
        let exporter = Exporter::spawn(command, PATIENCE);
        exporter.wait_for_at_least("status_exporter_poll_failures_total{reason=\"tls\"}", 1.0);
        let line = &exporter.log_lines("listening on")[0];
        assert!(line.contains(startup), "{features}: {line}");
        let line = &exporter.log_lines("failing")[0];
        assert!(line.contains(failing), "{features}: {line}");
    }
}

#[test]
fn aarch64_binary_serves_from_an_empty_root_under_qemu() {
    let qemu = tool("qemu-aarch64-static", "qemu-user-static");
    let root = empty_root("ship-root-aarch64");
    add(&root, &static_binary(AARCH64), "status-exporter");
    add(&root, &qemu, "qemu-aarch64");
    check_serves_from(&root, &["/qemu-aarch64", "/status-exporter"]);
}

#[test]
fn systemd_units_pass_verify_and_stay_hardened() {
    let analyze = tool("systemd-analyze", "systemd");
    // verify wants ExecStart to exist: point it at the binary under test.
    let dir = temp_dir("ship-units");
    let units = [
        ("status-exporter.service", "status-exporter.service"),
        ("status-exporter@.service", "status-exporter@test.service"),
    ];
    let mut paths = Vec::new();
    for (source, name) in units {
        let text = fs::read_to_string(repo().join("scripts").join(source)).unwrap();
        let exec = "\nExecStart=/usr/local/bin/status-exporter\n";
        assert!(text.contains(exec), "{source}: no `{}`", exec.trim());
        let exec_here = format!("\nExecStart={}\n", binary().display());
        let path = dir.join(name);
        fs::write(&path, text.replace(exec, &exec_here)).unwrap();
        paths.push(path);
    }

    let verify = run(Command::new(&analyze)
        .args(["verify", "--man=no"])
        .args(&paths));
    let stderr = String::from_utf8_lossy(&verify.stderr);
    // verify exits 0 on unknown keys and bad values; it only warns, naming the file.
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("status-exporter"))
        .collect();
    assert!(
        verify.status.success() && ours.is_empty(),
        "systemd-analyze verify:\n{stderr}"
    );

    for path in &paths {
        // The score is 0.0 (locked down) to 10.0; the units score 1.1 with systemd 252.
        let security = run(Command::new(&analyze)
            .args(["security", "--offline=yes", "--threshold=20"])
            .arg(path));
        assert!(
            security.status.success(),
            "{}: exposure above 2.0:\n{}{}",
            path.display(),
            String::from_utf8_lossy(&security.stdout),
            String::from_utf8_lossy(&security.stderr),
        );
    }
}

#[test]
fn prometheus_scrapes_the_exporter_with_the_shipped_config() {
    let promtool = tool("promtool", "prometheus");
    let shipped = repo().join("scripts/prometheus.yml");
    let check = run(Command::new(promtool)
        .args(["check", "config"])
        .arg(&shipped));
    assert!(
        check.status.success(),
        "promtool check config: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    let exporter = Exporter::spawn(demo(Command::new(binary())), PATIENCE);
    exporter.wait_ready(PATIENCE);

    // The shipped targets, moved to this run's ports.
    let config = fs::read_to_string(&shipped).unwrap();
    assert!(
        config.contains("\"localhost:9877\"") && config.contains("\"localhost:9090\""),
        "{config}"
    );
    let exporter_target = format!("127.0.0.1:{}", exporter.addr.port());
    let prometheus = Prometheus::with_config("ship-prometheus", |web| {
        config
            .replace("localhost:9877", &exporter_target)
            .replace("localhost:9090", &web.to_string())
    });

    // The first scrape comes within one scrape interval (5 s) of start-up.
    wait_within(
        PATIENCE,
        &format!("Prometheus to have {DEMO_METRIC}"),
        || {
            let result = prometheus.api.query(DEMO_METRIC)?;
            (!result.is_empty())
                .then_some(())
                .ok_or("no series yet".to_string())
        },
        || {
            format!(
                "exporter stderr:\n{}\n{}",
                exporter.stderr().join("\n"),
                prometheus.context()
            )
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Checks shared by the tests above.

fn check_static(path: &Path, machine: u64) {
    let elf =
        read_elf(&fs::read(path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(elf.machine, machine, "{}: {elf:?}", path.display());
    assert!(
        !elf.interpreter && elf.needed == 0,
        "{} is not static: {elf:?}",
        path.display()
    );
}

/// Runs `--version`, then the demo, in `root` as user 65534 (as the Docker image does), and
/// scrapes it. `program` is the command inside the root: the binary, or qemu and the binary.
fn check_serves_from(root: &Path, program: &[&str]) {
    let chroot = tool("chroot", "coreutils");
    let command = || {
        let mut command = Command::new(&chroot);
        command
            .arg("--userspec=65534:65534")
            .arg(root)
            .args(program);
        command
    };

    let version = run(command().arg("--version"));
    let stdout = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.status.success() && stdout.contains(env!("CARGO_PKG_VERSION")),
        "--version in an empty root: {}\n{stdout}{}",
        version.status,
        String::from_utf8_lossy(&version.stderr),
    );

    // No /proc, no /etc, no /tmp: the process metrics are left out, the rest must work.
    let exporter = Exporter::spawn(demo(command()), PATIENCE);
    exporter.wait_ready(PATIENCE);
    let response = try_get(exporter.addr, "GET", "/metrics", &[])
        .unwrap_or_else(|e| exporter.fail(&format!("GET /metrics: {e}")));
    if response.status != 200 || !response.body.contains(DEMO_METRIC) {
        exporter.fail(&format!("/metrics without {DEMO_METRIC}:\n{response:?}"));
    }
}

/// `command` with the arguments that start the demo on a free loopback port.
fn demo(mut command: Command) -> Command {
    command.args([
        "--demo",
        "--exporter-port",
        "0",
        "--listen-address",
        "127.0.0.1",
    ]);
    command
}

// ---------------------------------------------------------------------------------------------
// Building.

/// The static release binary for `target`, built by scripts/build-static.sh at most once per
/// test run, in a target directory of its own (`target/ship`) so that it never waits on the
/// lock of the build that runs these tests.
fn static_binary(target: &'static str) -> PathBuf {
    static BUILDS: [OnceLock<Result<PathBuf, String>>; 2] = [OnceLock::new(), OnceLock::new()];
    let index = [X86_64, AARCH64]
        .iter()
        .position(|t| *t == target)
        .expect("a known target");
    let built = BUILDS[index].get_or_init(|| build_static(target));
    built.clone().unwrap_or_else(|e| panic!("{e}"))
}

fn build_static(target: &str) -> Result<PathBuf, String> {
    let target_dir = binary()
        .parent()
        .and_then(Path::parent)
        .expect("the binary is in target/PROFILE/")
        .join("ship");
    let out = Command::new(repo().join("scripts/build-static.sh"))
        .arg(target)
        .env("CARGO_TARGET_DIR", &target_dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run scripts/build-static.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/build-static.sh {target}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(target_dir.join(target).join("release/status-exporter"))
}

// ---------------------------------------------------------------------------------------------
// ---------------------------------------------------------------------------------------------
// Empty roots.

/// A fresh empty directory to chroot into, readable by all: user 65534 runs in it.
fn empty_root(name: &str) -> PathBuf {
    let root = temp_dir(name);
    fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
    root
}

/// Copies the executable `source` to `name` in `dir`.
fn add(dir: &Path, source: &Path, name: &str) {
    let dest = dir.join(name);
    fs::copy(source, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", source.display()));
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o755)).unwrap();
}
