//! Shipping: what `scripts/` delivers, tested the way an operator meets it.
//!
//! - The static musl binaries of `scripts/build-static.sh` ask for no interpreter and no shared
//!   library, and serve a scrape from an empty root directory as user 65534, which is what the
//!   `FROM scratch` image of `scripts/Dockerfile` is; the aarch64 one under qemu.
//! - The systemd units pass `systemd-analyze verify` and keep a low exposure score.
//! - `scripts/install.sh` installs into a scratch root, and again without harm.
//! - `scripts/status-exporter.env` holds only settings the exporter accepts.
//! - A real Prometheus with `scripts/prometheus.yml` scrapes the exporter.
//!
//! Needs root (for chroot), the rustup targets x86_64-unknown-linux-musl and
//! aarch64-unknown-linux-musl, and the Debian packages systemd, qemu-user-static and
//! prometheus. A missing tool fails its test with the package to install: nothing here skips.
//! Each static target is built once per test run (release, LTO: slow), into `target/ship`.
//!
//! The exporter, temporary directories, tools and Prometheus come from the shared harness
//! (`harness.rs`, `harness/prometheus.rs`); the exporter in an empty root is started through
//! `chroot` with [`Exporter::spawn`].

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::harness::prometheus::{wait_within, Prometheus};
use crate::harness::{binary, repo, run, temp_dir, tool, try_get, Exporter};

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
fn elf_check_sees_that_an_ordinary_build_is_dynamic() {
    let elf = read_elf(&fs::read(binary()).unwrap()).unwrap();
    assert!(elf.interpreter && elf.needed > 0, "{elf:?}");
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
fn template_unit_differs_from_the_unit_only_in_name_and_settings_file() {
    let settings = |file: &str| -> Vec<String> {
        let text = fs::read_to_string(repo().join("scripts").join(file)).unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    };
    let (unit, template) = (
        settings("status-exporter.service"),
        settings("status-exporter@.service"),
    );
    let differing: Vec<(&String, &String)> =
        unit.iter().zip(&template).filter(|(a, b)| a != b).collect();
    let expected = [
        (
            "Description=Prometheus exporter for a JSON status page",
            "Description=Prometheus exporter for a JSON status page (%i)",
        ),
        (
            "EnvironmentFile=-/etc/status-exporter/status-exporter.env",
            "EnvironmentFile=/etc/status-exporter/%i.env",
        ),
    ];
    let differing: Vec<(&str, &str)> = differing
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        unit.len(),
        template.len(),
        "keep both units line for line in step"
    );
    assert_eq!(differing, expected);
}

#[test]
fn install_script_installs_into_a_scratch_root_and_can_run_again() {
    let root = temp_dir("ship-install");
    let install = |prefix: Option<&str>| -> String {
        let mut command = Command::new(repo().join("scripts/install.sh"));
        command
            .arg(binary())
            .env("DESTDIR", &root)
            .env_remove("PREFIX");
        if let Some(prefix) = prefix {
            command.env("PREFIX", prefix);
        }
        let out = run(&mut command);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "install.sh: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let file = |path: &str| root.join(path);
    let mode = |path: &str| fs::metadata(file(path)).unwrap().permissions().mode() & 0o7777;
    let scripts = repo().join("scripts");
    let installed = [
        ("usr/local/bin/status-exporter", binary().to_owned(), 0o755),
        (
            "etc/systemd/system/status-exporter.service",
            scripts.join("status-exporter.service"),
            0o644,
        ),
        (
            "etc/systemd/system/status-exporter@.service",
            scripts.join("status-exporter@.service"),
            0o644,
        ),
        (
            "etc/status-exporter/status-exporter.env",
            scripts.join("status-exporter.env"),
            0o640,
        ),
    ];

    let first = install(None);
    for (path, source, expected_mode) in &installed {
        assert!(
            first.contains(&format!("installed  {}", file(path).display())),
            "{path}:\n{first}"
        );
        assert_eq!(
            fs::read(file(path)).unwrap(),
            fs::read(source).unwrap(),
            "{path}"
        );
        assert_eq!(mode(path), *expected_mode, "{path}");
    }

    // The operator's settings survive a second run; everything else is already in place.
    let env_file = "etc/status-exporter/status-exporter.env";
    fs::write(file(env_file), "TARGET_PORT=8001\n").unwrap();
    let second = install(None);
    for (path, _, _) in &installed[..3] {
        assert!(
            second.contains(&format!("unchanged  {}", file(path).display())),
            "{path}:\n{second}"
        );
    }
    assert!(
        second.contains(&format!("kept       {}", file(env_file).display())),
        "{second}"
    );
    assert_eq!(
        fs::read_to_string(file(env_file)).unwrap(),
        "TARGET_PORT=8001\n"
    );

    // Another PREFIX moves the binary, and the units follow it.
    let third = install(Some("/opt/status-exporter"));
    assert!(third.contains("updated    "), "{third}");
    assert!(file("opt/status-exporter/bin/status-exporter").is_file());
    for unit in ["status-exporter.service", "status-exporter@.service"] {
        let text = fs::read_to_string(file(&format!("etc/systemd/system/{unit}"))).unwrap();
        assert!(
            text.contains("\nExecStart=/opt/status-exporter/bin/status-exporter\n"),
            "{unit}:\n{text}"
        );
    }
}

#[test]
fn example_settings_file_holds_only_settings_the_exporter_accepts() {
    let text = fs::read_to_string(repo().join("scripts/status-exporter.env")).unwrap();
    // Every `#NAME=value` line, commented out or not, is a setting.
    let settings: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|line| line.trim_start_matches('#').split_once('='))
        .filter(|(name, _)| {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        })
        .collect();
    assert!(settings.len() >= 10, "{settings:?}");

    let help = run(Command::new(binary()).arg("--help"));
    let help = String::from_utf8_lossy(&help.stdout);
    for (name, _) in &settings {
        assert!(
            help.contains(name),
            "{name} is in status-exporter.env but not in --help"
        );
    }

    // All the example values at once are valid. CONFIG_FILE names an example path, left out.
    let mut check = Command::new(binary());
    check.arg("--check-config").env_clear();
    check.envs(
        settings
            .iter()
            .filter(|(name, _)| *name != "CONFIG_FILE")
            .copied(),
    );
    let out = run(&mut check);
    assert!(
        out.status.success(),
        "--check-config with every example setting of status-exporter.env: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
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
// ELF: what a binary asks of the system to start.

#[derive(Debug)]
struct Elf {
    machine: u64,
    /// Has a `PT_INTERP` program header: the kernel starts a dynamic loader first.
    interpreter: bool,
    /// Number of `DT_NEEDED` entries: shared libraries to load.
    needed: usize,
}

/// Reads the program headers of a little-endian ELF file, 32- or 64-bit.
fn read_elf(bytes: &[u8]) -> Result<Elf, String> {
    let field = |offset: u64, len: usize| -> Result<u64, String> {
        let start = usize::try_from(offset).map_err(|_| "offset out of range")?;
        let slice = bytes
            .get(start..start + len)
            .ok_or(format!("truncated at {offset}"))?;
        Ok(slice
            .iter()
            .rev()
            .fold(0, |value, &b| value << 8 | u64::from(b)))
    };
    if bytes.get(..4) != Some(b"\x7fELF") {
        return Err("not an ELF file".into());
    }
    let wide = match bytes[4] {
        1 => false,
        2 => true,
        class => return Err(format!("unknown ELF class {class}")),
    };
    if bytes[5] != 1 {
        return Err("not little-endian".into());
    }
    let word = if wide { 8 } else { 4 };
    let (phoff, phentsize, phnum) = if wide {
        (field(0x20, 8)?, field(0x36, 2)?, field(0x38, 2)?)
    } else {
        (field(0x1c, 4)?, field(0x2a, 2)?, field(0x2c, 2)?)
    };
    let mut elf = Elf {
        machine: field(0x12, 2)?,
        interpreter: false,
        needed: 0,
    };
    for i in 0..phnum {
        let header = phoff + i * phentsize;
        let (offset, size) = if wide {
            (field(header + 8, 8)?, field(header + 32, 8)?)
        } else {
            (field(header + 4, 4)?, field(header + 16, 4)?)
        };
        match field(header, 4)? {
            3 => elf.interpreter = true, // PT_INTERP
            2 => {
                // PT_DYNAMIC: (tag, value) pairs up to DT_NULL.
                for entry in (offset..offset + size).step_by(2 * word) {
                    match field(entry, word)? {
                        0 => break,           // DT_NULL
                        1 => elf.needed += 1, // DT_NEEDED
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(elf)
}

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
