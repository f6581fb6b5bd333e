/**
 * Runs the SQS emulator as its own process (the fault suite kills and restarts it).
 * Usage: node --import tsx scripts/emulator.ts [--port 4566] [--host 127.0.0.1]
 * Prints one JSON line `{"endpoint":"http://127.0.0.1:4566","port":4566}` on stdout once listening;
 * stops on SIGTERM/SIGINT.
 */
import { parseArgs } from "node:util";
import { startEmulator } from "./local/sqs-emulator.ts";

const { values } = parseArgs({ options: { port: { type: "string", default: "0" }, host: { type: "string", default: "127.0.0.1" } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  console.error(`--port must be an integer 0-65535, got ${values.port}`);
  process.exit(2);
}

const emulator = await startEmulator({ port, host: values.host });
console.log(JSON.stringify({ endpoint: emulator.endpoint, port: emulator.port }));

let stopping = false;
const stop = (signal: NodeJS.Signals) => {
  if (stopping) process.exit(1); // a second signal forces exit
  stopping = true;
  emulator.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(`emulator stop failed after ${signal}:`, err);
      process.exit(1);
    },
  );
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
