import type { StateCodec, StreamFold } from '../eventstore/StreamStateCache.js';
import type { RecordedEvent } from '../eventstore/types.js';
import type { Invalidation } from '../projector/types.js';
import {
  boardEventFields,
  boardEventSchemaVersions,
  parseBoardEvent,
  type BoardEvent,
} from './board/events.js';
import { evolveBoard, initialBoardState, type BoardState } from './board/state.js';
import {
  cardEventFields,
  cardEventSchemaVersions,
  parseCardEvent,
  type CardEvent,
} from './card/events.js';
import { evolveCard, initialCardState, type CardState } from './card/state.js';
import {
  columnEventFields,
  columnEventSchemaVersions,
  parseColumnEvent,
  type ColumnEvent,
} from './column/events.js';
import {
  columnStateCodec,
  evolveColumn,
  initialColumnState,
  type ColumnState,
} from './column/state.js';
import type { DomainEvent, SchemaVersions } from './domainEvent.js';
import {
  parseSessionEvent,
  sessionEventFields,
  sessionEventSchemaVersions,
  type SessionEvent,
} from './session/events.js';
import { evolveSession, initialSessionState, type SessionState } from './session/state.js';
import type { ResourceType } from './errors.js';
import {
  membershipEventFields,
  membershipEventSchemaVersions,
  parseMembershipEvent,
  type MembershipEvent,
} from './membership/events.js';
import {
  evolveMembership,
  initialMembershipState,
  type MembershipState,
} from './membership/state.js';
import { parseStreamName, type StreamKind } from './streams.js';
import {
  parseUserEvent,
  parseUsernameClaimEvent,
  userEventFields,
  userEventSchemaVersions,
  usernameClaimEventFields,
  usernameClaimEventSchemaVersions,
  type UserEvent,
  type UsernameClaimEvent,
} from './user/events.js';
import {
  evolveUser,
  evolveUsernameClaim,
  initialUserState,
  initialUsernameClaimState,
  type UserState,
  type UsernameClaimState,
} from './user/state.js';

/** Everything generic code needs to know about one kind of aggregate. */
export interface AggregateDefinition<S, E extends DomainEvent> {
  /** The GraphQL type of the resource, null for internal streams (username claims). */
  resourceType: ResourceType | null;
  initialState: S;
  evolve: (state: S, event: E) => S;
  /** A stored event as one of this aggregate's events; throws on an unknown type. */
  parseEvent: (event: { type: string; data: Record<string, unknown> }) => E;
  /** Fields of the resource's GraphQL type that the event touches. */
  fieldsTouchedBy: (event: E) => readonly string[];
  schemaVersions: SchemaVersions<E>;
  /**
   * How the state is snapshotted for cold loads; only aggregates whose streams grow
   * long (columns) have one. @default none: always folded from the first event
   */
  snapshot?: StateCodec<S>;
}

/** State type of each stream kind. */
export interface AggregateStates {
  user: UserState;
  username: UsernameClaimState;
  board: BoardState;
  column: ColumnState;
  card: CardState;
  session: SessionState;
  membership: MembershipState;
}

/** Event type of each stream kind. */
export interface AggregateEvents {
  user: UserEvent;
  username: UsernameClaimEvent;
  board: BoardEvent;
  column: ColumnEvent;
  card: CardEvent;
  session: SessionEvent;
  membership: MembershipEvent;
}

/** The board domain's aggregates by stream kind. */
export const aggregates: {
  readonly [K in StreamKind]: AggregateDefinition<AggregateStates[K], AggregateEvents[K]>;
} = {
  user: {
    resourceType: 'User',
    initialState: initialUserState,
    evolve: evolveUser,
    parseEvent: parseUserEvent,
    fieldsTouchedBy: userEventFields,
    schemaVersions: userEventSchemaVersions,
  },
  username: {
    resourceType: null,
    initialState: initialUsernameClaimState,
    evolve: evolveUsernameClaim,
    parseEvent: parseUsernameClaimEvent,
    fieldsTouchedBy: usernameClaimEventFields,
    schemaVersions: usernameClaimEventSchemaVersions,
  },
  board: {
    resourceType: 'Board',
    initialState: initialBoardState,
    evolve: evolveBoard,
    parseEvent: parseBoardEvent,
    fieldsTouchedBy: boardEventFields,
    schemaVersions: boardEventSchemaVersions,
  },
  column: {
    resourceType: 'Column',
    initialState: initialColumnState,
    evolve: evolveColumn,
    parseEvent: parseColumnEvent,
    fieldsTouchedBy: columnEventFields,
    schemaVersions: columnEventSchemaVersions,
    snapshot: columnStateCodec,
  },
  card: {
    resourceType: 'Card',
    initialState: initialCardState,
    evolve: evolveCard,
    parseEvent: parseCardEvent,
    fieldsTouchedBy: cardEventFields,
    schemaVersions: cardEventSchemaVersions,
  },
  session: {
    resourceType: 'Session',
    initialState: initialSessionState,
    evolve: evolveSession,
    parseEvent: parseSessionEvent,
    fieldsTouchedBy: sessionEventFields,
    schemaVersions: sessionEventSchemaVersions,
  },
  membership: {
    resourceType: null,
    initialState: initialMembershipState,
    evolve: evolveMembership,
    parseEvent: parseMembershipEvent,
    fieldsTouchedBy: membershipEventFields,
    schemaVersions: membershipEventSchemaVersions,
  },
};

/** The state of one aggregate after `events` (in version order), from its initial state. */
export function foldEvents<K extends StreamKind>(
  kind: K,
  events: readonly { type: string; data: Record<string, unknown> }[],
): AggregateStates[K] {
  const definition = aggregates[kind] as unknown as AggregateDefinition<
    AggregateStates[K],
    AggregateEvents[K]
  >;
  return events.reduce(
    (state, event) => definition.evolve(state, definition.parseEvent(event)),
    definition.initialState,
  );
}

const folds = new Map<StreamKind, StreamFold<unknown>>();

/**
 * How a stream of `kind` folds, for {@link StreamStateCache}: one object per kind, so
 * the cache can tell states of different kinds apart.
 */
export function streamFold<K extends StreamKind>(kind: K): StreamFold<AggregateStates[K]> {
  let fold = folds.get(kind);
  if (!fold) {
    const definition = aggregates[kind] as unknown as AggregateDefinition<unknown, DomainEvent>;
    fold = {
      initial: definition.initialState,
      evolve: (state, event) => definition.evolve(state, definition.parseEvent(event)),
      ...(definition.snapshot && { snapshot: definition.snapshot }),
    };
    folds.set(kind, fold);
  }
  return fold as StreamFold<AggregateStates[K]>;
}

/** Which resource a stored event belongs to and which of its GraphQL fields it touched. */
export interface TouchedResource {
  resourceType: ResourceType;
  /** The resource's raw id. */
  id: string;
  /** GraphQL fields of the resource the event touched, e.g. `['cards', 'cardCount']`. */
  fields: readonly string[];
  /** The resource's version after this event. */
  version: number;
}

/**
 * What a stored event invalidates: its resource and the fields it touched. Null
 * for streams that are not a board-domain resource (username claims, foreign
 * streams). Meant for the projector's change log and for conflict reports.
 */
export function describeTouchedResource(event: RecordedEvent): TouchedResource | null {
  const parsed = parseStreamName(event.stream);
  if (!parsed) return null;
  const definition = aggregates[parsed.kind] as unknown as AggregateDefinition<
    unknown,
    DomainEvent
  >;
  if (definition.resourceType === null) return null;
  return {
    resourceType: definition.resourceType,
    id: parsed.id,
    fields: definition.fieldsTouchedBy(definition.parseEvent(event)),
    version: event.version,
  };
}

/**
 * The change log's invalidation for an event of a resource stream (user, board,
 * column, card). Throws for any other stream: a projection handling one is a bug.
 */
export function invalidationOf(event: RecordedEvent): Invalidation {
  const touched = describeTouchedResource(event);
  if (!touched) throw new Error(`${event.type} on ${event.stream} names no resource`);
  return {
    typename: touched.resourceType,
    id: touched.id,
    fields: [...touched.fields],
    version: touched.version,
  };
}
