import { ADMIN_PATHS } from './adminPage.js';
import { OPS_PATHS } from './routes.js';

/** Where a generated admin token may be shown: never into the log stream. */
export type AdminTokenOutput = 'stdout' | 'stderr' | 'nowhere';

/**
 * Where the start banner may show a generated admin token: on stdout only when it is an
 * interactive terminal (then logs there are pretty lines for a person, not a collected
 * stream); otherwise on stderr in development, and nowhere in production, where stdout
 * and stderr are the JSON log stream a collector keeps.
 */
export function adminTokenOutput(stdoutIsTerminal: boolean, production: boolean): AdminTokenOutput {
  if (stdoutIsTerminal) return 'stdout';
  return production ? 'nowhere' : 'stderr';
}

/**
 * The start banner's operator lines, and the line that carries a generated admin token
 * (ADMIN_TOKEN unset) when there is one, for the caller to write where
 * {@link adminTokenOutput} allows. The token rides in the URL fragment, which browsers
 * do not send. `metricsUrl`: the separate metrics listener, when there is one.
 */
export function adminBanner(
  url: string,
  admin: { token: string; generated: boolean },
  metricsUrl?: string,
): { lines: string; tokenLine: string | null } {
  const metrics = metricsUrl
    ? `  Metrics:  ${metricsUrl}`
    : `  Metrics:  ${url}${OPS_PATHS.metrics} (Authorization: Bearer <ADMIN_TOKEN>)`;
  const lines = [
    metrics,
    `  Ready:    ${url}${OPS_PATHS.readyz}`,
    admin.generated
      ? `  Admin:    ${url}${ADMIN_PATHS.page} (ADMIN_TOKEN unset: a random one, shown only on a terminal or, in development, on stderr)`
      : `  Admin:    ${url}${ADMIN_PATHS.page} (token: ADMIN_TOKEN)`,
  ];
  const tokenLine = admin.generated
    ? `  Admin:    ${url}${ADMIN_PATHS.page}#token=${admin.token}\n` +
      `            (npm run rebuild needs ADMIN_TOKEN=${admin.token})`
    : null;
  return { lines: `${lines.join('\n')}\n`, tokenLine };
}
