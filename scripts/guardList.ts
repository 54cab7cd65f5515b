/**
 * The mongo adapters' safety guards: where each is in the code and what removing it
 * looks like. Read by `scripts/mongoGuards.ts` (which removes each and runs the tests) and
 * `scripts/mutation.ts` (which finds the mutants on each guard in its reports).
 */

export interface Guard {
  /** Short id, for `--only`. */
  id: string;
  /** What the guard protects, in a few words. */
  what: string;
  file: string;
  /** The guarded code, exactly as in `file` (must occur once). */
  from: string;
  /** The same code with the guard removed or neutralised. */
  to: string;
  /** Test files tried first (the ones expected to catch it). */
  hint: string[];
  /** One of the 16 guards an outside review removed one at a time. */
  reviewed?: true;
}

const STORE_READS = 'src/eventstore/mongo/storeReads.ts';
const APPEND_PROTOCOL = 'src/eventstore/mongo/appendProtocol.ts';
const COMMIT_WRITE = 'src/eventstore/mongo/commitWrite.ts';
const POSITIONS = 'src/eventstore/mongo/positions.ts';
const SCHEMA = 'src/eventstore/mongo/schema.ts';
const FEED = 'src/eventstore/mongo/feed.ts';
const ARCHIVE = 'src/eventstore/mongo/archive.ts';
const TRANSLATE = 'src/eventstore/mongo/translateError.ts';
const READ_MODELS = 'src/projector/mongo/MongoReadModels.ts';
const READ_COLLECTION = 'src/projector/mongo/MongoReadCollection.ts';
const CHECKPOINTS = 'src/projector/mongo/MongoCheckpoints.ts';
const LEASE_OPS = 'src/projector/mongo/leaseOperations.ts';
const CHANGE_LOG = 'src/projector/mongo/MongoChangeLog.ts';
const DRIVER_ERRORS = 'src/projector/mongo/driverErrors.ts';
const LEASE = 'src/projector/projectorLease.ts';
const SNAPSHOTS = 'src/eventstore/snapshots/MongoSnapshotStore.ts';

const APPEND_WIRE = 'test/wire/append.wire.test.ts';
const FEED_WIRE = 'test/wire/feed.wire.test.ts';
const PROJECTOR_WIRE = 'test/wire/projector.wire.test.ts';
const GUARDS_SIM = 'test/sim/guards.sim.test.ts';
const STORE_CONTRACT = 'test/contract/eventStore.contract.test.ts';
const ARCHIVE_CONTRACT = 'test/contract/eventStoreArchive.contract.test.ts';
const ARCHIVE_UNIT = 'test/unit/archiveReads.unit.test.ts';
const ARCHIVE_SIM = 'test/sim/archiveMove.sim.test.ts';
const PROJECTOR_CONTRACT = 'test/contract/projector.contract.test.ts';
const LEASE_UNIT = 'test/unit/mongoProjectorFilters.unit.test.ts';

export const GUARDS: Guard[] = [
  // ---------------------------------------------------------------- event store: appends
  {
    id: 'head-version-filter',
    what: "a stream head is updated only at the expected version (the update's filter)",
    file: COMMIT_WRITE,
    from: 'filter: { _id: s.stream, version: base }',
    to: 'filter: { _id: s.stream }',
    hint: [APPEND_WIRE, STORE_CONTRACT],
    reviewed: true,
  },
  {
    id: 'head-matched-count',
    what: 'a head update that matched nothing fails the expectation',
    file: COMMIT_WRITE,
    from: 'if (updated.matchedCount !== updates.length) throw new ExpectationFailed();',
    to: '',
    hint: [APPEND_WIRE, STORE_CONTRACT],
    reviewed: true,
  },
  {
    id: 'position-unique-index',
    what: 'the unique index on commits.position (commit vs tombstone)',
    file: SCHEMA,
    from: '{ unique: true, name: IndexName.CommitsPosition }',
    to: '{ name: IndexName.CommitsPosition }',
    hint: [APPEND_WIRE, GUARDS_SIM],
    reviewed: true,
  },
  {
    id: 'txn-snapshot-read',
    what: 'append transactions read at snapshot',
    file: APPEND_PROTOCOL,
    from: "readConcern: { level: 'snapshot' },",
    to: "readConcern: { level: 'local' },",
    hint: [APPEND_WIRE],
  },
  {
    id: 'txn-majority-commit',
    what: 'append transactions commit with w: majority',
    file: APPEND_PROTOCOL,
    from: "writeConcern: new WriteConcern('majority', commitWaitMs),",
    to: 'writeConcern: new WriteConcern(1, commitWaitMs),',
    hint: [APPEND_WIRE],
    reviewed: true,
  },
  {
    id: 'counter-outside-txn',
    what: 'the position is reserved outside the transaction (no shared document held)',
    file: POSITIONS,
    from: "{ upsert: true, returnDocument: 'after', writeConcern: { w: 1 } },",
    to: "{ session, upsert: true, returnDocument: 'after' },",
    hint: [APPEND_WIRE],
  },
  {
    id: 'reservation-recorded',
    what: "the reserving session is recorded, so a dead appender's transaction can be killed",
    file: COMMIT_WRITE,
    from: 'await this.#positions.recordReservation(session, commit.position);',
    to: '',
    hint: [APPEND_WIRE, FEED_WIRE],
  },
  {
    id: 'failed-attempt-closes-position',
    what: 'a failed attempt closes the position it reserved',
    file: APPEND_PROTOCOL,
    from: 'if (draft.commit) await this.#positions.close(draft.commit.position);',
    to: '',
    hint: [APPEND_WIRE],
  },
  {
    id: 'tombstone-majority',
    what: 'a tombstone is written at w: majority (a failover cannot take it back)',
    file: POSITIONS,
    from: "writeConcern: { w: 'majority', wtimeoutMS: this.#closeTimeoutMs },",
    to: 'writeConcern: { w: 1, wtimeoutMS: this.#closeTimeoutMs },',
    hint: [APPEND_WIRE],
  },
  {
    id: 'tombstone-dup-means-committed',
    what: 'a duplicate-key tombstone means "committed" only when our commit holds the position',
    file: POSITIONS,
    from: "return holder._id === commitId ? 'committed' : 'closed';",
    to: "return 'committed';",
    hint: [APPEND_WIRE, GUARDS_SIM],
    reviewed: true,
  },
  {
    id: 'tombstone-dup-unseen-unknown',
    what: 'a duplicate-key tombstone whose holder a majority read cannot see is unknown, not closed',
    file: POSITIONS,
    from: "if (holder === null) return 'unknown';",
    to: "if (holder === null) return 'closed';",
    hint: [APPEND_WIRE],
  },
  {
    id: 'tombstone-holder-majority-read',
    what: "the tombstone's holder is read at majority",
    file: POSITIONS,
    from: '{ projection: { _id: 1 }, readConcern: MAJORITY },',
    to: '{ projection: { _id: 1 } },',
    hint: [APPEND_WIRE, GUARDS_SIM],
  },
  {
    id: 'commit-refused-settled-by-tombstone',
    what: 'a commit refused without the unknown-result label is settled by the tombstone',
    file: APPEND_PROTOCOL,
    from: "const outcome = await this.#positions.close(commit.position, commit._id);\n          if (outcome === 'committed') return { kind: 'committed' };\n          if (outcome === 'unknown') {",
    to: "const outcome = await this.#positions.close(commit.position);\n          if (outcome === 'unknown') {",
    hint: [APPEND_WIRE],
  },
  {
    id: 'commit-unknown-label',
    what: 'a commit labelled UnknownTransactionCommitResult is sent again as the same transaction',
    file: APPEND_PROTOCOL,
    from: 'const unknown = error.hasErrorLabel(MongoErrorLabel.UnknownTransactionCommitResult);',
    to: 'const unknown = false;',
    hint: [APPEND_WIRE],
  },
  {
    id: 'commit-transient-label',
    what: 'a commit refused as TransientTransactionError (and proven closed) runs the append again',
    file: APPEND_PROTOCOL,
    from: "if (error.hasErrorLabel(MongoErrorLabel.TransientTransactionError)) {\n            return { kind: 'aborted', error };",
    to: "if (false) {\n            return { kind: 'aborted', error };",
    hint: [APPEND_WIRE],
  },
  {
    id: 'commit-attempts-bound',
    what: 'an unknown commit outcome is retried at most maxCommitAttempts times',
    file: APPEND_PROTOCOL,
    from: 'if (call >= this.#maxCommitAttempts || outOfTime || signal?.aborted) {',
    to: 'if (outOfTime || signal?.aborted) {',
    hint: [APPEND_WIRE],
  },
  {
    id: 'unknown-commit-kills-session',
    what: 'an unknown commit outcome ends its own session before the tombstone',
    file: APPEND_PROTOCOL,
    from: 'await this.#positions.killSessions(session.id ? [session.id] : []);',
    to: '',
    hint: [APPEND_WIRE],
  },
  {
    id: 'abandoned-kills-sessions',
    what: "closing a dead appender's position first kills the reserving session",
    file: POSITIONS,
    from: 'await this.killSessions(reserved.map((r) => r.lsid));',
    to: '',
    hint: [FEED_WIRE],
  },
  {
    id: 'idempotency-fingerprint',
    what: 'a key recorded for another request is refused (IdempotencyKeyReused)',
    file: COMMIT_WRITE,
    from: 'if (doc.fingerprint !== fingerprint) throw new IdempotencyKeyReused(key);',
    to: '',
    hint: [APPEND_WIRE, STORE_CONTRACT],
    reviewed: true,
  },
  {
    id: 'idempotency-expiry-read',
    what: 'an expired idempotency record is not a first result',
    file: COMMIT_WRITE,
    from: 'if (!doc || doc.expiresAt <= this.#now()) return undefined;',
    to: 'if (!doc) return undefined;',
    hint: [STORE_CONTRACT],
  },
  {
    id: 'idempotency-insert-unless-live',
    what: 'the key is written only over a missing or expired record',
    file: COMMIT_WRITE,
    from: 'replaceOne({ _id: key, expiresAt: { $lte: this.#now() } }, record,',
    to: 'replaceOne({ _id: key }, record,',
    hint: [APPEND_WIRE, STORE_CONTRACT],
  },
  {
    id: 'replay-before-conflict',
    what: "a replay that fails its expectations answers the key's first result",
    file: APPEND_PROTOCOL,
    from: ': await this.#writer.firstResult(key, fingerprintOf(request));\n        if (first) return first;',
    to: ': undefined;\n        if (first) return first;',
    hint: [APPEND_WIRE, STORE_CONTRACT],
  },
  {
    id: 'conflict-heads-majority-read',
    what: 'after a failed expectation, the heads are read at majority',
    file: COMMIT_WRITE,
    from: 'options.session ? { session: options.session } : { readConcern: MAJORITY },',
    to: 'options.session ? { session: options.session } : {},',
    hint: [APPEND_WIRE],
  },
  {
    id: 'replay-majority-read',
    what: "an idempotency key's first result is read at majority",
    file: COMMIT_WRITE,
    from: 'this.#idempotency.findOne({ _id: key }, { readConcern: MAJORITY });',
    to: 'this.#idempotency.findOne({ _id: key });',
    hint: [APPEND_WIRE],
  },
  // ---------------------------------------------------------------- event store: reads
  {
    id: 'readall-contiguous',
    what: 'readAll stops at the first position not there yet',
    file: STORE_READS,
    from: 'if (doc.position !== next || found.length >= limit) break;',
    to: 'if (found.length >= limit) break;',
    hint: [GUARDS_SIM],
    reviewed: true,
  },
  {
    id: 'readall-majority',
    what: 'readAll reads at majority',
    file: ARCHIVE,
    from: '.find({ position: { $gt: after } }, { readConcern: MAJORITY })',
    to: '.find({ position: { $gt: after } }, {})',
    hint: [APPEND_WIRE, GUARDS_SIM],
  },
  {
    id: 'readstream-majority',
    what: 'readStream reads at majority',
    file: ARCHIVE,
    from: '        { $sort: { position: 1 } },\n      ],\n      { readConcern: MAJORITY },',
    to: '        { $sort: { position: 1 } },\n      ],\n      {},',
    hint: [APPEND_WIRE],
  },
  {
    id: 'streamversion-majority',
    what: 'streamVersion reads at majority',
    file: STORE_READS,
    from: 'this.#streams.findOne({ _id: stream }, { readConcern: MAJORITY }),',
    to: 'this.#streams.findOne({ _id: stream }, {}),',
    hint: [APPEND_WIRE],
  },
  // ---------------------------------------------------------------- event store: errors
  {
    id: 'unknown-result-not-retried-blindly',
    what: 'an unknown commit result is retried only with an idempotency key',
    file: TRANSLATE,
    from: 'return context.idempotent ? AppendErrorAction.Retry : AppendErrorAction.Unavailable;',
    to: 'return AppendErrorAction.Retry;',
    hint: ['test/unit/translateMongoError.unit.test.ts'],
  },
  {
    id: 'dup-key-idempotency',
    what: 'a duplicate key on idempotency returns the first result',
    file: TRANSLATE,
    from: 'if (collection === CollectionName.Idempotency) return AppendErrorAction.DuplicateIdempotencyKey;',
    to: '',
    hint: ['test/unit/translateMongoError.unit.test.ts', APPEND_WIRE],
  },
  {
    id: 'dup-key-stream-head',
    what: 'a duplicate key on a stream head is a version conflict',
    file: TRANSLATE,
    from: 'if (collection === CollectionName.Streams) return AppendErrorAction.VersionConflict;',
    to: '',
    hint: ['test/unit/translateMongoError.unit.test.ts', APPEND_WIRE],
  },
  {
    id: 'resume-token-refused',
    what: 'a resume token the server refuses (286, 280, 260) is dropped',
    file: TRANSLATE,
    from: '  MongoErrorCode.ChangeStreamFatalError,\n',
    to: '',
    hint: ['test/unit/translateMongoError.unit.test.ts', FEED_WIRE],
  },
  // ---------------------------------------------------------------- feed
  {
    id: 'feed-majority-read',
    what: 'the feed reads commits at majority (not local)',
    file: FEED,
    from: ".find({ position: { $gt: after } }, { readConcern: { level: 'majority' } })",
    to: ".find({ position: { $gt: after } }, { readConcern: { level: 'local' } })",
    hint: [GUARDS_SIM, FEED_WIRE],
    reviewed: true,
  },
  {
    id: 'feed-contiguous',
    what: 'the feed delivers only the next owed position',
    file: FEED,
    from: 'if (doc.position !== this.#position + 1) return;',
    to: '',
    hint: [FEED_WIRE, GUARDS_SIM],
  },
  {
    id: 'feed-grace-period',
    what: 'a missing position is closed only after the grace period',
    file: FEED,
    from: 'if (now - this.#hole.since < this.#gapGraceMs) return;',
    to: '',
    hint: [FEED_WIRE, GUARDS_SIM],
  },
  // ---------------------------------------------------------------- archive
  {
    id: 'archive-readall-joined',
    what: 'readAll reads the archive too',
    file: ARCHIVE,
    from: 'const fromArchive = await archive.range(after, limit);',
    to: 'const fromArchive: CommitDoc[] = [];',
    hint: [ARCHIVE_CONTRACT],
  },
  {
    id: 'archive-log-rereads-hot',
    what: 'a log read looks in commits again for a position restored between its two reads',
    file: ARCHIVE,
    from: 'for (const doc of await hot.at(missing)) byPosition.set(doc.position, doc);',
    to: '',
    hint: [ARCHIVE_UNIT],
  },
  {
    id: 'archive-stream-joined',
    what: 'readStream reads the archive when commits miss versions up to the head',
    file: ARCHIVE,
    from: 'for (const d of await streamCommits(archive, stream, fromVersion)) found.set(d.position, d);',
    to: '',
    hint: [ARCHIVE_CONTRACT],
  },
  {
    id: 'archive-history-joined',
    what: 'a backward page of a stream reads the archive for versions missing in commits',
    file: ARCHIVE,
    from: 'for (const d of await read(archive)) found.set(d.position, d);',
    to: '',
    hint: [ARCHIVE_CONTRACT],
  },
  {
    id: 'archive-head-position',
    what: 'headPosition counts archived commits',
    file: STORE_READS,
    from: 'return archived > hot ? Math.max(archived, await newest(this.#commits)) : hot;',
    to: 'return hot;',
    hint: [ARCHIVE_CONTRACT],
  },
  {
    id: 'archive-feed-joined',
    what: 'the feed reads the archive too (an archived position is no hole to close)',
    file: FEED,
    from: 'const archive = majoritySource(this.#deps.archive);',
    to: 'const archive: CommitSource = { range: async () => [], at: async () => [] };',
    hint: [ARCHIVE_CONTRACT],
  },
  {
    id: 'archive-move-transaction',
    what: 'a batch moves in one transaction: a crash never leaves a commit in both places',
    file: ARCHIVE,
    from: '      await session.withTransaction(async (s) => {\n        inBatch = await moveBatch(s, from, to, ids);\n      }, MOVE_TRANSACTION);',
    to: '      inBatch = await moveBatch(undefined as never, from, to, ids);',
    hint: [ARCHIVE_SIM],
  },
  // ---------------------------------------------------------------- read models
  {
    id: 'readmodel-no-regress',
    what: 'a read document is never replaced by one that applied older versions',
    file: READ_COLLECTION,
    from: 'const conditions: Document[] = [notRegressedBy(doc._applied ?? {})];',
    to: 'const conditions: Document[] = [true];',
    hint: [GUARDS_SIM, PROJECTOR_CONTRACT],
    reviewed: true,
  },
  {
    id: 'readmodel-fence',
    what: 'a read document written under a newer epoch refuses older ones',
    file: READ_COLLECTION,
    from: "if (fence) conditions.push(notFencedOutBy('_fence', fence));",
    to: '',
    hint: [PROJECTOR_CONTRACT, GUARDS_SIM],
    reviewed: true,
  },
  {
    id: 'pointer-claim-fence',
    what: 'claiming the pointer is refused under an older epoch',
    file: READ_MODELS,
    from: "{ _id: ACTIVE_POINTER_ID, $expr: notFencedOutBy('fence', fence) },",
    to: '{ _id: ACTIVE_POINTER_ID },',
    hint: [PROJECTOR_CONTRACT, GUARDS_SIM],
  },
  {
    id: 'activate-expected-generation',
    what: 'a generation switch is a compare-and-set on the expected active generation',
    file: READ_MODELS,
    from: '        generation: expectedActive,\n',
    to: '',
    hint: [GUARDS_SIM, PROJECTOR_CONTRACT],
    reviewed: true,
  },
  {
    id: 'activate-fence',
    what: 'a generation switch is refused under an older epoch',
    file: READ_MODELS,
    from: "...(fence ? { $expr: notFencedOutBy('fence', fence) } : {}),",
    to: '',
    hint: [PROJECTOR_WIRE, PROJECTOR_CONTRACT],
    reviewed: true,
  },
  {
    id: 'drop-skips-active',
    what: 'a generation due for drop is not dropped while active',
    file: READ_MODELS,
    from: 'if (generation === active) continue;',
    to: '',
    hint: [GUARDS_SIM],
  },
  {
    id: 'drop-refuses-active',
    what: 'dropGeneration refuses the active generation',
    file: READ_MODELS,
    from: '    await this.#refuseActive(generation);\n',
    to: '',
    hint: [GUARDS_SIM, PROJECTOR_CONTRACT],
  },
  {
    id: 'projector-majority-writes',
    what: 'lease, checkpoint and read model writes use w: majority',
    file: DRIVER_ERRORS,
    from: "export const MAJORITY_WRITE = { w: 'majority' } as const;",
    to: 'export const MAJORITY_WRITE = { w: 1 } as const;',
    hint: [PROJECTOR_WIRE],
  },
  // ---------------------------------------------------------------- checkpoints
  {
    id: 'checkpoint-never-back',
    what: 'a checkpoint never moves back',
    file: CHECKPOINTS,
    from: "const conditions: Document[] = [{ $lte: [{ $ifNull: ['$position', 0] }, position.position] }];",
    to: 'const conditions: Document[] = [true];',
    hint: [GUARDS_SIM],
    reviewed: true,
  },
  {
    id: 'checkpoint-epoch',
    what: 'a checkpoint saved under a newer epoch refuses older ones',
    file: CHECKPOINTS,
    from: "if (fence) conditions.push({ $lte: [{ $ifNull: ['$epoch', 0] }, fence.epoch] });",
    to: '',
    hint: [GUARDS_SIM],
    reviewed: true,
  },
  {
    id: 'checkpoint-fenced-out',
    what: 'a checkpoint refused for a newer epoch raises FencedOut',
    file: CHECKPOINTS,
    from: 'if (fence && (stored?.epoch ?? 0) > fence.epoch) {',
    to: 'if (false) {',
    hint: [GUARDS_SIM],
  },
  // ---------------------------------------------------------------- leases
  {
    id: 'lease-expiry',
    what: 'a lease is taken only when expired or already ours',
    file: LEASE_OPS,
    from: "{ $or: [{ $lte: ['$expiresAt', NOW] }, { $eq: ['$owner', literal(owner)] }] },",
    to: 'true,',
    hint: [LEASE_UNIT, PROJECTOR_CONTRACT],
    reviewed: true,
  },
  {
    id: 'lease-epoch-bump',
    what: 'the epoch grows when the lease changes owner',
    file: LEASE_OPS,
    from: "{ $add: [{ $ifNull: ['$epoch', 0] }, 1] },",
    to: "{ $ifNull: ['$epoch', 1] },",
    hint: [LEASE_UNIT, PROJECTOR_CONTRACT],
    reviewed: true,
  },
  {
    id: 'lease-handover-reserved',
    what: 'a lease reserved by a handover request goes only to the requester',
    file: LEASE_OPS,
    from: '            notReservedForOther(owner, ttlMs),\n',
    to: '',
    hint: [LEASE_UNIT],
  },
  {
    id: 'lease-holder-live',
    what: 'holder() names only a live lease',
    file: LEASE_OPS,
    from: "return { _id: name, $expr: { $gt: ['$expiresAt', NOW] } };",
    to: 'return { _id: name };',
    hint: [LEASE_UNIT, GUARDS_SIM],
  },
  {
    id: 'lease-late-renewal',
    what: 'a renewal answered after the lease it grants expired does not count',
    file: LEASE,
    from: 'if (!grant || performance.now() >= validUntil) {',
    to: 'if (!grant) {',
    hint: [PROJECTOR_WIRE],
    reviewed: true,
  },
  {
    id: 'lease-epoch-changed',
    what: 'a renewal under another epoch ends the tenure',
    file: LEASE,
    from: 'if (held && held.epoch !== grant.epoch) {',
    to: 'if (false) {',
    hint: [PROJECTOR_WIRE],
    reviewed: true,
  },
  // ---------------------------------------------------------------- change log
  {
    id: 'changelog-no-gap',
    what: 'the change log refuses to record a cursor past head + 1',
    file: CHANGE_LOG,
    from: 'if (entry.cursor !== head + 1) {',
    to: 'if (false) {',
    hint: [GUARDS_SIM],
  },
  {
    id: 'changelog-read-hole-expired',
    what: 'a read that finds a hole at its start answers expired, never a gap',
    file: CHANGE_LOG,
    from: 'if (first && first._id !== after + 1) {',
    to: 'if (false) {',
    hint: [GUARDS_SIM, PROJECTOR_CONTRACT],
  },
  // ---------------------------------------------------------------- snapshots
  {
    id: 'snapshot-newer-only',
    what: 'a snapshot replaces only an older one (or another codec)',
    file: SNAPSHOTS,
    from: '{ version: { $lt: version } }',
    to: '{}',
    hint: ['test/wire/snapshots.wire.test.ts', 'test/contract/snapshotStore.contract.test.ts'],
  },
];
