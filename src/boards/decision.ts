import type { BoardEvent } from './board/events.js';
import type { CardEvent } from './card/events.js';
import type { ColumnEvent } from './column/events.js';
import type { MembershipEvent } from './membership/events.js';
import type { SessionEvent } from './session/events.js';
import type { UserEvent, UsernameClaimEvent } from './user/events.js';

/** What a decider may use besides the command and the states: time and fresh ids. */
export interface DecideContext {
  /** The moment the command is decided. No current rule depends on it. */
  readonly now: Date;
  /** A new, unique id for a resource the command creates. */
  readonly newId: () => string;
}

/**
 * New events for one aggregate instance. `id` is the aggregate's id; for
 * `username` it is the normalized username.
 */
export type StreamChange = (
  | { aggregate: 'user'; id: string; events: readonly UserEvent[] }
  | { aggregate: 'username'; id: string; events: readonly UsernameClaimEvent[] }
  | { aggregate: 'board'; id: string; events: readonly BoardEvent[] }
  | { aggregate: 'column'; id: string; events: readonly ColumnEvent[] }
  | { aggregate: 'card'; id: string; events: readonly CardEvent[] }
  | { aggregate: 'session'; id: string; events: readonly SessionEvent[] }
  | { aggregate: 'membership'; id: string; events: readonly MembershipEvent[] }
) & {
  /**
   * Appended after whatever the stream's head is when the commit lands, for a stream the
   * command did not read because its decision does not rest on it (another stream of the
   * commit, asserted at the version read, stands for it). @default false: at the version
   * read, or as a new stream when not read
   */
  atAnyVersion?: boolean;
};

/**
 * What a decider returns: the events of every stream the command writes, to be
 * committed together or not at all. The order is part of each decider's contract
 * (e.g. a card move lists the card, then the column it leaves, then the column it
 * enters) and is kept in the commit. Empty when there is nothing to do.
 *
 * A decision too big for one commit (see `archiveDoneCardsCommits`) names a stream
 * again where its next commit starts: {@link splitIntoCommits}.
 */
export type Decision = readonly StreamChange[];

/**
 * `decision` as consecutive commits: a change to a stream that the current commit
 * already names starts the next one. Each commit is appended on its own, atomically,
 * in order; a decision naming every stream once is one commit.
 */
export function splitIntoCommits(decision: Decision): Decision[] {
  const commits: StreamChange[][] = [];
  let current: StreamChange[] = [];
  let named = new Set<string>();
  for (const change of decision) {
    const stream = `${change.aggregate}-${change.id}`;
    if (named.has(stream)) {
      commits.push(current);
      current = [];
      named = new Set();
    }
    named.add(stream);
    current.push(change);
  }
  if (current.length > 0) commits.push(current);
  return commits;
}
