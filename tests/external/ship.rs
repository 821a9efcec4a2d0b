//! Shipping: what `scripts/` delivers, tested the way an operator meets it.
//!
//! - `scripts/build-static.sh` builds every target (x86-64, aarch64, i686) plain and with HTTPS;
//!   each binary is static, within its size budget, listed in the size table the script writes,
//!   and says its commit and features in `--version`.
//! - Each serves a scrape from an empty root directory as user 65534, which is what the
//!   `FROM scratch` image of `scripts/Dockerfile` is: aarch64 under qemu, i686 natively (the
//!   kernel runs 32-bit x86 binaries) or under qemu where it does not. The HTTPS ones also poll
//!   an https:// target with a private CA through TARGET_CA_FILE, and fail with reason `tls`
//!   without it (an empty root has no CA certificates at all).
//! - The systemd units pass `systemd-analyze verify` and keep a low exposure score.
//! - A real Prometheus with `scripts/prometheus.yml` scrapes the exporter.
//!
//! Needs root (for chroot), the rustup targets of the three, zig (PyPI `ziglang`, the C compiler
//! of the aarch64 and i686 HTTPS builds), git, openssl, and the Debian packages systemd,
//! qemu-user-static, prometheus and musl-tools (the C compiler of the x86-64 HTTPS build);
//! scripts/test.sh installs them. A missing tool fails its test with the package to install:
//! nothing here skips. All the static binaries are built once per test run (release, LTO: slow,
//! minutes), into `target/ship`.
//!
//! The exporter, temporary directories, tools, the TLS target and Prometheus come from the
//! shared harness (`tests/harness`); the exporter in an empty root is started through `chroot`
//! with [`Exporter::spawn`].

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::elf::read_elf;
use crate::harness::prometheus::{wait_within, Prometheus};
use crate::harness::{
    binary, private_ca, repo, run, temp_dir, tool, try_get, value, Exporter, TlsTarget,
    TUTORIAL_DOC,
};

/// A static target of scripts/build-static.sh: its triple, ELF machine, and what runs it here.
#[derive(Clone, Copy, Debug)]
struct Platform {
    target: &'static str,
    /// ELF `e_machine`.
    machine: u64,
    /// The qemu user-mode emulator (Debian qemu-user-static) that runs it, when the kernel
    /// cannot.
    qemu: Option<&'static str>,
}

const X86_64: Platform = Platform {
    target: "x86_64-unknown-linux-musl",
    machine: 62,
    qemu: None,
};
const AARCH64: Platform = Platform {
    target: "aarch64-unknown-linux-musl",
    machine: 183,
    qemu: Some("qemu-aarch64-static"),
};
/// Run natively where the kernel runs 32-bit x86 binaries (this machine's does), else by qemu.
const I686: Platform = Platform {
    target: "i686-unknown-linux-musl",
    machine: 3,
    qemu: None,
};
const PLATFORMS: [Platform; 3] = [X86_64, AARCH64, I686];

/// The variants build-static.sh builds, with their size budgets in bytes: plain, https, and
/// https-builtin-roots where Cargo.toml has that feature.
fn variants() -> Vec<(&'static str, u64)> {
    let mut variants = vec![("plain", 1 << 20), ("https", 3 << 20)];
    let manifest = fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    if manifest.contains("\nhttps-builtin-roots = ") {
        variants.push(("https-builtin-roots", 3 << 20));
    }
    variants
}

/// The variants with HTTPS.
fn https_variants() -> Vec<&'static str> {
    variants()
        .into_iter()
        .map(|(variant, _)| variant)
        .filter(|v| *v != "plain")
        .collect()
}

/// Limit for start-up and first poll; generous, since qemu emulates the aarch64 binary.
const PATIENCE: Duration = Duration::from_secs(60);

/// The demo target's `requests_current`, under the name the built-in mapping gives it.
const DEMO_METRIC: &str = "app_requests_current";

#[test]
fn static_binaries_are_static_and_within_their_budgets() {
    let mut failures = Vec::new();
    for platform in PLATFORMS {
        for (variant, budget) in variants() {
            let path = static_binary(platform, variant);
            check_static(&path, platform.machine);
            let size = fs::metadata(&path).unwrap().len();
            if size > budget {
                failures.push(format!(
                    "{} ({variant}): {size} bytes, over its budget of {budget}",
                    platform.target
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The table build-static.sh writes (docs/sizes.md when run without arguments) has a row for
/// each target with the size of each variant.
#[test]
fn size_table_lists_every_binary_and_variant() {
    let table = fs::read_to_string(builds().dir.join("sizes.md")).unwrap();
    let variants = variants();
    let names: Vec<&str> = variants.iter().map(|(v, _)| *v).collect();
    let header = format!("| target | Docker arch | {} |", names.join(" | "));
    assert!(table.contains(&header), "{header}\n{table}");
    for platform in PLATFORMS {
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", platform.target)))
            .unwrap_or_else(|| panic!("no row for {} in\n{table}", platform.target));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        for (i, (variant, _)) in variants.iter().enumerate() {
            let size = fs::metadata(static_binary(platform, variant))
                .unwrap()
                .len();
            assert_eq!(
                cells[3 + i].replace(',', ""),
                size.to_string(),
                "{variant} in {row}"
            );
        }
    }
}

#[test]
fn version_names_the_commit_and_the_features() {
    let git = tool("git", "git");
    let head = run(Command::new(git)
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(repo()));
    assert!(head.status.success(), "git rev-parse: {head:?}");
    let commit = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let mut variants = vec![("plain", "none"), ("https", "https")];
    if https_variants().contains(&"https-builtin-roots") {
        variants.push(("https-builtin-roots", "https,https-builtin-roots"));
    }
    for (variant, features) in variants {
        let out = run(Command::new(static_binary(X86_64, variant)).arg("--version"));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!(
                "status-exporter {} (commit {commit}, features: {features})\n",
                env!("CARGO_PKG_VERSION")
            )
        );
    }
}

#[test]
fn x86_64_binaries_serve_from_an_empty_root() {
    check_serves_from_an_empty_root(X86_64, "plain");
    for variant in https_variants() {
        check_serves_from_an_empty_root(X86_64, variant);
    }
}

#[test]
fn x86_64_https_binary_polls_a_private_ca_target_from_an_empty_root() {
    check_polls_https_from_an_empty_root(X86_64);
}

#[test]
fn aarch64_binaries_serve_from_an_empty_root_under_qemu() {
    check_serves_from_an_empty_root(AARCH64, "plain");
    for variant in https_variants() {
        check_serves_from_an_empty_root(AARCH64, variant);
    }
}

#[test]
fn aarch64_https_binary_polls_a_private_ca_target_under_qemu() {
    check_polls_https_from_an_empty_root(AARCH64);
}

#[test]
fn i686_binaries_serve_from_an_empty_root() {
    check_serves_from_an_empty_root(I686, "plain");
    for variant in https_variants() {
        check_serves_from_an_empty_root(I686, variant);
    }
}

#[test]
fn i686_https_binary_polls_a_private_ca_target() {
    check_polls_https_from_an_empty_root(I686);
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

    // The shipped targets, moved to this run's ports, and the rules beside it, where they are.
    let config = fs::read_to_string(&shipped).unwrap();
    assert!(
        config.contains("\"localhost:9877\"")
            && config.contains("\"localhost:9090\"")
            && config.contains("\n  - alerts.yml\n"),
        "{config}"
    );
    let exporter_target = format!("127.0.0.1:{}", exporter.addr.port());
    let rules = format!("\n  - {}\n", repo().join("scripts/alerts.yml").display());
    let prometheus = Prometheus::with_config("ship-prometheus", |web| {
        config
            .replace("localhost:9877", &exporter_target)
            .replace("localhost:9090", &web.to_string())
            .replace("\n  - alerts.yml\n", &rules)
    });
    let groups = prometheus.api.get("/api/v1/rules").unwrap();
    assert_eq!(
        groups["groups"][0]["rules"].as_array().map(Vec::len),
        Some(5),
        "{groups}"
    );

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

/// An empty root (readable by all: user 65534 runs in it) holding the binary of `platform` and
/// `variant` as /status-exporter, and qemu as /qemu when the platform needs it; and the command
/// that runs the binary in it as user 65534, with a clean environment.
struct Root {
    dir: PathBuf,
    program: Vec<&'static str>,
}

impl Root {
    /// `purpose` keeps the roots of tests that run at the same time apart.
    fn new(platform: Platform, variant: &str, purpose: &str) -> Root {
        let dir = temp_dir(&format!("ship-{purpose}-{}-{variant}", platform.target));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let binary = static_binary(platform, variant);
        add(&dir, &binary, "status-exporter");
        let qemu = platform.qemu.or_else(|| {
            (platform.target == I686.target && !runs_natively(&binary))
                .then_some("qemu-i386-static")
        });
        let mut program = vec!["/status-exporter"];
        if let Some(qemu) = qemu {
            add(&dir, &tool(qemu, "qemu-user-static"), "qemu");
            program.insert(0, "/qemu");
        }
        Root { dir, program }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(tool("chroot", "coreutils"));
        command
            .env_clear()
            .arg("--userspec=65534:65534")
            .arg(&self.dir)
            .args(&self.program);
        command
    }
}

/// Whether the kernel runs `binary` itself (32-bit x86 on a 64-bit kernel built with
/// IA32 emulation), rather than refusing it as an unknown format.
fn runs_natively(binary: &Path) -> bool {
    match Command::new(binary).arg("--version").output() {
        Ok(out) => out.status.success(),
        Err(e) if e.raw_os_error() == Some(8) => false, // ENOEXEC
        Err(e) => panic!("cannot run {}: {e}", binary.display()),
    }
}

/// Runs `--version`, then the demo, in an empty root as user 65534 (as the Docker image does),
/// and scrapes it. No /proc, no /etc, no /tmp: the process metrics are left out, the rest must
/// work.
fn check_serves_from_an_empty_root(platform: Platform, variant: &str) {
    let root = Root::new(platform, variant, "serve");
    let version = run(root.command().arg("--version"));
    let stdout = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.status.success() && stdout.contains(env!("CARGO_PKG_VERSION")),
        "--version in an empty root: {}\n{stdout}{}",
        version.status,
        String::from_utf8_lossy(&version.stderr),
    );

    let exporter = Exporter::spawn(demo(root.command()), PATIENCE);
    exporter.wait_ready(PATIENCE);
    let response = try_get(exporter.addr, "GET", "/metrics", &[])
        .unwrap_or_else(|e| exporter.fail(&format!("GET /metrics: {e}")));
    if response.status != 200 || !response.body.contains(DEMO_METRIC) {
        exporter.fail(&format!("/metrics without {DEMO_METRIC}:\n{response:?}"));
    }
}

/// Each HTTPS binary of `platform` in an empty root polls an https:// target whose certificate
/// a private CA signed: with the CA in TARGET_CA_FILE it reads the document; without it (there
/// is no CA bundle at all in the root, and built-in roots do not know a private CA) every poll
/// fails with reason `tls`.
fn check_polls_https_from_an_empty_root(platform: Platform) {
    for variant in https_variants() {
        check_polls_https(platform, variant);
    }
}

fn check_polls_https(platform: Platform, variant: &str) {
    let root = Root::new(platform, variant, "tls");
    let pki = private_ca(&temp_dir(&format!(
        "ship-pki-{}-{variant}",
        platform.target
    )));
    fs::copy(&pki.ca, root.dir.join("ca.pem")).unwrap();
    fs::set_permissions(root.dir.join("ca.pem"), fs::Permissions::from_mode(0o644)).unwrap();
    let www = temp_dir(&format!("ship-www-{}-{variant}", platform.target));
    fs::write(www.join("status"), TUTORIAL_DOC).unwrap();
    let tls = TlsTarget::start(&pki, &www);
    let url = tls.url("/status");

    let start = |ca: Option<&str>| {
        let mut command = root.command();
        command.args([
            "--target-url",
            &url,
            "--polling-interval-seconds",
            "0.5",
            "--exporter-port",
            "0",
            "--listen-address",
            "127.0.0.1",
        ]);
        if let Some(ca) = ca {
            command.args(["--target-ca-file", ca]);
        }
        Exporter::spawn(command, PATIENCE)
    };

    let trusted = start(Some("/ca.pem"));
    trusted.wait_ready(PATIENCE);
    let body = trusted.scrape();
    if value(&body, "status_exporter_up") != Some(1.0) || !body.contains(DEMO_METRIC) {
        trusted.fail(&format!("no app metrics with TARGET_CA_FILE:\n{body}"));
    }
    drop(trusted);

    let untrusted = start(None);
    let tls_failures = "status_exporter_poll_failures_total{reason=\"tls\"}";
    let deadline = Instant::now() + PATIENCE;
    loop {
        let body = untrusted.scrape();
        if value(&body, tls_failures).is_some_and(|n| n >= 1.0) {
            assert_eq!(value(&body, "status_exporter_up"), Some(0.0), "{body}");
            break;
        }
        if Instant::now() > deadline {
            untrusted.fail(&format!("no TLS failure without TARGET_CA_FILE:\n{body}"));
        }
        thread::sleep(Duration::from_millis(100));
    }
    // What each variant says about the missing CA bundle: the one with built-in roots uses them
    // and reaches the handshake (a private CA is an unknown issuer to them); the other says
    // there is nothing to check against, and the fixes.
    let (startup, failing) = match variant {
        "https-builtin-roots" => (
            "; CA: the built-in Mozilla roots (",
            "TLS failed: invalid peer certificate: UnknownIssuer; set TARGET_CA_FILE",
        ),
        _ => (
            "; CA: none: the system has no CA bundle (/etc/ssl/certs/ca-certificates.crt and the \
             other usual paths do not exist); install the system's CA certificates (the \
             ca-certificates package), set TARGET_CA_FILE, or use the build with built-in roots",
            "TLS failed: no CA certificates to check it against: the system has no CA bundle",
        ),
    };
    let line = untrusted.wait_for_log("failing", PATIENCE);
    if !line.contains(failing) || !untrusted.log_lines("listening on")[0].contains(startup) {
        untrusted.fail(&format!(
            "{} {variant}: expected {startup:?} at start-up and {failing:?} when failing",
            platform.target
        ));
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

/// Copies the executable `source` to `name` in `dir`.
fn add(dir: &Path, source: &Path, name: &str) {
    let dest = dir.join(name);
    fs::copy(source, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", source.display()));
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o755)).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Building.

/// What one run of scripts/build-static.sh built.
struct Builds {
    /// Its CARGO_TARGET_DIR; also holds the size table it wrote, `sizes.md`.
    dir: PathBuf,
}

/// Runs scripts/build-static.sh for every platform, at most once per test run, in a target
/// directory of its own (`target/ship`) so that it never waits on the lock of the build that
/// runs these tests.
fn builds() -> &'static Builds {
    static BUILDS: OnceLock<Result<Builds, String>> = OnceLock::new();
    let built = BUILDS.get_or_init(|| {
        let dir = binary()
            .parent()
            .and_then(Path::parent)
            .expect("the binary is in target/PROFILE/")
            .join("ship");
        let started = Instant::now();
        let out = Command::new(repo().join("scripts/build-static.sh"))
            .args(PLATFORMS.map(|p| p.target))
            .env("CARGO_TARGET_DIR", &dir)
            .env("SIZES", dir.join("sizes.md"))
            .env_remove("HTTPS_TARGETS")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run scripts/build-static.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "scripts/build-static.sh: {} after {:?}\n{}",
                out.status,
                started.elapsed(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(Builds { dir })
    });
    built.as_ref().unwrap_or_else(|e| panic!("{e}"))
}

/// The folder build-static.sh fills for scripts/Dockerfile: `ARCH/status-exporter[-VARIANT]`,
/// and `native/` for this machine's architecture (tests/external/container.rs builds from it).
pub fn static_dir() -> PathBuf {
    builds().dir.join("static")
}

/// The binary build-static.sh made for `platform` and `variant`.
fn static_binary(platform: Platform, variant: &str) -> PathBuf {
    let dir = &builds().dir;
    let dir = if variant == "plain" {
        dir.clone()
    } else {
        dir.join(variant)
    };
    dir.join(platform.target).join("release/status-exporter")
}
