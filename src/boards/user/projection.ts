import type { Projection } from '../../projector/types.js';
import { invalidationOf } from '../aggregates.js';
import { unreachable } from '../unreachable.js';
import { ReadCollection, type UserDoc } from '../readModel.js';
import { normalizeUsername, parseStreamName } from '../streams.js';
import { parseUserEvent, userEventSchemaVersions } from './events.js';

/** Users, for `me`, `members`, assignees and token authentication. */
export const userProjection: Projection = {
  name: 'users',
  handles: Object.keys(userEventSchemaVersions),
  async apply({ commit, update, invalidate }) {
    for (const stored of commit.events) {
      if (!Object.hasOwn(userEventSchemaVersions, stored.type)) continue;
      const event = parseUserEvent(stored);
      switch (event.type) {
        case 'UserRegistered': {
          const { userId, username, displayName, tokenHash } = event.data;
          await update<UserDoc>(ReadCollection.Users, userId, stored, () => ({
            _id: userId,
            username,
            usernameKey: normalizeUsername(username),
            displayName,
            ...(tokenHash !== undefined && { tokenHash }),
            version: stored.version,
            createdAt: commit.occurredAt,
          }));
          invalidate(null, invalidationOf(stored));
          break;
        }
        case 'PasswordSet':
          // Nothing readable changes (the hash stays in the stream); the version moves on.
          await update<UserDoc>(
            ReadCollection.Users,
            parseStreamName(stored.stream)!.id,
            stored,
            (doc) => ({
              ...doc!,
              version: stored.version,
            }),
          );
          break;
        default:
          unreachable(event);
      }
    }
  },
};
