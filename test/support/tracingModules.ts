/**
 * Run as its own process by `tracingStart.unit.test.ts`: `node --import tsx
 * test/support/tracingModules.ts [memory]`. Starts tracing from the OTEL_* variables as
 * `src/main.ts` does (the mongodb instrumentation left out with `memory`), then prints the
 * packages loaded (CommonJS, as the OpenTelemetry ones are) as a JSON array, and stops.
 */
import { createRequire } from 'node:module';
import { startTracing } from '../../src/telemetry/tracing.js';

const tracing = await startTracing(process.env, { mongodb: process.argv[2] !== 'memory' });
if (!tracing) throw new Error('tracing is not configured');
const packages = new Set<string>();
for (const path of Object.keys(createRequire(import.meta.url).cache)) {
  const name = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(?!.*node_modules\/)/.exec(path)?.[1];
  if (name) packages.add(name);
}
console.log(JSON.stringify({ description: tracing.description, packages: [...packages] }));
await tracing.shutdown();
