import { describe, expect, it } from 'vitest';
import { InvalidCredentialsError, UsernameTakenError } from '../../src/boards/errors.js';
import { normalizeUsername, parseStreamName, usernameStream } from '../../src/boards/streams.js';
import { decideUser } from '../../src/boards/user/decide.js';
import { userEventFields } from '../../src/boards/user/events.js';
import { evolveUser, initialUserState } from '../../src/boards/user/state.js';
import { generateToken, hashToken } from '../../src/boards/user/token.js';
import { contextWithIds, given } from './deciderTestKit.js';

const register = {
  type: 'RegisterUser',
  data: { username: 'Alice', displayName: 'Alice A.' },
} as const;

describe('decideUser', () => {
  it('registers a user and claims the normalized username in the same decision', () => {
    const decision = decideUser(register, { claim: given.claim() }, contextWithIds('u1'));
    expect(decision).toEqual([
      {
        aggregate: 'user',
        id: 'u1',
        events: [
          {
            type: 'UserRegistered',
            data: { userId: 'u1', username: 'Alice', displayName: 'Alice A.' },
          },
        ],
      },
      {
        aggregate: 'username',
        id: 'alice',
        events: [{ type: 'UsernameClaimed', data: { userId: 'u1' } }],
      },
    ]);
  });

  it('refuses a username someone already claimed', () => {
    const claim = given.claim({ type: 'UsernameClaimed', data: { userId: 'u0' } });
    expect(() => decideUser(register, { claim }, contextWithIds('u1'))).toThrow(UsernameTakenError);
  });

  const registered = evolveUser(initialUserState, {
    type: 'UserRegistered',
    data: { userId: 'u1', username: 'Alice', displayName: 'A' },
  });
  const provision = {
    type: 'ProvisionUser',
    data: { userId: 's1', username: 'ada', fallbackUsername: 'ada-1234abcd', displayName: 'Ada' },
  } as const;

  it('provisions a subject under its username when nobody holds it', () => {
    const decision = decideUser(
      provision,
      {
        claim: given.claim(),
        provisioning: { user: initialUserState, fallbackClaim: given.claim() },
      },
      contextWithIds(),
    );
    expect(decision.map((c) => [c.aggregate, c.id])).toEqual([
      ['user', 's1'],
      ['username', 'ada'],
    ]);
  });

  it('provisions a subject under its fallback username when another user holds the first', () => {
    const claim = given.claim({ type: 'UsernameClaimed', data: { userId: 'u0' } });
    const decision = decideUser(
      provision,
      { claim, provisioning: { user: initialUserState, fallbackClaim: given.claim() } },
      contextWithIds(),
    );
    expect(decision[0]?.events[0]).toMatchObject({ data: { username: 'ada-1234abcd' } });
    expect(decision[1]).toMatchObject({ aggregate: 'username', id: 'ada-1234abcd' });
  });

  it('writes nothing for a subject whose user exists, and refuses when both names are held', () => {
    const held = given.claim({ type: 'UsernameClaimed', data: { userId: 'u0' } });
    expect(
      decideUser(
        provision,
        { claim: held, provisioning: { user: registered, fallbackClaim: held } },
        contextWithIds(),
      ),
    ).toEqual([]);
    expect(() =>
      decideUser(
        provision,
        { claim: held, provisioning: { user: initialUserState, fallbackClaim: held } },
        contextWithIds(),
      ),
    ).toThrow(UsernameTakenError);
  });

  it('sets a password only when the current one was given right (or none is set)', () => {
    const command = { type: 'SetPassword', data: { userId: 'u1', passwordHash: 'h2' } } as const;
    const base = { claim: given.claim(), user: registered };
    expect(
      decideUser(command, { ...base, currentPasswordMatches: true }, contextWithIds()),
    ).toEqual([
      {
        aggregate: 'user',
        id: 'u1',
        events: [{ type: 'PasswordSet', data: { passwordHash: 'h2' } }],
      },
    ]);
    expect(() =>
      decideUser(command, { ...base, currentPasswordMatches: false }, contextWithIds()),
    ).toThrow(InvalidCredentialsError);
  });

  it('evolves a registration into a registered user', () => {
    const state = evolveUser(initialUserState, {
      type: 'UserRegistered',
      data: { userId: 'u1', username: 'Alice', displayName: 'A', tokenHash: 'h' },
    });
    expect(state).toEqual({
      status: 'registered',
      userId: 'u1',
      username: 'Alice',
      displayName: 'A',
      tokenHash: 'h',
    });
  });

  it('reports a registration as touching username and displayName', () => {
    const fields = userEventFields({
      type: 'UserRegistered',
      data: { userId: 'u1', username: 'a', displayName: 'b', tokenHash: 'c' },
    });
    expect(fields).toEqual(['username', 'displayName']);
  });
});

describe('usernames and tokens', () => {
  it('treats case and compatibility forms of a username as one name', () => {
    expect(normalizeUsername('ALICE')).toBe('alice');
    expect(usernameStream('ＡＬＩＣＥ')).toBe('username-alice');
  });

  it('tells username claim streams from user streams', () => {
    expect(parseStreamName('username-al-ice')).toEqual({ kind: 'username', id: 'al-ice' });
    expect(parseStreamName('user-123')).toEqual({ kind: 'user', id: '123' });
    expect(parseStreamName('other-1')).toBeNull();
  });

  it('makes 32-byte base64url tokens and stores only their sha256', () => {
    const token = generateToken();
    expect(Buffer.from(token, 'base64url')).toHaveLength(32);
    expect(hashToken(token)).not.toContain(token);
    expect(hashToken(token)).toBe(hashToken(token));
  });
});
