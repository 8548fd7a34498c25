#!/usr/bin/env bash
# Builds the forwarder's .deb and .rpm from one staging tree:
#   /opt/forwarder/venv          the runtime: a venv on the system's python3.11 with the dependencies of
#                                packaging/requirements.lock (pinned, hash-checked; no pip on the target)
#   /usr/bin/forwarder           wrapper passing the installed --path.* flags (packaging/linux/forwarder.sh)
#   /etc/forwarder/              forwarder.yml and modules.d/ as conffiles (upgrades keep local edits)
#   /usr/lib/systemd/system/     forwarder.service (packaging/systemd/forwarder.service)
# The maintainer scripts create the `forwarder` system user and /var/lib/forwarder, /var/log/forwarder (0750).
#
# Usage: packaging/build.sh [--version V] [--release N] [--out DIR] [--deb-only]
# Needs: python3.11 with venv (the target's runtime), pip, dpkg-deb; rpmbuild (Debian: apt-get install rpm)
# unless --deb-only. Version defaults to forwarder.__version__, release to 1, out to dist/packages.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$ROOT/forwarder/__init__.py")
RELEASE=1
OUT="$ROOT/dist/packages"
BUILD_RPM=1
RUNTIME_PYTHON=/usr/bin/python3.11
VENV=/opt/forwarder/venv

die() { echo "build.sh: error: $*" >&2; exit 1; }
say() { echo "build.sh: $*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --version) VERSION=$2; shift 2 ;;
        --release) RELEASE=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --deb-only) BUILD_RPM=0; shift ;;
        *) die "unknown argument $1 (use --version V, --release N, --out DIR, --deb-only)" ;;
    esac
done
[[ "$VERSION" =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die "version '$VERSION' must start with a digit (letters, digits, . + ~)"
[[ "$RELEASE" =~ ^[0-9]+$ ]] || die "release '$RELEASE' must be a number"
[ -x "$RUNTIME_PYTHON" ] || die "$RUNTIME_PYTHON not found: the packages run on the system's Python 3.11 (Debian 12: apt-get install python3.11; RHEL 9: dnf install python3.11)"
command -v dpkg-deb >/dev/null || die "dpkg-deb not found (apt-get install dpkg-dev)"
if [ "$BUILD_RPM" = 1 ]; then
    command -v rpmbuild >/dev/null || die "rpmbuild not found (Debian: apt-get install rpm; or pass --deb-only)"
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
STAGE="$WORK/stage"
mkdir -p "$OUT"
started=$SECONDS

# pip warns about each index location of the machine's pip config that lacks a package; that is noise here.
exec 2> >(grep -v "^WARNING: Location '" >&2)
say "runtime: venv on $RUNTIME_PYTHON with packaging/requirements.lock"
"$RUNTIME_PYTHON" -m venv --without-pip "$STAGE$VENV"
python3 -m pip --python "$STAGE$VENV/bin/python" install --quiet --disable-pip-version-check --no-compile \
    --no-deps --require-hashes --only-binary=:all: -r "$ROOT/packaging/requirements.lock"
python3 -m pip wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation \
    --wheel-dir "$WORK/wheel" "$ROOT"
python3 -m pip --python "$STAGE$VENV/bin/python" install --quiet --disable-pip-version-check --no-compile \
    --no-deps --no-index "$WORK"/wheel/forwarder-*.whl
# The venv was made under the staging directory: point its scripts and config at where it is installed,
# and compile the bytecode with the installed paths (-s strips the staging prefix, -p puts / back).
grep -rlF "$STAGE" "$STAGE$VENV/bin" "$STAGE$VENV/pyvenv.cfg" | xargs -r sed -i "s|$STAGE||g"
rm -f "$STAGE$VENV"/lib/python3.11/site-packages/forwarder-*.dist-info/direct_url.json
"$STAGE$VENV/bin/python" -m compileall -q -j0 -s "$STAGE" -p / "$STAGE$VENV/lib" >/dev/null
if grep -rlF "$STAGE" "$STAGE$VENV" >"$WORK/leftover"; then
    die "the staging path is still written in: $(head -3 "$WORK/leftover" | tr '\n' ' ')"
fi
"$STAGE$VENV/bin/python" -I -m forwarder version >/dev/null || die "the staged runtime does not start"

say "files: wrapper, unit, config, docs"
install -D -m 0755 "$ROOT/packaging/linux/forwarder.sh" "$STAGE/usr/bin/forwarder"
install -D -m 0644 "$ROOT/packaging/systemd/forwarder.service" "$STAGE/usr/lib/systemd/system/forwarder.service"
install -D -m 0640 "$ROOT/forwarder.yml" "$STAGE/etc/forwarder/forwarder.yml"
install -d -m 0750 "$STAGE/etc/forwarder/modules.d"
install -d -m 0755 "$STAGE/usr/share/forwarder"
install -m 0640 "$ROOT"/modules.d/* "$STAGE/etc/forwarder/modules.d/"
install -D -m 0644 "$ROOT/README.md" "$STAGE/usr/share/doc/forwarder/README.md"
SETUP=$(cat "$ROOT/packaging/linux/setup-user-and-directories.sh")

say "deb: forwarder_${VERSION}-${RELEASE}_amd64.deb"
DEB="$WORK/deb"
cp -a "$STAGE" "$DEB"
mkdir -p "$DEB/DEBIAN"
cat >"$DEB/DEBIAN/control" <<CONTROL
Package: forwarder
Version: ${VERSION}-${RELEASE}
Architecture: amd64
Maintainer: forwarder maintainers <root@localhost>
Depends: python3.11, passwd
Section: admin
Priority: optional
Installed-Size: $(du -sk --exclude=DEBIAN "$DEB" | cut -f1)
Description: Security log forwarder, a drop-in replacement for Filebeat
 Reads syslog, files and cloud APIs and ships to Logstash beats listeners,
 with at-least-once delivery. Self-contained runtime under /opt/forwarder.
CONTROL
(cd "$DEB" && find etc -type f | sed 's|^|/|' | sort) >"$DEB/DEBIAN/conffiles"
awk -v setup="$SETUP" '{ if ($0 == "@SETUP@") print setup; else print }' \
    "$ROOT/packaging/linux/deb/postinst" >"$DEB/DEBIAN/postinst"
cp "$ROOT/packaging/linux/deb/prerm" "$ROOT/packaging/linux/deb/postrm" "$DEB/DEBIAN/"
chmod 0755 "$DEB/DEBIAN/postinst" "$DEB/DEBIAN/prerm" "$DEB/DEBIAN/postrm"
dpkg-deb --root-owner-group -Zgzip -z3 --build "$DEB" "$OUT/forwarder_${VERSION}-${RELEASE}_amd64.deb" >/dev/null
say "deb built after $((SECONDS - started))s"

if [ "$BUILD_RPM" = 1 ]; then
    say "rpm: forwarder-${VERSION}-${RELEASE}.x86_64.rpm"
    mkdir -p "$WORK/rpm/SPECS"
    # The setup runs in %pre (the user must exist before files owned by it are unpacked) and in %post.
    awk -v setup="$SETUP" '{ if ($0 == "@SETUP@") print setup; else print }' "$ROOT/packaging/linux/forwarder.spec" \
        >"$WORK/rpm/SPECS/forwarder.spec"
    rpmbuild --quiet -bb --target x86_64 \
        --define "_topdir $WORK/rpm" --define "_rpmdir $OUT" --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
        --define "fw_version $VERSION" --define "fw_release $RELEASE" --define "fw_stage $STAGE" \
        "$WORK/rpm/SPECS/forwarder.spec"
    say "rpm built after $((SECONDS - started))s"
fi
ls -l "$OUT"/forwarder[_-]"${VERSION}"-"${RELEASE}"[._]* >&2
