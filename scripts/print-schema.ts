/**
 * Writes the schema's SDL, lexicographically sorted, to schema/schema.graphql.
 * With --check, writes nothing and exits 1 when the committed file is stale.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { printSortedSchema } from '../src/graphql/schema.js';

const target = new URL('../schema/schema.graphql', import.meta.url);
const printed = printSortedSchema();

if (process.argv.includes('--check')) {
  const committed = await readFile(target, 'utf8').catch(() => '');
  if (committed !== printed) {
    console.error('schema/schema.graphql is stale: run `npm run schema:print` and commit it.');
    process.exit(1);
  }
  console.log('schema/schema.graphql is up to date.');
} else {
  await writeFile(target, printed);
  console.log('wrote schema/schema.graphql');
}
