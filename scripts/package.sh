#!/usr/bin/env bash
# Builds the Debian package target/debian/bond-dp_VERSION_ARCH.deb with cargo-deb: the
# binary, the systemd unit, a commented /etc/bond-dp.toml, man pages and bash/zsh/fish
# completions generated from the command line's own definition (`bond-dp generate`).
# Installs cargo-deb if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked -q
cargo build --release -q -p bond-dp --bin bond-dp
# The build's own directory (CARGO_TARGET_DIR may put it elsewhere); the generated assets
# stay in this checkout's target/package, where Cargo.toml's deb metadata names them.
built=${CARGO_TARGET_DIR:-target}
assets=target/package
rm -rf "$assets"
mkdir -p "$assets"
"$built"/release/bond-dp generate --man "$assets/man" --completions "$assets/completions"
gzip -9n "$assets"/man/*.8
sed 's|/usr/local/sbin/bond-dp|/usr/sbin/bond-dp|' scripts/bond-dp.service >"$assets/bond-dp.service"
rm -f "$built"/debian/bond-dp_*.deb
cargo deb -p bond-dp --no-build --no-strip -q
ls "$built"/debian/bond-dp_*.deb
