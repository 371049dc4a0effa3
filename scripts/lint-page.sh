#!/usr/bin/env bash
# Lints the kiosk page — its script (kiosk-core/src/screen/kiosk.js) and styles (kiosk.css) —
# against Chrome 58, the factory Android System WebView of the oldest supported tablet (never
# updated on a tablet provisioned without a Google account):
#   - eslint 9 parses ES2017 only; eslint-plugin-es-x refuses newer built-ins (`.flat()`,
#     `.replaceAll()`, ...); eslint-plugin-compat refuses Web APIs Chrome 58 lacks (from MDN's
#     compatibility data); a list in the config refuses element methods compat cannot see
#     (`replaceChildren`, ...);
#   - stylelint 16 with stylelint-no-unsupported-browser-features (doiuse, caniuse's data)
#     refuses CSS Chrome 58 lacks (flex `gap`, `inset`, `min()`, ...).
# Then it checks the lint itself: each fixture in kiosk-core/page-lint/fixtures is too new for
# Chrome 58 and must be refused for each of the reasons it holds.
#
# The tools are pinned in kiosk-core/page-lint/package-lock.json; scripts/setup.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/../kiosk-core"
bin=page-lint/node_modules/.bin
if [ ! -x "$bin/eslint" ] || [ ! -x "$bin/stylelint" ]; then
  echo "lint-page: the lint tools are not installed: run scripts/setup.sh" >&2
  exit 1
fi
run_eslint() { "$bin/eslint" --max-warnings 0 -c page-lint/eslint.config.mjs "$@"; }
run_stylelint() { "$bin/stylelint" --max-warnings 0 -c page-lint/stylelint.config.mjs "$@"; }

started=$SECONDS
run_eslint src/screen/kiosk.js
run_stylelint src/screen/kiosk.css
echo "lint-page: kiosk.js and kiosk.css run on Chrome 58"

# expect_refused LINTER FILE REASON...: LINTER must refuse FILE, naming every REASON.
expect_refused() {
  local linter=$1 file=$2 out
  shift 2
  if out=$("$linter" "$file" 2>&1); then
    echo "lint-page: the lint accepted $file, which Chrome 58 cannot run" >&2
    exit 1
  fi
  for reason in "$@"; do
    if ! grep -qF -- "$reason" <<<"$out"; then
      echo "lint-page: the lint refused $file but did not report: $reason" >&2
      echo "$out" >&2
      exit 1
    fi
  done
}
expect_refused run_eslint page-lint/fixtures/too-new.js \
  "'replaceChildren' is restricted" "'toggleAttribute' is restricted" \
  "es-x/no-array-prototype-flat" "es-x/no-string-prototype-replaceall" \
  "structuredClone is not supported in Chrome 58" "queueMicrotask is not supported in Chrome 58"
expect_refused run_eslint page-lint/fixtures/too-new-syntax.js "Parsing error: Unexpected token"
expect_refused run_stylelint page-lint/fixtures/too-new.css \
  '"css-logical-props"' '"flexbox-gap"' '"css-math-functions"'
echo "lint-page: the lint refuses every fixture that is too new ($((SECONDS - started)) s)"
