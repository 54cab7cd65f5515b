/**
 * The server as its own process with STORE=mongo, on the MongoDB simulator (test/sim)
 * listening on loopback: the board API and live updates through the real driver, the mongo
 * event store, feed and projector storage. A smoke run: the API's rules are the board
 * and live suites' business; this proves the mongo path of `main` end to end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  createCorkboardClient,
  type CorkboardClient,
} from '../../src/sdk/createCorkboardClient.js';
import { MongoSim } from '../sim/MongoSim.js';
import { startServerProcess, type ServerProcess } from '../support/serverProcess.js';

function member<R extends { __typename: string } | null, T extends NonNullable<R>['__typename']>(
  result: R,
  typename: T,
): Extract<R, { __typename: T }> {
  if (result?.__typename !== typename) {
    throw new Error(`expected ${typename}, got ${JSON.stringify(result)}`);
  }
  return result as Extract<R, { __typename: T }>;
}

describe('server process on STORE=mongo against the MongoDB simulator', () => {
  let sim: MongoSim;
  let server: ServerProcess;
  const clientOf = (token?: string): CorkboardClient =>
    createCorkboardClient({
      url: `${server.url}/graphql`,
      webSocketImpl: WebSocket,
      ...(token ? { token } : {}),
    });

  beforeAll(async () => {
    sim = await MongoSim.start();
    server = await startServerProcess({
      env: { STORE: 'mongo', MONGODB_URI: sim.uri, MONGODB_DB: 'corkboard_e2e' },
      readyTimeoutMs: 60_000,
    });
  }, 90_000);

  afterAll(async () => {
    await server?.kill();
    await sim?.close();
  });

  it('serves the board API and pushes live updates, all through the mongo adapters', async () => {
    expect(server.output()).toContain('running on MongoDB');
    const registered = member(
      await clientOf().registerUser({ input: { username: 'ada', displayName: 'Ada' } }),
      'RegisterUserSuccess',
    );
    const ada = clientOf(registered.token);
    const board = member(
      await ada.createBoard({ input: { name: 'Plan' } }),
      'CreateBoardSuccess',
    ).board;
    const column = member(
      await ada.addColumn({
        input: { boardId: board.id, name: 'Todo', wipLimit: null, expectedVersion: board.version },
      }),
      'AddColumnSuccess',
    ).column;

    // Changes from the moment the subscription is live: warm-up cards are added until one
    // arrives (the socket opens asynchronously), then the three cards it must all see.
    const abort = new AbortController();
    const seen: string[] = [];
    const watching = (async () => {
      for await (const change of ada.boardChanges(board.id, { signal: abort.signal })) {
        seen.push(change.operation);
      }
    })().catch((error: unknown) => {
      if (!abort.signal.aborted) throw error;
    });
    const added = (): number => seen.filter((o) => o === 'addCard').length;
    const within = async (condition: () => boolean, ms: number): Promise<boolean> => {
      const deadline = Date.now() + ms;
      while (!condition()) {
        if (Date.now() > deadline) return false;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return true;
    };
    const addCard = async (title: string) =>
      member(await ada.addCard({ input: { columnId: column.id, title } }), 'AddCardSuccess');
    let warmUps = 0;
    while (added() === 0) {
      if (warmUps === 15) throw new Error(`no live update arrived:\n${server.output()}`);
      await addCard(`warm-up ${warmUps}`);
      warmUps += 1;
      await within(() => added() > 0, 2_000);
    }
    const before = added();
    const titles = ['one', 'two', 'three'];
    for (const title of titles) await addCard(title);
    expect(await within(() => added() >= before + 3, 30_000)).toBe(true);
    abort.abort();
    await watching;

    const read = await ada.board({ id: board.id, cardsPerColumn: 50 });
    const shown = read!.columns.map((c) => c.cards.edges.map((e) => e.node.title));
    expect(shown).toHaveLength(1);
    expect(shown[0]!.slice(-3)).toEqual(titles);
    expect(shown[0]).toHaveLength(warmUps + 3);
    // Every write went through the simulator's transactions and change streams.
    expect(sim.commandCounts.get('commitTransaction') ?? 0).toBeGreaterThanOrEqual(5);
    expect(sim.commandCounts.get('getMore') ?? 0).toBeGreaterThan(0);
    expect(sim.unsupported).toEqual([]);
  });
});
