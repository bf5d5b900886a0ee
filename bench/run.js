// Runs every benchmark in one go: `npm run bench` (needs a build: bash scripts/setup.sh).
await import('./dump-inspect.js');
await import('./rewrite.js');
await import('./criu.js');
await import('./pack-diff.js');
