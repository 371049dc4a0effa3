#!/usr/bin/env bash
# Sets up, builds and runs the office server with the demo organisation loaded and an
# administrator account, on http://127.0.0.1:8080 (set LISTEN to change it). Data lives in
# ./demo-data; delete that folder to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

listen="${LISTEN:-127.0.0.1:8080}"
data="demo-data"
echo "building the office server (release; the first build takes a few minutes)..."
cargo build --release --locked -p office-server
server=target/release/office-server

if [ ! -f "$data/admin-password.txt" ]; then
  mkdir -p "$data"
  password=$(head -c 15 /dev/urandom | base64 | tr '+/' '-_')
  printf '%s\n' "$password" | "$server" create-admin --data "$data" --login admin --password-stdin
  "$server" load-demo --data "$data"
  printf '%s\n' "$password" > "$data/admin-password.txt"
  chmod 600 "$data/admin-password.txt"
fi

cat <<MSG

  Office server:  http://$listen/
  Tablet API:     http://$listen/api/openapi.json
  Administrator:  login "admin", password "$(cat "$data/admin-password.txt")"

  Stop with Ctrl-C.
MSG
exec "$server" serve --data "$data" --listen "$listen"
