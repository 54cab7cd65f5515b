import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, MAX_LOGGED_STRING } from '../../src/logger.js';
import { openMemoryStorage } from '../../src/storage.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { until } from '../support/until.js';

interface LogRecord {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A server whose log records (JSON lines, level debug) are kept in memory. */
async function serveLogged(storage = openMemoryStorage({})) {
  const lines: string[] = [];
  const logger = createLogger('debug', {
    destination: { write: (line: string) => void lines.push(line) },
  });
  const s = await startTestServer({ logger, storage });
  return { s, lines, records: () => lines.map((l) => JSON.parse(l) as LogRecord) };
}

const ERROR_LEVEL = 50;

describe('what the server logs about its clients', () => {
  const servers: TestServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) {
      await s.close();
      await s.storage.close();
    }
  });

  it('logs a client that went away mid-mutation at debug, without an error or a stack', async () => {
    const storage = openMemoryStorage({});
    let open: () => void = () => {};
    let gate: Promise<void> | null = null;
    let reached = false;
    const append = storage.store.append.bind(storage.store);
    storage.store.append = async (...args) => {
      if (gate) {
        reached = true;
        await gate;
      }
      return append(...args);
    };
    const { s, records } = await serveLogged(storage);
    servers.push(s);
    const { token } = await s.register('leaver');
    gate = new Promise<void>((resolve) => (open = resolve));
    const abort = new AbortController();
    const request = fetch(`${s.url}/graphql`, {
      method: 'POST',
      signal: abort.signal,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({
        query: `mutation { createBoard(input: { name: "Gone" }) { __typename } }`,
      }),
    }).catch((error: unknown) => error);
    await until(() => reached);
    abort.abort();
    await request;
    gate = null;
    open();
    await until(() =>
      records().some(
        (r) => r.msg.startsWith('client went away') || r.msg.startsWith('unexpected error'),
      ),
    );
    expect(records().filter((r) => r.level >= ERROR_LEVEL)).toEqual([]);
    const gone = records().find((r) => r.msg.startsWith('client went away'))!;
    expect(gone.level).toBe(20);
    expect(JSON.stringify(gone)).not.toContain('stack');
  });

  it('cuts the values it logs: a 20 KB invalid id makes no 20 KB log line', async () => {
    const { s, lines } = await serveLogged();
    servers.push(s);
    const id = 'A'.repeat(20_000);
    const result = await s.gql(`query ($id: ID!) { node(id: $id) { id } }`, { id });
    expect(result.errors?.length ?? 0).toBeGreaterThan(0);
    await s.gql(`query ${'Q'.repeat(20_000)} { me { id } }`);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line.length).toBeLessThan(4 * MAX_LOGGED_STRING);
  });

  it("logs a client's mistakes at debug: a malformed global ID, a variable of the wrong type", async () => {
    const { s, records } = await serveLogged();
    servers.push(s);
    const password = 'Hunter3-SECRET-PW';
    const answers = [
      await s.gql(`query ($id: ID!) { node(id: $id) { id } }`, { id: 'bogus' }),
      await s.gql('mutation ($input: SignInInput!) { signIn(input: $input) { __typename } }', {
        input: { username: 'someone', password, extra: 1 },
      }),
      await s.gql('query ($n: Boolean!) { boards(includeArchived: $n) { id } }', { n: 'yes' }),
    ];
    for (const answer of answers) expect(answer.errors?.length ?? 0).toBeGreaterThan(0);
    expect(records().filter((r) => r.level >= ERROR_LEVEL)).toEqual([]);
    expect(JSON.stringify(records())).not.toContain(password);
  });
});
