/**
 * The server error codes the projector storage acts on (from the server's
 * error_codes.yml), and their tests. Pure: they only look at the error.
 */
import { MongoError } from 'mongodb';
import { ProjectorStorageUnavailable } from '../types.js';

export const ServerErrorCode = {
  /** E11000: a unique index (here always `_id`) already holds the key. */
  DuplicateKey: 11000,
  /** `create` on a collection that already exists. */
  NamespaceExists: 48,
} as const;

/**
 * Whether `error` is a duplicate key error. The driver reports a single write error
 * (insertOne, updateOne, replaceOne, findOneAndUpdate) as a `MongoServerError` carrying
 * the server's code, so the code is enough.
 */
/**
 * The write concern of every lease, checkpoint and read model write: a write a failover
 * could roll back would undo what a fence or a lease proved. Explicit, rather than left to
 * the deployment's default write concern (majority since MongoDB 5.0, but configurable).
 */
export const MAJORITY_WRITE = { w: 'majority' } as const;

export function isDuplicateKey(error: unknown): boolean {
  return error instanceof MongoError && error.code === ServerErrorCode.DuplicateKey;
}

export function isNamespaceExists(error: unknown): boolean {
  return error instanceof MongoError && error.code === ServerErrorCode.NamespaceExists;
}

/**
 * Runs one storage operation, turning any driver error it lets escape into
 * `ProjectorStorageUnavailable` (cause attached), so that no raw driver error leaves the
 * projector storage. Errors of our own (`FencedOut`, `StaleWrite`, aborts) pass unchanged.
 */
export async function translateDriverError<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (!(error instanceof MongoError)) throw error;
    throw new ProjectorStorageUnavailable(`${what} failed: ${error.message}`, { cause: error });
  }
}
