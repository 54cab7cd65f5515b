import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { SessionDoc, UserDoc } from '../../src/boards/readModel.js';
import type { BoardReads } from '../../src/boards/reads.js';
import { hashToken } from '../../src/boards/user/token.js';
import { builtInAuthenticator, sessionRefreshIntervalMs } from '../../src/graphql/auth.js';

const TTL = 30 * 24 * 3600_000;
const TOKEN = 'a'.repeat(43);
const start = Date.parse('2026-01-01T00:00:00Z');
const user: UserDoc = {
  _id: 'u1',
  username: 'ada',
  usernameKey: 'ada',
  displayName: 'Ada',
  version: 1,
  createdAt: new Date(start),
};

function setup(session: Partial<SessionDoc> = {}) {
  let now = start;
  const refreshed: string[] = [];
  const doc: SessionDoc = {
    _id: 's1',
    userId: 'u1',
    tokenHash: hashToken(TOKEN),
    method: 'password',
    startedAt: new Date(start),
    lastActiveAt: new Date(start),
    endedAt: null,
    version: 1,
    ...session,
  };
  const reads = {
    sessionByTokenHash: (hash: string) => Promise.resolve(hash === doc.tokenHash ? doc : null),
    users: { load: (id: string) => Promise.resolve(id === 'u1' ? user : null) },
  } as unknown as BoardReads;
  const auth = builtInAuthenticator({
    sessionTtlMs: TTL,
    commands: {
      refreshSession: (_actor, input) => {
        refreshed.push(input.sessionId);
        return Promise.resolve({ ok: true, value: { position: null } });
      },
    },
    currentSession: (hash: string) => Promise.resolve(hash === doc.tokenHash ? doc : null),
    logger: pino({ level: 'silent' }),
    now: () => now,
  });
  const signal = new AbortController().signal;
  return {
    doc,
    refreshed,
    at: (ms: number) => (now = start + ms),
    authenticate: () => auth.authenticate(`Bearer ${TOKEN}`, reads, signal),
  };
}

describe('built-in sessions', () => {
  it('accepts a session until SESSION_TTL after its last use, and says when it expires', async () => {
    const s = setup();
    s.at(TTL - 1);
    expect(await s.authenticate()).toMatchObject({
      user: { _id: 'u1' },
      credential: { sessionId: 's1', expiresAt: new Date(start + TTL) },
    });
    s.at(TTL);
    await expect(s.authenticate()).rejects.toMatchObject({
      extensions: { code: 'UNAUTHENTICATED', reason: 'expired' },
    });
  });

  it('records a use only once the refresh interval has passed (the expiry slides)', async () => {
    const s = setup();
    s.at(sessionRefreshIntervalMs(TTL) - 1);
    await s.authenticate();
    expect(s.refreshed).toEqual([]);
    s.at(sessionRefreshIntervalMs(TTL));
    await s.authenticate();
    expect(s.refreshed).toEqual(['s1']);
  });

  it('refuses an ended session at once', async () => {
    const s = setup({ endedAt: new Date(start + 1) });
    await expect(s.authenticate()).rejects.toMatchObject({
      extensions: { code: 'UNAUTHENTICATED' },
    });
  });

  it("renews a credential to the session's expiry as it stands now: later once used, null once ended", async () => {
    const s = setup();
    const { credential } = (await s.authenticate())!;
    expect(credential.renew).toBeDefined();
    const renew = credential.renew!;
    expect(await renew()).toEqual(new Date(start + TTL));
    // Used since (recorded by another request): the session, and what it opened, last longer.
    s.doc.lastActiveAt = new Date(start + TTL / 2);
    expect(await renew()).toEqual(new Date(start + TTL / 2 + TTL));
    s.doc.endedAt = new Date(start + TTL / 2 + 1);
    expect(await renew()).toBeNull();
  });
});
