//! The Debian package (scripts/package.sh, cargo-deb): it builds, and what it installs works —
//! the binary, the man pages, the completions, the unit and the commented configuration.

mod common;

use std::process::Command;

use common::repo_path;

#[test]
fn the_debian_package_installs_a_working_bond_dp() {
    let out = Command::new(repo_path("scripts/package.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "package.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(|l| repo_path(l.trim()))
        .expect("the package's path");
    // Installed into a throwaway root.
    let root = tempfile::tempdir().unwrap();
    let x = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(root.path())
        .status()
        .unwrap();
    assert!(x.success());
    let at = |p: &str| root.path().join(p);
    let version = Command::new(at("usr/sbin/bond-dp"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&version.stdout).starts_with("bond-dp "),
        "{version:?}"
    );
    let man = Command::new("man")
        .arg("-l")
        .arg(at("usr/share/man/man8/bond-dp-run.8.gz"))
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
        .unwrap();
    assert!(man.status.success(), "{man:?}");
    assert!(String::from_utf8_lossy(&man.stdout).contains("--members"));
    for path in [
        "lib/systemd/system/bond-dp.service",
        "etc/bond-dp.toml",
        "usr/share/man/man8/bond-dp.8.gz",
        "usr/share/bash-completion/completions/bond-dp",
        "usr/share/zsh/vendor-completions/_bond-dp",
        "usr/share/fish/vendor_completions.d/bond-dp.fish",
    ] {
        assert!(at(path).exists(), "{path} missing from the package");
    }
    let unit = std::fs::read_to_string(at("lib/systemd/system/bond-dp.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/sbin/bond-dp run"), "{unit}");
    // The configuration is a commented template: it parses, and says what to add.
    let dry = Command::new(at("usr/sbin/bond-dp"))
        .args(["run", "--config"])
        .arg(at("etc/bond-dp.toml"))
        .arg("--dry-run")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&dry.stderr);
    assert!(
        err.contains("no bonds defined (add a [bond.NAME] table)"),
        "{err}"
    );
}
