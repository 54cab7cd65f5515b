import {
  type BulkWriteResult,
  MongoBulkWriteError,
  MongoErrorLabel,
  MongoInvalidArgumentError,
  MongoNetworkError,
  MongoServerError,
  MongoServerSelectionError,
} from 'mongodb';
import { describe, expect, it } from 'vitest';
import { EventStoreUnavailable, VersionConflict } from '../../src/eventstore/errors.js';
import { IndexName } from '../../src/eventstore/mongo/documents.js';
import {
  AppendErrorAction,
  isResumeTokenRefused,
  messageOf,
  translateError,
  unavailableIfDriverError,
} from '../../src/eventstore/mongo/translateError.js';

const plain = { idempotent: false };
const idempotent = { idempotent: true };

/** A duplicate key error as the server reports it for one insert or update. */
const duplicateKey = (collection: string, index: string, keyPattern: Record<string, 1>) =>
  new MongoServerError({
    code: 11000,
    codeName: 'DuplicateKey',
    errmsg: `E11000 duplicate key error collection: corkboard.${collection} index: ${index} dup key: { _id: "k" }`,
    keyPattern,
    keyValue: {},
  });

const labelled = (code: number, codeName: string, ...errorLabels: string[]) =>
  new MongoServerError({ code, codeName, errmsg: codeName, errorLabels });

describe('translateError', () => {
  it('rethrows errors that are not from the driver untouched', () => {
    expect(translateError(new VersionConflict('s', 1, 2), plain)).toBe(AppendErrorAction.Rethrow);
    expect(translateError(new Error('bug'), plain)).toBe(AppendErrorAction.Rethrow);
    expect(translateError(new DOMException('aborted', 'AbortError'), plain)).toBe(
      AppendErrorAction.Rethrow,
    );
    expect(translateError('a string', plain)).toBe(AppendErrorAction.Rethrow);
  });

  it('asks for the first result when the idempotency key was committed by a racing append', () => {
    const error = duplicateKey('idempotency', '_id_', { _id: 1 });
    expect(translateError(error, idempotent)).toBe(AppendErrorAction.DuplicateIdempotencyKey);
  });

  it('reports a version conflict when a racing append created the same stream head', () => {
    const error = duplicateKey('streams', '_id_', { _id: 1 });
    expect(translateError(error, plain)).toBe(AppendErrorAction.VersionConflict);
  });

  it('reports a version conflict when a racing append took the same event version', () => {
    const error = duplicateKey('events', IndexName.EventsStreamVersion, { stream: 1, version: 1 });
    expect(translateError(error, plain)).toBe(AppendErrorAction.VersionConflict);
  });

  it('recognises a stream version clash by its key pattern when the message names no collection', () => {
    const error = new MongoServerError({
      code: 11000,
      errmsg: 'E11000 duplicate key error dup key: { : "a", : 2 }',
      keyPattern: { stream: 1, version: 1 },
    });
    expect(translateError(error, plain)).toBe(AppendErrorAction.VersionConflict);
  });

  it('recognises a stream version clash raised by insertMany as a bulk write error', () => {
    const message = `E11000 duplicate key error collection: corkboard.events index: ${IndexName.EventsStreamVersion} dup key: { stream: "a", version: 2 }`;
    const error = new MongoBulkWriteError(
      { message, code: 11000, writeErrors: [] },
      {} as BulkWriteResult,
    );
    expect(translateError(error, plain)).toBe(AppendErrorAction.VersionConflict);
  });

  it('treats the legacy duplicate key code 11001 like 11000', () => {
    const error = new MongoServerError({
      code: 11001,
      errmsg: 'E11001 duplicate key on update collection: corkboard.streams index: _id_',
    });
    expect(translateError(error, plain)).toBe(AppendErrorAction.VersionConflict);
  });

  it('retries a duplicate key on the commit log, the counter, an event id, or a collection it cannot place', () => {
    const commits = duplicateKey('commits', IndexName.CommitsPosition, { position: 1 });
    const counters = duplicateKey('counters', '_id_', { _id: 1 });
    const eventId = duplicateKey('events', '_id_', { _id: 1 });
    const unplaced = new MongoServerError({ code: 11000, errmsg: 'E11000 duplicate key error' });
    for (const error of [commits, counters, eventId, unplaced]) {
      expect(translateError(error, plain)).toBe(AppendErrorAction.Retry);
    }
  });

  it('retries a write conflict, with or without the transient label', () => {
    expect(translateError(labelled(112, 'WriteConflict'), plain)).toBe(AppendErrorAction.Retry);
    const inTransaction = labelled(112, 'WriteConflict', MongoErrorLabel.TransientTransactionError);
    expect(translateError(inTransaction, plain)).toBe(AppendErrorAction.Retry);
  });

  it('retries any error the server labels as a transient transaction error', () => {
    const error = labelled(251, 'NoSuchTransaction', MongoErrorLabel.TransientTransactionError);
    expect(translateError(error, plain)).toBe(AppendErrorAction.Retry);
  });

  it('retries an error labelled retryable write, and a network error', () => {
    const stepDown = labelled(189, 'PrimarySteppedDown', MongoErrorLabel.RetryableWriteError);
    expect(translateError(stepDown, plain)).toBe(AppendErrorAction.Retry);
    expect(translateError(new MongoNetworkError('connection reset'), plain)).toBe(
      AppendErrorAction.Retry,
    );
  });

  it('retries a commit of unknown outcome only when an idempotency key makes the retry safe', () => {
    const error = labelled(
      64,
      'WriteConcernTimeout',
      MongoErrorLabel.UnknownTransactionCommitResult,
    );
    expect(translateError(error, idempotent)).toBe(AppendErrorAction.Retry);
    expect(translateError(error, plain)).toBe(AppendErrorAction.Unavailable);
  });

  it('lets an unknown commit outcome win over a transient label on the same error', () => {
    const error = new MongoNetworkError('socket closed during commit');
    error.addErrorLabel(MongoErrorLabel.TransientTransactionError);
    error.addErrorLabel(MongoErrorLabel.UnknownTransactionCommitResult);
    expect(translateError(error, plain)).toBe(AppendErrorAction.Unavailable);
  });

  it('gives up at once when no primary could be selected, even if labelled transient', () => {
    const error = new MongoServerSelectionError(
      'Server selection timed out after 30000 ms',
      {} as ConstructorParameters<typeof MongoServerSelectionError>[1],
    );
    error.addErrorLabel(MongoErrorLabel.TransientTransactionError);
    expect(translateError(error, idempotent)).toBe(AppendErrorAction.Unavailable);
  });

  it('places a duplicate key by its collection when the message names no index and the error no key pattern', () => {
    const error = new MongoServerError({
      code: 11000,
      codeName: 'DuplicateKey',
      errmsg: 'E11000 duplicate key error collection: corkboard.idempotency dup key: { _id: "k" }',
    });
    expect(translateError(error, idempotent)).toBe(AppendErrorAction.DuplicateIdempotencyKey);
  });

  it('reports other driver and server errors as unavailable', () => {
    expect(translateError(labelled(2, 'BadValue'), plain)).toBe(AppendErrorAction.Unavailable);
    expect(translateError(labelled(13, 'Unauthorized'), idempotent)).toBe(
      AppendErrorAction.Unavailable,
    );
    expect(translateError(new MongoInvalidArgumentError('bad option'), plain)).toBe(
      AppendErrorAction.Unavailable,
    );
  });
});

describe('isResumeTokenRefused', () => {
  it('recognises the server errors that refuse a resume token, and nothing else', () => {
    const lost = new MongoServerError({
      code: 286,
      codeName: 'ChangeStreamHistoryLost',
      errmsg:
        'Resume of change stream was not possible, as the resume point may no longer be in the oplog.',
      errorLabels: ['NonResumableChangeStreamError'],
    });
    expect(isResumeTokenRefused(lost)).toBe(true);
    expect(isResumeTokenRefused(labelled(280, 'ChangeStreamFatalError'))).toBe(true);
    expect(isResumeTokenRefused(labelled(260, 'InvalidResumeToken'))).toBe(true);
    expect(isResumeTokenRefused(labelled(112, 'WriteConflict'))).toBe(false);
    expect(isResumeTokenRefused(new Error('286'))).toBe(false);
    // Only the driver's errors: not anything else that carries such a code.
    expect(isResumeTokenRefused(Object.assign(new Error('lost'), { code: 286 }))).toBe(false);
  });
});

describe('unavailableIfDriverError and messageOf', () => {
  it('wraps a driver error in EventStoreUnavailable naming the operation, and passes anything else', () => {
    const cause = labelled(2, 'BadValue');
    const wrapped = unavailableIfDriverError(cause, 'readAll');
    expect(wrapped).toBeInstanceOf(EventStoreUnavailable);
    expect(wrapped).toMatchObject({ message: 'readAll failed: BadValue', cause });
    const ours = new VersionConflict('s', 1, 2);
    expect(unavailableIfDriverError(ours, 'readAll')).toBe(ours);
  });

  it('gives an error its message, and anything else as text', () => {
    expect(messageOf(new Error('boom'))).toBe('boom');
    expect(messageOf('plain')).toBe('plain');
    expect(messageOf(42)).toBe('42');
  });
});
