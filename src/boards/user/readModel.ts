import type { ReadDoc } from '../../projector/types.js';
import type { DocStamps } from '../docStamps.js';
import { normalizeUsername } from '../streams.js';
import type { UserState } from './state.js';

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
