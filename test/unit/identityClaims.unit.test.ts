import { describe, expect, it } from 'vitest';
import { inputLimits } from '../../src/boards/validation.js';
import { DEFAULT_USERNAME_CLAIMS } from '../../src/config.js';
import {
  provisionedName,
  subjectSuffix,
  usernameFromClaim,
  userIdOfSubject,
} from '../../src/identity/claims.js';
import { JWKS_MAX_AGE_BOUNDS, jwksMaxAgeMs } from '../../src/identity/oidcVerifier.js';

const ISSUER = 'https://id.example.com/realms/main';

describe('usernames from claims', () => {
  it('keeps a username that is already valid', () => {
    expect(usernameFromClaim('ada.l-2')).toBe('ada.l-2');
  });

  it('replaces characters a username may not hold and cuts it to the limit', () => {
    expect(usernameFromClaim('grace@example.com')).toBe('grace_example.com');
    expect(usernameFromClaim('  Zoë Smith ')).toBe('Zo_Smith');
    expect(usernameFromClaim('x'.repeat(50))).toHaveLength(inputLimits.usernameMax);
  });

  it('refuses values that cannot make a username', () => {
    expect(usernameFromClaim('@@')).toBeNull();
    expect(usernameFromClaim(42)).toBeNull();
    expect(usernameFromClaim(undefined)).toBeNull();
  });

  it('tries preferred_username, then email, then a name made from the subject', () => {
    const claims = { sub: 's1', email: 'e@example.com' };
    expect(provisionedName(ISSUER, claims, DEFAULT_USERNAME_CLAIMS).username).toBe('e_example.com');
    expect(
      provisionedName(ISSUER, { ...claims, preferred_username: 'pref' }, DEFAULT_USERNAME_CLAIMS)
        .username,
    ).toBe('pref');
    expect(provisionedName(ISSUER, { sub: 's1' }, DEFAULT_USERNAME_CLAIMS).username).toBe(
      `user-${subjectSuffix(ISSUER, 's1')}`,
    );
  });

  it('derives the fallback username and the user id from the subject, always the same', () => {
    const name = provisionedName(ISSUER, { sub: 's1', preferred_username: 'y'.repeat(32) }, [
      'preferred_username',
    ]);
    expect(name.fallbackUsername).toBe(`${'y'.repeat(23)}-${subjectSuffix(ISSUER, 's1')}`);
    expect(name.fallbackUsername).toHaveLength(inputLimits.usernameMax);
    expect(userIdOfSubject(ISSUER, 's1')).toBe(userIdOfSubject(ISSUER, 's1'));
    expect(userIdOfSubject(ISSUER, 's1')).not.toBe(userIdOfSubject(`${ISSUER}/x`, 's1'));
  });

  it('takes the display name from `name`, or the username when it breaks the text rules', () => {
    const base = { sub: 's', preferred_username: 'ada' };
    expect(
      provisionedName(ISSUER, { ...base, name: ' Ada L. ' }, ['preferred_username']),
    ).toMatchObject({ displayName: 'Ada L.' });
    expect(
      provisionedName(ISSUER, { ...base, name: 'evil\u202ename' }, ['preferred_username'])
        .displayName,
    ).toBe('ada');
  });
});

describe('how long a key set is kept', () => {
  const { minMs, maxMs, defaultMs } = JWKS_MAX_AGE_BOUNDS;
  it('follows max-age within bounds', () => {
    expect(jwksMaxAgeMs('public, max-age=3600')).toBe(3_600_000);
    expect(jwksMaxAgeMs('max-age=1')).toBe(minMs);
    expect(jwksMaxAgeMs('max-age=99999999')).toBe(maxMs);
    expect(jwksMaxAgeMs('s-maxage=120')).toBe(120_000);
  });

  it('uses the least for no-cache and no-store, the default without a max-age', () => {
    expect(jwksMaxAgeMs('no-cache')).toBe(minMs);
    expect(jwksMaxAgeMs('no-store, max-age=3600')).toBe(minMs);
    expect(jwksMaxAgeMs('public')).toBe(defaultMs);
    expect(jwksMaxAgeMs(null)).toBe(defaultMs);
  });
});
