import { ADMIN_PATHS } from './adminPage.js';
import { OPS_PATHS } from './routes.js';

/**
 * The start banner's operator lines. A generated admin token (ADMIN_TOKEN unset) is
 * printed here, on the console only, never logged: whoever reads the console of the
 * process may administer it. It rides in the URL fragment, which browsers do not send.
 */
export function adminBanner(url: string, admin: { token: string; generated: boolean }): string {
  const lines = [
    `  Metrics:  ${url}${OPS_PATHS.metrics}   Ready: ${url}${OPS_PATHS.readyz}`,
    admin.generated
      ? `  Admin:    ${url}${ADMIN_PATHS.page}#token=${admin.token}\n` +
        `            (ADMIN_TOKEN unset: a random token for this process; npm run rebuild needs ADMIN_TOKEN=${admin.token})`
      : `  Admin:    ${url}${ADMIN_PATHS.page} (token: ADMIN_TOKEN)`,
  ];
  return `${lines.join('\n')}\n`;
}
