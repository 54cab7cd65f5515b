import { readFileSync } from 'node:fs';
import { GraphQLObjectType, buildSchema } from 'graphql';
import { describe, expect, it } from 'vitest';
import { MAX_BOARD_MEMBERS } from '../../src/boards/board/decide.js';
import { cardChangeFields, cardFields } from '../../src/boards/card/events.js';
import { ARCHIVE_DONE_CARDS_PER_COMMIT } from '../../src/boards/column/decide.js';
import { CARD_PAGE } from '../../src/boards/column/graphql.js';
import { commandSpecs, defaultRetry } from '../../src/boards/commands.js';
import { RANK_REBALANCE_EVENT_BYTES } from '../../src/boards/ranks.js';
import { inputLimits } from '../../src/boards/validation.js';
import { loadConfig } from '../../src/config.js';
import { DEFAULT_MAX_CACHED_EVENTS } from '../../src/eventstore/StreamStateCache.js';
import { MAX_SNAPSHOT_STATE_BYTES } from '../../src/eventstore/snapshots/SnapshotStore.js';
import { appendLimits } from '../../src/eventstore/validation.js';
import { QUERY_LIMITS } from '../../src/graphql/queryLimits.js';
import { MAX_ERROR_MESSAGE_LENGTH } from '../../src/graphql/yoga.js';
import { DEFAULT_LIVE_LIMITS } from '../../src/live/limits.js';
import { MAX_LOGGED_STRING } from '../../src/logger.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** The README's invalidation table: mutation (first word of its cell) -> what it invalidates. */
function invalidationTable(): Map<string, string[]> {
  const start = readme.search(/^\| mutation +\| `invalidated` /m);
  const rows = readme.slice(start).split('\n\n')[0]!.split('\n').slice(2);
  const table = new Map<string, string[]>();
  for (const row of rows) {
    const [, mutation, invalidated] = row.split('|').map((cell) => cell.trim());
    const name = /`(\w+)`/.exec(mutation ?? '')?.[1];
    if (name) table.set(name, [...(table.get(name) ?? []), invalidated ?? '']);
  }
  return table;
}

describe("README's invalidation table", () => {
  const table = invalidationTable();

  it('has a row for every mutation that changes a board, and none for a mutation that does not exist', () => {
    const identity = ['registerUser', 'setPassword', 'signIn', 'revokeSession'];
    const boardMutations = Object.keys(commandSpecs).filter((name) => !identity.includes(name));
    expect([...table.keys()].sort()).toEqual(boardMutations.sort());
  });

  it('names the card fields CardCreated and CardEdited touch, as the code lists them', () => {
    expect(table.get('addCard')?.[0]).toContain(`Card \`${cardFields.join(', ')}\``);
    const editable = Object.values(cardChangeFields).map(({ field }) => `\`${field}\``);
    expect(table.get('editCard')?.[0]).toContain(`(${editable.join(', ')})`);
  });

  it('names only fields the invalidated type has in the schema', () => {
    const schema = buildSchema(readFileSync('schema/schema.graphql', 'utf8'));
    let checked = 0;
    for (const [mutation, cells] of table) {
      for (const part of cells.flatMap((cell) => cell.split(';'))) {
        const type = /\b(Board|Column|Card)s?\b/.exec(part)?.[1];
        const object = type && schema.getType(type);
        expect(object, `${mutation}: ${part}`).toBeInstanceOf(GraphQLObjectType);
        const fields = Object.keys((object as GraphQLObjectType).getFields());
        for (const [, list] of part.matchAll(/`([^`]+)`/g)) {
          for (const field of list!.split(',').map((f) => f.trim())) {
            expect(fields, `${mutation}: ${type}.${field}`).toContain(field);
            checked += 1;
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(40);
  });
});

/** The rows of the README table whose header row starts with `| <firstHeader> `, as cells. */
function tableRows(firstHeader: string, after = 0): string[][] {
  const start = readme.indexOf(`| ${firstHeader} `, after);
  expect(start, `a README table headed "${firstHeader}"`).toBeGreaterThan(-1);
  const lines = readme.slice(start).split('\n\n')[0]!.split('\n').slice(2);
  return lines.map((line) =>
    line
      .split('|')
      .slice(1, -1)
      .map((cell) => cell.trim()),
  );
}

const KiB = 1024;
const MiB = 1024 * KiB;
/** `1,000` for 1000, as the README writes counts. */
const count = (n: number) => n.toLocaleString('en-US');
/** `64 KiB`, `1 MiB`. */
const size = (bytes: number) =>
  bytes % MiB === 0
    ? `${bytes / MiB} MiB`
    : bytes % KiB === 0
      ? `${bytes / KiB} KiB`
      : count(bytes);
/** `24 h`, `30 s`. */
const duration = (ms: number) =>
  ms % 3_600_000 === 0 ? `${ms / 3_600_000} h` : ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;

describe("README's limits tables", () => {
  const config = loadConfig({});
  const production = loadConfig({
    NODE_ENV: 'production',
    STORE: 'memory',
    TOKEN_SECRET: 'x'.repeat(64),
    ADMIN_TOKEN: 'y'.repeat(64),
  });
  const { http, clientLimits } = config;
  const L = inputLimits;
  /**
   * Each row of "Limits and security": what its default cell says, from the code's own
   * constants and the configuration's defaults, and what its "set by" cell names. A row
   * with no number to check says so with an empty list; a new row needs an entry here.
   */
  const rows: Record<string, { default: string[]; setBy: string }> = {
    'request body': { default: [size(http.maxBodyBytes)], setBy: 'MAX_BODY_BYTES' },
    'JSON nesting of an operation': {
      default: [`${http.maxJsonDepth} levels`],
      setBy: 'MAX_JSON_DEPTH',
    },
    'whole request received': {
      default: [duration(http.requestTimeoutMs)],
      setBy: 'REQUEST_TIMEOUT_MS',
    },
    'request headers received': {
      default: [duration(http.headersTimeoutMs)],
      setBy: 'HEADERS_TIMEOUT_MS',
    },
    'idle kept-alive socket': {
      default: [duration(http.keepAliveTimeoutMs)],
      setBy: 'KEEP_ALIVE_TIMEOUT_MS',
    },
    'drain on SIGTERM / SIGINT': {
      default: [duration(http.drainTimeoutMs)],
      setBy: 'DRAIN_TIMEOUT_MS',
    },
    'idempotency key lifetime': {
      default: [duration(config.idempotencyTtlMs)],
      setBy: 'IDEMPOTENCY_TTL_MS',
    },
    'query depth / aliases / tokens / cost': {
      default: [
        [
          QUERY_LIMITS.maxDepth,
          QUERY_LIMITS.maxAliases,
          count(QUERY_LIMITS.maxTokens),
          count(QUERY_LIMITS.maxCost),
        ].join(' / '),
      ],
      setBy: 'QUERY_LIMITS',
    },
    'documents a client may run': {
      default: [`(\`${config.trustedDocuments}\`)`],
      setBy: 'TRUSTED_DOCUMENTS',
    },
    '`Column.cards` page': {
      default: [`${CARD_PAGE.default}, at most ${CARD_PAGE.max}`],
      setBy: 'CARD_PAGE',
    },
    'text fields (code points)': {
      default: [
        `username ${L.usernameMin}–${L.usernameMax}, display name ${L.displayNameMax}, ` +
          `board ${L.boardNameMax}, column ${L.columnNameMax}, card title ${L.cardTitleMax}, ` +
          `label ${L.labelMax} (${L.labelsMax} per card), description ${count(L.descriptionMax)}`,
      ],
      setBy: 'inputLimits',
    },
    'idempotency key length': {
      default: [`${L.idempotencyKeyMax} characters`],
      setBy: 'inputLimits',
    },
    'error message length': {
      default: [`${MAX_ERROR_MESSAGE_LENGTH} characters`],
      setBy: 'MAX_ERROR_MESSAGE_LENGTH',
    },
    'one append (events, bytes)': {
      default: [
        `${count(appendLimits.maxEventsPerCommit)} events, ${size(appendLimits.maxEventBytes)} an event, ${size(appendLimits.maxCommitBytes)} a commit`,
      ],
      setBy: 'appendLimits',
    },
    'members of one board': {
      default: [`${count(MAX_BOARD_MEMBERS)} (the events a commit holds, less the board's own)`],
      setBy: 'MAX_BOARD_MEMBERS',
    },
    'cards archived in one commit': {
      default: [count(ARCHIVE_DONE_CARDS_PER_COMMIT)],
      setBy: 'ARCHIVE_DONE_CARDS_PER_COMMIT',
    },
    'one `CardsRebalanced` event': {
      default: [size(RANK_REBALANCE_EVENT_BYTES)],
      setBy: 'RANK_REBALANCE_EVENT_BYTES',
    },
    'command attempts on a moved stream': {
      default: [String(defaultRetry.maxAttempts)],
      setBy: 'defaultRetry',
    },
    "commands' state cache": {
      default: [`${count(DEFAULT_MAX_CACHED_EVENTS)} folded events`],
      setBy: 'StreamStateCache',
    },
    'one snapshot': {
      default: [`${size(MAX_SNAPSHOT_STATE_BYTES)} of state`],
      setBy: 'MAX_SNAPSHOT_STATE_BYTES',
    },
    'websocket limits': { default: [], setBy: 'DEFAULT_LIVE_LIMITS' },
    'read-your-writes wait': {
      default: [duration(config.readYourWritesTimeoutMs)],
      setBy: 'READ_YOUR_WRITES_TIMEOUT_MS',
    },
    'registrations per client address': {
      default: [`${clientLimits.registrationsPerMinute} a minute`],
      setBy: 'REGISTRATIONS_PER_MINUTE',
    },
    'mutation fields per client': {
      default: [`${clientLimits.mutationsPerMinute} a minute`],
      setBy: 'MUTATIONS_PER_MINUTE',
    },
    'subscriptions started per client': {
      default: [`${clientLimits.subscribesPerMinute} a minute`],
      setBy: 'SUBSCRIBES_PER_MINUTE',
    },
    'commands waiting on one stream': {
      default: [`${clientLimits.maxQueuedCommandsPerStream} behind the running one`],
      setBy: 'MAX_QUEUED_COMMANDS_PER_STREAM',
    },
    '`/metrics` access and labels': { default: [], setBy: 'ADMIN_TOKEN' },
    'one log record': {
      default: [`${count(MAX_LOGGED_STRING)} characters`],
      setBy: 'MAX_LOGGED_STRING',
    },
    'shutdown delay (SIGTERM / SIGINT)': {
      default: [
        `${duration(production.http.shutdownDelayMs)} in production, ${config.http.shutdownDelayMs} otherwise`,
      ],
      setBy: 'SHUTDOWN_DELAY_MS',
    },
    'unsent bytes per live connection': {
      default: [size(DEFAULT_LIVE_LIMITS.maxBufferedBytes)],
      setBy: 'maxBufferedBytes',
    },
    'replays running at once': {
      default: [
        `${DEFAULT_LIVE_LIMITS.maxConcurrentReplays} per server, ${DEFAULT_LIVE_LIMITS.maxReplaysPerConnection} per connection`,
      ],
      setBy: 'maxConcurrentReplays',
    },
  };

  it('states every default of "Limits and security" as the code has it', () => {
    const table = tableRows('limit                                 | default');
    expect(table.map(([limit]) => limit).sort()).toEqual(Object.keys(rows).sort());
    for (const [limit, defaults, setBy] of table) {
      const row = rows[limit!]!;
      for (const text of row.default) expect(defaults, limit).toContain(text);
      expect(setBy, limit).toContain(`\`${row.setBy}\``);
    }
  });

  it('lists every live limit with its default, and no other', () => {
    const table = tableRows('limit                           | default');
    const stated = Object.fromEntries(
      table.map(([name, value]) => [/`(\w+)`/.exec(name!)![1], value]),
    );
    const expected = Object.fromEntries(
      Object.entries(DEFAULT_LIVE_LIMITS).map(([name, value]) => [
        name,
        name.endsWith('Bytes') ? size(value) : count(value).replaceAll(',', ' '),
      ]),
    );
    expect(stated).toEqual(expected);
  });

  it("states the event store's size limits as appendLimits has them", () => {
    const table = new Map(tableRows('limit                     | value').map(([k, v]) => [k, v]));
    const A = appendLimits;
    expect(Object.fromEntries(table)).toEqual({
      "one event's `data` (JSON)": size(A.maxEventBytes),
      'events in one commit': count(A.maxEventsPerCommit),
      'one commit (JSON)': size(A.maxCommitBytes),
      'stream name / event type': `${A.maxStreamNameLength} / ${A.maxEventTypeLength} characters`,
      'idempotency key': `${A.maxIdempotencyKeyLength} characters`,
    });
  });
});
