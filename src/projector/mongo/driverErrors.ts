/**
 * The server error codes the projector storage acts on (from the server's
 * error_codes.yml), and their tests. Pure: they only look at the error.
 */
import { MongoError } from 'mongodb';

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
export function isDuplicateKey(error: unknown): boolean {
  return error instanceof MongoError && error.code === ServerErrorCode.DuplicateKey;
}

export function isNamespaceExists(error: unknown): boolean {
  return error instanceof MongoError && error.code === ServerErrorCode.NamespaceExists;
}
