import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';

const REGISTER = `mutation ($input: RegisterUserInput!) {
  registerUser(input: $input) {
    __typename
    ... on RegisterUserSuccess { token user { id } replayed }
    ... on ValidationError { field }
  }
}`;

interface Registered {
  registerUser: {
    __typename: string;
    token?: string;
    user?: { id: string };
    replayed?: boolean;
    field?: string;
  };
}

describe("registerUser's idempotency key, as the README states it", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(async () => {
    await s.close();
  });
  const register = (
    username: string,
    displayName: string,
    idempotencyKey: string,
    token?: string,
  ) => s.gql<Registered>(REGISTER, { input: { username, displayName, idempotencyKey } }, token);

  it('replays the same request, refuses the same key and username with another input, and treats another username as another request', async () => {
    const key = 'b2f7c1de-5a44-4c0e-9a57-3c1e0f6a2b91';
    const first = (await register('keyholder', 'Key Holder', key)).data!.registerUser;
    expect(first).toMatchObject({ __typename: 'RegisterUserSuccess', replayed: false });
    const again = (await register('keyholder', 'Key Holder', key)).data!.registerUser;
    expect(again).toEqual({ ...first, replayed: true });
    const changed = (await register('keyholder', 'Someone Else', key)).data!.registerUser;
    expect(changed).toEqual({ __typename: 'ValidationError', field: 'input.idempotencyKey' });
    const other = (await register('otherholder', 'Key Holder', key)).data!.registerUser;
    expect(other.__typename).toBe('RegisterUserSuccess');
    expect(other.user!.id).not.toBe(first.user!.id);
  });

  it("replays the same request sent with a bearer token (its own, or another user's): a registration is anonymous whoever asks", async () => {
    const key = '6d0f3f0e-93a4-4f4a-8a5e-0c9a3b1f7e22';
    const first = (await register('tabbed', 'Tabbed', key)).data!.registerUser;
    expect(first).toMatchObject({ __typename: 'RegisterUserSuccess', replayed: false });
    const withOwnToken = await register('tabbed', 'Tabbed', key, first.token);
    expect(withOwnToken.errors).toBeUndefined();
    expect(withOwnToken.data!.registerUser).toEqual({ ...first, replayed: true });
    const someoneElse = await s.register('someone-else');
    const withOtherToken = await register('tabbed', 'Tabbed', key, someoneElse.token);
    expect(withOtherToken.data!.registerUser).toEqual({ ...first, replayed: true });
    // A replay writes nothing: the token still works and names the same user.
    const me = await s.gql<{ me: { id: string } }>('{ me { id } }', {}, first.token);
    expect(me.data!.me.id).toBe(first.user!.id);
  });

  it('says on every mutation with a key whether the answer is a replay', async () => {
    const { token } = await s.register('replay-reader');
    const create = () =>
      s.gql<{ createBoard: { replayed: boolean; board: { id: string } } }>(
        `mutation { createBoard(input: { name: "Once", idempotencyKey: "create-once" }) {
          ... on CreateBoardSuccess { replayed board { id } } } }`,
        {},
        token,
      );
    const first = (await create()).data!.createBoard;
    const again = (await create()).data!.createBoard;
    expect(first.replayed).toBe(false);
    expect(again).toEqual({ replayed: true, board: first.board });
  });
});
