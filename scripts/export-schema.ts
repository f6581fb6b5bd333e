/** Writes shared/job.schema.json, the contract for producers written in other languages. */
import { writeFileSync } from "node:fs";
import { jobJsonSchema } from "../shared/contract.ts";

const path = new URL("../shared/job.schema.json", import.meta.url);
writeFileSync(path, `${JSON.stringify(jobJsonSchema(), null, 2)}\n`);
console.log(`wrote ${path.pathname}`);
