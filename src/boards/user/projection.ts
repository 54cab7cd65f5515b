import type { Projection } from '../../projector/types.js';
import { invalidationOf } from '../aggregates.js';
import { ReadCollection } from '../readModel.js';
import { parseStreamName } from '../streams.js';
import { parseUserEvent, userEventSchemaVersions } from './events.js';
import { toUserDoc, userStateOf, type UserDoc } from './readModel.js';
import { evolveUser } from './state.js';

/** Users, for `me`, `members`, assignees and token authentication. */
export const userProjection: Projection = {
  name: 'users',
  handles: Object.keys(userEventSchemaVersions),
  async apply({ commit, update, invalidate }) {
    for (const stored of commit.events) {
      if (!Object.hasOwn(userEventSchemaVersions, stored.type)) continue;
      const event = parseUserEvent(stored);
      const userId = parseStreamName(stored.stream)!.id;
      await update<UserDoc>(ReadCollection.Users, userId, stored, (doc) => {
        const user = evolveUser(userStateOf(doc), event);
        if (user.status !== 'registered') {
          throw new Error(`user ${userId}: ${event.type} before UserRegistered`);
        }
        const createdAt = doc?.createdAt ?? commit.occurredAt;
        return toUserDoc(user, { version: stored.version, createdAt });
      });
      // A password change changes nothing readable (the hash stays in the stream).
      if (event.type === 'UserRegistered') invalidate(null, invalidationOf(stored));
    }
  },
};
