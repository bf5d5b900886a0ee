#!/usr/bin/env bash
# Runs every test (vitest) and ends with one plain "tests: N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p test/artifacts
npx vitest run --reporter=default --reporter=json --outputFile.json=test/artifacts/results.json "$@"
status=$?
node -e '
  const fs = require("node:fs");
  let r;
  try { r = JSON.parse(fs.readFileSync("test/artifacts/results.json", "utf8")); } catch { process.exit(0); }
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
'
exit $status
