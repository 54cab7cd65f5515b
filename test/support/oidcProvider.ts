import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  exportJWK,
  generateKeyPair,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';

/** One signing key of the test provider. */
export interface ProviderKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: CryptoKey;
  publicJwk: JWK;
}

/**
 * An OpenID Connect provider on loopback, for tests without the internet: keys made
 * with jose, a discovery document and a JWKS endpoint (whose `Cache-Control` a test
 * may set), tokens signed on demand, and key rotation mid-test.
 */
export interface TestOidcProvider {
  /** The issuer URL (`iss` of its tokens). */
  issuer: string;
  jwksUrl: string;
  /** Key-set fetches served so far. */
  readonly jwksFetches: number;
  /** The keys the JWKS endpoint publishes now. */
  readonly published: readonly ProviderKey[];
  /** A new key; published at once unless `publish: false`. */
  addKey(alg?: 'RS256' | 'ES256', options?: { publish?: boolean }): Promise<ProviderKey>;
  /** Publishes `key` (a key made with `publish: false`). */
  publish(key: ProviderKey): void;
  /** Publishes only `keys` from now on (the rotated-out keys disappear). */
  publishOnly(keys: readonly ProviderKey[]): void;
  /** `Cache-Control` of JWKS responses. @default 'public, max-age=600' */
  cacheControl: string;
  /**
   * A signed JWT: `iss` this issuer, `sub`, `aud` `corkboard`, `iat` now and `exp` in
   * an hour unless `claims` says otherwise (a claim set to undefined is left out).
   */
  sign(claims: JWTPayload, key?: ProviderKey): Promise<string>;
  close(): Promise<void>;
}

/** The audience the test provider's tokens name by default. */
export const TEST_AUDIENCE = 'corkboard';

export async function startTestOidcProvider(): Promise<TestOidcProvider> {
  let published: ProviderKey[] = [];
  let jwksFetches = 0;
  let keyCount = 0;
  const server: Server = createServer((req, res) => {
    if (req.url === '/.well-known/openid-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          issuer,
          jwks_uri: jwksUrl,
          id_token_signing_alg_values_supported: ['RS256', 'ES256'],
        }),
      );
      return;
    }
    if (req.url === '/jwks') {
      jwksFetches += 1;
      res.writeHead(200, {
        'content-type': 'application/json',
        'cache-control': provider.cacheControl,
      });
      res.end(JSON.stringify({ keys: published.map((k) => k.publicJwk) }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;
  const jwksUrl = `${issuer}/jwks`;

  const provider: TestOidcProvider = {
    issuer,
    jwksUrl,
    cacheControl: 'public, max-age=600',
    get jwksFetches() {
      return jwksFetches;
    },
    get published() {
      return published;
    },
    async addKey(alg = 'RS256', options = {}) {
      const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
      const kid = `key-${++keyCount}`;
      const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
      const key: ProviderKey = { kid, alg, privateKey, publicJwk };
      if (options.publish !== false) published = [...published, key];
      return key;
    },
    publish(key) {
      published = [...published, key];
    },
    publishOnly(keys) {
      published = [...keys];
    },
    async sign(claims, key = published[0]) {
      if (!key) throw new Error('the test provider has no key');
      const now = Math.floor(Date.now() / 1000);
      const full: JWTPayload = {
        iss: issuer,
        aud: TEST_AUDIENCE,
        iat: now,
        exp: now + 3600,
        ...claims,
      };
      const payload = Object.fromEntries(
        Object.entries(full).filter(([, value]) => value !== undefined),
      );
      return new SignJWT(payload)
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
        .sign(key.privateKey);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  return provider;
}
