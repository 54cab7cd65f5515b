/**
 * What GraphiQL opens with: one tab per step of a first session with the API, so a
 * newcomer gets a token, writes with `expectedVersion`, sees a conflict and watches a
 * board live without leaving the page. Comment lines stay short enough to read in the
 * editor pane of a 1280 px wide window.
 */

/** One GraphiQL tab (GraphiQL's `TabDefinition`); its title is the operation's name. */
export interface GraphiQLTab {
  query: string;
  variables?: string;
}

const register = `# Step 1 of 6: get a token.
# Run this (the play button above), copy "token"
# from the result, then open "Headers" (bottom)
# and paste:
#   { "Authorization": "Bearer <token>" }
# Every other tab needs that header. A retry with
# the same idempotencyKey and the same input
# returns the same result; other input with the
# key is a ValidationError.
mutation RegisterUser($input: RegisterUserInput!) {
  registerUser(input: $input) {
    __typename
    ... on RegisterUserSuccess {
      token
      user { id username }
    }
    ... on Error { code message }
  }
}
`;

const myBoards = `# Step 2: what you can see. Empty at first;
# \`npm run seed\` fills a demo board and prints
# a header to paste instead.
query MyBoards {
  me { username displayName }
  boards {
    id
    version
    name
    members { username }
    columns {
      id
      version
      name
      wipLimit
      cardCount
      cards(first: 20) {
        edges {
          node {
            id version title done rank
            assignee { username }
            labels
          }
        }
        pageInfo { hasNextPage endCursor }
      }
    }
  }
}
`;

const createBoard = `# Step 3: create a board, then copy its "id"
# and "version" into the variables of step 4.
mutation CreateBoard {
  createBoard(input: { name: "Launch" }) {
    __typename
    ... on CreateBoardSuccess {
      board { id version name }
    }
    ... on Error { code message }
  }
}
`;

const rename = `# Step 4: every write names the version it saw.
# Set boardId and expectedVersion (from step 3)
# in Variables below and run: the board's
# version goes up by one.
mutation RenameBoard($boardId: ID!, $expectedVersion: Int!) {
  renameBoard(input: {
    boardId: $boardId
    name: "Launch v2"
    expectedVersion: $expectedVersion
  }) {
    __typename
    ... on RenameBoardSuccess { board { id version name } }
    ... on Error { code message }
  }
}
`;

const conflict = `# Step 5: a conflict. Run step 4 again with the
# SAME expectedVersion: the board has moved on,
# and this rename touches the field the last one
# set, so the answer is a VersionConflictError
# listing what changed since, and by whom.
# (Edits of different fields merge instead.)
mutation Conflict($boardId: ID!, $expectedVersion: Int!) {
  renameBoard(input: {
    boardId: $boardId
    name: "Someone else's name"
    expectedVersion: $expectedVersion
  }) {
    __typename
    ... on VersionConflictError {
      message
      expectedVersion
      actualVersion
      conflicts {
        version eventType fields at
        actor { username }
      }
    }
    ... on RenameBoardSuccess { board { version name } }
  }
}
`;

const live = `# Step 6: watch a board live (a websocket).
# Set boardId below and run; then write in
# another tab (steps 4 and 5) and see one
# message per change. Keep the last "cursor" and
# pass it as "after" to resume without a gap.
subscription BoardChanges($boardId: ID!, $after: Cursor) {
  boardChanges(boardId: $boardId, after: $after) {
    cursor
    operation
    at
    actor { username }
    resyncRequired
    invalidated { id fields version }
  }
}
`;

const boardVariables = JSON.stringify({ boardId: '<id from step 3>', expectedVersion: 1 }, null, 2);

/** The tabs, in the order a newcomer takes them. */
export const GRAPHIQL_TABS: readonly GraphiQLTab[] = [
  {
    query: register,
    variables: JSON.stringify(
      { input: { username: 'ada', displayName: 'Ada', idempotencyKey: 'register-ada-1' } },
      null,
      2,
    ),
  },
  { query: myBoards },
  { query: createBoard },
  { query: rename, variables: boardVariables },
  { query: conflict, variables: boardVariables },
  { query: live, variables: JSON.stringify({ boardId: '<id from step 3>' }, null, 2) },
];
