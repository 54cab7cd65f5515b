import type { RecordedEvent } from '../../eventstore/types.js';
import { aggregates } from '../aggregates.js';
import type { DomainEvent } from '../domainEvent.js';
import { VersionConflictError, type ConflictingChange } from '../errors.js';
import type { StreamKind } from '../streams.js';
import type { LoadedStream } from './loadSession.js';

/** Each of `events` as a change report: version, type, fields touched, actor, time. */
export function describeChanges(
  kind: StreamKind,
  events: readonly RecordedEvent[],
): ConflictingChange[] {
  const definition = aggregates[kind] as unknown as {
    parseEvent: (e: RecordedEvent) => DomainEvent;
    fieldsTouchedBy: (e: DomainEvent) => readonly string[];
  };
  return events.map((event) => ({
    version: event.version,
    eventType: event.type,
    fields: definition.fieldsTouchedBy(definition.parseEvent(event)),
    actor: event.actor,
    at: event.occurredAt,
  }));
}

/**
 * Checks the version a client based its write on against the stream as read.
 *
 * - Equal: go ahead (`merged: false`).
 * - Older, and no event since touched any of `fieldsSet`: go ahead on the current
 *   state (`merged: true`); the command appends at the version read.
 * - Older, and some event since touched one of `fieldsSet`, or newer than the
 *   stream: a `VersionConflictError` listing every change after `expectedVersion`.
 *
 * @param fieldsSet GraphQL fields of the resource the command sets, e.g. `['title']`.
 */
export async function checkExpectedVersion(
  loaded: LoadedStream,
  expectedVersion: number,
  fieldsSet: readonly string[],
): Promise<{ merged: boolean } | VersionConflictError> {
  if (expectedVersion === loaded.version) return { merged: false };
  const later = expectedVersion < loaded.version ? await loaded.eventsAfter(expectedVersion) : [];
  const conflicts = describeChanges(loaded.kind, later);
  const touched = conflicts.some((change) => change.fields.some((f) => fieldsSet.includes(f)));
  if (expectedVersion < loaded.version && !touched) return { merged: true };
  const resourceType = aggregates[loaded.kind].resourceType;
  if (resourceType === null) throw new Error(`no expected version applies to ${loaded.stream}`);
  return new VersionConflictError({
    resourceType,
    resourceId: loaded.id,
    stream: loaded.stream,
    expectedVersion,
    actualVersion: loaded.version,
    conflicts,
  });
}
