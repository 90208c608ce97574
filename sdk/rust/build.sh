#!/bin/sh
# Builds a Rust function project (a cdylib crate using the `fless` crate) to
# wasm32-wasi with Debian's rustc and cargo, offline: crates come from
# Debian's packaged sources in /usr/share/cargo/registry, `fless` from this SDK.
#
#   build.sh PROJECT_DIR OUT_WASM
set -eu
sdk=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$1" && pwd)
out=$2
registry=/usr/share/cargo/registry
# Debian's toolchain has the wasm32-wasi standard library; a rustup one
# earlier in PATH usually has not, and cannot download it here.
PATH=/usr/bin:$PATH

missing=""
command -v cargo >/dev/null 2>&1 || missing="$missing cargo"
[ -d /usr/lib/rustlib/wasm32-wasi ] || missing="$missing libstd-rust-dev-wasm32"
[ -d "$registry" ] && ls "$registry" | grep -q '^serde_json-' || missing="$missing librust-serde-json-dev"
if [ -n "$missing" ]; then
    echo "fless: the Rust toolchain is missing ($missing ); run \`fless toolchain install rust\` as root (or: apt-get install rustc cargo libstd-rust-dev-wasm32 librust-serde-json-dev)" >&2
    exit 127
fi

cache=${FLESS_CACHE:-"$project/target/fless"}
name=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$project/Cargo.toml" | head -n 1)
# Cargo reads its configuration from CARGO_HOME: point crates.io at Debian's
# sources and the `fless` crate at this SDK, and never go online.
export CARGO_HOME="$cache/cargo-home"
mkdir -p "$CARGO_HOME"
cat > "$CARGO_HOME/config.toml" <<TOML
[source.crates-io]
replace-with = "debian"

[source.debian]
directory = "$registry"

[patch.crates-io]
fless = { path = "$sdk/fless" }

[net]
offline = true
TOML
# One target dir for every project: serde and serde_json compile once, and
# each crate's own changes rebuild incrementally.
export CARGO_TARGET_DIR="$cache/target"
cargo build --release --target wasm32-wasi --manifest-path "$project/Cargo.toml" ${CARGO_FLAGS:-}
cp "$CARGO_TARGET_DIR/wasm32-wasi/release/$(echo "$name" | tr - _).wasm" "$out"
