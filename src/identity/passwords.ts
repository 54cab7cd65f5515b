import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * scrypt parameters of new password hashes: N = 2^15, r = 8, p = 1 (32 MiB, memory-hard),
 * a 16-byte random salt, a 32-byte key. Stored with the hash, so they can grow later
 * without invalidating old hashes.
 */
export const PASSWORD_HASH_PARAMS = { N: 2 ** 15, r: 8, p: 1, keyLength: 32, saltBytes: 16 };

/** Password length bounds (UTF-16 code units). */
export const PASSWORD_LIMITS = { min: 8, max: 256 } as const;

const PREFIX = 'scrypt';

function derive(
  password: string,
  salt: Buffer,
  N: number,
  r: number,
  p: number,
  keyLength: number,
) {
  const options: ScryptOptions = { N, r, p, maxmem: 256 * N * r };
  return new Promise<Buffer>((resolve, reject) =>
    scrypt(password.normalize('NFKC'), salt, keyLength, options, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
}

/** `scrypt$N$r$p$<salt b64url>$<key b64url>` of `password` (NFKC), with Node's scrypt. */
export async function hashPassword(password: string): Promise<string> {
  const { N, r, p, keyLength, saltBytes } = PASSWORD_HASH_PARAMS;
  const salt = randomBytes(saltBytes);
  const key = await derive(password, salt, N, r, p, keyLength);
  return [PREFIX, N, r, p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** A hash of a password nobody knows: what an unknown user's sign-in is checked against. */
let decoy: Promise<string> | null = null;

/**
 * Whether `password` matches `stored` (a {@link hashPassword} result), compared in
 * constant time. Without a stored hash (no such user, or no password set) it checks
 * against a decoy hash and answers false, so the answer takes as long either way.
 */
export async function verifyPassword(
  password: string,
  stored: string | undefined,
): Promise<boolean> {
  decoy ??= hashPassword(randomBytes(16).toString('base64url'));
  const hash = stored ?? (await decoy);
  const [prefix, n, r, p, salt, key] = hash.split('$');
  if (prefix !== PREFIX || !n || !r || !p || !salt || !key) return false;
  const expected = Buffer.from(key, 'base64url');
  const actual = await derive(
    password,
    Buffer.from(salt, 'base64url'),
    Number(n),
    Number(r),
    Number(p),
    expected.length,
  );
  return timingSafeEqual(actual, expected) && stored !== undefined;
}
