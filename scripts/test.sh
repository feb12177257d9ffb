#!/usr/bin/env bash
# The whole test suite, as README's Quick start and CI run it (`npm ci && npm test`).
# Installs what the tests need from Debian when it is missing, checks format and lint, type-checks, runs vitest, and
# ends with one "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use, as "command:package" pairs. Installed only when missing.
DEBIAN_NEEDS=(influxd:influxdb redis-server:redis-server mosquitto_pub:mosquitto-clients mosquitto_sub:mosquitto-clients mosquitto_rr:mosquitto-clients openssl:openssl chromium:chromium radclient:freeradius-utils)
# Python modules of Debian's python3 the interop device uses (devices/interop/python), as "module:package".
PYTHON_NEEDS=(paho.mqtt.client:python3-paho-mqtt cbor2:python3-cbor2 nacl.signing:python3-nacl)
missing=()
for need in "${DEBIAN_NEEDS[@]+"${DEBIAN_NEEDS[@]}"}"; do
  command -v "${need%%:*}" >/dev/null 2>&1 || missing+=("${need##*:}")
done
for need in "${PYTHON_NEEDS[@]}"; do
  /usr/bin/python3 -c "import ${need%%:*}" >/dev/null 2>&1 || missing+=("${need##*:}")
done
# One package may provide several commands.
if [ ${#missing[@]} -gt 0 ]; then mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "test: installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

[ -d node_modules ] || npm ci --no-audit --no-fund

echo "test: format and lint (biome check; \`npm run format\` fixes the formatting)"
npx biome check .

echo "test: type-check"
npx tsc -p .

echo "test: vitest"
# Tests run jamgate with the flags they give: a JAMGATE_ variable of the caller's would change them.
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^JAMGATE_' || true)
# The tests' data dirs, logs and brokers' files go under one temp dir of this run (os.tmpdir()
# follows TMPDIR), removed when it ends, pass or fail: a run used to leave ~80 dirs in /tmp.
TMPDIR=$(mktemp -d -t jamgate-tests.XXXXXX)
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT
report=$(mktemp)
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""));
' "$report" || true
rm -f "$report"
exit $status
