# Entry points. `make demo` and `make test` work on a fresh clone: both install dependencies first.
SHELL := /bin/bash
NODE := node --import tsx
export NODE_OPTIONS ?= --enable-source-maps
# On Node 20 (development only) the AWS SDK warns once per process that its 2027 releases need Node 22; known (README
# "Node versions"), kept out of demo and test output. Silent on Node 22+; drop this with Node 20.
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ?= true

.PHONY: install build demo serve test typecheck cycles unit sim faults bench simulate schema dlq fleet api keys

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.installed

## Bundle the entry points into dist/ (production runs `node dist/worker.mjs`).
build: install
	$(NODE) scripts/build.ts

## Run the whole fleet end to end on embedded defaults (emulated SQS, local or embedded Postgres, vLLM simulator).
demo: install
	$(NODE) scripts/demo.ts

## The local stack in the foreground: emulator queue + DLQ, simulators, two workers and the Results API; prints one
## JSON line (api, api_key for tenant demo, database_url, queue_url, ...) when ready. Ctrl-C drains and stops all.
serve: install
	$(NODE) scripts/serve.ts

## The test suite: typecheck, import-cycle check, then node:test against real Postgres, Redis and the SQS emulator.
test: install typecheck cycles unit

typecheck: install
	npx tsc --noEmit -p tsconfig.json

cycles: install
	npx madge --circular --extensions ts --ts-config tsconfig.json producer worker shared scripts

unit: install
	$(NODE) --test --test-concurrency=1 --test-timeout=300000 $$(find test -name '*.test.ts' | sort)

## The vLLM simulator on its own (flags: --help).
sim: install
	$(NODE) scripts/simulators/vllm/main.ts $(ARGS)

## Fault suite at full size (10,000 jobs, kills, outages).
faults: install
	$(NODE) scripts/faults.ts $(ARGS)

## Benchmark: capacity ratio, vs. a naive sqs-consumer worker, overhead per job, RSS.
bench: install
	$(NODE) scripts/bench.ts $(ARGS)

## Scaling simulator over terraform/ variables.
simulate: install
	$(NODE) scripts/simulate-scaling.ts $(ARGS)

## Write the job contract's JSON Schema for producers in other languages.
schema: install
	$(NODE) scripts/export-schema.ts

## Dead-letter queue tool: list, inspect, redrive.
dlq: install
	$(NODE) scripts/dlq.ts $(ARGS)

## The fleet at a glance, redrawn every 2 s on a terminal: queues, workers, last minute, providers, cost
## (ARGS="status --json" or "status --once" for one look; same environment as the producer CLI).
fleet: install
	$(NODE) producer/cli.ts $(or $(ARGS),status)

## The Results API (producer/api), configured from the environment (.env.example, "api" block); needs DATABASE_URL.
api: install
	$(NODE) producer/api/main.ts

## API keys: ARGS="create --tenant NAME" (the key is the last line printed), "list [--tenant NAME]", "revoke KEY_ID".
keys: install
	$(NODE) producer/api/keys-cli.ts $(ARGS)
