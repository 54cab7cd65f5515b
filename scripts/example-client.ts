/**
 * The SDK against a running server: registers a user, creates a board with two
 * columns and a card, subscribes to the board's changes, moves the card, prints
 * the change the subscription delivers for the move, and exits.
 *
 *   npm start                              # one terminal
 *   npx tsx scripts/example-client.ts      # another
 *
 * CORKBOARD_URL names the GraphQL endpoint (default http://localhost:$PORT/graphql,
 * PORT defaulting to 4000).
 */
import { randomUUID } from 'node:crypto';
import { WebSocket } from 'ws';
import { createCorkboardClient } from '../src/sdk/createCorkboardClient.js';
import { graphqlUrl, runScript } from './cli.js';

const url = graphqlUrl();

/** Narrows a mutation's result union to its success member, or stops the script. */
function success<R extends { __typename: string }, T extends R['__typename']>(
  result: R,
  typename: T,
): Extract<R, { __typename: T }> {
  if (result.__typename !== typename) {
    throw new Error(`expected ${typename}, got ${JSON.stringify(result)}`);
  }
  return result as Extract<R, { __typename: T }>;
}

await runScript('example-client', url, async () => {
  const username = `example_${randomUUID().slice(0, 8)}`;
  const registered = success(
    await createCorkboardClient({ url }).registerUser({
      input: { username, displayName: 'Example' },
    }),
    'RegisterUserSuccess',
  );
  console.log(`registered ${registered.user.username}`);

  // Node 20 has no WebSocket of its own: subscriptions use the `ws` package.
  const client = createCorkboardClient({ url, token: registered.token, webSocketImpl: WebSocket });

  const { board } = success(
    await client.createBoard({ input: { name: 'Example board' } }),
    'CreateBoardSuccess',
  );
  // Subscribed before the next writes, so that they (and the move) are live changes.
  const abort = new AbortController();
  const changes = client.boardChanges(board.id, { signal: abort.signal });
  const moveSeen = (async () => {
    for await (const change of changes) {
      if (change.resyncRequired) console.log('resync required: an app would refetch the board now');
      if (change.operation === 'moveCard') return change;
    }
    return undefined;
  })();

  const todo = success(
    await client.addColumn({ input: { boardId: board.id, name: 'Todo', expectedVersion: 1 } }),
    'AddColumnSuccess',
  );
  const done = success(
    await client.addColumn({
      input: { boardId: board.id, name: 'Done', expectedVersion: todo.board.version },
    }),
    'AddColumnSuccess',
  );
  const { card } = success(
    await client.addCard({ input: { columnId: todo.column.id, title: 'Try the SDK' } }),
    'AddCardSuccess',
  );
  console.log(`board ${board.id}: columns Todo and Done, card "${card.title}" in Todo`);

  const moved = await client.moveCard({
    input: { cardId: card.id, toColumnId: done.column.id, expectedVersion: card.version },
  });
  switch (moved.__typename) {
    case 'MoveCardSuccess':
      console.log(`moved the card to ${moved.to.name} (card version ${moved.card.version})`);
      break;
    case 'VersionConflictError':
      throw new Error(`someone else changed the card: ${JSON.stringify(moved.conflicts)}`);
    case 'WipLimitReachedError':
    case 'BoardArchivedError':
    case 'NotFoundError':
    case 'ForbiddenError':
    case 'ValidationError':
    case 'UnauthenticatedError':
      throw new Error(`${moved.__typename}: ${moved.message}`);
  }

  const timeout = setTimeout(() => abort.abort(), 10_000);
  const change = await moveSeen;
  clearTimeout(timeout);
  abort.abort();
  if (!change) throw new Error('no moveCard change arrived within 10 s');
  console.log('received:');
  console.log(JSON.stringify(change, null, 2));
});
