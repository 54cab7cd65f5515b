import { defineReadModel, docType } from '../../projector/readModel.js';
import type { ReadDoc } from '../../projector/types.js';
import { invalidationOf } from '../aggregates.js';
import { parseStreamName } from '../streams.js';
import { unreachable } from '../unreachable.js';
import { parseSessionEvent, sessionEventSchemaVersions, type SessionMethod } from './events.js';

/** A session of the built-in issuer; found by token hash for authentication. */
export interface SessionDoc extends ReadDoc {
  userId: string;
  tokenHash: string;
  method: SessionMethod;
  startedAt: Date;
  /** Its expiry is this plus `SESSION_TTL` (sliding). */
  lastActiveAt: Date;
  /** When it was signed out or revoked; null while it lasts. */
  endedAt: Date | null;
  version: number;
}

const sessionIdOf = (stream: string): string => parseStreamName(stream)!.id;

/**
 * Sessions, for authentication (by token hash) and `mySessions`. Every session event
 * invalidates its `Session` (scope: none), so each instance's change log follower sees
 * a session end within one commit and closes the connections opened with it. Its times are
 * the commits', which the session's state does not keep: the document is built here.
 */
export const sessionReadModel = defineReadModel({
  name: 'sessions',
  collection: 'sessions',
  doc: docType<SessionDoc>(),
  indexes: [{ key: { tokenHash: 1 } }, { key: { userId: 1, endedAt: 1, startedAt: -1, _id: 1 } }],
  queries: {
    byTokenHash: { filter: (tokenHash: string) => ({ tokenHash }), limit: 1 },
    /** `userId`'s sessions that have not ended (some may have expired), newest first. */
    openOf: { filter: (userId: string) => ({ userId, endedAt: null }), sort: ['startedAt', -1] },
  },
  projection: {
    handles: Object.keys(sessionEventSchemaVersions),
    async apply({ commit, update, invalidate }) {
      const { collection } = sessionReadModel;
      for (const stored of commit.events) {
        if (!Object.hasOwn(sessionEventSchemaVersions, stored.type)) continue;
        const event = parseSessionEvent(stored);
        const at = commit.occurredAt;
        const sessionId = sessionIdOf(stored.stream);
        /** Sets `fields` of the session's document, at this event's version. */
        const set = (fields: Partial<SessionDoc>) =>
          update<SessionDoc>(collection, sessionId, stored, (doc) => ({
            ...doc!,
            ...fields,
            version: stored.version,
          }));
        switch (event.type) {
          case 'SessionStarted': {
            const { userId, tokenHash, method } = event.data;
            await update<SessionDoc>(collection, sessionId, stored, () => ({
              _id: sessionId,
              userId,
              tokenHash,
              method,
              startedAt: at,
              lastActiveAt: at,
              endedAt: null,
              version: stored.version,
            }));
            break;
          }
          case 'SessionRefreshed':
            await set({ lastActiveAt: at });
            break;
          case 'SessionEnded':
            await set({ endedAt: at });
            break;
          default:
            unreachable(event);
        }
        invalidate(null, invalidationOf(stored));
      }
    },
  },
});
