//! What operators install and run: `--version` with the git commit, shell completions, the man
//! page, `config check` (every problem at once), the systemd unit's shape, and the binary as a
//! non-root user on a read-only root file system with only its data dir writable (what the
//! container image and the unit promise), with `healthcheck` telling healthy from not.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::support::{free_port, repo, Instance};

#[test]
fn version_names_the_git_commit() {
    let inst = Instance::new();
    let out = inst.ok(&["--version"]);
    let (name, rest) = out.trim().split_once(' ').unwrap();
    assert_eq!(name, "poortwachter");
    let (version, commit) = rest.split_once(" (").unwrap();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    let commit = commit.trim_end_matches(')');
    let hex = commit;
    if repo().join(".git").exists() {
        assert!(
            hex.len() == 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{out}"
        );
    } else {
        eprintln!("SKIPPED: not a git checkout; version says {commit}");
    }
}

#[test]
fn completions_and_the_man_page_are_generated() {
    let inst = Instance::new();
    let bash = inst.ok(&["completions", "bash"]);
    assert!(bash.contains("_poortwachter()"), "{bash}");
    assert!(bash.contains("credential") && bash.contains("--tls-cert"));
    for shell in ["zsh", "fish"] {
        assert!(inst.ok(&["completions", shell]).contains("poortwachter"));
    }
    let (code, _, err) = inst.run(&["completions", "tcsh"]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid value 'tcsh'"), "{err}");
    let man = inst.ok(&["man"]);
    assert!(
        man.lines().any(|l| l.starts_with(".TH poortwachter 1 ")),
        "{}",
        &man[..200.min(man.len())]
    );
    assert!(man.contains(".TH poortwachter-serve"));
    assert!(man.contains(".TH poortwachter-credential"));
}

/// `config check` loads everything and reports every problem at once: a broken policy, a TLS
/// key that is not the certificate's, an unreachable database; a sound set passes.
#[test]
fn config_check_reports_every_problem_at_once() {
    let good = Instance::new();
    let (code, out, err) = good.run(&["config", "check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ok       policy "), "{out}");
    assert!(
        out.contains("database: schema version 0 (`serve` migrates it to"),
        "{out}"
    );
    assert!(out.trim_end().ends_with("no problems"), "{out}");

    let certs = tempfile::tempdir().unwrap();
    let ca = poortwachter::tls::testing::TestCa::new("check CA");
    let server = ca.server("localhost");
    let other = ca.server("localhost");
    let (cert, _) = server.write(certs.path(), "server");
    let (_, key) = other.write(certs.path(), "other");
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(
        policies.path().join("kapot.toml"),
        "[token]\nlifetime_seconds = \"vijf\"\n",
    )
    .unwrap();
    std::fs::write(
        policies
            .path()
            .join("zorginzage-thuiszorgdossier-door-huisarts.toml"),
        poortwachter::policy::shipped::text("zorginzage-thuiszorgdossier-door-huisarts").unwrap(),
    )
    .unwrap();
    let bad = Instance::with_config(&format!(
        "database_url = \"postgres://nobody@127.0.0.1:1/none\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    ));
    bad.edit_config(
        &repo().join("policies").display().to_string(),
        &policies.path().display().to_string(),
    );
    let (code, out, err) = bad.run(&["config", "check"]);
    assert_eq!(code, 1, "{out}{err}");
    let problems: Vec<&str> = out.lines().filter(|l| l.starts_with("problem")).collect();
    assert_eq!(problems.len(), 3, "{out}");
    assert!(problems[0].contains("kapot.toml:2:"), "{out}");
    assert!(problems[1].starts_with("problem  tls: "), "{out}");
    assert!(problems[1].contains(&key.display().to_string()), "{out}");
    assert!(
        problems[2].starts_with("problem  database: database unavailable:"),
        "{out}"
    );
    assert!(out.trim_end().ends_with("3 problem(s)"), "{out}");
}

/// The unit keeps the usual hardening and reloads with SIGHUP.
#[test]
fn the_systemd_unit_is_hardened() {
    let unit = std::fs::read_to_string(repo().join("packaging/poortwachter.service")).unwrap();
    for line in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=poortwachter",
        "NoNewPrivileges=yes",
        "ReadWritePaths=/var/lib/poortwachter",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "ExecStart=/usr/local/bin/poortwachter serve",
    ] {
        assert!(unit.lines().any(|l| l == line), "missing {line}");
    }
    let docker = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    for line in [
        "USER poortwachter:poortwachter",
        "VOLUME /var/lib/poortwachter",
    ] {
        assert!(docker.lines().any(|l| l == line), "missing {line}");
    }
    assert!(docker.contains("CMD [\"poortwachter\", \"healthcheck\"]"));
}

/// As the container runs it: an unprivileged user, the root file system read-only, only the data
/// dir writable. `init` and `serve` work, `healthcheck` says healthy, and after the server is
/// gone it says unhealthy (exit 1).
#[test]
fn runs_as_non_root_with_a_read_only_root_and_only_the_data_dir_writable() {
    let root = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&root.stdout).trim() != "0" || !probe_sandbox() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to run the sandbox (root, unshare, setpriv)"
        );
        eprintln!("SKIPPED: needs root with unshare and setpriv (mount namespaces)");
        return;
    }
    let inst = Instance::new();
    let data = inst.data_dir();
    std::fs::create_dir_all(&data).unwrap();
    chown_nobody(&data);
    let port = free_port();
    let sandboxed = |args: &str| {
        let bin = env!("CARGO_BIN_EXE_poortwachter");
        let config = inst.path("config.toml");
        let script = format!(
            "mount --bind {d} {d} && mount -o remount,bind,ro / && exec setpriv --reuid=65534 --regid=65534 --clear-groups -- {bin} --config {c} {args}",
            d = data.display(),
            c = config.display(),
        );
        let mut c = Command::new("unshare");
        c.args(["-m", "--propagation", "private", "--", "sh", "-c", &script]);
        c.env_remove("RUST_LOG");
        c
    };
    let init = sandboxed("init").output().unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    inst.edit_config(
        "internal_addr = \"127.0.0.1:0\"",
        &format!("internal_addr = \"127.0.0.1:{port}\""),
    );
    let mut server = sandboxed("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/health");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let healthy = loop {
        let (code, out, _) = inst.run(&["healthcheck", "--url", &url]);
        if code == 0 {
            break out;
        }
        assert!(std::time::Instant::now() < deadline, "never healthy");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(healthy.trim(), "healthy");
    // It wrote only in the data dir, as the unprivileged user.
    let db = data.join("poortwachter.db");
    assert!(db.exists());
    assert_eq!(owner(&db), 65534);
    let _ = server.kill();
    let _ = server.wait();
    let (code, _, err) = inst.run(&["healthcheck", "--url", &url]);
    assert_eq!(code, 1);
    assert!(err.starts_with(&format!("unhealthy: {url}: ")), "{err}");
}

fn probe_sandbox() -> bool {
    Command::new("unshare")
        .args([
            "-m",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            "mount -o remount,bind,ro / && setpriv --reuid=65534 true",
        ])
        .status()
        .is_ok_and(|s| s.success())
}

fn chown_nobody(path: &std::path::Path) {
    let ok = Command::new("chown")
        .args(["65534:65534", &path.display().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    // The tempdir above it must be traversable by nobody.
    let mut p = path.parent();
    while let Some(dir) = p {
        if dir.starts_with(std::env::temp_dir()) && dir != std::env::temp_dir() {
            let _ = Command::new("chmod")
                .args(["o+x", &dir.display().to_string()])
                .status();
        }
        p = dir.parent();
    }
}

fn owner(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).unwrap().uid()
}
