import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The process logger: JSON lines on stdout (pino, a maintained structured logger
 * fast enough for the hot path). Errors are serialised with their stack.
 */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'corkboard' } });
}
