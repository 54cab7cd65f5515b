import type { NewEvent } from '../eventstore/types.js';

/** The shape every board-domain event has: a type tag and JSON-serialisable data. */
export interface DomainEvent {
  readonly type: string;
  readonly data: Readonly<Record<string, unknown>>;
}

/** Current `schemaVersion` of each event type of one aggregate. */
export type SchemaVersions<E extends DomainEvent> = Readonly<Record<E['type'], number>>;

/** What the domain reads of a stored event: its type and its (upcast) data. */
export interface StoredData {
  type: string;
  data: Record<string, unknown>;
}

/**
 * The parser of one aggregate's stored events: each as one of its event types (see
 * {@link castEvent}); throws on an unknown type.
 *
 * @param lift Brings an event stored in an older shape the store does not upcast to
 *   the current one (e.g. a field added later, with the value it had then); default:
 *   none.
 */
export function eventParser<E extends DomainEvent>(
  schemaVersions: SchemaVersions<E>,
  lift: (event: StoredData) => StoredData = (event) => event,
): (event: StoredData) => E {
  return (event) => castEvent(schemaVersions, lift(event));
}

/**
 * A stored event as one of the aggregate's event types. The store has already
 * upcast it to the current shape; an unknown type means the stream holds events of
 * some other aggregate, which is a bug, so it throws.
 */
export function castEvent<E extends DomainEvent>(
  schemaVersions: SchemaVersions<E>,
  event: StoredData,
): E {
  if (!Object.hasOwn(schemaVersions, event.type)) {
    throw new Error(`unknown event type ${event.type}`);
  }
  return { type: event.type, data: event.data } as unknown as E;
}

/** The event as the store takes it, stamped with its type's current schema version. */
export function toNewEvent<E extends DomainEvent>(
  schemaVersions: SchemaVersions<E>,
  event: E,
): NewEvent {
  const type: E['type'] = event.type;
  return { type: event.type, data: event.data, schemaVersion: schemaVersions[type] };
}
