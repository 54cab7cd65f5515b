import { z } from 'zod';
import { EventStoreValidationError } from './errors.js';
import {
  ANY,
  NO_STREAM,
  STREAM_EXISTS,
  type AppendRequest,
  type ExpectedVersion,
} from './types.js';

/** Size limits of one append. MongoDB caps a document at 16 MiB; these keep far below it. */
export const appendLimits = {
  /** @default 256 */
  maxStreamNameLength: 256,
  /** @default 128 */
  maxEventTypeLength: 128,
  /** Serialized JSON size of one event's data. @default 64 KiB */
  maxEventBytes: 64 * 1024,
  /** Events in one commit, over all its streams. @default 1_000 */
  maxEventsPerCommit: 1_000,
  /** Serialized JSON size of one commit. @default 4 MiB */
  maxCommitBytes: 4 * 1024 * 1024,
  /** @default 200 */
  maxIdempotencyKeyLength: 200,
} as const;

const expectedVersion = z.union([
  z.literal(NO_STREAM),
  z.literal(STREAM_EXISTS),
  z.literal(ANY),
  z.number().int('must be an integer').nonnegative('must not be negative'),
]);

const newEvent = z.object({
  type: z.string().min(1, 'must not be empty').max(appendLimits.maxEventTypeLength),
  data: z.record(z.string(), z.unknown()),
  schemaVersion: z.number().int().positive().optional(),
});

const appendRequest = z.object({
  streams: z
    .array(
      z.object({
        stream: z
          .string()
          .min(1, 'must not be empty')
          .max(appendLimits.maxStreamNameLength)
          .refine((s) => s.trim() === s, 'must not start or end with white space'),
        expected: expectedVersion,
        events: z.array(newEvent),
      }),
    )
    .min(1, 'must name at least one stream'),
  idempotencyKey: z.string().min(1).max(appendLimits.maxIdempotencyKeyLength).optional(),
  requestFingerprint: z.string().min(1).max(appendLimits.maxIdempotencyKeyLength).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});

const byteLength = (value: unknown): number => Buffer.byteLength(JSON.stringify(value) ?? '');

/**
 * Checks an append request before anything is written. Throws
 * `EventStoreValidationError` naming the first offending path.
 */
export function validateAppendRequest(request: AppendRequest): void {
  const parsed = appendRequest.safeParse(request);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new EventStoreValidationError(issue.path.join('.') || '(request)', issue.message);
  }
  const seen = new Set<string>();
  let total = 0;
  request.streams.forEach((s, i) => {
    if (seen.has(s.stream)) {
      throw new EventStoreValidationError(`streams.${i}.stream`, `stream ${s.stream} named twice`);
    }
    seen.add(s.stream);
    if (s.events.length === 0 && (typeof s.expected !== 'number' || s.expected < 1)) {
      throw new EventStoreValidationError(
        `streams.${i}.events`,
        'must hold at least one event (a stream with none is a condition, on the exact version of an existing stream)',
      );
    }
    s.events.forEach((e, j) => {
      if (byteLength(e.data) > appendLimits.maxEventBytes) {
        throw new EventStoreValidationError(
          `streams.${i}.events.${j}.data`,
          `larger than ${appendLimits.maxEventBytes} bytes`,
        );
      }
    });
    total += s.events.length;
  });
  if (total === 0) {
    throw new EventStoreValidationError('streams', 'must hold at least one event');
  }
  if (total > appendLimits.maxEventsPerCommit) {
    throw new EventStoreValidationError(
      'streams',
      `more than ${appendLimits.maxEventsPerCommit} events in one commit`,
    );
  }
  if (byteLength(request) > appendLimits.maxCommitBytes) {
    throw new EventStoreValidationError(
      'streams',
      `larger than ${appendLimits.maxCommitBytes} bytes`,
    );
  }
}

/** Whether a stream at `actual` (0 = absent) satisfies `expected`. */
export function satisfies(expected: ExpectedVersion, actual: number): boolean {
  switch (expected) {
    case ANY:
      return true;
    case NO_STREAM:
      return actual === 0;
    case STREAM_EXISTS:
      return actual > 0;
    default:
      return actual === expected;
  }
}
