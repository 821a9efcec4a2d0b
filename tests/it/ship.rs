//! Shipping, the parts that need no tool from outside Rust: the ordinary build is dynamic (so
//! the ELF check of the static builds in `tests/external/ship.rs` can tell), the two systemd
//! units stay in step, `scripts/install.sh` installs into a scratch root, and
//! `scripts/status-exporter.env` holds only settings the exporter accepts; `--healthcheck`, the
//! container's HEALTHCHECK, tells a running exporter from anything else.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use status_exporter::commands::HEALTHCHECK_TIMEOUT;

use crate::harness::elf::read_elf;
use crate::harness::{binary, command, examples, repo, run, temp_dir, Exporter, Reply, Target};

#[test]
fn elf_check_sees_that_an_ordinary_build_is_dynamic() {
    let elf = read_elf(&fs::read(binary()).unwrap()).unwrap();
    assert!(elf.interpreter && elf.needed > 0, "{elf:?}");
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
    let mut installed = vec![
        (
            "usr/local/bin/status-exporter".to_string(),
            binary().to_owned(),
            0o755,
        ),
        (
            "etc/systemd/system/status-exporter.service".to_string(),
            scripts.join("status-exporter.service"),
            0o644,
        ),
        (
            "etc/systemd/system/status-exporter@.service".to_string(),
            scripts.join("status-exporter@.service"),
            0o644,
        ),
        (
            "usr/local/share/status-exporter/mappings/README.md".to_string(),
            scripts.join("mappings/README.md"),
            0o644,
        ),
    ];
    // Every example mapping, with its sample document, readable by all.
    let examples = examples();
    for example in &examples {
        let name = example.file_name().unwrap().to_string_lossy();
        for file in ["mapping.json", "document.json"] {
            installed.push((
                format!("usr/local/share/status-exporter/mappings/{name}/{file}"),
                example.join(file),
                0o644,
            ));
        }
    }
    let updatable = installed.len();
    installed.push((
        "etc/status-exporter/status-exporter.env".to_string(),
        scripts.join("status-exporter.env"),
        0o640,
    ));

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
    for (path, _, _) in &installed[..updatable] {
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

    // An installed example mapping is one the exporter takes.
    let tasmota = file("usr/local/share/status-exporter/mappings/tasmota/mapping.json");
    let check = run(Command::new(binary())
        .arg("--check-config")
        .arg("--config-file")
        .arg(&tasmota));
    assert!(check.status.success(), "{check:?}");

    // Another PREFIX moves the binary and the examples, and the units follow it.
    let third = install(Some("/opt/status-exporter"));
    assert!(third.contains("updated    "), "{third}");
    assert!(file("opt/status-exporter/bin/status-exporter").is_file());
    assert!(
        file("opt/status-exporter/share/status-exporter/mappings/tasmota/mapping.json").is_file()
    );
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

/// `status-exporter --healthcheck` with these arguments and variables: (exit code, output).
fn healthcheck(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut full = vec!["--healthcheck"];
    full.extend_from_slice(args);
    let Output {
        status,
        stdout,
        stderr,
    } = run(&mut command(&full, env));
    let output = String::from_utf8_lossy(&stdout).into_owned() + &String::from_utf8_lossy(&stderr);
    (status.code().unwrap_or(-1), output)
}

#[test]
fn healthcheck_exits_0_for_a_running_exporter_and_1_otherwise() {
    let exporter = Exporter::start(&["--demo"], &[]);
    let port = exporter.addr.port().to_string();

    // The exporter's own settings find it, as a HEALTHCHECK in its container does; the settings
    // that do not say where it listens are not checked (a bad mapping file must not make a
    // running exporter unhealthy).
    let running = [
        (
            vec![],
            vec![
                ("EXPORTER_PORT", port.as_str()),
                ("LISTEN_ADDRESS", "127.0.0.1"),
            ],
        ),
        (vec![], vec![("EXPORTER_PORT", port.as_str())]),
        (
            vec![],
            vec![
                ("EXPORTER_PORT", port.as_str()),
                ("LISTEN_ADDRESS", "0.0.0.0"),
            ],
        ),
        (
            vec!["--exporter-port", port.as_str(), "--demo"],
            vec![("EXPORTER_PORT", "1")],
        ),
        (
            vec![],
            vec![
                ("EXPORTER_PORT", port.as_str()),
                ("CONFIG_FILE", "/nonexistent.json"),
            ],
        ),
    ];
    for (args, env) in running {
        assert_eq!(
            healthcheck(&args, &env),
            (0, String::new()),
            "{args:?} {env:?}"
        );
    }

    // Nothing listening.
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, output) = healthcheck(&["--exporter-port", &free.to_string()], &[]);
    assert_eq!(code, 1, "{output}");
    assert_eq!(
        output,
        format!("error: --healthcheck: http://127.0.0.1:{free}/-/healthy: cannot connect: Connection refused (os error 111)\n")
    );

    // Something else listening: an answer other than 200, and no answer at all.
    let target = Target::start(Reply::Status(503, "text/plain", "unavailable".into()));
    let target_port = target.addr.port().to_string();
    let (code, output) = healthcheck(&["--exporter-port", &target_port], &[]);
    assert_eq!(code, 1, "{output}");
    assert!(
        output.ends_with(": answered \"HTTP/1.1 503 X\"\n"),
        "{output}"
    );
    assert_eq!(target.seen()[0].path, "/-/healthy");

    target.set(Reply::Hang);
    let started = Instant::now();
    let (code, output) = healthcheck(&["--exporter-port", &target_port], &[]);
    let took = started.elapsed();
    assert_eq!(code, 1, "{output}");
    assert!(output.contains(": no answer: "), "{output}");
    assert!(
        took >= HEALTHCHECK_TIMEOUT && took < HEALTHCHECK_TIMEOUT + Duration::from_secs(8),
        "{took:?}"
    );

    // A port it cannot check is a bad setting.
    let (code, output) = healthcheck(&[], &[("EXPORTER_PORT", "0")]);
    assert_eq!(
        (code, output.as_str()),
        (2, "error: EXPORTER_PORT: \"0\" is not a port number (1-65535); --healthcheck needs the port the exporter listens on\n")
    );
}

#[test]
fn every_licence_cargo_toml_names_has_its_file() {
    let manifest = fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let licence = manifest
        .lines()
        .find_map(|l| l.strip_prefix("license = "))
        .expect("a license line in Cargo.toml")
        .trim_matches('"');
    assert_eq!(licence, "MIT OR Apache-2.0");
    for (file, title) in [
        ("LICENSE-MIT", "MIT License"),
        (
            "LICENSE-APACHE",
            "Apache License\n                        Version 2.0, January 2004",
        ),
    ] {
        let text = fs::read_to_string(repo().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(text.contains(title), "{file} is not the {title}");
    }
}

/// The init scripts for hosts without systemd (`scripts/init/`, run in tests/external/init.rs)
/// name only settings and flags the exporter has: the settings file's variables, and the
/// OpenWrt script's UCI options, each of which becomes a flag.
#[test]
fn init_settings_name_only_settings_the_exporter_accepts() {
    let help = run(Command::new(binary()).arg("--help"));
    let help = String::from_utf8_lossy(&help.stdout);
    let init = repo().join("scripts/init");

    let conf = fs::read_to_string(init.join("status-exporter.conf")).unwrap();
    let variables: Vec<&str> = conf
        .lines()
        .filter_map(|l| l.trim_start_matches('#').strip_prefix("export "))
        .filter_map(|l| l.split_once('=').map(|(name, _)| name))
        .collect();
    assert!(variables.len() >= 8, "{variables:?}");
    for name in variables {
        assert!(
            help.contains(name),
            "{name} is in status-exporter.conf, not in --help"
        );
    }

    let script = fs::read_to_string(init.join("openwrt.init")).unwrap();
    let list = script
        .split_once("\nOPTIONS=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .expect("OPTIONS=\"...\" in openwrt.init")
        .0;
    let options: Vec<&str> = list.split_whitespace().collect();
    for option in &options {
        let flag = format!("--{} ", option.replace('_', "-"));
        assert!(
            help.contains(&flag),
            "openwrt.init passes {flag}, not in --help"
        );
    }
    // Options the script handles one by one.
    let special = ["enabled", "openmetrics", "demo", "target_header"];
    for (option, flag) in [("openmetrics", "--no-openmetrics"), ("demo", "--demo")] {
        assert!(
            script.contains(flag) && help.contains(flag),
            "{option}: {flag}"
        );
    }
    assert!(help.contains("TARGET_HEADERS") && script.contains("TARGET_HEADERS="));
    let config = fs::read_to_string(init.join("openwrt.config")).unwrap();
    let configured: Vec<&str> = config
        .lines()
        .map(|l| l.trim().trim_start_matches('#'))
        .filter_map(|l| {
            l.strip_prefix("option ")
                .or_else(|| l.strip_prefix("list "))
        })
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(configured.len() >= 8, "{configured:?}");
    for option in configured {
        assert!(
            options.contains(&option) || special.contains(&option),
            "openwrt.config has option {option}, which openwrt.init does not pass on"
        );
    }
}
