import { createClient } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ErrorCode } from '../../src/boards/errors.js';
import { LiveCloseCode } from '../../src/live/limits.js';
import { openMemoryStorage } from '../../src/storage.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * Sessions of the built-in issuer over the public API: passwords and sign-in (one
 * answer for every wrong credential), the per-username limit, listing, revoking and
 * signing out, and a revoked session's open websocket and SSE stream closed at once,
 * on another instance too.
 */

const ME = 'query { me { id username } }';
const SESSIONS = 'query { mySessions { id method current expiresAt } }';
const SET_PASSWORD = `mutation ($input: SetPasswordInput!) {
  setPassword(input: $input) { __typename ... on Error { code message } }
}`;
const SIGN_IN = `mutation ($input: SignInInput!) {
  signIn(input: $input) {
    __typename
    ... on SignInSuccess { token sessionId user { username } }
    ... on TooManyAttemptsError { retryAfterSeconds }
    ... on Error { code message }
  }
}`;
const SIGN_OUT =
  'mutation { signOut { __typename ... on SignOutSuccess { sessionId } ... on Error { code } } }';
const REVOKE = `mutation ($input: RevokeSessionInput!) {
  revokeSession(input: $input) { __typename ... on RevokeSessionSuccess { sessionId } ... on Error { code } }
}`;
const CREATE_BOARD = `mutation ($input: CreateBoardInput!) {
  createBoard(input: $input) { ... on CreateBoardSuccess { board { id } } }
}`;
const CHANGES = 'subscription ($b: ID!) { boardChanges(boardId: $b) { cursor operation } }';
const PASSWORD = 'correct horse battery staple';

let server: TestServer;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  server = await startTestServer();
});
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});
afterAll(async () => {
  await server.close();
});

let users = 0;
async function userWithPassword(s: TestServer = server) {
  const username = `user${++users}`;
  const { token } = await s.register(username);
  const set = await s.gql(SET_PASSWORD, { input: { password: PASSWORD } }, token);
  expect(set.data?.setPassword).toEqual({ __typename: 'SetPasswordSuccess' });
  return { username, token };
}

async function signIn(s: TestServer, username: string, password: string) {
  const result = await s.gql(SIGN_IN, { input: { username, password } });
  return result.data?.signIn as Record<string, unknown> & { __typename: string };
}

const authError = (result: { errors?: { extensions?: Record<string, unknown> }[] }) =>
  result.errors?.[0]?.extensions?.['code'];

describe('passwords and sign-in', () => {
  it('signs in with the password set, opening a second session', async () => {
    const { username, token } = await userWithPassword();
    const signedIn = await signIn(server, username, PASSWORD);
    expect(signedIn).toMatchObject({ __typename: 'SignInSuccess', user: { username } });
    const second = signedIn['token'] as string;
    expect(second).not.toBe(token);
    const me = await server.gql(ME, {}, second);
    expect(me.data?.me).toMatchObject({ username });
    const sessions = await server.gql(SESSIONS, {}, second);
    const list = sessions.data?.mySessions as { method: string; current: boolean }[];
    expect(list.map((s) => [s.method, s.current])).toEqual([
      ['password', true],
      ['registration', false],
    ]);
  });

  it('answers a wrong password, an unknown user and a user without a password alike', async () => {
    const { username } = await userWithPassword();
    const { token: _ } = await server.register(`nopass${users}`);
    const answers = await Promise.all([
      signIn(server, username, 'not the password'),
      signIn(server, `ghost${users}`, PASSWORD),
      signIn(server, `nopass${users}`, PASSWORD),
    ]);
    for (const answer of answers) {
      expect(answer).toEqual({
        __typename: 'InvalidCredentialsError',
        code: ErrorCode.InvalidCredentials,
        message: 'The username or password is wrong.',
      });
    }
  });

  it('takes as long for an unknown username as for a wrong password (the scrypt work is done)', async () => {
    const { username } = await userWithPassword();
    const time = async (name: string) => {
      const started = performance.now();
      await signIn(server, name, 'wrong password!');
      return performance.now() - started;
    };
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 4; i++) {
      known.push(await time(username));
      unknown.push(await time(`nobody-${i}-${users}`));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    // Without the decoy hash an unknown user answers in a fraction of the scrypt time.
    expect(median(unknown)).toBeGreaterThan(median(known) * 0.4);
  });

  it('requires the current password to change it', async () => {
    const { username, token } = await userWithPassword();
    const without = await server.gql(
      SET_PASSWORD,
      { input: { password: 'a new password' } },
      token,
    );
    expect(without.data?.setPassword).toMatchObject({ code: ErrorCode.InvalidCredentials });
    const withCurrent = await server.gql(
      SET_PASSWORD,
      { input: { password: 'a new password', currentPassword: PASSWORD } },
      token,
    );
    expect(withCurrent.data?.setPassword).toEqual({ __typename: 'SetPasswordSuccess' });
    expect(await signIn(server, username, 'a new password')).toMatchObject({
      __typename: 'SignInSuccess',
    });
  });

  it('refuses a password shorter than the minimum with a ValidationError', async () => {
    const { token } = await server.register(`short${++users}`);
    const result = await server.gql(SET_PASSWORD, { input: { password: 'short' } }, token);
    expect(result.data?.setPassword).toMatchObject({ code: ErrorCode.Validation });
  });

  it('refuses a password of whitespace alone with a ValidationError and writes nothing', async () => {
    const { token } = await server.register(`blank${++users}`);
    const head = await server.storage.store.headPosition();
    for (const password of [' '.repeat(8), '\t \n \r   ', '\u00a0'.repeat(8), '\u3000'.repeat(8)]) {
      const result = await server.gql(SET_PASSWORD, { input: { password } }, token);
      expect(result.data?.setPassword).toMatchObject({
        code: ErrorCode.Validation,
        message: expect.stringContaining('whitespace'),
      });
    }
    expect(await server.storage.store.headPosition()).toBe(head);
    // Spaces around and inside a password are part of it.
    const spaced = await server.gql(SET_PASSWORD, { input: { password: '  a b c d  ' } }, token);
    expect(spaced.data?.setPassword).toEqual({ __typename: 'SetPasswordSuccess' });
  });

  it('limits sign-in attempts per username, even with the right password', async () => {
    const limited = await startTestServer({ env: { SIGN_IN_RATE_LIMIT: '3' } });
    cleanups.push(() => limited.close());
    const { username } = await userWithPassword(limited);
    const attempts = await Promise.all(
      Array.from({ length: 3 }, () => signIn(limited, username, 'guess guess')),
    );
    for (const attempt of attempts) expect(attempt.__typename).toBe('InvalidCredentialsError');
    const blocked = await signIn(limited, username, PASSWORD);
    expect(blocked).toMatchObject({ __typename: 'TooManyAttemptsError' });
    expect(blocked['retryAfterSeconds']).toBeGreaterThan(0);
    // Another username is not affected.
    const other = await userWithPassword(limited);
    expect(await signIn(limited, other.username, PASSWORD)).toMatchObject({
      __typename: 'SignInSuccess',
    });
  });
});

describe('ending sessions', () => {
  it('signs out the calling session only', async () => {
    const { username, token } = await userWithPassword();
    const other = (await signIn(server, username, PASSWORD))['token'] as string;
    const out = await server.gql(SIGN_OUT, {}, token);
    expect(out.data?.signOut).toMatchObject({ __typename: 'SignOutSuccess' });
    const after = await server.gql(ME, {}, token);
    expect(authError(after)).toBe(ErrorCode.Unauthenticated);
    expect((await server.gql(ME, {}, other)).data?.me).toMatchObject({ username });
  });

  it("revokes another of one's sessions, and answers NotFoundError for someone else's", async () => {
    const { username, token } = await userWithPassword();
    const signedIn = await signIn(server, username, PASSWORD);
    const revoked = await server.gql(
      REVOKE,
      { input: { sessionId: signedIn['sessionId'] } },
      token,
    );
    expect(revoked.data?.revokeSession).toMatchObject({ __typename: 'RevokeSessionSuccess' });
    expect(authError(await server.gql(ME, {}, signedIn['token'] as string))).toBe(
      ErrorCode.Unauthenticated,
    );
    // Revoking it again is no failure.
    const again = await server.gql(REVOKE, { input: { sessionId: signedIn['sessionId'] } }, token);
    expect(again.data?.revokeSession).toMatchObject({ __typename: 'RevokeSessionSuccess' });

    const stranger = await userWithPassword();
    const theirs = await signIn(server, stranger.username, PASSWORD);
    const refused = await server.gql(REVOKE, { input: { sessionId: theirs['sessionId'] } }, token);
    expect(refused.data?.revokeSession).toMatchObject({ code: ErrorCode.NotFound });
    expect((await server.gql(ME, {}, theirs['token'] as string)).data?.me).toBeTruthy();
  });

  it("closes a revoked session's websocket (4403) and SSE stream, on another instance too", async () => {
    const storage = openMemoryStorage({});
    const a = await startTestServer({ storage });
    const b = await startTestServer({ storage });
    cleanups.push(async () => {
      await a.close();
      await b.close();
      await storage.close();
    });
    const { username, token } = await userWithPassword(a);
    const doomed = await signIn(a, username, PASSWORD);
    const doomedToken = doomed['token'] as string;
    const created = await a.gql(CREATE_BOARD, { input: { name: 'Live' } }, token);
    const boardId = created.data?.createBoard.board.id as string;

    // A websocket subscription on instance b.
    let acknowledged!: () => void;
    const connected = new Promise<void>((resolve) => (acknowledged = resolve));
    const closed = new Promise<number>((resolve) => {
      const client = createClient({
        url: b.wsUrl,
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${doomedToken}` },
        retryAttempts: 0,
        on: {
          connected: () => acknowledged(),
          closed: (event) => resolve((event as { code: number }).code),
        },
      });
      cleanups.push(() => client.dispose());
      client.subscribe(
        { query: CHANGES, variables: { b: boardId } },
        { next: () => undefined, error: () => undefined, complete: () => undefined },
      );
    });
    // An SSE subscription on instance b.
    const abort = new AbortController();
    cleanups.push(() => abort.abort());
    const sse = await fetch(`${b.url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        authorization: `Bearer ${doomedToken}`,
      },
      body: JSON.stringify({ query: CHANGES, variables: { b: boardId } }),
      signal: abort.signal,
    });
    expect(sse.headers.get('content-type')).toContain('text/event-stream');
    await connected;
    const twoSubscribers = async () => {
      for (let i = 0; i < 200 && b.app.live.stats().subscribers < 2; i++) {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      return b.app.live.stats().subscribers;
    };
    expect(await twoSubscribers()).toBe(2);

    // Revoked through instance a.
    const revoked = await a.gql(REVOKE, { input: { sessionId: doomed['sessionId'] } }, token);
    expect(revoked.data?.revokeSession).toMatchObject({ __typename: 'RevokeSessionSuccess' });

    expect(await closed).toBe(LiveCloseCode.CredentialEnded);
    const reader = sse.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
      if (text.includes('event: complete')) break;
    }
    expect(text).toContain('event: complete');
    expect(text).not.toContain('"operation"');
  });
});

describe('an open subscription and a session in use', () => {
  it("stays open past the expiry it was opened with while the session is used, as the session's token does", async () => {
    const ttlSeconds = 10; // the shortest SESSION_TTL the configuration takes
    const short = await startTestServer({ env: { SESSION_TTL: String(ttlSeconds) } });
    cleanups.push(() => short.close());
    const { username, token } = await userWithPassword(short);
    const opened = await signIn(short, username, PASSWORD);
    const watcherToken = opened['token'] as string;
    const created = await short.gql(CREATE_BOARD, { input: { name: 'Live' } }, token);
    const boardId = created.data?.createBoard.board.id as string;
    const expiryOf = async () => {
      const listed = await short.gql(SESSIONS, {}, watcherToken);
      const sessions = listed.data?.mySessions as { current: boolean; expiresAt: string }[];
      return Date.parse(sessions.find((session) => session.current)!.expiresAt);
    };

    const operations: string[] = [];
    let closedWith!: (code: number) => void;
    const closed = new Promise<string>(
      (resolve) => (closedWith = (code) => resolve(`closed ${code}`)),
    );
    let received!: () => void;
    let nextChange = new Promise<void>((resolve) => (received = resolve));
    let acknowledged!: () => void;
    const connected = new Promise<void>((resolve) => (acknowledged = resolve));
    const client = createClient({
      url: short.wsUrl,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${watcherToken}` },
      retryAttempts: 0,
      on: {
        connected: () => acknowledged(),
        closed: (event) => closedWith((event as { code: number }).code),
      },
    });
    cleanups.push(() => client.dispose());
    client.subscribe<{ boardChanges: { operation: string } }>(
      { query: CHANGES, variables: { b: boardId } },
      {
        next: ({ data }) => {
          operations.push(data!.boardChanges.operation);
          received();
        },
        error: () => undefined,
        complete: () => undefined,
      },
    );
    await connected;
    const openedUntil = await expiryOf();

    // The session is used again over HTTP until its use is recorded: it now expires later.
    while ((await expiryOf()) <= openedUntil) {
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    // Past the expiry the subscription was opened with, the session still works...
    await new Promise((resolve) => setTimeout(resolve, openedUntil - Date.now() + 500));
    expect((await short.gql(ME, {}, watcherToken)).data?.me).toMatchObject({ username });
    // ...and so does what was opened with it: the next change arrives on the same socket.
    nextChange = new Promise<void>((resolve) => (received = resolve));
    const renamed = await short.gql(
      'mutation ($i: RenameBoardInput!) { renameBoard(input: $i) { __typename } }',
      { i: { boardId, expectedVersion: 1, name: 'Still live' } },
      watcherToken,
    );
    expect(renamed.data?.renameBoard).toEqual({ __typename: 'RenameBoardSuccess' });
    expect(await Promise.race([nextChange.then(() => 'received'), closed])).toBe('received');
    expect(operations).toEqual(['renameBoard']);
  }, 30_000);
});
