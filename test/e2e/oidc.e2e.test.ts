import { createPublicKey } from 'node:crypto';
import { createClient } from 'graphql-ws';
import { SignJWT, base64url } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ErrorCode } from '../../src/boards/errors.js';
import { createCorkboardClient } from '../../src/sdk/createCorkboardClient.js';
import { subjectSuffix } from '../../src/identity/claims.js';
import { LiveCloseCode } from '../../src/live/limits.js';
import { openMemoryStorage } from '../../src/storage.js';
import {
  startTestOidcProvider,
  TEST_AUDIENCE,
  type ProviderKey,
  type TestOidcProvider,
} from '../support/oidcProvider.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * OpenID Connect mode against a provider on loopback (no internet): discovery, JWKS,
 * key rotation, the claims checked, algorithm attacks, just-in-time provisioning under
 * races, and a websocket closed when its token expires.
 */

const ME = 'query { me { id username displayName } }';
const CREATE_BOARD = `mutation ($input: CreateBoardInput!) {
  createBoard(input: $input) { __typename ... on CreateBoardSuccess { board { id } } ... on Error { code message } }
}`;
const REGISTER = `mutation { registerUser(input: { username: "someone", displayName: "S" }) {
  __typename ... on Error { code message } ... on ExternalIdentityError { issuer }
} }`;

let provider: TestOidcProvider;
let firstKey: ProviderKey;
let server: TestServer;
const cleanups: (() => unknown)[] = [];

const oidcEnv = (extra: Record<string, string> = {}) => ({
  AUTH_ISSUER: provider.issuer,
  AUTH_AUDIENCE: TEST_AUDIENCE,
  AUTH_CLOCK_SKEW_SECONDS: '0',
  AUTH_JWKS_COOLDOWN_MS: '0',
  ...extra,
});

beforeAll(async () => {
  provider = await startTestOidcProvider();
  firstKey = await provider.addKey('RS256');
  server = await startTestServer({ env: oidcEnv() });
});

afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

afterAll(async () => {
  await server.close();
  await provider.close();
});

const codeOf = (result: { errors?: { extensions?: Record<string, unknown> }[] }) =>
  result.errors?.[0]?.extensions;

let subjects = 0;
const newSubject = () => `subject-${++subjects}-${Math.random().toString(36).slice(2)}`;

describe('OIDC mode: verifying tokens', () => {
  it('accepts a valid token and provisions its user from preferred_username and name', async () => {
    const token = await provider.sign({
      sub: newSubject(),
      preferred_username: 'ada',
      name: 'Ada Lovelace',
    });
    const result = await server.gql(ME, {}, token);
    expect(result.errors).toBeUndefined();
    expect(result.data?.me).toMatchObject({ username: 'ada', displayName: 'Ada Lovelace' });
    // The next request finds the same user.
    const again = await server.gql(ME, {}, token);
    expect(again.data?.me).toEqual(result.data?.me);
  });

  it('falls back to the email claim for the username', async () => {
    const token = await provider.sign({ sub: newSubject(), email: 'grace@example.com' });
    const result = await server.gql(ME, {}, token);
    expect(result.data?.me).toMatchObject({
      username: 'grace_example.com',
      displayName: 'grace_example.com',
    });
  });

  it('refuses an expired token', async () => {
    const past = Math.floor(Date.now() / 1000) - 60;
    const token = await provider.sign({ sub: newSubject(), iat: past - 60, exp: past });
    const result = await server.gql(ME, {}, token);
    expect(result.data?.me ?? null).toBeNull();
    expect(codeOf(result)).toMatchObject({ code: ErrorCode.Unauthenticated, reason: 'expired' });
  });

  it('refuses a token for another audience', async () => {
    const token = await provider.sign({ sub: newSubject(), aud: 'another-api' });
    const result = await server.gql(ME, {}, token);
    expect(codeOf(result)).toMatchObject({ code: ErrorCode.Unauthenticated, reason: 'claims' });
    expect(result.errors?.[0]?.message).toContain('"aud"');
  });

  it('refuses a token of another issuer, even signed with a published key', async () => {
    const token = await provider.sign({ sub: newSubject(), iss: 'https://evil.example.com' });
    const result = await server.gql(ME, {}, token);
    expect(codeOf(result)).toMatchObject({ code: ErrorCode.Unauthenticated, reason: 'claims' });
    expect(result.errors?.[0]?.message).toContain('"iss"');
  });

  it('refuses a token not valid yet (nbf), and accepts one within the clock skew', async () => {
    const now = Math.floor(Date.now() / 1000);
    const early = await provider.sign({ sub: newSubject(), nbf: now + 120 });
    const refused = await server.gql(ME, {}, early);
    expect(codeOf(refused)).toMatchObject({ code: ErrorCode.Unauthenticated, reason: 'claims' });
    expect(refused.errors?.[0]?.message).toContain('"nbf"');
    const skewed = await startTestServer({ env: oidcEnv({ AUTH_CLOCK_SKEW_SECONDS: '300' }) });
    cleanups.push(() => skewed.close());
    const accepted = await skewed.gql(ME, {}, early);
    expect(accepted.errors).toBeUndefined();
    expect(accepted.data?.me).not.toBeNull();
  });

  it('refuses a token with an empty sub, which would make every such token one user', async () => {
    const token = await provider.sign({ sub: '' });
    const result = await server.gql(ME, {}, token);
    expect(codeOf(result)).toMatchObject({ code: ErrorCode.Unauthenticated, reason: 'claims' });
  });

  it('refuses a token without exp', async () => {
    const token = await provider.sign({ sub: newSubject(), exp: undefined });
    const result = await server.gql(ME, {}, token);
    expect(codeOf(result)).toMatchObject({ code: ErrorCode.Unauthenticated });
  });

  it('refuses alg "none"', async () => {
    const now = Math.floor(Date.now() / 1000);
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT', kid: firstKey.kid }));
    const payload = base64url.encode(
      JSON.stringify({
        iss: provider.issuer,
        aud: TEST_AUDIENCE,
        sub: newSubject(),
        iat: now,
        exp: now + 600,
      }),
    );
    const result = await server.gql(ME, {}, `${header}.${payload}.`);
    expect(codeOf(result)).toMatchObject({ code: ErrorCode.Unauthenticated, reason: 'malformed' });
  });

  it('refuses HS256 signed with the public key as the secret (algorithm confusion)', async () => {
    const pem = createPublicKey({ key: firstKey.publicJwk, format: 'jwk' }).export({
      type: 'spki',
      format: 'pem',
    });
    const claims = { iss: provider.issuer, aud: TEST_AUDIENCE, sub: newSubject() };
    for (const secret of [Buffer.from(pem), Buffer.from(JSON.stringify(firstKey.publicJwk))]) {
      const forged = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256', kid: firstKey.kid })
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(new Uint8Array(secret));
      const result = await server.gql(ME, {}, forged);
      expect(result.data?.me ?? null).toBeNull();
      expect(codeOf(result)).toMatchObject({
        code: ErrorCode.Unauthenticated,
        reason: 'malformed',
      });
    }
  });

  it('refuses a token with an unknown kid, then accepts it once the provider rotates to that key', async () => {
    const rotated = await provider.addKey('ES256', { publish: false });
    const subject = newSubject();
    const token = await provider.sign({ sub: subject, preferred_username: 'rotated' }, rotated);
    const before = await server.gql(ME, {}, token);
    expect(codeOf(before)).toMatchObject({ code: ErrorCode.Unauthenticated, reason: 'signature' });

    // The provider rotates: the new key is published, the old one withdrawn.
    provider.publishOnly([rotated]);
    const fetches = provider.jwksFetches;
    const after = await server.gql(ME, {}, token);
    expect(after.errors).toBeUndefined();
    expect(after.data?.me).toMatchObject({ username: 'rotated' });
    expect(provider.jwksFetches).toBe(fetches + 1);
    // A token of the withdrawn key no longer verifies.
    const old = await provider.sign({ sub: newSubject() }, firstKey);
    expect(codeOf(await server.gql(ME, {}, old))).toMatchObject({ reason: 'signature' });
    provider.publishOnly([firstKey, rotated]);
  });

  it('fetches the key set at most once per cooldown, however many unknown kids arrive', async () => {
    const guarded = await startTestServer({ env: oidcEnv({ AUTH_JWKS_COOLDOWN_MS: '600000' }) });
    cleanups.push(() => guarded.close());
    // The first request loads the set.
    const valid = await provider.sign({ sub: newSubject() });
    expect((await guarded.gql(ME, {}, valid)).errors).toBeUndefined();
    const fetches = provider.jwksFetches;
    const strangers = await Promise.all(
      Array.from({ length: 20 }, () => provider.addKey('ES256', { publish: false })),
    );
    const results = await Promise.all(
      strangers.map(async (key) =>
        guarded.gql(ME, {}, await provider.sign({ sub: newSubject() }, key)),
      ),
    );
    for (const result of results) expect(codeOf(result)).toMatchObject({ reason: 'signature' });
    expect(provider.jwksFetches - fetches).toBeLessThanOrEqual(1);
  });

  it('answers registerUser with ExternalIdentityError and writes nothing', async () => {
    const result = await server.gql(REGISTER);
    expect(result.data?.registerUser).toEqual({
      __typename: 'ExternalIdentityError',
      code: ErrorCode.ExternalIdentity,
      message: expect.stringContaining(provider.issuer),
      issuer: provider.issuer,
    });
  });
});

describe('OIDC mode: just-in-time provisioning', () => {
  it('creates one user when the first requests of one subject race on two instances', async () => {
    const storage = openMemoryStorage({});
    const a = await startTestServer({ storage, env: oidcEnv() });
    const b = await startTestServer({ storage, env: oidcEnv() });
    cleanups.push(async () => {
      await a.close();
      await b.close();
      await storage.close();
    });
    const token = await provider.sign({ sub: newSubject(), preferred_username: 'racer' });
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) => (i % 2 ? a : b).gql(ME, {}, token)),
    );
    for (const result of results) expect(result.errors).toBeUndefined();
    const ids = new Set(results.map((r) => (r.data?.me as { id: string }).id));
    expect(ids.size).toBe(1);
    expect(results[0]?.data?.me).toMatchObject({ username: 'racer' });
    const commits = await storage.store.readAll();
    const created = commits.flatMap((c) => c.events).filter((e) => e.type === 'UserRegistered');
    expect(created).toHaveLength(1);
  });

  it('gives a username to the first subject and `<name>-<subject hash>` to a later one', async () => {
    const [first, second] = [newSubject(), newSubject()];
    const one = await provider.sign({ sub: first, preferred_username: 'Shared.Name' });
    const two = await provider.sign({ sub: second, preferred_username: 'shared.name' });
    const a = await server.gql(ME, {}, one);
    const b = await server.gql(ME, {}, two);
    expect(a.data?.me).toMatchObject({ username: 'Shared.Name' });
    expect(b.data?.me).toMatchObject({
      username: `shared.name-${subjectSuffix(provider.issuer, second)}`,
    });
  });

  it('gives the two names to two subjects racing for one username, one each', async () => {
    const subjectsOf = [newSubject(), newSubject()];
    const tokens = await Promise.all(
      subjectsOf.map((sub) => provider.sign({ sub, preferred_username: 'contested' })),
    );
    const results = await Promise.all(tokens.map((token) => server.gql(ME, {}, token)));
    const names = results.map((r) => (r.data?.me as { username: string }).username);
    const plain = names.indexOf('contested');
    expect(plain).toBeGreaterThanOrEqual(0);
    const other = 1 - plain;
    expect(names[other]).toBe(`contested-${subjectSuffix(provider.issuer, subjectsOf[other]!)}`);
  });
});

describe('OIDC mode: long-lived connections', () => {
  it('closes a websocket with 4403 when the token its subscription was opened with expires', async () => {
    const subject = newSubject();
    const long = await provider.sign({ sub: subject });
    const created = await server.gql(CREATE_BOARD, { input: { name: 'Expiring' } }, long);
    const boardId = created.data?.createBoard.board.id as string;
    const exp = Math.floor(Date.now() / 1000) + 2;
    const short = await provider.sign({ sub: subject, exp });

    const closed = new Promise<number>((resolve) => {
      const client = createClient({
        url: server.wsUrl,
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${short}` },
        retryAttempts: 0,
        on: { closed: (event) => resolve((event as { code: number }).code) },
      });
      cleanups.push(() => client.dispose());
      client.subscribe(
        {
          query: 'subscription ($b: ID!) { boardChanges(boardId: $b) { cursor } }',
          variables: { b: boardId },
        },
        { next: () => undefined, error: () => undefined, complete: () => undefined },
      );
    });
    const code = await closed;
    expect(code).toBe(LiveCloseCode.CredentialEnded);
    expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000);
  });

  it("keeps the SDK's boardChanges going past expiry: the token provider is asked again and the stream resumes", async () => {
    const subject = newSubject();
    const asked: boolean[] = [];
    const sdk = createCorkboardClient({
      url: `${server.url}/graphql`,
      webSocketImpl: WebSocket,
      token: async ({ expired }) => {
        asked.push(expired);
        // The websocket's first connection (the second call, after createBoard) gets a token
        // that expires in 2 s; every other call one that lasts an hour.
        const exp = Math.floor(Date.now() / 1000) + (asked.length === 2 ? 2 : 3600);
        return provider.sign({ sub: subject, exp });
      },
    });
    const created = await sdk.createBoard({ input: { name: 'Refreshed' } });
    if (created.__typename !== 'CreateBoardSuccess') throw new Error(created.__typename);
    const board = created.board;
    const abort = new AbortController();
    cleanups.push(() => abort.abort());
    const changes = sdk.boardChanges(board.id, { signal: abort.signal });
    const first = changes.next();
    // Wait for the server to close the first socket (4403) and the SDK to ask again.
    for (let i = 0; i < 400 && !asked.includes(true); i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(asked).toContain(true);
    // ...and its new subscription to be registered (the write must come after it).
    for (let i = 0; i < 400 && server.app.live.stats().subscribers < 1; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(server.app.live.stats().subscribers).toBe(1);
    const renamed = await sdk.renameBoard({
      input: { boardId: board.id, name: 'Still live', expectedVersion: board.version },
    });
    expect(renamed.__typename).toBe('RenameBoardSuccess');
    const change = await first;
    expect(change.value).toMatchObject({ operation: 'renameBoard' });
  });
});
