import type { ReadDoc } from '../../projector/types.js';
import type { DocStamps } from '../docStamps.js';
import { defineReadModel, docType } from '../../projector/readModel.js';
import { invalidationOf } from '../aggregates.js';
import { normalizeUsername, parseStreamName } from '../streams.js';
import { parseUserEvent, userEventSchemaVersions } from './events.js';
import { evolveUser, type UserState } from './state.js';

type RegisteredUser = Extract<UserState, { status: 'registered' }>;

/**
 * A user as queries see it; found by token hash for authentication. Its state but the
 * password hash, which stays in the stream.
 */
export type UserDoc = ReadDoc &
  Omit<RegisteredUser, 'status' | 'userId' | 'passwordHash'> & {
    /** NFKC + lowercase form, for lookups by username. */
    usernameKey: string;
  } & Omit<DocStamps, 'updatedAt'>;

/** The user's read document: the one place a user's state becomes its document. */
export function toUserDoc(state: RegisteredUser, stamps: Omit<DocStamps, 'updatedAt'>): UserDoc {
  const { status: _s, userId, passwordHash: _p, tokenHash, ...data } = state;
  return {
    _id: userId,
    ...data,
    usernameKey: normalizeUsername(data.username),
    ...(tokenHash !== undefined && { tokenHash }),
    version: stamps.version,
    createdAt: stamps.createdAt,
  };
}

/** The state a user's read document was made from, without its password hash. */
export function userStateOf(doc: UserDoc | null): UserState {
  if (!doc) return { status: 'unregistered' };
  const { _id, _applied, usernameKey: _k, version: _v, createdAt: _c, ...data } = doc;
  return { status: 'registered', userId: _id, ...data };
}

/** Users, for `me`, `members`, assignees and token authentication. */
export const userReadModel = defineReadModel({
  name: 'users',
  collection: 'users',
  doc: docType<UserDoc>(),
  indexes: [{ key: { tokenHash: 1 } }, { key: { usernameKey: 1 } }],
  queries: {
    byTokenHash: { filter: (tokenHash: string) => ({ tokenHash }), limit: 1 },
    byUsername: {
      filter: (username: string) => ({ usernameKey: normalizeUsername(username) }),
      limit: 1,
    },
  },
  projection: {
    handles: Object.keys(userEventSchemaVersions),
    async apply({ commit, update, invalidate }) {
      for (const stored of commit.events) {
        if (!Object.hasOwn(userEventSchemaVersions, stored.type)) continue;
        const event = parseUserEvent(stored);
        const userId = parseStreamName(stored.stream)!.id;
        await update<UserDoc>(userReadModel.collection, userId, stored, (doc) => {
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
  },
});
