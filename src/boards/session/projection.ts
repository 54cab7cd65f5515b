import type { Projection } from '../../projector/types.js';
import { invalidationOf } from '../aggregates.js';
import { ReadCollection, type SessionDoc } from '../readModel.js';
import { unreachable } from '../unreachable.js';
import { parseStreamName } from '../streams.js';
import { parseSessionEvent, sessionEventSchemaVersions } from './events.js';

const sessionIdOf = (stream: string): string => parseStreamName(stream)!.id;

/**
 * Sessions, for authentication (by token hash) and `mySessions`. Every session event
 * invalidates its `Session` (scope: none), so each instance's change log follower sees
 * a session end within one commit and closes the connections opened with it.
 */
export const sessionProjection: Projection = {
  name: 'sessions',
  handles: Object.keys(sessionEventSchemaVersions),
  async apply({ commit, update, invalidate }) {
    for (const stored of commit.events) {
      if (!Object.hasOwn(sessionEventSchemaVersions, stored.type)) continue;
      const event = parseSessionEvent(stored);
      const at = commit.occurredAt;
      switch (event.type) {
        case 'SessionStarted': {
          const { sessionId, userId, tokenHash, method } = event.data;
          await update<SessionDoc>(ReadCollection.Sessions, sessionId, stored, () => ({
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
          await update<SessionDoc>(
            ReadCollection.Sessions,
            sessionIdOf(stored.stream),
            stored,
            (doc) => ({
              ...doc!,
              lastActiveAt: at,
              version: stored.version,
            }),
          );
          break;
        case 'SessionEnded':
          await update<SessionDoc>(
            ReadCollection.Sessions,
            sessionIdOf(stored.stream),
            stored,
            (doc) => ({
              ...doc!,
              endedAt: at,
              version: stored.version,
            }),
          );
          break;
        default:
          unreachable(event);
      }
      invalidate(null, invalidationOf(stored));
    }
  },
};
