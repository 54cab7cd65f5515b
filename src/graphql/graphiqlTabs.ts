/**
 * What GraphiQL opens with: one tab per step of a first session with the API, so a
 * newcomer gets a token, writes with `expectedVersion`, sees a conflict and watches a
 * board live without leaving the page. Comment lines stay short enough to read in the
 * editor pane of a 1280 px wide window.
 */

/**
 * One GraphiQL tab (GraphiQL's `TabDefinition`); its title is the operation's name.
 * Arguments are written inline: a tab's `variables` do not reach the editor.
 */
export interface GraphiQLTab {
  query: string;
}

const register = `# Step 1 of 6: get a token.
# Pick your own username, run this (the play
# button), copy "token" from the result, then
# open "Headers" (bottom left) and paste:
#   { "Authorization": "Bearer <token>" }
# Every other tab needs that header. A retry with
# the same idempotencyKey and the same input
# returns the same result; other input with the
# key is a ValidationError.
mutation RegisterUser {
  registerUser(input: {
    username: "ada"
    displayName: "Ada"
    idempotencyKey: "register-ada-1"
  }) {
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
# into steps 4, 5 and 6.
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
# Paste the board's id (step 3) and run: the
# board was at version 1, and is now at 2.
mutation RenameBoard {
  renameBoard(input: {
    boardId: "<board id from step 3>"
    name: "Launch v2"
    expectedVersion: 1
  }) {
    __typename
    ... on RenameBoardSuccess { board { id version name } }
    ... on Error { code message }
  }
}
`;

const conflict = `# Step 5: a conflict. The same write again, still
# based on version 1: the board has moved on,
# and this rename touches the field step 4 set,
# so the answer is a VersionConflictError
# listing what changed since, and by whom.
# (Edits of different fields merge instead.)
mutation Conflict {
  renameBoard(input: {
    boardId: "<board id from step 3>"
    name: "Someone else's name"
    expectedVersion: 1
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
# GraphiQL runs one operation at a time: open it
# in a SECOND browser window, paste your token in
# its Headers, paste the board's id here and run.
# Then write from the first window (step 4, with
# its version) and see one message per change.
# Pass the last "cursor" as after: "<cursor>" to
# resume without a gap.
subscription BoardChanges {
  boardChanges(boardId: "<board id from step 3>") {
    cursor
    operation
    at
    actor { username }
    resyncRequired
    invalidated { id fields version }
  }
}
`;

/** The tabs, in the order a newcomer takes them. */
export const GRAPHIQL_TABS: readonly GraphiQLTab[] = [
  register,
  myBoards,
  createBoard,
  rename,
  conflict,
  live,
].map((query) => ({ query }));
