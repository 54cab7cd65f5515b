import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDemo } from '../../scripts/build-demo.js';
import { DEMO_PATHS } from '../../src/demo/demoPage.js';
import {
  createCorkboardClient,
  type CorkboardClient,
} from '../../src/sdk/createCorkboardClient.js';
import { haveChromium, launchChromium } from '../support/chromium.js';
import { NO_CLIENT_LIMITS, startTestServer, type TestServer } from '../support/server.js';

/**
 * The /demo page as two people use it: Alice and Bob, each in a browser context of
 * their own (separate storage, separate sockets), on one board. One server and one
 * Chromium serve every test; each test gets a fresh board. Waits are on what the
 * page shows (DOM state), never on sleeps.
 *
 * `DEMO_SCREENSHOTS=docs/images` also saves the README's screenshots.
 */

/** Records the page's Content-Security-Policy violations in `window.cspViolations`. */
const RECORD_CSP_VIOLATIONS = `
  window.cspViolations = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
  });
`;

const SCREENSHOTS = process.env.DEMO_SCREENSHOTS;
const COLUMNS = ['To do', 'Doing', 'Done'] as const;
type ColumnName = (typeof COLUMNS)[number];

interface User {
  id: string;
  username: string;
  displayName: string;
  token: string;
  api: CorkboardClient;
}

interface TestBoard {
  id: string;
  columns: Record<ColumnName, string>;
}

describe.skipIf(!haveChromium('/demo'))('the /demo board, two users in Chromium', () => {
  let server: TestServer;
  let browser: Browser;
  let alice: User;
  let bob: User;
  let a: { context: BrowserContext; page: Page };
  let b: { context: BrowserContext; page: Page };

  const graphqlUrl = () => `${server.url}/graphql`;

  async function register(username: string, displayName: string): Promise<User> {
    const anonymous = createCorkboardClient({ url: graphqlUrl() });
    const result = await anonymous.registerUser({ input: { username, displayName } });
    if (result.__typename !== 'RegisterUserSuccess') throw new Error(result.__typename);
    const api = createCorkboardClient({ url: graphqlUrl(), token: result.token });
    return { ...result.user, token: result.token, api };
  }

  /** A board of Alice's with the demo's three columns, Bob a member. */
  async function newBoard(name: string): Promise<TestBoard> {
    const created = await alice.api.createBoard({ input: { name } });
    if (created.__typename !== 'CreateBoardSuccess') throw new Error(created.__typename);
    let version = created.board.version;
    const columns = {} as Record<ColumnName, string>;
    for (const column of COLUMNS) {
      const added = await alice.api.addColumn({
        input: { boardId: created.board.id, name: column, expectedVersion: version },
      });
      if (added.__typename !== 'AddColumnSuccess') throw new Error(added.__typename);
      version = added.board.version;
      columns[column] = added.column.id;
    }
    const member = await alice.api.addMember({
      input: { boardId: created.board.id, username: bob.username, expectedVersion: version },
    });
    if (member.__typename !== 'AddMemberSuccess') throw new Error(member.__typename);
    return { id: created.board.id, columns };
  }

  async function addCard(user: User, columnId: string, title: string) {
    const added = await user.api.addCard({ input: { columnId, title } });
    if (added.__typename !== 'AddCardSuccess') throw new Error(added.__typename);
    return added.card;
  }

  /** A signed-in browser context: the session the page keeps, set before it loads. */
  async function signedIn(user: User) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 760 } });
    const session = JSON.stringify({
      id: user.id,
      username: user.username,
      displayName: user.displayName,
      token: user.token,
    });
    await context.addInitScript(
      `localStorage.setItem('corkboard-demo-session', ${JSON.stringify(session)});${RECORD_CSP_VIOLATIONS}`,
    );
    return { context, page: await context.newPage() };
  }

  /** Opens the board and waits until its columns show and the socket is live. */
  async function open(page: Page, board: TestBoard) {
    await page.goto(`${server.url}${DEMO_PATHS.page}#/board/${encodeURIComponent(board.id)}`);
    await page.locator(`[data-testid=board][data-board-id="${board.id}"]`).waitFor();
    await expect.poll(() => page.locator('[data-testid=column]').count()).toBe(COLUMNS.length);
    await page.locator('[data-testid=connection][data-state=live]').waitFor();
  }

  const column = (page: Page, name: ColumnName) =>
    page.locator(`[data-testid=column][data-column-name="${name}"]`);
  const card = (page: Page, id: string) => page.locator(`[data-testid=card][data-card-id="${id}"]`);
  /** Each column's card titles in order, as the page shows them. */
  const shown = (page: Page) =>
    page.$$eval('[data-testid=column]', (columns) =>
      columns.map((c) => [
        c.getAttribute('data-column-name'),
        [...c.querySelectorAll('[data-testid=card]')].map((card) => [
          card.getAttribute('data-title'),
          card.querySelector('[data-testid=card-description]')?.textContent ?? '',
        ]),
      ]),
    );
  const screenshot = async (page: Page, name: string) => {
    if (!SCREENSHOTS) return;
    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
  };

  beforeAll(async () => {
    const built = await buildDemo();
    expect(built.jsGzipBytes).toBeGreaterThan(0);
    server = await startTestServer({ env: NO_CLIENT_LIMITS });
    browser = await launchChromium();
    alice = await register('alice', 'Alice');
    bob = await register('bob', 'Bob');
    a = await signedIn(alice);
    b = await signedIn(bob);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('signs a new user in with the embedded identity and shows their boards, under a CSP the page never violates', async () => {
    const context = await browser.newContext();
    await context.addInitScript(RECORD_CSP_VIOLATIONS);
    const page = await context.newPage();
    const response = await page.goto(`${server.url}${DEMO_PATHS.page}`);
    expect(response!.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.getByLabel('Username').fill('carol');
    await page.getByLabel('Display name').fill('Carol');
    await page.locator('form button[type=submit]').click();
    await page.getByRole('heading', { name: 'Your boards' }).waitFor();
    await page.getByLabel('New board').fill('Carol’s plans');
    await page.getByRole('button', { name: 'Create board' }).click();
    await expect.poll(() => page.locator('[data-testid=column]').count()).toBe(COLUMNS.length);
    await page.locator('[data-testid=connection][data-state=live]').waitFor();
    expect(await page.getByTestId('viewer').innerText()).toContain('Carol');
    expect(await page.evaluate<string[]>('window.cspViolations')).toEqual([]);
    await context.close();
  });

  it('A drags a card to another column and B sees it there within 1 s, with no reload and no request; the keyboard moves it too', async () => {
    const board = await newBoard('Launch');
    const { id: cardId } = await addCard(alice, board.columns['To do'], 'Write the README');
    await addCard(alice, board.columns['To do'], 'Record the demo');
    await open(a.page, board);
    await open(b.page, board);
    await card(b.page, cardId).waitFor();
    await b.page.evaluate('window.notReloaded = true');
    const requests: string[] = [];
    b.page.on('request', (request) => requests.push(request.url()));
    let sentAt = 0;
    a.page.on('request', (request) => {
      if (request.postData()?.includes('moveCard')) sentAt ||= Date.now();
    });
    // B notes when the card shows in Doing (a DOM observer: no polling delay).
    const seenAt = b.page.evaluate(
      (id) =>
        new Promise<number>((resolve) => {
          const check = () =>
            document.querySelector(
              `[data-column-name="Doing"] [data-testid=card][data-card-id="${id}"]`,
            );
          if (check()) return resolve(Date.now());
          new MutationObserver((_, observer) => {
            if (check()) {
              observer.disconnect();
              resolve(Date.now());
            }
          }).observe(document.body, { subtree: true, childList: true });
        }),
      cardId,
    );

    const from = (await card(a.page, cardId).boundingBox())!;
    const to = (await column(a.page, 'Doing').boundingBox())!;
    await a.page.mouse.move(from.x + from.width / 2, from.y + 12);
    await a.page.mouse.down();
    await a.page.mouse.move(from.x + from.width / 2 + 20, from.y + 20, { steps: 4 });
    await a.page.mouse.move(to.x + to.width / 2, to.y + 60, { steps: 10 });
    await a.page.mouse.up();
    await column(a.page, 'Doing').locator(`[data-card-id="${cardId}"]`).waitFor();

    const seen = await seenAt;
    expect(sentAt).toBeGreaterThan(0);
    expect(seen - sentAt).toBeLessThan(1_000);
    expect(requests).toEqual([]);
    expect(await b.page.evaluate('window.notReloaded')).toBe(true);
    // B sees who moved it, in the list of changes by others.
    await expect
      .poll(() => b.page.getByTestId('activity').innerText())
      .toContain('Alice: moveCard');
    await screenshot(b.page, 'demo-board-two-users');

    // The keyboard: focus the card and Alt+→ moves it on to Done.
    await card(a.page, cardId).focus();
    await a.page.keyboard.press('Alt+ArrowRight');
    await column(b.page, 'Done').locator(`[data-card-id="${cardId}"]`).waitFor();
    await column(a.page, 'Done').locator(`[data-card-id="${cardId}"]`).waitFor();
    expect(await shown(b.page)).toEqual(await shown(a.page));
  });

  /** Opens a card's editor on a page; the edit keeps the version it started from. */
  const edit = async (page: Page, id: string) => {
    await card(page, id).getByRole('button', { name: 'Edit' }).click();
    return card(page, id).locator('form.editor');
  };

  it('A and B edit different fields of one card at once: both see the merged card', async () => {
    const board = await newBoard('Merge');
    const { id: cardId } = await addCard(alice, board.columns['To do'], 'Plan the offsite');
    await open(a.page, board);
    await open(b.page, board);
    // Both editors open on the same version; B saves after A, from that stale version.
    const editorA = await edit(a.page, cardId);
    const editorB = await edit(b.page, cardId);
    await editorA.getByLabel('Title').fill('Plan the offsite in May');
    await editorB.getByLabel('Description').fill('Budget: 40 people');
    await editorA.getByRole('button', { name: 'Save' }).click();
    await b.page
      .locator(`[data-card-id="${cardId}"][data-title="Plan the offsite in May"]`)
      .waitFor();
    await editorB.getByRole('button', { name: 'Save' }).click();
    expect(await card(b.page, cardId).getByTestId('card-message').innerText()).toContain('merged');
    const merged = [
      ['To do', [['Plan the offsite in May', 'Budget: 40 people']]],
      ['Doing', []],
      ['Done', []],
    ];
    for (const page of [a.page, b.page]) {
      await expect.poll(() => shown(page), { timeout: 15_000 }).toEqual(merged);
    }
    expect(await a.page.getByTestId('conflict').count()).toBe(0);
    expect(await b.page.getByTestId('conflict').count()).toBe(0);
  });

  it('A and B edit the same field: the second sees the conflict explained, nothing is overwritten until B chooses', async () => {
    const board = await newBoard('Conflict');
    const { id: cardId } = await addCard(alice, board.columns['To do'], 'Name the release');
    await open(a.page, board);
    await open(b.page, board);
    const editorA = await edit(a.page, cardId);
    const editorB = await edit(b.page, cardId);
    await editorA.getByLabel('Title').fill('Release “Aurora”');
    await editorB.getByLabel('Title').fill('Release “Borealis”');
    await editorA.getByRole('button', { name: 'Save' }).click();
    await b.page.locator(`[data-card-id="${cardId}"][data-title="Release “Aurora”"]`).waitFor();
    await editorB.getByRole('button', { name: 'Save' }).click();
    const conflict = card(b.page, cardId).getByTestId('conflict');
    await conflict.waitFor();
    expect(await conflict.innerText()).toMatch(/Alice changed title \(version \d+\)/);
    expect(await conflict.innerText()).toContain('Release “Aurora”');
    await screenshot(b.page, 'demo-conflict');
    // Nothing was written over Alice's title.
    const fresh = await alice.api.card({ id: cardId });
    expect(fresh?.__typename === 'Card' && fresh.title).toBe('Release “Aurora”');
    await conflict.getByRole('button', { name: 'Save mine over theirs' }).click();
    for (const page of [a.page, b.page]) {
      await page.locator(`[data-card-id="${cardId}"][data-title="Release “Borealis”"]`).waitFor();
    }
    // The card's history says who wrote what over what.
    await card(b.page, cardId).getByRole('button', { name: 'History' }).click();
    const history = card(b.page, cardId).getByTestId('history-entry');
    await expect.poll(() => history.count()).toBeGreaterThanOrEqual(3);
    const entries = await history.allInnerTexts();
    expect(entries[0]).toContain('Bob');
    expect(entries[0]).toContain('title: Release “Aurora” → Release “Borealis”');
    expect(entries[1]).toContain('Alice');
    expect(entries[1]).toContain('title: Name the release → Release “Aurora”');
    await screenshot(b.page, 'demo-history');
  });

  it('a 4th card into a column with WIP limit 3 is refused on the page', async () => {
    const board = await newBoard('WIP');
    await open(a.page, board);
    await open(b.page, board);
    const doing = column(a.page, 'Doing');
    await doing.getByLabel('WIP limit of Doing').fill('3');
    await doing.getByRole('button', { name: 'Set WIP' }).click();
    await expect.poll(() => column(b.page, 'Doing').getByTestId('wip').innerText()).toBe('0 / 3');
    for (const title of ['One', 'Two', 'Three']) {
      await doing.getByLabel('New card in Doing').fill(title);
      await doing.getByRole('button', { name: 'Add' }).click();
      await doing.locator(`[data-testid=card][data-title="${title}"]`).waitFor();
    }
    await doing.getByLabel('New card in Doing').fill('Four');
    await doing.getByRole('button', { name: 'Add' }).click();
    const alert = doing.getByTestId('column-alert');
    await alert.waitFor();
    expect(await alert.innerText()).toContain('WIP limit of 3');
    expect(await doing.locator('[data-testid=card]').count()).toBe(3);
    await expect.poll(() => column(b.page, 'Doing').getByTestId('wip').innerText()).toBe('3 / 3');
    expect(await column(b.page, 'Doing').locator('[data-title="Four"]').count()).toBe(0);
    await screenshot(a.page, 'demo-wip-refused');
  });

  it('archived cards of a column are shown and restored, on both pages, kept by the pushes with no read of their own; the owner archives the board (read-only on both pages) and restores it', async () => {
    const board = await newBoard('Restore');
    const old = await addCard(alice, board.columns['To do'], 'Old idea');
    await addCard(alice, board.columns['To do'], 'Current idea');
    const archived = await alice.api.archiveCard({
      input: { cardId: old.id, expectedVersion: old.version },
    });
    expect(archived.__typename).toBe('ArchiveCardSuccess');
    await open(a.page, board);
    await open(b.page, board);
    expect(await card(a.page, old.id).count()).toBe(0);
    for (const page of [a.page, b.page]) {
      await column(page, 'To do').getByRole('button', { name: 'Show archived' }).click();
      await column(page, 'To do')
        .locator(`[data-testid=archived-card][data-card-id="${old.id}"]`)
        .waitFor();
    }
    await screenshot(a.page, 'demo-archived-cards');
    // From here on the open lists change with the board's pushes alone.
    const archivedReads: string[] = [];
    for (const page of [a.page, b.page]) {
      page.on('request', (request) => {
        if (request.postData()?.includes('ArchivedCards')) archivedReads.push(request.url());
      });
    }
    await column(a.page, 'To do').getByRole('button', { name: 'Restore Old idea' }).click();
    // Back where it was (before the card added after it), on both pages; out of both lists.
    const restored = [
      [
        'To do',
        [
          ['Old idea', ''],
          ['Current idea', ''],
        ],
      ],
      ['Doing', []],
      ['Done', []],
    ];
    for (const page of [a.page, b.page]) {
      await expect.poll(() => shown(page)).toEqual(restored);
      await expect
        .poll(() => column(page, 'To do').locator('[data-testid=archived-card]').count())
        .toBe(0);
    }

    // A card archived by another member shows in the open lists.
    const current = await alice.api.column({ id: board.columns['To do'] });
    const currentCard =
      current?.__typename === 'Column' &&
      current.cards.edges.find((edge) => edge.node.title === 'Current idea')!.node;
    if (!currentCard) throw new Error('no Current idea card');
    const archivedAgain = await alice.api.archiveCard({
      input: { cardId: currentCard.id, expectedVersion: currentCard.version },
    });
    expect(archivedAgain.__typename).toBe('ArchiveCardSuccess');
    for (const page of [a.page, b.page]) {
      await column(page, 'To do')
        .locator(`[data-testid=archived-card][data-card-id="${currentCard.id}"]`)
        .waitFor();
    }
    expect(archivedReads).toEqual([]);

    // The owner archives the board: both pages say it is read-only and disable writing.
    await a.page.getByRole('button', { name: 'Archive board' }).click();
    for (const page of [a.page, b.page]) {
      await expect.poll(() => page.getByTestId('read-only').innerText()).toContain('archived');
      expect(await column(page, 'To do').getByRole('button', { name: 'Add' }).isDisabled()).toBe(
        true,
      );
      expect(await card(page, old.id).getByRole('button', { name: 'Edit' }).isDisabled()).toBe(
        true,
      );
    }
    const write = await bob.api.addCard({
      input: { columnId: board.columns['To do'], title: 'Sneaked in' },
    });
    expect(write.__typename).toBe('BoardArchivedError');
    await a.page.getByRole('button', { name: 'Restore board' }).click();
    for (const page of [a.page, b.page]) {
      await expect.poll(() => page.getByTestId('read-only').count()).toBe(0);
      expect(await column(page, 'To do').getByRole('button', { name: 'Add' }).isEnabled()).toBe(
        true,
      );
    }
    await column(b.page, 'To do').getByLabel('New card in To do').fill('After the restore');
    await column(b.page, 'To do').getByRole('button', { name: 'Add' }).click();
    await column(a.page, 'To do').locator('[data-title="After the restore"]').waitFor();
  });

  it("A removes B from the board and B's page leaves the board at once, saying why", async () => {
    const board = await newBoard('Removal');
    // Another board of B's, opened once B is off the first one.
    const next = await newBoard('After the removal');
    await addCard(alice, board.columns['To do'], 'Secret plan');
    await open(a.page, board);
    await open(b.page, board);
    // Each page shows the members with their roles; only the owner gets the controls.
    const bobRow = a.page.locator('[data-testid=member][data-username=bob]');
    await expect.poll(() => bobRow.getAttribute('data-role')).toBe('EDITOR');
    await expect
      .poll(() =>
        b.page.locator('[data-testid=member][data-username=alice]').getAttribute('data-role'),
      )
      .toBe('OWNER');
    expect(await b.page.getByRole('button', { name: 'Remove alice' }).count()).toBe(0);
    await screenshot(a.page, 'demo-members');
    let sentAt = 0;
    a.page.on('request', (request) => {
      if (request.postData()?.includes('removeMember')) sentAt ||= Date.now();
    });
    // B notes when its board disappears (a DOM observer: no polling delay).
    const goneAt = b.page.evaluate(
      () =>
        new Promise<number>((resolve) => {
          const gone = () => !document.querySelector('[data-testid=board]');
          if (gone()) return resolve(Date.now());
          new MutationObserver((_, observer) => {
            if (gone()) {
              observer.disconnect();
              resolve(Date.now());
            }
          }).observe(document.body, { subtree: true, childList: true });
        }),
    );
    await a.page.getByRole('button', { name: 'Remove bob' }).click();
    await expect.poll(() => bobRow.count()).toBe(0);
    const gone = await goneAt;
    expect(sentAt).toBeGreaterThan(0);
    expect(gone - sentAt).toBeLessThan(1_000);
    // The reason is the SDK's typed one: removed by an owner (not "gone", not "left").
    const notice = await b.page.getByTestId('notice').innerText();
    expect(notice).toContain('An owner removed you');
    expect(notice).toContain('no longer a member');
    // B's boards list (the page it went to) no longer offers the board.
    await b.page.getByRole('heading', { name: 'Your boards' }).waitFor();
    await expect.poll(() => b.page.getByTestId('boards').innerText()).not.toContain('Removal');
    expect(await bob.api.board({ id: board.id })).toBeNull();
    await screenshot(b.page, 'demo-removed');
    // The notice was about that board: it goes when B opens another one.
    await b.page.getByTestId('boards').getByText('After the removal').click();
    await b.page.locator(`[data-testid=board][data-board-id="${next.id}"]`).waitFor();
    expect(await b.page.getByTestId('notice').count()).toBe(0);
  });

  it('B leaves the board: the page says B left, not that someone removed B', async () => {
    const board = await newBoard('Leaving');
    await open(b.page, board);
    await b.page.getByRole('button', { name: 'Leave board' }).click();
    await b.page.getByRole('heading', { name: 'Your boards' }).waitFor();
    const notice = await b.page.getByTestId('notice').innerText();
    expect(notice).toContain('You left the board.');
    expect(notice).not.toContain('removed');
    await expect.poll(() => b.page.getByTestId('boards').innerText()).not.toContain('Leaving');
    expect(await bob.api.board({ id: board.id })).toBeNull();
  });

  it('a viewer sees a read-only board, and a write the server refuses is explained', async () => {
    const board = await newBoard('Viewer');
    const { id: cardId } = await addCard(alice, board.columns['To do'], 'Read me');
    await open(a.page, board);
    await open(b.page, board);
    // B opens the editor while still an editor; then A makes B a viewer.
    const editor = await edit(b.page, cardId);
    await editor.getByLabel('Title').fill('Changed by a viewer');
    await a.page.getByLabel('Role of bob').selectOption('VIEWER');
    await expect
      .poll(() =>
        b.page.locator('[data-testid=member][data-username=bob]').getAttribute('data-role'),
      )
      .toBe('VIEWER');
    expect(await b.page.getByTestId('read-only').innerText()).toContain('viewer');
    expect(await column(b.page, 'To do').getByRole('button', { name: 'Add' }).isDisabled()).toBe(
      true,
    );
    expect(
      await column(b.page, 'To do').getByRole('button', { name: 'Set WIP' }).isDisabled(),
    ).toBe(true);
    expect(await b.page.getByRole('button', { name: 'Archive board' }).count()).toBe(0);
    // The editor opened before the change still sends; the server refuses and the page says why.
    await editor.getByRole('button', { name: 'Save' }).click();
    const message = card(b.page, cardId).getByTestId('card-message');
    await message.waitFor();
    expect(await message.innerText()).toContain('Viewers may not change the board');
    const fresh = await alice.api.card({ id: cardId });
    expect(fresh?.__typename === 'Card' && fresh.title).toBe('Read me');
    await card(b.page, cardId).getByRole('button', { name: 'Cancel' }).click();
    expect(await card(b.page, cardId).getByRole('button', { name: 'Edit' }).isDisabled()).toBe(
      true,
    );
    await screenshot(b.page, 'demo-viewer');
  });

  it('B goes offline, A makes 20 changes, B comes back and converges without a reload', async () => {
    const board = await newBoard('Offline');
    const { id: first } = await addCard(alice, board.columns['To do'], 'Card 0');
    await open(a.page, board);
    await open(b.page, board);
    await card(b.page, first).waitFor();
    await b.page.evaluate('window.notReloaded = true');
    await b.context.setOffline(true);
    await b.page.locator('[data-testid=connection][data-state=reconnecting]').waitFor();
    // 20 changes: 10 cards added, 5 of them moved, 5 edited.
    const cards = [];
    for (let i = 1; i <= 10; i++)
      cards.push(await addCard(alice, board.columns['To do'], `Card ${i}`));
    for (const { id, version } of cards.slice(0, 5)) {
      const moved = await alice.api.moveCard({
        input: { cardId: id, toColumnId: board.columns.Doing, expectedVersion: version },
      });
      expect(moved.__typename).toBe('MoveCardSuccess');
    }
    for (const { id, version } of cards.slice(5)) {
      const edited = await alice.api.editCard({
        input: { cardId: id, description: 'edited offline', expectedVersion: version },
      });
      expect(edited.__typename).toBe('EditCardSuccess');
    }
    await expect.poll(() => a.page.locator('[data-testid=card]').count()).toBe(11);
    await expect.poll(async () => JSON.stringify(await shown(a.page))).toContain('edited offline');
    // B, still offline, shows none of it.
    expect(await b.page.locator('[data-testid=card]').count()).toBe(1);
    await b.context.setOffline(false);
    await b.page.locator('[data-testid=connection][data-state=live]').waitFor();
    const expected = await shown(a.page);
    await expect.poll(() => shown(b.page), { timeout: 15_000 }).toEqual(expected);
    expect(await b.page.evaluate('window.notReloaded')).toBe(true);
  });
});
