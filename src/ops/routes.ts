import type { IncomingMessage, ServerResponse } from 'node:http';
import { ADMIN_SECURITY_HEADERS, adminAsset } from './adminPage.js';
import { isAdminAuthorization } from '../graphql/auth.js';
import { checkHealth, type HealthSources } from './health.js';
import type { Logger } from '../logger.js';
import type { Metrics } from './metrics.js';

/** The operator endpoints besides GraphQL. */
export const OPS_PATHS = {
  livez: '/livez',
  readyz: '/readyz',
  health: '/health',
  metrics: '/metrics',
} as const;

export interface OpsRoutesOptions {
  health: HealthSources;
  metrics: Metrics;
  /**
   * `/metrics` answers only requests bearing this token (the admin token); null serves
   * it to anyone, for a listener that only the scraper reaches (`METRICS_PORT`).
   */
  metricsToken: string | null;
  /** Serve only `/metrics` (the separate metrics listener). @default false */
  metricsOnly?: boolean;
  /**
   * Where the detail behind `/readyz`'s codes goes (errors' messages included): one
   * warning each time the reasons change, not one per probe. @default not logged
   */
  logger?: Pick<Logger, 'warn' | 'info'>;
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
};

/**
 * Serves `/livez` (the process answers), `/readyz` (200 when `checkHealth` says ok,
 * else 503 with the reasons as `HealthReasonCode`s, never a message), `/health` (`ok`, `degraded` or `down` and nothing else:
 * the detail is the admin API's; 503 only when down), `/metrics` (Prometheus text, to
 * the bearer of `metricsToken`) and the `/admin` page. Returns whether it handled the
 * request, so the server can go on to GraphQL and its 404.
 */
export function createOpsRoutes(options: OpsRoutesOptions) {
  const { metricsToken, logger } = options;
  /** The reasons `/readyz` answered with last, to log only their changes. */
  let lastReasons = '';
  return async (req: IncomingMessage, res: ServerResponse, pathname: string): Promise<boolean> => {
    if (options.metricsOnly && pathname !== OPS_PATHS.metrics) return false;
    switch (pathname) {
      case OPS_PATHS.livez:
        json(res, 200, { status: 'ok' });
        return true;
      case OPS_PATHS.readyz: {
        const report = await checkHealth(options.health);
        const ready = report.status === 'ok';
        const reasons = report.reasons.join(',');
        if (reasons !== lastReasons) {
          if (ready) logger?.info('ready again');
          else logger?.warn({ reasons: report.reasons, details: report.details }, 'not ready');
          lastReasons = reasons;
        }
        // Codes only: whoever can reach the port may ask, and error messages stay inside.
        json(res, ready ? 200 : 503, { ready, status: report.status, reasons: report.reasons });
        return true;
      }
      case OPS_PATHS.health: {
        const { status } = await checkHealth(options.health);
        json(res, status === 'down' ? 503 : 200, { status });
        return true;
      }
      case OPS_PATHS.metrics: {
        if (
          metricsToken !== null &&
          !isAdminAuthorization(metricsToken, req.headers.authorization)
        ) {
          res.writeHead(401, {
            'content-type': 'application/json',
            'www-authenticate': 'Bearer realm="metrics"',
          });
          res.end(JSON.stringify({ error: 'send Authorization: Bearer <ADMIN_TOKEN>' }));
          return true;
        }
        const { contentType, body } = await options.metrics.render();
        res.writeHead(200, { 'content-type': contentType });
        res.end(body);
        return true;
      }
      default: {
        const asset = req.method === 'GET' || req.method === 'HEAD' ? adminAsset(pathname) : null;
        if (!asset) return false;
        res.writeHead(200, { 'content-type': asset.contentType, ...ADMIN_SECURITY_HEADERS });
        res.end(req.method === 'HEAD' ? undefined : asset.body);
        return true;
      }
    }
  };
}
