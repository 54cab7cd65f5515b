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

const register = `# Step 1 of 6: sign in. Pick your own
# username and run this (the play button):
# the token it returns signs in every tab of
# this page, kept in this browser. Nothing to
# paste. (signIn, once you set a password with
# setPassword, does the same.)
# A tab's own "Headers" (bottom left), e.g.
#   { "Authorization": "Bearer <token>" }
# win for that tab; once one works, the other
# tabs use it too.
# A retry with the same idempotencyKey and the
# same input returns the same result; other
# input with the key is a ValidationError.
mutation RegisterUser {
  registerUser(input: {
    username: "ada"
    displayName: "Ada"
    idempotencyKey: "register-ada-1"
  }) {
    __typename
    ... on RegisterUserSuccess {
      token
      replayed
      user { id username }
    }
    ... on Error { code message }
  }
}
`;

const myBoards = `# Step 2: what you can see, as "me".
# Empty at first; \`npm run seed\` fills a demo
# board and prints a header: paste it into
# this tab's Headers and run, and every tab
# is signed in as the seeded user.
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
# GraphiQL runs one operation at a time, and
# switching tabs stops it: open this page in a
# SECOND browser window (signed in already),
# pick this tab, paste the board's id and run.
# Then write from the first window (step 4,
# with its version): one message per change.
# Pass the last "cursor" as after: "<cursor>"
# to resume without a gap.
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

const history = `# History: who changed what, newest first,
# from the first event on. Paste the id of a
# card, a column or a board you are a member
# of. Each change's from/to is JSON text. For
# older entries, run again with
# after: "<endCursor>" (pages hold at most 500).
query History {
  node(id: "<a card, column or board id>") {
    ... on Card { history(first: 10) { ...Entries } }
    ... on Column { history(first: 10) { ...Entries } }
    ... on Board { history(first: 10) { ...Entries } }
  }
}

fragment Entries on HistoryConnection {
  edges {
    node {
      at operation version
      actor { username }
      changes { field from to }
    }
  }
  pageInfo { hasNextPage endCursor }
}
`;

const roles = `# Roles: OWNER, EDITOR or VIEWER. Add a
# member first (addMember with a registered
# username; role optional, EDITOR by default),
# then run this with their id (MyBoards:
# memberships { user { id } }) and the board's
# current version. A VIEWER reads and
# subscribes; their writes answer
# ForbiddenError. Only owners change roles,
# and the last owner stays (LastOwnerError).
mutation SetMemberRole {
  setMemberRole(input: {
    boardId: "<board id from step 3>"
    userId: "<a member's user id>"
    role: VIEWER
    expectedVersion: 3
  }) {
    __typename
    ... on SetMemberRoleSuccess {
      board {
        id version viewerRole
        memberships { role since user { username } }
      }
    }
    ... on Error { code message }
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
  roles,
  history,
].map((query) => ({ query }));
