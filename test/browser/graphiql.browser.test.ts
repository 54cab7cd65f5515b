import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveChromium, launchChromium } from '../support/chromium.js';
import {
  startTestOidcProvider,
  TEST_AUDIENCE,
  type TestOidcProvider,
} from '../support/oidcProvider.js';
import { startTestServer, type TestServer } from '../support/server.js';

/** Records the page's Content-Security-Policy violations in `window.cspViolations`. */
const RECORD_CSP_VIOLATIONS = `
  window.cspViolations = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
  });
`;

/** GraphiQL as a user drives it: tabs, the editors, the run button. */
function graphiql(page: Page) {
  const editor = (kind: string) => page.locator(`.monaco-editor[data-uri*="${kind}"]`);
  // The editor shows spaces as no-break spaces.
  const text = async (kind: string) => (await editor(kind).innerText()).replace(/\u00a0/g, ' ');
  return {
    /** Loads the page; answers its response once GraphiQL shows the tabs. */
    async open(url: string) {
      const response = await page.goto(url);
      // A window opened over stored tabs may add one (GraphiQL's own rule), so no count.
      await page.locator('.graphiql-tab', { hasText: 'BoardChanges' }).first().waitFor();
      return response!;
    },
    async tab(name: string) {
      const button = page.locator('.graphiql-tab', { hasText: name }).first().locator('button');
      // GraphiQL animates its tab bar, and a tab that moves under the pointer takes the
      // click for a drag: click again until the tab's operation shows.
      await expect
        .poll(
          async () => {
            await button.first().click();
            return text('operation');
          },
          { timeout: 30_000, interval: 1_000 },
        )
        .toContain(name);
    },
    /** Replaces the operation; insertText types no keystrokes, so no brackets are added. */
    async write(operation: string) {
      await editor('operation').click();
      await page.keyboard.press('Control+A');
      await page.keyboard.press('Delete');
      await page.keyboard.insertText(operation);
    },
    /** Runs the tab and answers the response once it contains `expected` (not there before). */
    async run(expected: string): Promise<Record<string, any>> {
      await page.locator('.graphiql-execute-button').click();
      await expect.poll(() => text('response'), { timeout: 15_000 }).toContain(expected);
      return JSON.parse(await text('response')) as Record<string, any>;
    },
    /** Types `json` into the tab's Headers editor. */
    async headers(json: string) {
      await page.getByText('Headers', { exact: true }).click();
      await editor('request-headers').click();
      await page.keyboard.press('Control+A');
      await page.keyboard.press('Delete');
      await page.keyboard.insertText(json);
    },
    response: () => text('response'),
    cspViolations: () => page.evaluate<string[]>('window.cspViolations'),
  };
}

describe.skipIf(!haveChromium('GraphiQL'))('GraphiQL in a browser', () => {
  let server: TestServer;
  let browser: Browser;
  beforeAll(async () => {
    server = await startTestServer();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('opens at 1280 px with tabs that teach, the instructions fully visible, and registers a user from the first tab', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.goto(`${server.url}/graphql`);
    const tabs = page.locator('.graphiql-tab');
    await expect
      .poll(() => tabs.allInnerTexts(), { timeout: 15_000 })
      .toEqual([
        'RegisterUser',
        'MyBoards',
        'CreateBoard',
        'RenameBoard',
        'Conflict',
        'BoardChanges',
        'SetMemberRole',
        'History',
      ]);
    const operation = page.locator('.monaco-editor[data-uri*="operation"]');
    // The editor shows spaces as no-break spaces.
    const text = async () => (await operation.innerText()).replace(/\u00a0/g, ' ');
    await expect.poll(text, { timeout: 15_000 }).toContain('Step 1 of 6');
    // Every comment line of the instructions ends inside the editor pane: nothing to scroll.
    const overflowing = await operation.evaluate((editor) => {
      const right = editor
        .querySelector('.monaco-scrollable-element')!
        .getBoundingClientRect().right;
      return [...editor.querySelectorAll('.view-line')]
        .filter((line) => line.textContent.trimStart().startsWith('#'))
        .filter((line) => line.firstElementChild!.getBoundingClientRect().right > right)
        .map((line) => line.textContent);
    });
    expect(overflowing).toEqual([]);
    await page.locator('.graphiql-execute-button').click();
    const response = page.locator('.monaco-editor[data-uri*="response"]');
    await expect.poll(() => response.innerText(), { timeout: 15_000 }).toContain('token');
    expect(await response.innerText()).toContain('RegisterUserSuccess');
    await context.close();
  });

  it('shows a change made by another client in a boardChanges subscription started in GraphiQL', async () => {
    const alice = await server.register('alice');
    const created = await server.gql(
      `mutation { createBoard(input: { name: "Launch" }) { ... on CreateBoardSuccess { board { id version } } } }`,
      {},
      alice.token,
    );
    const board = created.data!.createBoard.board as { id: string; version: number };

    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${server.url}/graphql`);
    const editor = (kind: string) => page.locator(`.monaco-editor[data-uri*="${kind}"]`);
    await editor('operation').click();
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    // insertText types no keystrokes, so the editor adds no closing brackets of its own.
    await page.keyboard.insertText(
      `subscription { boardChanges(boardId: "${board.id}") { cursor operation invalidated { typename fields version } } }`,
    );
    await page.getByText('Headers', { exact: true }).click();
    await editor('request-headers').click();
    await page.keyboard.insertText(`{ "Authorization": "Bearer ${alice.token}" }`);
    await page.locator('.graphiql-execute-button').click();

    // The subscription is live once the server counts it; then another client writes.
    await expect
      .poll(() => server.app.services.live.stats().subscribers, { timeout: 15_000 })
      .toBe(1);
    const renamed = await server.gql(
      `mutation ($i: RenameBoardInput!) { renameBoard(input: $i) { __typename } }`,
      { i: { boardId: board.id, name: 'Launch v2', expectedVersion: board.version } },
      alice.token,
    );
    expect(renamed.data!.renameBoard.__typename).toBe('RenameBoardSuccess');

    const response = editor('response');
    await expect.poll(() => response.innerText(), { timeout: 15_000 }).toContain('"renameBoard"');
    // The editor shows spaces as no-break spaces.
    const shown = (await response.innerText()).replace(/\u00a0/g, ' ');
    expect(JSON.parse(shown)).toEqual({
      data: {
        boardChanges: {
          cursor: expect.stringMatching(/^\d+$/),
          operation: 'renameBoard',
          invalidated: [{ typename: 'Board', fields: ['name'], version: board.version + 1 }],
        },
      },
    });
    await page.close();
  });
});

describe.skipIf(!haveChromium('GraphiQL sign-in'))('GraphiQL signed in once for every tab', () => {
  let server: TestServer;
  let browser: Browser;
  beforeAll(async () => {
    server = await startTestServer();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('signs every tab in with one registration, replays the RegisterUser tab, and shows a write of the first window in a subscription of a second one, under its CSP', async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    await context.addInitScript(RECORD_CSP_VIOLATIONS);
    const first = await context.newPage();
    const window1 = graphiql(first);
    const loaded = await window1.open(`${server.url}/graphql`);
    expect(loaded.headers()['content-security-policy']).toContain("script-src 'self'");

    // Step 1 as shipped, then again: the token it set is sent, and the answer is a replay.
    await window1.tab('RegisterUser');
    const registered = await window1.run('RegisterUserSuccess');
    const { user, replayed } = registered.data.registerUser as {
      user: { id: string };
      replayed: boolean;
    };
    expect(replayed).toBe(false);
    const again = await window1.run('"replayed": true');
    expect(again.data.registerUser).toEqual({ ...registered.data.registerUser, replayed: true });

    // Other tabs, nothing pasted: signed in as the registered user.
    await window1.tab('MyBoards');
    const mine = await window1.run('"me"');
    expect(mine.data.me).toEqual({ username: 'ada', displayName: 'Ada' });
    await window1.tab('CreateBoard');
    const created = await window1.run('CreateBoardSuccess');
    const board = created.data.createBoard.board as { id: string; version: number };

    // A second window: signed in already; it watches the board.
    const second = await context.newPage();
    const window2 = graphiql(second);
    await window2.open(`${server.url}/graphql`);
    await window2.tab('BoardChanges');
    await window2.write(
      `subscription BoardChanges { boardChanges(boardId: "${board.id}") { cursor operation actor { id } } }`,
    );
    await second.locator('.graphiql-execute-button').click();
    await expect
      .poll(() => server.app.services.live.stats().subscribers, { timeout: 15_000 })
      .toBe(1);

    // The first window writes (step 4); the second shows the change.
    await window1.tab('RenameBoard');
    await window1.write(
      `mutation RenameBoard { renameBoard(input: { boardId: "${board.id}", name: "Launch v2", expectedVersion: ${board.version} }) { __typename } }`,
    );
    expect((await window1.run('__typename')).data).toEqual({
      renameBoard: { __typename: 'RenameBoardSuccess' },
    });
    await expect.poll(() => window2.response(), { timeout: 15_000 }).toContain('"renameBoard"');
    expect(JSON.parse(await window2.response())).toEqual({
      data: {
        boardChanges: {
          cursor: expect.stringMatching(/^\d+$/),
          operation: 'renameBoard',
          actor: { id: user.id },
        },
      },
    });
    expect(await window1.cspViolations()).toEqual([]);
    expect(await window2.cspViolations()).toEqual([]);
    await context.close();
  });
});

describe.skipIf(!haveChromium('GraphiQL in OIDC mode'))(
  'GraphiQL with an identity provider',
  () => {
    let provider: TestOidcProvider;
    let server: TestServer;
    let browser: Browser;
    beforeAll(async () => {
      provider = await startTestOidcProvider();
      await provider.addKey('RS256');
      server = await startTestServer({
        env: { AUTH_ISSUER: provider.issuer, AUTH_AUDIENCE: TEST_AUDIENCE },
      });
      browser = await launchChromium();
    });
    afterAll(async () => {
      await browser?.close();
      await server?.close();
      await provider?.close();
    });

    it("signs every tab in with a provider's JWT pasted into one tab's Headers", async () => {
      const jwt = await provider.sign({ sub: 'subject-1', preferred_username: 'grace' });
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      const ui = graphiql(page);
      await ui.open(`${server.url}/graphql`);
      await ui.tab('MyBoards');
      await ui.headers(`{ "Authorization": "Bearer ${jwt}" }`);
      expect((await ui.run('"grace"')).data.me).toMatchObject({ username: 'grace' });
      // Another tab, its Headers empty: the same identity.
      await ui.tab('CreateBoard');
      const created = await ui.run('CreateBoardSuccess');
      const boardId = created.data.createBoard.board.id as string;
      const boards = await server.gql<{ boards: { id: string }[] }>('{ boards { id } }', {}, jwt);
      expect(boards.data!.boards.map((b) => b.id)).toEqual([boardId]);
      await page.close();
    });
  },
);
