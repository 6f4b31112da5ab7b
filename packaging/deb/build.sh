#!/bin/sh
# Builds prophasis_<version>_<arch>.deb and prophasis-agent_<version>_<arch>.deb from
# already built binaries, with dpkg-deb only (no cargo-deb to install, so CI can build
# them from the debug binaries it has anyway).
#
#   packaging/deb/build.sh BIN_DIR OUT_DIR
#
# BIN_DIR holds `prophasis` and `prophasis-agent` (e.g. target/release after
# `cargo build --release -p prophasis -p prophasis-agent`). DEB_COMPRESSION (default xz)
# is passed to `dpkg-deb -Z`; tests use `none` for the large debug binaries.
set -eu

if [ $# -ne 2 ]; then
    echo "usage: $0 BIN_DIR OUT_DIR" >&2
    exit 2
fi
bin_dir=$1
out_dir=$2
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)
arch=$(dpkg --print-architecture)
[ -n "$version" ] || { echo "no version in $root/Cargo.toml" >&2; exit 1; }
for b in prophasis prophasis-agent; do
    [ -x "$bin_dir/$b" ] || { echo "$bin_dir/$b is missing: build it first" >&2; exit 1; }
done
mkdir -p "$out_dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# package NAME DESCRIPTION DEPENDS
package() {
    name=$1
    pkg="$work/$name"
    mkdir -p "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/lib/systemd/system" "$pkg/usr/share/doc/$name"
    install -m 0755 "$bin_dir/$name" "$pkg/usr/bin/$name"
    install -m 0644 "$root/packaging/systemd/$name.service" "$pkg/lib/systemd/system/"
    for s in postinst prerm postrm; do
        install -m 0755 "$here/$name/$s" "$pkg/DEBIAN/$s"
    done
    cp "$root/docs/install.md" "$pkg/usr/share/doc/$name/"
    size=$(du -sk "$pkg" | cut -f1)
    cat > "$pkg/DEBIAN/control" <<CONTROL
Package: $name
Version: $version
Architecture: $arch
Maintainer: Prophasis developers <prophasis@example.org>
Installed-Size: $size
Depends: $3
Section: admin
Priority: optional
Description: $2
CONTROL
}

package prophasis "Prophasis monitoring server and admin CLI" "adduser, libc6, systemd | sysvinit-core"
mkdir -p "$work/prophasis/etc/prophasis"
install -m 0640 "$root/packaging/server.toml" "$work/prophasis/etc/prophasis/server.toml"
echo "/etc/prophasis/server.toml" > "$work/prophasis/DEBIAN/conffiles"
cp "$root/docs/admin-guide.md" "$work/prophasis/usr/share/doc/prophasis/"

package prophasis-agent "Prophasis monitoring agent (HTTPS daemon that runs plugins)" "adduser, libc6"
cp "$root/docs/plugin-author-guide.md" "$work/prophasis-agent/usr/share/doc/prophasis-agent/"

for name in prophasis prophasis-agent; do
    dpkg-deb -Z"${DEB_COMPRESSION:-xz}" --root-owner-group --build "$work/$name" "$out_dir/${name}_${version}_${arch}.deb" >/dev/null
    echo "$out_dir/${name}_${version}_${arch}.deb"
done
