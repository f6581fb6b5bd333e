/**
 * CLI: `make sim ARGS="--profile llama-3.1-70b-8xh100 --port 8001"`. Parses flags and VLLM_SIM_* env once, starts the
 * simulator, logs one startup line, stops cleanly on SIGINT/SIGTERM (a second signal exits at once).
 */
import { ConfigError } from "../../../shared/errors.ts";
import { createLogger } from "../../../shared/logger.ts";
import { parseSimulatorOptions, simulatorHelp, startVllmSimulator } from "./server.ts";

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${simulatorHelp()}\n`);
    return;
  }
  const log = createLogger(process.env.LOG_LEVEL ?? "info", "vllm-sim");
  let options;
  try {
    options = parseSimulatorOptions(argv, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
  const sim = await startVllmSimulator(options);
  const o = sim.options;
  log.info(
    {
      url: sim.url,
      profile: o.profile,
      model: o.model,
      maxNumSeqs: o.maxNumSeqs,
      maxNumBatchedTokens: o.maxNumBatchedTokens,
      maxModelLen: o.maxModelLen,
      kvCapacityTokens: o.kvCapacityTokens,
      maxNumQueuedReqs: o.maxNumQueuedReqs,
      timeScale: o.timeScale,
      seed: o.seed,
      auth: o.apiKey !== undefined,
      faults: o.faults,
    },
    o.faults.engineDead ? `vLLM simulator ${o.profile}: engine dead, not listening on ${sim.url}` : `vLLM simulator ${o.profile} serving ${o.model} at ${sim.url}`,
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(130);
    stopping = true;
    log.info({ signal, stats: sim.engine.stats() }, "vLLM simulator stopping");
    sim.close().then(
      () => log.info("vLLM simulator stopped"),
      (err: unknown) => {
        log.error({ err }, "vLLM simulator close failed");
        process.exitCode = 1;
      },
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
}

await main();
