import { createServer } from 'node:net';
import type { Logger } from './logger.js';

/** Signals that stop the server: drain, then exit 0. */
export const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/**
 * Fails fast, with one line, when `port` on `host` cannot be listened on (another process
 * has it), before anything slow (an embedded mongod) starts. Port 0 always passes.
 * `settings` names the variables that set them, for the message.
 */
export async function assertPortAvailable(
  host: string,
  port: number,
  settings: { host: string; port: string } = { host: 'HOST', port: 'PORT' },
): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new PortUnavailable(
          error.code === 'EADDRINUSE'
            ? `port ${port} on ${host} is already in use; stop what holds it or set ${settings.port}`
            : `cannot listen on ${host}:${port} (${error.code ?? error.message}); set ${settings.host}/${settings.port}`,
        ),
      ),
    );
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve()));
  });
}

/** The configured port cannot be listened on; `message` is one line. */
export class PortUnavailable extends Error {
  override readonly name = 'PortUnavailable';
}

/**
 * Calls `stop` once on SIGTERM or SIGINT, then exits 0 (1 if stopping failed). A second
 * signal while stopping exits at once with 1. When the process was started by
 * `npm start` (npm sets `npm_lifecycle_event`) and npm goes away without passing a
 * signal on (killed outright), the server is re-parented: that, seen within a second,
 * stops it too, so a dev server never outlives its terminal.
 */
export function stopOnSignals(stop: () => Promise<void>, logger: Logger): void {
  let stopping = false;
  const shutdown = (reason: string) => {
    if (stopping) {
      logger.warn({ reason }, 'second stop request: exiting without draining');
      process.exit(1);
    }
    stopping = true;
    logger.info({ reason }, 'shutting down: draining requests');
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'unclean shutdown');
        process.exit(1);
      },
    );
  };
  for (const signal of STOP_SIGNALS) process.on(signal, () => shutdown(signal));
  if (process.env.npm_lifecycle_event) {
    const parent = process.ppid;
    setInterval(() => {
      if (process.ppid !== parent) shutdown('npm exited');
    }, 1_000).unref();
  }
}
