#!/usr/bin/env bash
# Sets up, builds and runs the system on this machine: the office server with the demo
# organisation and an administrator, and a small fleet of simulated tablets (real kiosk cores
# with synthetic audio) that enrol, pair and send ratings, so there is live data to look at.
# The server is on http://127.0.0.1:8080 (LISTEN to change it; TABLETS sets the fleet size).
# PORTAL=1 also starts a local stand-in for the city portal (the OpenID Connect provider the
# tests use, on 127.0.0.1:4100, PORTAL_PORT to change it) so that visitors can sign in to «Мои
# посещения»; it takes any login and password (kulipanov and ivanova have names).
# The first run also fills about 80 days of history (HISTORY_DAYS to change, 0 for none) for the
# department heads to review. Data lives in ./demo-data; delete that folder to start over.
# Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

listen="${LISTEN:-127.0.0.1:8080}"
tablets="${TABLETS:-3}"
data="demo-data"
echo "building the office server and the kiosk (release; the first build takes several minutes)..."
cargo build --release --locked -p office-server -p kiosk-core
server=target/release/office-server
kiosk=target/release/kiosk

if [ ! -f "$data/admin-password.txt" ]; then
  mkdir -p "$data"
  # The first run fills the office with HISTORY_DAYS (80) days of visits, «Плохо» recordings
  # (speech clips made once with espeak-ng into target/demo-clips) and the heads' verdicts.
  echo "making the demo's speech clips (once)..."
  bash scripts/demo-clips.sh target/demo-clips
  password=$(head -c 15 /dev/urandom | base64 | tr '+/' '-_')
  printf '%s\n' "$password" | "$server" create-admin --data "$data/server" --login admin \
    --password-stdin 2>> "$data/load.log"
  printf '%s\n' "$password" | "$server" load-demo --data "$data/server" \
    --history-days "${HISTORY_DAYS:-80}" --clips target/demo-clips --password-stdin \
    2>> "$data/load.log"
  printf '%s\n' "$password" > "$data/admin-password.txt"
  chmod 600 "$data/admin-password.txt"
fi
password=$(cat "$data/admin-password.txt")

portal_pid=""
portal_note="off (PORTAL=1 turns it on)"
if [ "${PORTAL:-0}" = "1" ]; then
  portal_port="${PORTAL_PORT:-4100}"
  portal_secret=$(head -c 24 /dev/urandom | base64 | tr '+/' '-_')
  node tests/oidc-provider/provider.mjs --port "$portal_port" --client-id office \
    --client-secret "$portal_secret" --redirect-uri "http://$listen/visitor/callback" \
    > "$data/portal.log" 2>&1 &
  portal_pid=$!
  for _ in $(seq 50); do
    grep -q "listening on" "$data/portal.log" 2>/dev/null && break
    sleep 0.2
  done
  export OFFICE_PORTAL__ISSUER="http://127.0.0.1:$portal_port"
  export OFFICE_PORTAL__CLIENT_ID=office
  export OFFICE_PORTAL__CLIENT_SECRET="$portal_secret"
  portal_note="http://$listen/my (local portal on :$portal_port: any login, e.g. kulipanov)"
fi

# The public address is where the tablets' feedback QR codes lead (the visitor's phone page).
OFFICE_PUBLIC_URL="http://$listen" "$server" serve --data "$data/server" --listen "$listen" \
  2> "$data/server.log" &
server_pid=$!
simulator_pid=""
trap 'kill $simulator_pid $server_pid $portal_pid 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
for _ in $(seq 50); do
  curl -fsS "http://$listen/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done

KIOSK_ADMIN_PASSWORD="$password" "$kiosk" --server "http://$listen" --data "$data" \
  simulate --tablets "$tablets" 2> "$data/simulator.log" &
simulator_pid=$!

cat <<MSG

  Office server:   http://$listen/
  Administrator:   login "admin", password "$password"
  Department heads: logins "head.housing" and "head.urban", the same password
  Tablet API:      http://$listen/api/openapi.json
  Simulated fleet: $tablets tablets rating visits (log: $data/simulator.log)
  Visitor account: $portal_note

  A kiosk screen of your own: $kiosk --server http://$listen --data $data/my-kiosk --synthetic-audio
  Stop with Ctrl-C.
MSG
wait "$server_pid"
