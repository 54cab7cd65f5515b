import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANONYMOUS_OPERATION, OTHER_OPERATION } from '../../src/ops/metrics.js';
import { SDK_OPERATION_NAMES } from '../../src/graphql/trustedDocuments.js';
import { startTestServer, type TestServer } from '../support/server.js';

/** Every value the `operationName` label takes in a scrape. */
function operationNameValues(text: string): Set<string> {
  return new Set([...text.matchAll(/operationName="([^"]*)"/g)].map((m) => m[1]!));
}

describe('/metrics: who may scrape it, and a label set clients cannot grow', () => {
  let s: TestServer;
  const scrape = (token?: string) =>
    fetch(`${s.url}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {});

  beforeAll(async () => {
    s = await startTestServer({ env: { METRICS_PORT: '0' } });
  });
  afterAll(async () => {
    await s.close();
  });

  it('answers 401 to anyone without the admin token, on the main port', async () => {
    const { token: userToken } = await s.register('scraper');
    for (const token of [undefined, userToken, 'x'.repeat(40)]) {
      const response = await scrape(token);
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toContain('Bearer');
      expect(await response.text()).not.toContain('process_cpu');
    }
    const admitted = await scrape(s.app.admin.token);
    expect(admitted.status).toBe(200);
    expect(await admitted.text()).toContain('process_cpu_user_seconds_total');
  });

  it('serves /metrics without a token on the separate METRICS_PORT listener, and nothing else there', async () => {
    expect(s.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const response = await fetch(s.metricsUrl!);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('corkboard_store_head');
    const base = s.metricsUrl!.replace(/\/metrics$/, '');
    for (const path of ['/graphql', '/health', '/admin']) {
      const other = await fetch(`${base}${path}`);
      expect(other.status).toBe(404);
      await other.body?.cancel();
    }
  });

  it('shows only ok, degraded or down on the public /health', async () => {
    const response = await fetch(`${s.url}/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('keeps one series per known operation and one for all others, whatever names clients send', async () => {
    // 500 distinct names, 100 at a time.
    for (let batch = 0; batch < 5; batch += 1) {
      await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          s.gql(`query Attack${batch * 100 + i} { me { id } }`),
        ),
      );
    }
    await s.gql(`query Me { me { id } }`);
    await s.gql(`{ me { id } }`);
    const text = await (await scrape(s.app.admin.token)).text();
    const names = operationNameValues(text);
    expect(names.has(OTHER_OPERATION)).toBe(true);
    expect(names.has(ANONYMOUS_OPERATION)).toBe(true);
    expect(names.has('Me')).toBe(true);
    for (const name of names) {
      expect([...SDK_OPERATION_NAMES, OTHER_OPERATION, ANONYMOUS_OPERATION]).toContain(name);
    }
    expect(text).not.toContain('Attack');
    // Every attack request counted, under `other`.
    const requests = text
      .split('\n')
      .find((l) =>
        l.startsWith(
          `graphql_envelop_request{operationType="query",operationName="${OTHER_OPERATION}"}`,
        ),
      );
    expect(Number(requests?.split(' ').at(-1))).toBe(500);
  });

  it('counts a commit once in corkboard_commits_total and its idempotent replays in corkboard_replays_total', async () => {
    const { token } = await s.register('replayer');
    const create = () =>
      s.gql<{ createBoard: { board: { id: string } } }>(
        `mutation { createBoard(input: { name: "Once", idempotencyKey: "same-key-1" }) {
          ... on CreateBoardSuccess { board { id } } } }`,
        {},
        token,
      );
    const answers = [await create(), await create(), await create()];
    const ids = new Set(answers.map((a) => a.data!.createBoard.board.id));
    expect(ids.size).toBe(1);
    const text = await (await scrape(s.app.admin.token)).text();
    expect(text).toContain('corkboard_commits_total{mutation="createBoard"} 1\n');
    expect(text).toContain('corkboard_replays_total{mutation="createBoard"} 2\n');
    expect(text).toContain(
      'corkboard_mutations_total{mutation="createBoard",outcome="replayed"} 2\n',
    );
  });
});
