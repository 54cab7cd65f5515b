import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';

export type { Logger };

/** Whether pino-pretty (a dev dependency) is installed; a production install may omit it. */
function prettyAvailable(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

/**
 * The process logger (pino, a maintained structured logger fast enough for the hot
 * path). JSON lines on stdout, for log collectors; when stdout is a terminal and
 * pino-pretty is installed, coloured one-line records for people instead (pino-pretty
 * runs in pino's transport worker, off the event loop). Errors carry their stack.
 */
export function createLogger(
  level: string,
  options: { pretty?: boolean } = { pretty: process.stdout.isTTY === true },
): Logger {
  const base = { level, base: { service: 'corkboard' } };
  if (options.pretty && prettyAvailable()) {
    return pino({
      ...base,
      transport: {
        target: 'pino-pretty',
        options: {
          colorize: true,
          translateTime: 'SYS:HH:MM:ss.l',
          ignore: 'pid,hostname,service',
        },
      },
    });
  }
  return pino(base);
}
