import { describe, expect, it } from 'vitest';
import { NotFoundError } from '../../src/boards/errors.js';
import { decideSession } from '../../src/boards/session/decide.js';
import { evolveSession, initialSessionState } from '../../src/boards/session/state.js';
import { contextWithIds } from './deciderTestKit.js';

const started = evolveSession(initialSessionState, {
  type: 'SessionStarted',
  data: { sessionId: 's1', userId: 'u1', tokenHash: 'h', method: 'password' },
});
const ended = evolveSession(started, { type: 'SessionEnded', data: { reason: 'revoked' } });
const end = (actorId: string) =>
  ({ type: 'EndSession', data: { sessionId: 's1', actorId, reason: 'revoked' } }) as const;

describe('decideSession', () => {
  it('starts a session under a new id', () => {
    const decision = decideSession(
      { type: 'StartSession', data: { userId: 'u1', tokenHash: 'h', method: 'password' } },
      initialSessionState,
      contextWithIds('s9'),
    );
    expect(decision).toEqual([
      {
        aggregate: 'session',
        id: 's9',
        events: [
          {
            type: 'SessionStarted',
            data: { sessionId: 's9', userId: 'u1', tokenHash: 'h', method: 'password' },
          },
        ],
      },
    ]);
  });

  it("ends the actor's own active session, and writes nothing for an ended one", () => {
    expect(decideSession(end('u1'), started, contextWithIds())).toEqual([
      {
        aggregate: 'session',
        id: 's1',
        events: [{ type: 'SessionEnded', data: { reason: 'revoked' } }],
      },
    ]);
    expect(decideSession(end('u1'), ended, contextWithIds())).toEqual([]);
  });

  it("answers NotFoundError for another user's session or one that never existed", () => {
    expect(() => decideSession(end('u2'), started, contextWithIds())).toThrow(NotFoundError);
    expect(() => decideSession(end('u1'), initialSessionState, contextWithIds())).toThrow(
      NotFoundError,
    );
  });

  it('refreshes only an active session', () => {
    const refresh = { type: 'RefreshSession', data: { sessionId: 's1' } } as const;
    expect(decideSession(refresh, started, contextWithIds())).toHaveLength(1);
    expect(decideSession(refresh, ended, contextWithIds())).toEqual([]);
  });
});
