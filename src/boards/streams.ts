/**
 * Names of the board domain's event streams: `<kind>-<id>`. The only place that
 * knows the format; everything else calls these functions.
 */

/** Kinds of streams the board domain writes. */
export const StreamKind = {
  User: 'user',
  /** One per normalized username; its first event claims the name for a user. */
  Username: 'username',
  Board: 'board',
  Column: 'column',
  Card: 'card',
  /** A session of the built-in issuer: one bearer token. */
  Session: 'session',
  /** One user's access to one board (id `<boardId>~<userId>`): what commands assert. */
  Membership: 'membership',
} as const;
export type StreamKind = (typeof StreamKind)[keyof typeof StreamKind];

/** Longest id accepted from a caller; longer ones cannot exist. @default 128 */
export const MAX_ID_LENGTH = 128;

/**
 * Whether `id` could name a resource: 1 to {@link MAX_ID_LENGTH} characters, no white
 * space or control characters. Ids failing this are reported as not found, never
 * looked up (they could not form a valid stream name).
 */
export function isWellFormedId(id: string): boolean {
  // eslint-disable-next-line no-control-regex
  return id.length > 0 && id.length <= MAX_ID_LENGTH && !/[\s\u0000-\u001f\u007f]/.test(id);
}

/**
 * The form under which usernames are compared for uniqueness: Unicode NFKC, then
 * lowercase. `Alice`, `ALICE` and the full-width `ａｌｉｃｅ` are one name.
 */
export function normalizeUsername(username: string): string {
  return username.normalize('NFKC').toLowerCase();
}

export const userStream = (userId: string): string => `${StreamKind.User}-${userId}`;
/** The claim stream of a username; normalizes it first. */
export const usernameStream = (username: string): string =>
  `${StreamKind.Username}-${normalizeUsername(username)}`;
export const columnStream = (columnId: string): string => `${StreamKind.Column}-${columnId}`;
export const cardStream = (cardId: string): string => `${StreamKind.Card}-${cardId}`;

/**
 * Where a board's archive placement is recorded (`archive-<boardId>`): not an aggregate
 * (no kind of {@link StreamKind}, so `parseStreamName` answers null), written by the archive
 * sweeper only, and never moved to the archive itself.
 */
export const archiveRecordStream = (boardId: string): string => `archive-${boardId}`;

/** The stream of an aggregate given its kind and id (the normalized name for `username`). */
export function toStreamName(kind: StreamKind, id: string): string {
  return `${kind}-${id}`;
}

/** A stream name taken apart. */
export interface ParsedStreamName {
  kind: StreamKind;
  /** The aggregate's id; for `username` streams, the normalized username. */
  id: string;
}

// Longest prefix first: `username-` must win over `user-`. Each with its prefix, made once:
// every projected event's stream is taken apart (its invalidation names the resource).
const prefixesByLength: readonly { kind: StreamKind; prefix: string }[] = Object.values(StreamKind)
  .sort((a, b) => b.length - a.length)
  .map((kind) => ({ kind, prefix: `${kind}-` }));

/** The kind and id of a board-domain stream, or null for any other stream name. */
export function parseStreamName(stream: string): ParsedStreamName | null {
  for (const { kind, prefix } of prefixesByLength) {
    if (stream.startsWith(prefix) && stream.length > prefix.length) {
      return { kind, id: stream.slice(prefix.length) };
    }
  }
  return null;
}

/** The aggregate id of a board-domain stream, as a list of one (none for any other stream). */
export function idOfStream(stream: string): string[] {
  const parsed = parseStreamName(stream);
  return parsed ? [parsed.id] : [];
}
