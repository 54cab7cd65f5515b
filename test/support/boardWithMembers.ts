import type { CorkboardClient } from '../../src/sdk/createCorkboardClient.js';
import { expectSuccess } from './expectSuccess.js';

/**
 * A new board `name` of `owner`'s with `usernames` added as members (editors), one after
 * the other: its id and the board's version after the last addition.
 */
export async function boardWithMembers(
  owner: CorkboardClient,
  name: string,
  usernames: readonly string[],
): Promise<{ boardId: string; version: number }> {
  const board = expectSuccess(
    await owner.createBoard({ input: { name } }),
    'CreateBoardSuccess',
  ).board;
  let version = board.version;
  for (const username of usernames) {
    version = expectSuccess(
      await owner.addMember({ input: { boardId: board.id, username, expectedVersion: version } }),
      'AddMemberSuccess',
    ).board.version;
  }
  return { boardId: board.id, version };
}
