/**
 * Terraform's HCL read as JSON, without a terraform binary: `@cdktf/hcl2json` (hcl2json compiled to WASM) parses
 * each file; blocks come back as `{ resource: { type: { name: [body] } }, variable: { name: [body] }, locals: [..] }`
 * with expressions kept as "${...}" strings. Used by the terraform checks and the scaling simulator.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { parse } from "@cdktf/hcl2json";
import { ConfigError } from "../shared/errors.ts";

export type HclJson = Record<string, unknown>;

/** Parse every `*.tf` file of `dir` (not subdirectories: Terraform reads one module per directory) into one object. */
export async function parseTerraformDir(dir: string): Promise<HclJson> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".tf")).sort();
  if (files.length === 0) throw new ConfigError([`${dir}: no .tf files`]);
  let merged: HclJson = {};
  for (const file of files) {
    merged = mergeHcl(merged, await parseHclFile(path.join(dir, file)));
  }
  return merged;
}

/**
 * Every variable's default, overridden by the assignments of a .tfvars file when one is given (as
 * `terraform plan -var-file` would). Variables without a default are absent unless the file sets them.
 * A relative `tfvarsFile` is looked up from the working directory, then from `dir`
 * (so `examples/dev.tfvars` works from the repository root).
 */
export async function readVariableDefaults(dir: string, tfvarsFile?: string): Promise<HclJson> {
  const variables = (await parseTerraformDir(dir)).variable as Record<string, HclJson[]> | undefined;
  const values: HclJson = {};
  for (const [name, blocks] of Object.entries(variables ?? {})) {
    const body = blocks[0];
    if (body && "default" in body) values[name] = body.default;
  }
  if (tfvarsFile === undefined) return values;
  const overrides = await parseHclFile(await resolveTfvars(dir, tfvarsFile));
  for (const name of Object.keys(overrides)) {
    if (!(name in (variables ?? {}))) throw new ConfigError([`${tfvarsFile}: assigns undeclared variable "${name}"`]);
  }
  return { ...values, ...overrides };
}

/** Parse one HCL file (.tf or .tfvars); a syntax error becomes a ConfigError naming the file and position. */
export async function parseHclFile(file: string): Promise<HclJson> {
  const text = await readFile(file, "utf8");
  try {
    return (await parse(path.basename(file), text)) as HclJson;
  } catch (err) {
    throw new ConfigError([`${file}: ${err instanceof Error ? err.message : String(err)}`]);
  }
}

async function resolveTfvars(dir: string, file: string): Promise<string> {
  const candidates = path.isAbsolute(file) ? [file] : [path.resolve(file), path.resolve(dir, file)];
  for (const candidate of candidates) {
    if (await isFile(candidate)) return candidate;
  }
  throw new ConfigError([`${file}: tfvars file not found (looked in ${candidates.join(", ")})`]);
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/** Objects merge key by key, block lists concatenate: the same union Terraform makes of a directory's files. */
function mergeHcl(a: HclJson, b: HclJson): HclJson {
  const out: HclJson = { ...a };
  for (const [key, value] of Object.entries(b)) {
    const prev = out[key];
    if (Array.isArray(prev) && Array.isArray(value)) out[key] = [...prev, ...value];
    else if (isObject(prev) && isObject(value)) out[key] = mergeHcl(prev, value);
    else out[key] = value;
  }
  return out;
}

function isObject(value: unknown): value is HclJson {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
