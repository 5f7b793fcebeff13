#!/usr/bin/env bash
# Runs the official OpenAI client for Node against `fp8llm serve` (openai_client_test.mjs).
# Usage: openai_client.sh FP8LLM_BINARY MODEL_DIR WORK_DIR
# The client is installed from the npm registry into WORK_DIR/node_modules the first time. Its
# newest releases need Node 20; Debian 12's Node is 18, which the 4.x series supports.
set -euo pipefail
cli=$1
model=$2
work=$3
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -ge 20 ]; then version=6.49.0; else version=4.104.0; fi
installed=$(node -p "try { require('$work/node_modules/openai/package.json').version } catch { '' }")
if [ "$installed" != "$version" ]; then
  mkdir -p "$work"
  (cd "$work" && npm install --no-audit --no-fund --silent "openai@$version")
fi
exec node "$(dirname "$0")/openai_client_test.mjs" "$cli" "$model" "$work"
