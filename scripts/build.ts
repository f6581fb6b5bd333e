/**
 * `make build`: bundles the deployables' entry points into dist/ as plain ESM (dependencies stay in
 * node_modules). Production runs `node dist/worker.mjs`: running TypeScript through tsx at run time costs each
 * worker process a loader thread (~36 MiB RSS measured) and start-up transpiling.
 */
import { build } from "esbuild";
import { cpSync } from "node:fs";
import { resolve } from "node:path";

const ROOT = resolve(new URL(".", import.meta.url).pathname, "..");

/**
 * The Node lines production may run (terraform var node_version), its default first. The bundle is built for all of
 * them: esbuild then lowers or refuses syntax the oldest lacks, instead of a worker failing at start.
 */
export const PRODUCTION_NODE_MAJORS = [24, 22] as const;

export const ENTRIES = {
  worker: "worker/main.ts",
  "producer-cli": "producer/cli.ts",
  dlq: "scripts/dlq.ts",
  api: "producer/api/main.ts",
  "api-keys": "producer/api/keys-cli.ts",
} as const;

export async function buildDist(): Promise<void> {
  await build({
    absWorkingDir: ROOT,
    entryPoints: Object.fromEntries(Object.entries(ENTRIES).map(([name, path]) => [name, path])),
    outdir: "dist",
    outExtension: { ".js": ".mjs" },
    bundle: true,
    packages: "external",
    platform: "node",
    format: "esm",
    target: PRODUCTION_NODE_MAJORS.map((major) => `node${major}`),
    sourcemap: true,
    logLevel: "warning",
  });
  // migrate.ts finds its SQL beside the module that runs it: in the bundle, that is dist/.
  cpSync(resolve(ROOT, "shared/store/migrations"), resolve(ROOT, "dist/migrations"), { recursive: true });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await buildDist();
  process.stdout.write(`built ${Object.keys(ENTRIES).map((n) => `dist/${n}.mjs`).join(", ")}\n`);
}
