//! Compiles bond-dp's XDP program (bpf/bond_xdp.c) with clang; the object is embedded in the
//! binary and loaded with libbpf-rs at run time. The limits the program and the Rust side
//! share (bpf/limits.h) become Rust constants in `limits.rs`.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../bpf/bond_xdp.c");
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let out = out_dir.join("bond_xdp.o");
    let limits = src.with_file_name("limits.h");
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-changed={}", limits.display());
    write_limits(&limits, &out_dir.join("limits.rs"));
    git_revision();

    // asm/types.h lives under the multiarch include directory on Debian.
    let multiarch = Command::new("gcc")
        .arg("-print-multiarch")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "x86_64-linux-gnu".into());
    let status = Command::new(env::var("CLANG").unwrap_or_else(|_| "clang".into()))
        .args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf", "-c"])
        .arg(format!("-I/usr/include/{multiarch}"))
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "running clang for {}: {e} (scripts/deps.sh installs it)",
                src.display()
            )
        });
    assert!(
        status.success(),
        "clang failed to compile {}",
        src.display()
    );
}

/// `#define NAME VALUE` lines of the shared header, as `pub const NAME: u32 = VALUE;`.
fn write_limits(header: &std::path::Path, out: &std::path::Path) {
    let text = std::fs::read_to_string(header)
        .unwrap_or_else(|e| panic!("reading {}: {e}", header.display()));
    let mut rust = String::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if let (Some("#define"), Some(name), Some(value), None) =
            (words.next(), words.next(), words.next(), words.next())
        {
            if let Ok(value) = value.parse::<u32>() {
                rust += &format!("pub const {name}: u32 = {value};\n");
            }
        }
    }
    assert!(
        rust.contains("MAX_MEMBERS"),
        "{} defines no MAX_MEMBERS",
        header.display()
    );
    std::fs::write(out, rust).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}

/// `bond-dp --version` names the commit it was built from (BOND_DP_GIT): the short hash, with
/// "-dirty" for uncommitted changes; "unknown" outside a git checkout.
fn git_revision() {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let rev = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let suffix = if dirty { "-dirty" } else { "" };
    println!("cargo:rustc-env=BOND_DP_GIT={rev}{suffix}");
    if let Some(head) = git(&["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={head}/HEAD");
        println!("cargo:rerun-if-changed={head}/index");
    }
}
