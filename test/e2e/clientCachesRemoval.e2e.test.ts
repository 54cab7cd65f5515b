/**
 * Losing access, from each user's point of view through the SDK: Alice (owner) removes
 * Bob, Carol leaves. Their open `boardChanges` iterators end with a typed reason, and a
 * resume from an old cursor is refused the same way.
 */
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BoardAccessEndedError } from '../../src/sdk/accessEnded.js';
import { AccessEndReason } from '../../src/sdk/liveErrorCodes.js';
import type { BoardChange } from '../../src/sdk/boardChanges.js';
import { CorkboardRequestError } from '../../src/sdk/CorkboardRequestError.js';
import {
  createCorkboardClient,
  type CorkboardClient,
} from '../../src/sdk/createCorkboardClient.js';
import { ChangeHeadDocument } from '../../src/sdk/generated/graphql.js';
import { boardWithMembers } from '../support/boardWithMembers.js';
import { expectSuccess } from '../support/expectSuccess.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { until } from '../support/until.js';

/** Reads `boardChanges` until it ends; resolves with what it yielded and how it ended. */
async function follow(
  client: CorkboardClient,
  boardId: string,
  after: string | null,
  seen: BoardChange[] = [],
) {
  try {
    for await (const change of client.boardChanges(boardId, { after })) seen.push(change);
    return { seen, error: null };
  } catch (error) {
    return { seen, error };
  }
}

describe('losing access to a board, through the SDK iterator', () => {
  let s: TestServer;
  let alice: CorkboardClient;
  let bob: CorkboardClient;
  let carol: CorkboardClient;
  let ids: { bob: string; carol: string };
  let boardId: string;

  beforeAll(async () => {
    s = await startTestServer();
    const graphqlUrl = `${s.url}/graphql`;
    const [aliceUser, bobUser, carolUser] = await Promise.all(
      ['alice', 'bob', 'carol'].map((name) => s.register(name)),
    );
    const sdk = (token: string) =>
      createCorkboardClient({ url: graphqlUrl, token, webSocketImpl: WebSocket });
    alice = sdk(aliceUser!.token);
    bob = sdk(bobUser!.token);
    carol = sdk(carolUser!.token);
    ids = { bob: bobUser!.id, carol: carolUser!.id };
    ({ boardId } = await boardWithMembers(alice, 'Removal', ['bob', 'carol']));
  });
  afterAll(async () => {
    await s?.close();
  });

  /**
   * An open iteration of `client`'s boardChanges from the change head, once it has
   * received one change (a rename by Alice): it is live on the server by then.
   */
  async function opened(client: CorkboardClient, name: string) {
    const { changeHead } = await client.request(ChangeHeadDocument);
    const seen: BoardChange[] = [];
    const iteration = follow(client, boardId, changeHead, seen);
    const { board } = expectSuccess(
      await alice.renameBoard({
        input: { boardId, name, expectedVersion: (await alice.board({ id: boardId }))!.version },
      }),
      'RenameBoardSuccess',
    );
    await until(() => seen.length === 1, 10_000, 'the rename');
    return { iteration, version: board.version };
  }

  it("ends Bob's open iterator with REMOVED when Alice removes him, and refuses his resume with the same typed error", async () => {
    // One change Bob sees while a member: its cursor is where a resume would start.
    const open = await opened(bob, 'renamed for Bob');
    expectSuccess(
      await alice.removeMember({
        input: { boardId, userId: ids.bob, expectedVersion: open.version },
      }),
      'RemoveMemberSuccess',
    );
    const ended = await open.iteration;
    expect(ended.seen.map((change) => change.operation)).toEqual(['renameBoard']);
    expect(ended.error).toBeInstanceOf(BoardAccessEndedError);
    expect(ended.error).toBeInstanceOf(CorkboardRequestError);
    expect(ended.error).toMatchObject({ boardId, reason: AccessEndReason.Removed });

    const resumed = await follow(bob, boardId, ended.seen[0]!.cursor);
    expect(resumed.seen).toEqual([]);
    expect(resumed.error).toBeInstanceOf(BoardAccessEndedError);
    expect(resumed.error).toMatchObject({ boardId, codes: ['NOT_FOUND'] });
  });

  it("ends Carol's open iterator with LEFT when she leaves the board", async () => {
    const open = await opened(carol, 'renamed for Carol');
    expectSuccess(
      await carol.removeMember({
        input: { boardId, userId: ids.carol, expectedVersion: open.version },
      }),
      'RemoveMemberSuccess',
    );
    const ended = await open.iteration;
    expect(ended.seen.map((change) => change.operation)).toEqual(['renameBoard']);
    expect(ended.error).toBeInstanceOf(BoardAccessEndedError);
    expect(ended.error).toMatchObject({ boardId, reason: AccessEndReason.Left });
  });
});
