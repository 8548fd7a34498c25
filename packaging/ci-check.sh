#!/usr/bin/env bash
# The packages as an operator meets them, on this (Debian) machine, as root:
#   build the .deb and .rpm (packaging/build.sh); install the .deb with dpkg -i; check the unit with
#   systemd-analyze (verify, and the offline security score); `forwarder test config` and a short
#   `forwarder run` as the `forwarder` user on the installed config (stopped with SIGTERM once it says it
#   started and has shipped a file); upgrade to a rebuilt package with a new version and show that the
#   registry and an edited config survive; remove (data kept), then purge (data gone). The .rpm is
#   inspected: file list, modes and owners, config files, scripts, requirements, readable payload.
# Called by .ci/run before the tests. Any failure stops it with a line starting "ci-check: FAILED".
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$ROOT/forwarder/__init__.py")
OUT=$(mktemp -d)
INPUT_DIR=/var/tmp/forwarder-ci-check
RUN_PID=

step() { echo "ci-check: == $*"; }
fail() { echo "ci-check: FAILED: $*" >&2; exit 1; }
expect() {  # expect "what" actual wanted
    [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}
cleanup() {
    status=$?
    if [ -n "$RUN_PID" ] && kill -0 "$RUN_PID" 2>/dev/null; then
        kill -KILL "$RUN_PID" || true
    fi
    if [ "$status" != 0 ]; then
        echo "ci-check: FAILED (exit $status); forwarder log tail:" >&2
        tail -n 30 /var/log/forwarder/forwarder* 2>/dev/null >&2 || true
        dpkg -P forwarder >/dev/null 2>&1 || true
    fi
    rm -rf "$OUT" "$INPUT_DIR"
}
trap cleanup EXIT
trap 'echo "ci-check: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

need() {  # need COMMAND DEBIAN-PACKAGE
    if ! command -v "$1" >/dev/null 2>&1 && [ ! -x "$1" ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "$2" >/dev/null
    fi
}
need rpmbuild rpm
need systemd-analyze systemd
need /usr/bin/python3.11 python3.11
need setpriv util-linux
need cpio cpio

if dpkg-query -W -f='${Status}' forwarder 2>/dev/null | grep " installed$" >/dev/null; then
    fail "a forwarder package is already installed on this machine; remove it first (dpkg -P forwarder)"
fi

step "build ${VERSION}-1 (.deb and .rpm)"
started=$SECONDS
"$ROOT/packaging/build.sh" --version "$VERSION" --release 1 --out "$OUT"
echo "ci-check: both packages built in $((SECONDS - started))s"
DEB1="$OUT/forwarder_${VERSION}-1_amd64.deb"
RPM1="$OUT/forwarder-${VERSION}-1.x86_64.rpm"

step "inspect the .rpm"
rpm -qp --info "$RPM1" | sed -n 1,4p
rpm -qlvp "$RPM1" | grep -v "/opt/forwarder/venv/lib/" >"$OUT/rpm-files"
cat "$OUT/rpm-files"
for path in /usr/bin/forwarder /usr/lib/systemd/system/forwarder.service /etc/forwarder/forwarder.yml \
    /etc/forwarder/modules.d/cisco.yml.disabled /opt/forwarder/venv/bin/python /var/lib/forwarder /var/log/forwarder; do
    grep -q " $path\( \|$\)" "$OUT/rpm-files" || fail ".rpm lacks $path"
done
grep -E " /var/lib/forwarder$" "$OUT/rpm-files" | grep "^drwxr-x--- .* forwarde[r]* *forwarde[r]* " >/dev/null \
    || fail ".rpm: /var/lib/forwarder must be drwxr-x--- forwarder:forwarder"
rpm -qcp "$RPM1" | grep -x /etc/forwarder/forwarder.yml >/dev/null || fail ".rpm: forwarder.yml is not a config file"
rpm -qp --scripts "$RPM1" >"$OUT/rpm-scripts"
cat "$OUT/rpm-scripts"
for scriptlet in preinstall postinstall preuninstall postuninstall; do
    grep -q "^$scriptlet scriptlet" "$OUT/rpm-scripts" || fail ".rpm has no $scriptlet scriptlet"
done
grep -q "useradd --system" "$OUT/rpm-scripts" || fail ".rpm scripts do not create the forwarder user"
rpm -qp --requires "$RPM1" | grep -x "python3.11" >/dev/null || fail ".rpm does not require python3.11"
rpm2cpio "$RPM1" | cpio --quiet -it | grep -x "./usr/lib/systemd/system/forwarder.service" >/dev/null \
    || fail ".rpm payload unreadable or without the unit"

step "dpkg -i ${VERSION}-1"
dpkg -i "$DEB1" </dev/null
expect "installed version" "$(dpkg-query -W -f='${Version}' forwarder)" "${VERSION}-1"
id forwarder
expect "/var/lib/forwarder" "$(stat -c %a:%U:%G /var/lib/forwarder)" "750:forwarder:forwarder"
expect "/var/log/forwarder" "$(stat -c %a:%U:%G /var/log/forwarder)" "750:forwarder:forwarder"
expect "/etc/forwarder/forwarder.yml" "$(stat -c %a:%U:%G /etc/forwarder/forwarder.yml)" "640:root:forwarder"
dpkg-query -W -f='${Conffiles}\n' forwarder | grep "/etc/forwarder/forwarder.yml" >/dev/null || fail "forwarder.yml is no conffile"
/usr/bin/forwarder version

step "systemd-analyze verify and security (offline)"
analysis=$(systemd-analyze verify /usr/lib/systemd/system/forwarder.service 2>&1) \
    || fail "systemd-analyze verify: $analysis"
[ -z "$analysis" ] || fail "systemd-analyze verify complained: $analysis"
echo "ci-check: systemd-analyze verify: no complaint"
exposure=$(systemd-analyze security --offline=true /usr/lib/systemd/system/forwarder.service 2>&1 | tail -n 1)
echo "ci-check: $exposure"
score=$(sed -n 's/.*exposure level for forwarder.service: \([0-9.]*\).*/\1/p' <<<"$exposure")
[ -n "$score" ] || fail "no exposure score from systemd-analyze security: $exposure"
awk -v score="$score" 'BEGIN { exit !(score <= 3.0) }' || fail "unit exposure $score is above 3.0 (see systemd-analyze security)"

as_forwarder() { setpriv --reuid=forwarder --regid=forwarder --init-groups -- "$@"; }

step "edit the config: a file input on $INPUT_DIR"
mkdir -p "$INPUT_DIR"
printf 'line 1\nline 2\nline 3\n' >"$INPUT_DIR/app.log"
chmod 0755 "$INPUT_DIR"
chmod 0644 "$INPUT_DIR/app.log"
sed -i "s|\${path.home}/input/\*.log|$INPUT_DIR/*.log|" /etc/forwarder/forwarder.yml
echo "# edited by ci-check" >>/etc/forwarder/forwarder.yml
grep -q "$INPUT_DIR" /etc/forwarder/forwarder.yml || fail "the shipped config has no \${path.home}/input/*.log to edit"

step "forwarder test config (as forwarder)"
expect "test config" "$(as_forwarder /usr/bin/forwarder test config)" "Config OK"

count() {  # count PATTERN FILE...: matching lines, 0 when there is no file yet
    local n
    n=$(cat "${@:2}" 2>/dev/null | grep -c -- "$1") || true
    echo "${n:-0}"
}
events() { count '"message": *"line ' /var/lib/forwarder/events/*.ndjson; }
starts() { count "forwarder started" /var/log/forwarder/forwarder*; }

run_until_shipped() {  # run_until_shipped N: start as forwarder, wait for N file events, SIGTERM, exit 0
    local starts_before
    starts_before=$(starts)
    # setpriv execs the wrapper, which execs python: $! is the forwarder itself, the process SIGTERM goes to.
    setpriv --reuid=forwarder --regid=forwarder --init-groups -- /usr/bin/forwarder run &
    RUN_PID=$!
    local deadline=$((SECONDS + 60))
    until [ "$(starts)" -gt "$starts_before" ] && [ "$(events)" -ge "$1" ]; do
        kill -0 "$RUN_PID" 2>/dev/null || fail "forwarder run exited early"
        [ $SECONDS -lt $deadline ] || fail "forwarder run: not started with $1 events shipped after 60s"
        sleep 0.2
    done
    kill -TERM "$RUN_PID"
    local status=0
    wait "$RUN_PID" || status=$?
    RUN_PID=
    expect "forwarder run exit status after SIGTERM" "$status" 0
    [ "$(count "stopping: waiting up to" /var/log/forwarder/forwarder*)" -gt 0 ] || fail "no clean stop in the log"
    expect "events shipped" "$(events)" "$1"
}

step "forwarder run (as forwarder) until it ships the 3 lines, then SIGTERM"
run_until_shipped 3
[ -d /var/lib/forwarder/registry ] || fail "no registry after the run"
find /var/lib/forwarder /var/log/forwarder -newer "$DEB1" -printf '%m %u:%g %p\n' | sort
unexpected=$(find /var/lib/forwarder /var/log/forwarder \( -type d ! -perm 0750 \) -o \( -type f -perm /0037 \))
[ -z "$unexpected" ] || fail "group-writable or world-accessible files: $unexpected"
registry_before=$(cd /var/lib/forwarder && find registry -type f -exec sha256sum {} + | sort)

step "build ${VERSION}-2 (.deb) and upgrade"
started=$SECONDS
"$ROOT/packaging/build.sh" --version "$VERSION" --release 2 --out "$OUT" --deb-only
echo "ci-check: .deb rebuilt in $((SECONDS - started))s"
dpkg -i "$OUT/forwarder_${VERSION}-2_amd64.deb" </dev/null
expect "upgraded version" "$(dpkg-query -W -f='${Version}' forwarder)" "${VERSION}-2"
grep -q "# edited by ci-check" /etc/forwarder/forwarder.yml || fail "the upgrade replaced the edited forwarder.yml"
expect "registry after the upgrade" "$(cd /var/lib/forwarder && find registry -type f -exec sha256sum {} + | sort)" \
    "$registry_before"
expect "/etc/forwarder/forwarder.yml after the upgrade" "$(stat -c %a:%U:%G /etc/forwarder/forwarder.yml)" \
    "640:root:forwarder"

step "the upgraded forwarder resumes from the registry: only the appended line is shipped"
echo "line 4" >>"$INPUT_DIR/app.log"
run_until_shipped 4

step "dpkg -r: the runtime goes, the registry and the config stay"
dpkg -r forwarder </dev/null
[ ! -e /usr/bin/forwarder ] && [ ! -e /opt/forwarder ] || fail "dpkg -r left /usr/bin/forwarder or /opt/forwarder"
[ -d /var/lib/forwarder/registry ] || fail "dpkg -r removed the registry"
grep -q "# edited by ci-check" /etc/forwarder/forwarder.yml || fail "dpkg -r removed the edited config"

step "dpkg -P: data, logs and config go"
dpkg -P forwarder </dev/null
for path in /var/lib/forwarder /var/log/forwarder /etc/forwarder; do
    [ ! -e "$path" ] || fail "dpkg -P left $path"
done
echo "ci-check: packages OK"
