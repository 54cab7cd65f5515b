import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveChromium, launchChromium } from '../support/chromium.js';
import { startTestServer, type TestServer } from '../support/server.js';

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
