#!/usr/bin/env bash
# The Debian package, installed, upgraded and removed for real — in a debootstrap chroot of
# Debian 12, never on this machine itself (CI reuses its host between runs):
#   - the systemd unit's exposure, by `systemd-analyze security --offline=true`, under LIMIT;
#   - install: the system user, the directories and their modes, the conffile; the server
#     started from the package's configuration as that user, answering, an administrator
#     signing in;
#   - upgrade: a backup taken before the new version starts, which `check` finds clean;
#     every rating still there;
#   - removal: the binary gone, the configuration and the data kept; purge: the
#     configuration gone, the data still kept; a reinstall serves the kept data again.
# What a chroot cannot show: systemd starting the unit (no systemd runs in it), so the
# sandbox's effect on the running server is not exercised here.
#
# It packages the debug build the tests already made (`--profile dev`), so that CI compiles
# nothing more; the shipped package is `cargo deb -p office-server` (release).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "package: the chroot needs root; running under sudo"
  exec sudo --preserve-env=PATH,HOME bash "$0" "$@"
fi
export PATH="$HOME/.cargo/bin:$PATH"

# The unit's overall exposure, as systemd-analyze reports it ×10 (it prints e.g. "1.9 OK").
LIMIT=20
work=target/package-test
base=$work/bookworm-minbase
mkdir -p "$work"

echo "package: the unit's exposure (limit $((LIMIT / 10)).$((LIMIT % 10)))"
systemd-analyze security --offline=true --threshold="$LIMIT" --no-pager \
  office-server/debian/office-server.service | tail -n 3

# Built already by the tests (the same features, so nothing is compiled again).
cargo build --workspace --locked
for version in 0.1.0-1 0.1.0-2; do
  cargo deb -p office-server --no-build --profile dev --deb-version "$version" \
    --output "$work/office-server_$version.deb" >/dev/null
done

# A minimal Debian 12, made once per machine and copied for each run.
if [ ! -f "$base/.complete" ]; then
  rm -rf "$base"
  echo "package: making a Debian 12 chroot (debootstrap, once per machine)"
  debootstrap --variant=minbase bookworm "$base" http://deb.debian.org/debian >"$work/debootstrap.log"
  touch "$base/.complete"
fi
root=$(mktemp -d "$work/root.XXXXXX")
cleanup() {
  umount "$root/proc" 2>/dev/null || true
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null || true
  rm -rf "$root"
}
trap cleanup EXIT
cp -a "$base/." "$root/"
mount -t proc proc "$root/proc"
cp "$work"/office-server_0.1.0-*.deb "$root/tmp/"
in_root() { chroot "$root" "$@"; }
fail() { echo "package: FAILED: $*" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base_url="http://127.0.0.1:$port"
# The server as the unit starts it: the package's configuration, its user; only the port is
# the test's (in the environment, so the conffile stays untouched).
serve() {
  chroot "$root" runuser -u office-server -- env OFFICE_LISTEN="127.0.0.1:$port" \
    /usr/bin/office-server serve --config /etc/office-server/office.toml \
    >>"$root/tmp/serve.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do
    curl -fsS "$base_url/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  cat "$root/tmp/serve.log" >&2
  fail "the installed server does not answer"
}
stop() {
  kill -TERM "$server"
  wait "$server" || true
  server=""
}
as_server() { in_root runuser -u office-server -- /usr/bin/office-server "$@" --config /etc/office-server/office.toml; }
sign_in() {
  curl -fsS -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
    -d "{\"login\":\"admin\",\"password\":\"$1\"}" "$base_url/api/auth/login"
}

echo "package: install"
in_root dpkg -i /tmp/office-server_0.1.0-1.deb >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i"; }
in_root getent passwd office-server | grep -q ':/var/lib/office-server:/usr/sbin/nologin$' ||
  fail "the system user"
[ "$(in_root stat -c '%U:%G %a' /var/lib/office-server)" = "office-server:office-server 750" ] ||
  fail "the data directory's owner and mode"
[ "$(in_root stat -c '%U:%G %a' /var/backups/office-server)" = "office-server:office-server 750" ] ||
  fail "the backup directory's owner and mode"
[ "$(in_root stat -c '%U:%G %a' /etc/office-server/office.toml)" = "root:office-server 640" ] ||
  fail "the configuration's owner and mode"
in_root dpkg-query -W -f='${Conffiles}\n' office-server | grep -q /etc/office-server/office.toml ||
  fail "the configuration is not a conffile"
in_root test -f /lib/systemd/system/office-server.service || fail "the unit is not installed"

password=$(as_server create-admin --login admin | sed -n 's/.*password: *//p' | tail -n 1)
[ -n "$password" ] || fail "create-admin printed no password"
# The demo organisation with five days of history: visits, recordings, verdicts.
mkdir -p "$root/tmp/clips"
cp tests/fixtures/visit.3gpp "$root/tmp/clips/visit.3gp"
as_server load-demo --history-days 5 --clips /tmp/clips </dev/null >/dev/null
visit_count() { as_server check "$@" | sed -n 's/.*: \([0-9][0-9]*\) visits.*/\1/p'; }
visits=$(visit_count)
[ "${visits:-0}" -gt 0 ] || fail "the demo history made no visits"
serve
[ "$(sign_in "$password")" = 200 ] || fail "the administrator cannot sign in"
stop

echo "package: upgrade"
in_root dpkg -i /tmp/office-server_0.1.0-2.deb >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "the upgrade"; }
backup=$(in_root sh -c 'ls -d /var/backups/office-server/backup-* 2>/dev/null' | head -n 1 || true)
[ -n "$backup" ] || fail "no backup before the upgrade"
in_root test -f "$backup/SHA256SUMS" || fail "the backup is unfinished"
in_root runuser -u office-server -- /usr/bin/office-server restore \
  --config /etc/office-server/office.toml --data /tmp/restored --from "$backup" >/dev/null
[ "$(visit_count --data /tmp/restored)" = "$visits" ] || fail "the backup's check"
[ "$(visit_count)" = "$visits" ] || fail "check after the upgrade"
serve
[ "$(sign_in "$password")" = 200 ] || fail "sign-in after the upgrade"
stop

echo "package: remove, purge, reinstall"
in_root dpkg -r office-server >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -r"; }
in_root test ! -e /usr/bin/office-server || fail "the binary is still there"
in_root test -f /etc/office-server/office.toml || fail "removal deleted the configuration"
in_root test -f /var/lib/office-server/office.sqlite3 || fail "removal deleted the data"
in_root dpkg -P office-server >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -P"; }
in_root test ! -e /etc/office-server/office.toml || fail "purge kept the configuration"
in_root test -f /var/lib/office-server/office.sqlite3 || fail "purge deleted the data"
in_root dpkg -i /tmp/office-server_0.1.0-2.deb >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "the reinstall"; }
serve
[ "$(sign_in "$password")" = 200 ] || fail "the kept data is not served after a reinstall"
stop
[ "$(visit_count)" = "$visits" ] || fail "the visits after a reinstall"
echo "package: install, upgrade, removal and purge behave ($visits visits kept throughout)"
