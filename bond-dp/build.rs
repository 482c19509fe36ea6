//! Compiles bond-dp's XDP program (bpf/bond_xdp.c) with clang; the object is embedded in the
//! binary and loaded with libbpf-rs at run time.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../bpf/bond_xdp.c");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bond_xdp.o");
    println!("cargo:rerun-if-changed={}", src.display());

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
