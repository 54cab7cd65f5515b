import {
  createRemoteJWKSet,
  customFetch,
  errors as jose,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import type { OidcConfig } from '../config.js';

/**
 * Signature algorithms a provider's tokens may use: asymmetric only. `none` and every
 * HMAC algorithm are refused, so a token "signed" with the provider's public key as an
 * HS256 secret (the algorithm confusion attack) never verifies.
 */
export const ACCEPTED_ALGORITHMS = ['RS256', 'ES256'] as const;

/** Bounds on how long a fetched key set is trusted, whatever its `Cache-Control` says. */
export const JWKS_MAX_AGE_BOUNDS = {
  /** @default 60 s: a provider answering `no-cache` is not asked on every request. */
  minMs: 60_000,
  /** @default 24 h */
  maxMs: 24 * 60 * 60_000,
  /** Without a `max-age`. @default 10 min */
  defaultMs: 10 * 60_000,
} as const;

/** Why a bearer token was refused. */
export const InvalidTokenReason = {
  Expired: 'expired',
  /** Not a JWS compact JWT, or an algorithm other than {@link ACCEPTED_ALGORITHMS}. */
  Malformed: 'malformed',
  /** No key of the provider verifies it (unknown `kid` even after a refresh, or a bad signature). */
  Signature: 'signature',
  /** `iss`, `aud`, `nbf` or a required claim (`sub`, `exp`) is wrong or missing. */
  Claims: 'claims',
} as const;
export type InvalidTokenReason = (typeof InvalidTokenReason)[keyof typeof InvalidTokenReason];

/** The bearer token is not a valid token of the configured provider. */
export class InvalidTokenError extends Error {
  override readonly name = 'InvalidTokenError';
  constructor(
    readonly reason: InvalidTokenReason,
    message: string,
  ) {
    super(message);
  }
}

/** The provider's discovery document or key set could not be fetched. */
export class IdentityProviderUnavailableError extends Error {
  override readonly name = 'IdentityProviderUnavailableError';
}

/** A token the provider signed, its claims checked. */
export interface VerifiedToken {
  /** `sub`. */
  subject: string;
  /** `exp`: when the token stops being accepted (clock skew not included). */
  expiresAt: Date;
  claims: JWTPayload;
}

/** Verifies the bearer tokens of one OpenID Connect provider. */
export interface OidcVerifier {
  /** The verified token; throws `InvalidTokenError` or `IdentityProviderUnavailableError`. */
  verify(token: string): Promise<VerifiedToken>;
}

/**
 * How long a fetched key set may be used, from the response's `Cache-Control`
 * (`max-age`, `s-maxage`; `no-store`/`no-cache` mean the least), bounded by
 * {@link JWKS_MAX_AGE_BOUNDS}.
 */
export function jwksMaxAgeMs(cacheControl: string | null): number {
  const { minMs, maxMs, defaultMs } = JWKS_MAX_AGE_BOUNDS;
  if (!cacheControl) return defaultMs;
  const directives = cacheControl.toLowerCase();
  if (/\bno-(store|cache)\b/.test(directives)) return minMs;
  const seconds = /\b(?:s-maxage|max-age)\s*=\s*"?(\d+)/.exec(directives)?.[1];
  if (seconds === undefined) return defaultMs;
  return Math.min(maxMs, Math.max(minMs, Number(seconds) * 1000));
}

/**
 * A verifier of `config.issuer`'s JWTs, with jose (a maintained JOSE library, no
 * hand-written crypto): RS256/ES256 only, `iss` exact, `aud` when configured, `exp`
 * required, `nbf` honoured, both with `clockSkewSeconds` of leeway, `sub` required.
 *
 * Keys: `jwksUrl`, or the `jwks_uri` of the issuer's discovery document (fetched on
 * first use, its `issuer` checked). The key set is kept for as long as its response's
 * `Cache-Control` allows (see {@link jwksMaxAgeMs}), then fetched again before the next
 * verification; a token naming a `kid` the set lacks makes jose fetch it again at
 * most once per `jwksCooldownMs` (so a provider's key rotation is picked up at once,
 * and forged `kid`s cannot make the server hammer the provider).
 */
export function createOidcVerifier(
  config: Pick<
    OidcConfig,
    'issuer' | 'jwksUrl' | 'audience' | 'clockSkewSeconds' | 'jwksCooldownMs'
  >,
  fetchImpl: typeof fetch = globalThis.fetch,
): OidcVerifier {
  let keys: Promise<KeySet> | null = null;
  const keySet = (): Promise<KeySet> => {
    keys ??= openKeySet(config, fetchImpl).catch((error: unknown) => {
      keys = null; // tried again by the next request
      throw error;
    });
    return keys;
  };
  return {
    async verify(token) {
      const set = await keySet();
      await set.refreshIfStale();
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, set.getKey, {
          issuer: config.issuer,
          ...(config.audience !== undefined && { audience: config.audience }),
          algorithms: [...ACCEPTED_ALGORITHMS],
          clockTolerance: config.clockSkewSeconds,
          requiredClaims: ['sub', 'exp'],
        }));
      } catch (error) {
        throw translateJoseError(error);
      }
      // Present is not enough: an empty subject would make every such token one user.
      if (!payload.sub) {
        throw new InvalidTokenError(
          InvalidTokenReason.Claims,
          'The token\'s "sub" claim is not accepted (empty).',
        );
      }
      return {
        subject: payload.sub,
        expiresAt: new Date(payload.exp! * 1000),
        claims: payload,
      };
    },
  };
}

interface KeySet {
  getKey: JWTVerifyGetKey;
  /** Fetches the set again when it is older than its `Cache-Control` allows. */
  refreshIfStale(): Promise<void>;
}

async function openKeySet(
  config: Pick<OidcConfig, 'issuer' | 'jwksUrl' | 'jwksCooldownMs'>,
  fetchImpl: typeof fetch,
): Promise<KeySet> {
  const url = config.jwksUrl ?? (await discoverJwksUrl(config.issuer, fetchImpl));
  let fetchedAt = 0;
  let maxAgeMs: number = JWKS_MAX_AGE_BOUNDS.defaultMs;
  const remote = createRemoteJWKSet(new URL(url), {
    cooldownDuration: config.jwksCooldownMs,
    // Freshness is ours (from Cache-Control, below); jose refetches on an unknown kid.
    cacheMaxAge: Infinity,
    [customFetch]: async (input, init) => {
      const response = await fetchImpl(input, init);
      if (response.ok) {
        fetchedAt = Date.now();
        maxAgeMs = jwksMaxAgeMs(response.headers.get('cache-control'));
      }
      return response;
    },
  });
  let refreshing: Promise<void> | null = null;
  return {
    getKey: remote,
    async refreshIfStale() {
      if (fetchedAt === 0 || Date.now() - fetchedAt < maxAgeMs) return;
      // One fetch for every request that finds the set stale at once; when it fails,
      // the keys held are used until the next attempt.
      refreshing ??= remote
        .reload()
        .catch(() => undefined)
        .finally(() => {
          refreshing = null;
        });
      await refreshing;
    },
  };
}

/** The `jwks_uri` of `issuer`'s OpenID Connect discovery document. */
async function discoverJwksUrl(issuer: string, fetchImpl: typeof fetch): Promise<string> {
  const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  let document: unknown;
  try {
    const response = await fetchImpl(url, { signal: AbortSignal.timeout(5_000) });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    document = await response.json();
  } catch (error) {
    throw new IdentityProviderUnavailableError(
      `the discovery document ${url} could not be read: ${String(error)}`,
      { cause: error },
    );
  }
  const { issuer: named, jwks_uri: jwksUri } = (document ?? {}) as Record<string, unknown>;
  // OpenID Connect Discovery 1.0, section 4.3: the document's issuer is the configured one.
  if (named !== issuer || typeof jwksUri !== 'string') {
    throw new IdentityProviderUnavailableError(
      `the discovery document ${url} names issuer ${JSON.stringify(named)} (expected ${JSON.stringify(issuer)}) or has no jwks_uri`,
    );
  }
  return jwksUri;
}

/** jose's verdict as ours: the token's fault, or the provider's unavailability. */
function translateJoseError(error: unknown): Error {
  if (error instanceof jose.JWTExpired) {
    return new InvalidTokenError(InvalidTokenReason.Expired, 'The token has expired.');
  }
  if (error instanceof jose.JWTClaimValidationFailed) {
    return new InvalidTokenError(
      InvalidTokenReason.Claims,
      `The token's "${error.claim}" claim is not accepted (${error.reason}).`,
    );
  }
  if (
    error instanceof jose.JWKSNoMatchingKey ||
    error instanceof jose.JWSSignatureVerificationFailed
  ) {
    return new InvalidTokenError(
      InvalidTokenReason.Signature,
      'No key of the identity provider verifies the token.',
    );
  }
  if (
    error instanceof jose.JWKSTimeout ||
    error instanceof jose.JWKSInvalid ||
    (error instanceof Error && !(error instanceof jose.JOSEError))
  ) {
    return new IdentityProviderUnavailableError(
      "the identity provider's key set could not be fetched",
      { cause: error },
    );
  }
  return new InvalidTokenError(
    InvalidTokenReason.Malformed,
    `The token is not a JWT signed with ${ACCEPTED_ALGORITHMS.join(' or ')}.`,
  );
}
