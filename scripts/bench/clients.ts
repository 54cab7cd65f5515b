/**
 * Live caches: client A's mutation -> client B's watched `Board` query updated,
 * for Apollo Client and for urql Graphcache kept fresh by `@corkboard/client`,
 * over CHANGES sequential changes (card edits and moves across columns,
 * alternating), and what each change cost in HTTP requests.
 *
 *   npm run bench:clients          # CHANGES=200 by default
 *
 * Baseline, measured in the same run: the same change's arrival at a plain
 * `boardChanges` subscriber of B's (the SDK iterator alone). The difference is
 * what the binding adds: invalidating, and one refetch of the watched query.
 * One in-process memory server; the machine is shared, so the numbers are noisy.
 */
import { loadavg } from 'node:os';
import { WebSocket } from 'ws';
import { createCorkboardClient } from '../../src/sdk/createCorkboardClient.js';
import { EditCardDocument, MoveCardDocument } from '../../src/sdk/generated/graphql.js';
import {
  openLiveCacheClient,
  type CacheLibrary,
  type WatchedBoard,
} from '../../test/support/liveCaches.js';
import { expectSuccess } from '../../test/support/expectSuccess.js';
import { NO_CLIENT_LIMITS, startTestServer, type TestServer } from '../../test/support/server.js';
import { percentile, printTable } from './report.js';

const CHANGES = Number(process.env.CHANGES ?? 200);

const cardIn = (board: WatchedBoard, cardId: string) => {
  for (const column of board.columns) {
    const edge = column.cards.edges.find((e) => e.node.id === cardId);
    if (edge) return { column: column.id, card: edge.node };
  }
  return undefined;
};

interface Result {
  library: CacheLibrary;
  received: number[];
  updated: number[];
  watcherRequests: number;
  writerExtraRequests: number;
}

async function measure(s: TestServer, library: CacheLibrary): Promise<Result> {
  const graphqlUrl = `${s.url}/graphql`;
  const alice = await s.register(`alice_${library}`);
  const bob = await s.register(`bob_${library}`);
  const writer = createCorkboardClient({ url: graphqlUrl, token: alice.token });
  const board = expectSuccess(
    await writer.createBoard({ input: { name: 'bench' } }),
    'CreateBoardSuccess',
  ).board;
  let version = expectSuccess(
    await writer.addMember({
      input: { boardId: board.id, username: `bob_${library}`, expectedVersion: board.version },
    }),
    'AddMemberSuccess',
  ).board.version;
  const columns: string[] = [];
  for (const name of ['Todo', 'Doing']) {
    const added = expectSuccess(
      await writer.addColumn({ input: { boardId: board.id, name, expectedVersion: version } }),
      'AddColumnSuccess',
    );
    version = added.board.version;
    columns.push(added.column.id);
  }
  let card = expectSuccess(
    await writer.addCard({ input: { columnId: columns[0]!, title: 'bench' } }),
    'AddCardSuccess',
  ).card;

  const a = await openLiveCacheClient(library, {
    graphqlUrl,
    token: alice.token,
    boardId: board.id,
  });
  const b = await openLiveCacheClient(library, { graphqlUrl, token: bob.token, boardId: board.id });
  // The baseline: B's plain subscription, noting when each change arrives.
  const arrivals = new Map<number, number>();
  const abort = new AbortController();
  const bobSdk = createCorkboardClient({
    url: graphqlUrl,
    token: bob.token,
    webSocketImpl: WebSocket,
  });
  const following = (async () => {
    for await (const change of bobSdk.boardChanges(board.id, { signal: abort.signal })) {
      const version = change.invalidated.find((i) => i.id === card.id)?.version;
      if (version !== undefined) arrivals.set(version, performance.now());
    }
  })();
  while (s.app.live.stats().subscribers < 3) await new Promise((r) => setTimeout(r, 10));

  const received: number[] = [];
  const updated: number[] = [];
  const watcherBefore = b.requests.length;
  const writerBefore = a.requests.length;
  for (let i = 0; i < CHANGES; i++) {
    const started = performance.now();
    if (i % 2 === 0) {
      const title = `t${i}`;
      const { editCard } = await a.mutate(EditCardDocument, {
        input: { cardId: card.id, expectedVersion: card.version, title },
      });
      card = expectSuccess(editCard, 'EditCardSuccess').card;
      await b.waitForBoard((watched) => cardIn(watched, card.id)?.card.title === title);
    } else {
      const toColumnId = card.column.id === columns[0] ? columns[1]! : columns[0]!;
      const { moveCard } = await a.mutate(MoveCardDocument, {
        input: { cardId: card.id, toColumnId, expectedVersion: card.version },
      });
      card = expectSuccess(moveCard, 'MoveCardSuccess').card;
      await b.waitForBoard((watched) => cardIn(watched, card.id)?.column === toColumnId);
    }
    updated.push(performance.now() - started);
    while (!arrivals.has(card.version)) await new Promise((r) => setTimeout(r, 1));
    received.push(arrivals.get(card.version)! - started);
  }
  // Let the writer's own changes (applied after their grace period) settle.
  await new Promise((r) => setTimeout(r, 500));
  const result = {
    library,
    received,
    updated,
    watcherRequests: b.requests.length - watcherBefore,
    writerExtraRequests: a.requests.length - writerBefore - CHANGES,
  };
  abort.abort();
  await following;
  await a.close();
  await b.close();
  return result;
}

const s = await startTestServer({ env: { ...NO_CLIENT_LIMITS } });
try {
  const results: Result[] = [];
  for (const library of ['apollo', 'urql'] as const) results.push(await measure(s, library));
  const ms = (values: number[], q: number) =>
    percentile(
      [...values].sort((x, y) => x - y),
      q,
    ).toFixed(1);
  console.log(
    `\n${CHANGES} changes per library; load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n`,
  );
  printTable(
    [
      'client',
      'change received p50',
      'p99',
      'watched query updated p50',
      'p99',
      'added p50',
      'B requests/change',
      'A refetches',
    ],
    results.map((r) => [
      r.library,
      `${ms(r.received, 0.5)} ms`,
      `${ms(r.received, 0.99)} ms`,
      `${ms(r.updated, 0.5)} ms`,
      `${ms(r.updated, 0.99)} ms`,
      `${(Number(ms(r.updated, 0.5)) - Number(ms(r.received, 0.5))).toFixed(1)} ms`,
      (r.watcherRequests / CHANGES).toFixed(2),
      String(r.writerExtraRequests),
    ]),
    1,
  );
} finally {
  await s.close();
}
