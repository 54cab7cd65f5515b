import type { IncomingMessage, ServerResponse } from 'node:http';
import { ADMIN_SECURITY_HEADERS, adminAsset } from './adminPage.js';
import { checkHealth, type HealthSources } from './health.js';
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
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
};

/**
 * Serves `/livez` (the process answers), `/readyz` (200 when `checkHealth` says ok,
 * else 503 with the reasons), `/health` (the whole report; 503 only when down),
 * `/metrics` (Prometheus text) and the `/admin` page. Returns whether it handled
 * the request, so the server can go on to GraphQL and its 404.
 */
export function createOpsRoutes(options: OpsRoutesOptions) {
  return async (req: IncomingMessage, res: ServerResponse, pathname: string): Promise<boolean> => {
    switch (pathname) {
      case OPS_PATHS.livez:
        json(res, 200, { status: 'ok' });
        return true;
      case OPS_PATHS.readyz: {
        const report = await checkHealth(options.health);
        const ready = report.status === 'ok';
        json(res, ready ? 200 : 503, { ready, status: report.status, reasons: report.reasons });
        return true;
      }
      case OPS_PATHS.health: {
        const report = await checkHealth(options.health);
        json(res, report.status === 'down' ? 503 : 200, report);
        return true;
      }
      case OPS_PATHS.metrics: {
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
