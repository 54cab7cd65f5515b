/**
 * Fills a running Corkboard server with a demo board, through its own GraphQL API
 * (so it works with any store, the memory one included), and prints a bearer token
 * to paste into GraphiQL's headers.
 *
 *   npm run seed                      # http://localhost:$PORT/graphql (PORT defaults to 4000)
 *   CORKBOARD_URL=http://host:4000/graphql npm run seed
 */
import { randomBytes } from 'node:crypto';
import { graphqlUrl, postGraphQL, runScript } from './cli.js';

const url = graphqlUrl();

async function call(query: string, variables: Record<string, unknown>, token?: string) {
  const result = await postGraphQL(url, query, variables, token);
  if (result.errors?.length) throw new Error(result.errors.map((e) => e.message).join('; '));
  const payload = Object.values(result.data ?? {})[0];
  if (!payload || payload.__typename.endsWith('Error')) {
    throw new Error(
      `${query.trim().split(/\s+/).slice(0, 2).join(' ')}: ${JSON.stringify(payload)}`,
    );
  }
  return payload;
}

const mutation = (name: string, input: string, selection: string) =>
  `mutation ($input: ${input}!) { ${name}(input: $input) { __typename ... on Error { code message } ${selection} } }`;

async function register(username: string, displayName: string) {
  const suffix = randomBytes(2).toString('hex');
  for (const name of [username, `${username}-${suffix}`]) {
    try {
      const r = await call(
        mutation(
          'registerUser',
          'RegisterUserInput',
          '... on RegisterUserSuccess { token user { username } }',
        ),
        { input: { username: name, displayName } },
      );
      return { token: r.token as string, username: r.user.username as string };
    } catch (error) {
      if (!String(error).includes('USERNAME_TAKEN')) throw error;
    }
  }
  throw new Error(`could not register ${username}`);
}

await runScript('seed', url, async () => {
  const demo = await register('demo', 'Demo User');
  const sam = await register('sam', 'Sam Rivera');

  const board = await call(
    mutation(
      'createBoard',
      'CreateBoardInput',
      '... on CreateBoardSuccess { board { id version } }',
    ),
    { input: { name: 'Product launch' } },
    demo.token,
  );
  let boardVersion = board.board.version as number;
  const boardId = board.board.id as string;
  const added = await call(
    mutation(
      'addMember',
      'AddMemberInput',
      '... on AddMemberSuccess { board { version members { id username } } }',
    ),
    { input: { boardId, username: sam.username, expectedVersion: boardVersion } },
    demo.token,
  );
  boardVersion = added.board.version;
  const samId = (added.board.members as { id: string; username: string }[]).find(
    (m) => m.username === sam.username,
  )!.id;

  const columns: Record<string, string> = {};
  for (const [name, wipLimit] of [
    ['Backlog', null],
    ['Doing', 3],
    ['Review', 2],
    ['Done', null],
  ] as const) {
    const r = await call(
      mutation(
        'addColumn',
        'AddColumnInput',
        '... on AddColumnSuccess { column { id } board { version } }',
      ),
      { input: { boardId, name, wipLimit, expectedVersion: boardVersion } },
      demo.token,
    );
    columns[name] = r.column.id;
    boardVersion = r.board.version;
  }

  const cards: [string, string, { done?: boolean; labels?: string[]; assignee?: boolean }][] = [
    ['Backlog', 'Write the launch blog post', { labels: ['marketing'] }],
    ['Backlog', 'Record a demo video', { labels: ['marketing'] }],
    ['Backlog', 'Price page copy', {}],
    ['Backlog', 'Localize onboarding emails', { labels: ['i18n'] }],
    ['Doing', 'Load test the API', { labels: ['engineering'], assignee: true }],
    ['Doing', 'Fix the signup race', { labels: ['engineering', 'bug'] }],
    ['Review', 'Changelog for 1.0', { assignee: true }],
    ['Done', 'Pick a launch date', { done: true }],
    ['Done', 'Reserve the domain', { done: true, labels: ['ops'] }],
  ];
  for (const [column, title, extra] of cards) {
    const r = await call(
      mutation('addCard', 'AddCardInput', '... on AddCardSuccess { card { id version } }'),
      { input: { columnId: columns[column], title, description: `${title}.` } },
      demo.token,
    );
    if (extra.done || extra.labels || extra.assignee) {
      await call(
        mutation('editCard', 'EditCardInput', '... on EditCardSuccess { card { id } }'),
        {
          input: {
            cardId: r.card.id,
            expectedVersion: r.card.version,
            ...(extra.done ? { done: true } : {}),
            ...(extra.labels ? { labels: extra.labels } : {}),
            ...(extra.assignee ? { assigneeId: samId } : {}),
          },
        },
        demo.token,
      );
    }
  }

  console.log(`Seeded "Product launch" (${cards.length} cards in 4 columns) at ${url}
Signed in as ${demo.username}. Paste this into GraphiQL's Headers tab:

  { "Authorization": "Bearer ${demo.token}" }
`);
});
