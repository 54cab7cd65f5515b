import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium package; .ci/run installs it. No browser is downloaded. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Whether the browser checks can run here; when not, `what` is skipped with the reason printed. */
export function haveChromium(what: string): boolean {
  const found = existsSync(CHROMIUM);
  if (!found) {
    console.info(
      `[browser] ${what} check skipped: no Chromium at ${CHROMIUM} (apt-get install chromium)`,
    );
  }
  return found;
}

/** Headless Chromium with flags for a closed network: no background requests, no sandbox as root. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
