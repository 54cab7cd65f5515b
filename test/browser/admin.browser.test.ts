import { projections } from '../../src/boards/readModel.js';
import { mkdirSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveChromium, launchChromium } from '../support/chromium.js';
import { startTestServer, type TestServer } from '../support/server.js';

/** Screenshots land here (gitignored); CI may keep them as artifacts. */
const ARTIFACTS = 'test-artifacts';

describe.skipIf(!haveChromium('/admin'))('/admin in a browser', () => {
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

  it('shows the projections and runs a rebuild to 100% while another client keeps writing', async () => {
    const alice = await server.register('alice');
    const board = await server.gql(
      `mutation { createBoard(input: { name: "Admin" }) { ... on CreateBoardSuccess { board { id } } } }`,
      {},
      alice.token,
    );
    const boardId = board.data!.createBoard.board.id as string;
    const columns: string[] = [];
    for (let version = 1; columns.length < 5; version++) {
      const r = await server.gql(
        `mutation ($b: ID!, $v: Int!) { addColumn(input: { boardId: $b, name: "C", expectedVersion: $v }) {
          ... on AddColumnSuccess { column { id } } } }`,
        { b: boardId, v: version },
        alice.token,
      );
      columns.push(r.data!.addColumn.column.id as string);
    }
    const addCard = (column: string, title: string) =>
      server.gql(
        `mutation ($c: ID!, $t: String!) { addCard(input: { columnId: $c, title: $t }) { __typename } }`,
        { c: column, t: title },
        alice.token,
      );
    for (let i = 0; i < 100; i += 5) {
      await Promise.all(columns.map((c, j) => addCard(c, `seed ${i + j}`)));
    }

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const failures: string[] = [];
    page.on('pageerror', (error) => failures.push(error.message));
    page.on('requestfailed', (request) => failures.push(`request failed: ${request.url()}`));
    // The token rides in the fragment, which the page removes from the address bar.
    await page.goto(`${server.url}/admin#token=${server.app.admin.token}`);
    await expect.poll(() => page.locator('#projections tr').count()).toBe(projections.length);
    expect(page.url()).not.toContain('token');
    const generation = await page.locator('#generation').innerText();
    const cells = await page.locator('tr[data-projection="cards"] td').allInnerTexts();
    expect(cells[0]).toBe('cards');
    expect(Number(cells[1])).toBeGreaterThanOrEqual(106);
    expect(await page.locator('#lease').innerText()).toContain('(this server)');

    let writing = true;
    let written = 0;
    const writer = (async () => {
      for (let n = 0; writing; n++) {
        const r = await addCard(columns[n % columns.length]!, `live ${n}`);
        expect(r.data!.addCard.__typename).toBe('AddCardSuccess');
        written++;
      }
    })();
    await page.locator('#rebuild').click();
    await expect
      .poll(() => page.locator('#rebuild-state').getAttribute('data-state'), { timeout: 30_000 })
      .toBe('SUCCEEDED');
    const writtenDuringRebuild = written;
    writing = false;
    await writer;

    expect(writtenDuringRebuild).toBeGreaterThan(0);
    expect(await page.locator('#percent').innerText()).toBe('100%');
    expect(await page.locator('#progress').evaluate((p: HTMLProgressElement) => p.value)).toBe(1);
    await expect.poll(() => page.locator('#generation').innerText()).not.toBe(generation);
    expect(await page.locator('#rebuild').isDisabled()).toBe(false);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}/admin.png`, fullPage: true });
    expect(failures).toEqual([]);
    await page.close();
  }, 90_000);

  it('asks for the token and shows the refusal when it is wrong', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/admin`);
    expect(await page.locator('#panel').isHidden()).toBe(true);
    await page.locator('#token').fill('not-the-admin-token-0123456789abcdef');
    await page.locator('#token-form button').click();
    await expect.poll(() => page.locator('#connection').innerText()).toContain('Admin only');
    expect(await page.locator('#panel').isHidden()).toBe(true);
    await page.close();
  });
});
