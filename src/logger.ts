import { createRequire } from 'node:module';
import { pino, stdSerializers, type DestinationStream, type Logger } from 'pino';
import { activeLogIds } from './telemetry/spans.js';

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

/** Longest string a log record carries in a top-level field or an error's message/stack. */
export const MAX_LOGGED_STRING = 1_000;

/** `value` cut to {@link MAX_LOGGED_STRING} characters, for text a client may have chosen. */
export const boundedLogText = (value: string): string =>
  value.length > MAX_LOGGED_STRING ? `${value.slice(0, MAX_LOGGED_STRING)}… (cut)` : value;
const cut = boundedLogText;

/**
 * Record fields as logged: strings cut (a client's 20 KB id or operation name must not
 * fill the log), errors through pino's serializer with their message and stack cut.
 */
const boundedRecords = {
  serializers: {
    err: (error: Error) => {
      const serialized = stdSerializers.err(error);
      return {
        ...serialized,
        message: cut(serialized.message),
        ...(serialized.stack ? { stack: cut(serialized.stack) } : {}),
      };
    },
  },
  formatters: {
    log: (record: Record<string, unknown>) => {
      const bounded: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(record)) {
        bounded[key] = typeof value === 'string' ? cut(value) : value;
      }
      return bounded;
    },
  },
};

/**
 * The process logger (pino, a maintained structured logger fast enough for the hot
 * path). JSON lines on stdout, for log collectors; when stdout is a terminal and
 * pino-pretty is installed, coloured one-line records for people instead (pino-pretty
 * runs in pino's transport worker, off the event loop). Errors carry their stack. A line
 * logged while a span is active carries its `trace_id` and `span_id`.
 */
export function createLogger(
  level: string,
  options: { pretty?: boolean; destination?: DestinationStream } = {
    pretty: process.stdout.isTTY === true,
  },
): Logger {
  // trace_id/span_id of the active span, so a request's log lines lead to its trace.
  const base = { level, base: { service: 'corkboard' }, mixin: activeLogIds, ...boundedRecords };
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
  return options.destination ? pino(base, options.destination) : pino(base);
}
