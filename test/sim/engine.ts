/**
 * The simulator's storage engine: multi-version documents, unique indexes, an oplog and
 * transactions, all in one process and one thread (so every command's evaluation is
 * atomic, as a single-document write is on the server).
 *
 * What is modelled, by the MongoDB manual:
 * - every committed write gets the next timestamp `ts`; a document keeps its versions, so a
 *   read at any timestamp (a transaction's snapshot, the majority commit point) sees the
 *   documents as they were then ("Read Concern", "Read Concern snapshot");
 * - a transaction reads its snapshot (taken at its first statement) plus its own writes,
 *   and holds every document and unique index key it wrote until it ends. A second writer
 *   of either fails at once with WriteConflict (first writer wins), as does a write to a
 *   document committed after the snapshot ("In-progress Transactions and Write
 *   Conflicts"); a write outside any transaction that meets one of them waits until the
 *   transaction ends and then runs again (`Blocked`);
 * - unique indexes (compound and multikey: one key per array element) refuse a second
 *   document with an equal key with E11000; a missing field indexes as null;
 * - the oplog: one entry per commit (a transaction's writes share one), which change
 *   streams read and which a failover truncates to the majority commit point.
 *
 * Not modelled: storage, journaling, yields, locks beyond documents and keys, index use
 * (every query scans), collations, sharding.
 */
import { BSON, type Document } from 'mongodb';

/** A stored document. */
export type Doc = Document & { _id: unknown };

/** A server error, as the command's reply will carry it. */
export class SimError extends Error {
  constructor(
    readonly code: number,
    readonly codeName: string,
    message: string,
    readonly labels: string[] = [],
    readonly extra: Document = {},
  ) {
    super(message);
  }
}

/** Error codes the simulator answers with (the server's error_codes.yml). */
export const Code = {
  BadValue: [2, 'BadValue'],
  CommandNotFound: [59, 'CommandNotFound'],
  CursorNotFound: [43, 'CursorNotFound'],
  DuplicateKey: [11000, 'DuplicateKey'],
  ImmutableField: [66, 'ImmutableField'],
  IndexOptionsConflict: [85, 'IndexOptionsConflict'],
  IndexKeySpecsConflict: [86, 'IndexKeySpecsConflict'],
  InterruptedDueToReplStateChange: [11602, 'InterruptedDueToReplStateChange'],
  MaxTimeMSExpired: [50, 'MaxTimeMSExpired'],
  NamespaceExists: [48, 'NamespaceExists'],
  NamespaceNotFound: [26, 'NamespaceNotFound'],
  NoSuchTransaction: [251, 'NoSuchTransaction'],
  NotWritablePrimary: [10107, 'NotWritablePrimary'],
  NotPrimaryNoSecondaryOk: [13435, 'NotPrimaryNoSecondaryOk'],
  TransactionTooOld: [225, 'TransactionTooOld'],
  WriteConflict: [112, 'WriteConflict'],
  ChangeStreamFatalError: [280, 'ChangeStreamFatalError'],
  ChangeStreamHistoryLost: [286, 'ChangeStreamHistoryLost'],
  InvalidOptions: [72, 'InvalidOptions'],
  FailedToParse: [9, 'FailedToParse'],
} as const satisfies Record<string, readonly [number, string]>;

export function simError(
  code: readonly [number, string],
  message: string,
  labels: string[] = [],
  extra: Document = {},
): SimError {
  return new SimError(code[0], code[1], message, labels, extra);
}

export interface IndexSpec {
  name: string;
  key: Record<string, number>;
  unique: boolean;
  expireAfterSeconds?: number;
}

interface Version {
  ts: number;
  doc: Doc | null;
}

/** One write in an oplog entry. */
export interface OplogOp {
  db: string;
  coll: string;
  op: 'i' | 'u' | 'd' | 'drop';
  id?: unknown;
  /** The document after the write (inserts and updates). */
  doc?: Doc;
}

export interface OplogEntry {
  ts: number;
  ops: OplogOp[];
  wallTime: Date;
}

/** A document key the engine locks on: the collection's namespace and the `_id`. */
function docKey(ns: string, id: unknown): string {
  return `${ns}\u0000${typeof id === 'string' ? `s${id}` : BSON.EJSON.stringify({ v: id }, { relaxed: false })}`;
}

function valueKey(value: unknown): string {
  if (typeof value === 'string') return `s${value}`;
  if (typeof value === 'number') return `n${value}`;
  if (value === null || value === undefined) return 'null';
  return BSON.EJSON.stringify({ v: value }, { relaxed: false });
}

/** The values at a dotted path; arrays on the way fan out (multikey). Missing is null. */
export function valuesAt(doc: unknown, path: string): unknown[] {
  const parts = path.split('.');
  let current: unknown[] = [doc];
  for (const part of parts) {
    const next: unknown[] = [];
    for (const value of current) {
      if (Array.isArray(value)) {
        for (const element of value) {
          if (element !== null && typeof element === 'object' && !Array.isArray(element)) {
            next.push((element as Document)[part] ?? null);
          }
        }
        if (value.length === 0) next.push(null);
      } else if (value !== null && typeof value === 'object') {
        next.push((value as Document)[part] ?? null);
      } else {
        next.push(null);
      }
    }
    current = next;
  }
  const flat: unknown[] = [];
  for (const value of current) {
    if (Array.isArray(value)) {
      if (value.length === 0) flat.push(undefined);
      else flat.push(...value);
    } else flat.push(value);
  }
  return flat.length === 0 ? [null] : flat;
}

/** Every key a unique index holds for `doc` (the cross product of its fields' values). */
export function indexKeys(doc: Doc, index: IndexSpec): string[] {
  let keys = [''];
  for (const field of Object.keys(index.key)) {
    const values = [...new Set(valuesAt(doc, field).map(valueKey))];
    keys = keys.flatMap((k) => values.map((v) => `${k}|${v}`));
  }
  return keys;
}

function keyValueOf(doc: Doc, index: IndexSpec): Document {
  const value: Document = {};
  for (const field of Object.keys(index.key)) value[field] = valuesAt(doc, field)[0] ?? null;
  return value;
}

export class Collection {
  /** Versions per document key, oldest first. */
  readonly versions = new Map<string, Version[]>();
  /** The newest committed version of every live document. */
  readonly latest = new Map<string, Doc>();
  readonly indexes: IndexSpec[] = [{ name: '_id_', key: { _id: 1 }, unique: true }];
  /** Committed unique keys: index name -> key -> document key. */
  readonly unique = new Map<string, Map<string, string>>([['_id_', new Map()]]);

  constructor(
    readonly db: string,
    readonly name: string,
  ) {}

  get ns(): string {
    return `${this.db}.${this.name}`;
  }

  /** The documents visible at `ts` (undefined: the newest). */
  docsAt(ts: number | undefined): Doc[] {
    if (ts === undefined) return [...this.latest.values()];
    const out: Doc[] = [];
    for (const chain of this.versions.values()) {
      for (let i = chain.length - 1; i >= 0; i -= 1) {
        const v = chain[i]!;
        if (v.ts <= ts) {
          if (v.doc) out.push(v.doc);
          break;
        }
      }
    }
    return out;
  }

  lastCommitTs(key: string): number {
    const chain = this.versions.get(key);
    return chain ? chain[chain.length - 1]!.ts : 0;
  }

  /** Applies a committed write at `ts`. */
  apply(key: string, doc: Doc | null, ts: number): void {
    const before = this.latest.get(key);
    if (before) this.#unindex(before, key);
    let chain = this.versions.get(key);
    if (!chain) this.versions.set(key, (chain = []));
    chain.push({ ts, doc });
    if (doc) {
      this.latest.set(key, doc);
      this.#index(doc, key);
    } else this.latest.delete(key);
  }

  /** Drops versions newer than `ts` (a rollback), rebuilding the newest state. */
  rollbackTo(ts: number): void {
    for (const [key, chain] of this.versions) {
      while (chain.length > 0 && chain[chain.length - 1]!.ts > ts) chain.pop();
      if (chain.length === 0) this.versions.delete(key);
    }
    this.rebuild();
  }

  /** Forgets versions no reader can need: all but the newest at or before `ts`. */
  prune(key: string, ts: number): void {
    const chain = this.versions.get(key);
    if (!chain || chain.length < 4) return;
    let keep = 0;
    for (let i = chain.length - 1; i >= 0; i -= 1) {
      if (chain[i]!.ts <= ts) {
        keep = i;
        break;
      }
    }
    if (keep > 0) chain.splice(0, keep);
  }

  rebuild(): void {
    this.latest.clear();
    for (const index of this.indexes) if (index.unique) this.unique.set(index.name, new Map());
    for (const [key, chain] of this.versions) {
      const doc = chain[chain.length - 1]!.doc;
      if (doc) {
        this.latest.set(key, doc);
        this.#index(doc, key);
      }
    }
  }

  /** The document key holding `doc`'s key in a unique index other than `self`, if any. */
  uniqueHolder(
    doc: Doc,
    self: string,
  ): { index: IndexSpec; holder: string; key: string } | undefined {
    for (const index of this.indexes) {
      if (!index.unique) continue;
      const map = this.unique.get(index.name)!;
      for (const k of indexKeys(doc, index)) {
        const holder = map.get(k);
        if (holder !== undefined && holder !== self) return { index, holder, key: k };
      }
    }
    return undefined;
  }

  duplicateKeyError(doc: Doc, index: IndexSpec): SimError {
    const keyValue = keyValueOf(doc, index);
    const shown = Object.entries(keyValue)
      .map(([k, v]) => `${k}: ${BSON.EJSON.stringify(v as Document)}`)
      .join(', ');
    return simError(
      Code.DuplicateKey,
      `E11000 duplicate key error collection: ${this.ns} index: ${index.name} dup key: { ${shown} }`,
      [],
      { keyPattern: index.key, keyValue },
    );
  }

  #index(doc: Doc, key: string): void {
    for (const index of this.indexes) {
      if (!index.unique) continue;
      const map = this.unique.get(index.name)!;
      for (const k of indexKeys(doc, index)) map.set(k, key);
    }
  }

  #unindex(doc: Doc, key: string): void {
    for (const index of this.indexes) {
      if (!index.unique) continue;
      const map = this.unique.get(index.name)!;
      for (const k of indexKeys(doc, index)) if (map.get(k) === key) map.delete(k);
    }
  }
}

/** A multi-document transaction's state. */
export class Txn {
  /** Snapshot timestamp, taken at the first statement. */
  readTs: number;
  state: 'open' | 'committed' | 'aborted' = 'open';
  abortReason = '';
  /** Uncommitted writes: document key -> { collection, doc (null: deleted) }. */
  readonly writes = new Map<string, { coll: Collection; doc: Doc | null; op: 'i' | 'u' | 'd' }>();
  /** Unique keys this transaction holds: `${ns}|${index}|${key}`. */
  readonly keys = new Set<string>();
  readonly ended: Promise<void>;
  #end!: () => void;
  timer: NodeJS.Timeout | undefined;

  constructor(
    readonly lsid: string,
    readonly txnNumber: number,
    readTs: number,
    readonly startedAt: number,
  ) {
    this.readTs = readTs;
    this.ended = new Promise((resolve) => (this.#end = resolve));
  }

  finish(state: 'committed' | 'aborted', reason = ''): void {
    this.state = state;
    this.abortReason = reason;
    clearTimeout(this.timer);
    this.#end();
  }

  /** The transaction's view of one document: its own write, else undefined. */
  own(key: string): { doc: Doc | null } | undefined {
    return this.writes.get(key);
  }
}

/** What a write outside a transaction met: a transaction holding what it needs. */
export class Blocked {
  constructor(readonly txn: Txn) {}
}

/**
 * The data of the replica set as its primary holds it: databases, the oplog, the
 * transactions in progress, and the majority commit point.
 */
export class Engine {
  /** The newest timestamp handed out. */
  clock = 0;
  /** The majority commit point: what a majority of members has. */
  majorityTs = 0;
  readonly dbs = new Map<string, Map<string, Collection>>();
  readonly oplog: OplogEntry[] = [];
  /** Timestamp of the newest entry removed from the oplog's front (0: none). */
  oplogTruncatedThrough = 0;
  /** Documents and keys held by open transactions. */
  readonly heldDocs = new Map<string, Txn>();
  readonly heldKeys = new Map<string, Txn>();
  readonly openTxns = new Set<Txn>();
  /** Called after every commit with its timestamp. */
  onCommit: (ts: number) => void = () => undefined;

  collection(db: string, name: string, create: boolean): Collection | undefined {
    let colls = this.dbs.get(db);
    if (!colls) {
      if (!create) return undefined;
      this.dbs.set(db, (colls = new Map()));
    }
    let coll = colls.get(name);
    if (!coll && create) colls.set(name, (coll = new Collection(db, name)));
    return coll;
  }

  /** Documents of `coll` as a reader at `ts` (undefined: newest) in `txn` (if any) sees them. */
  read(coll: Collection | undefined, ts: number | undefined, txn?: Txn): Doc[] {
    if (!coll) {
      return [];
    }
    if (!txn) return coll.docsAt(ts !== undefined && ts >= this.clock ? undefined : ts);
    const base = coll.docsAt(txn.readTs >= this.clock ? undefined : txn.readTs);
    const prefix = `${coll.ns}\u0000`;
    const own = [...txn.writes].filter(([key]) => key.startsWith(prefix));
    if (own.length === 0) return base;
    const byKey = new Map(base.map((d) => [docKey(coll.ns, d._id), d]));
    for (const [key, w] of own) {
      if (w.doc) byKey.set(key, w.doc);
      else byKey.delete(key);
    }
    return [...byKey.values()];
  }

  /**
   * The documents a filter can match, as `read` sees them: when the filter pins `_id`
   * (a value, `$eq` or `$in`), only those documents are looked up, as the `_id` index would.
   * Returns whether the filter was `_id` alone (then every returned document matches).
   */
  candidates(
    coll: Collection | undefined,
    filter: Document | undefined,
    ts: number | undefined,
    txn?: Txn,
  ): { docs: Doc[]; exact: boolean } {
    const ids = filter ? pinnedIds(filter._id) : undefined;
    if (!coll || !ids) return { docs: this.read(coll, ts, txn), exact: false };
    const at = txn ? txn.readTs : ts;
    const docs: Doc[] = [];
    const seen = new Set<string>();
    for (const id of ids) {
      const key = docKey(coll.ns, id);
      if (seen.has(key)) continue;
      seen.add(key);
      const own = txn?.own(key);
      const doc = own
        ? own.doc
        : at === undefined || at >= this.clock
          ? (coll.latest.get(key) ?? null)
          : versionAt(coll, key, at);
      if (doc) docs.push(doc);
    }
    return { docs, exact: Object.keys(filter!).length === 1 };
  }

  keyOf(coll: Collection, id: unknown): string {
    return docKey(coll.ns, id);
  }

  /**
   * Writes one document (`doc` null: deletes `id`) in `txn`, or committed at once without
   * one. Throws WriteConflict / DuplicateKey as the server would; returns `Blocked` when a
   * write outside a transaction must wait for one, or the commit timestamp.
   */
  write(
    coll: Collection,
    id: unknown,
    doc: Doc | null,
    op: 'i' | 'u' | 'd',
    txn: Txn | undefined,
  ): Blocked | number {
    const key = docKey(coll.ns, id);
    const holder = this.heldDocs.get(key);
    if (holder && holder !== txn) {
      if (txn) {
        throw this.#conflict(txn, `a document another transaction wrote: ${describeTxn(holder)}`);
      }
      return new Blocked(holder);
    }
    if (txn && coll.lastCommitTs(key) > txn.readTs && !txn.writes.has(key)) {
      throw this.#conflict(txn, 'a document written after the transaction started');
    }
    if (op === 'i' && doc) {
      // The _id index: an insert of an _id that exists (in the writer's view) is a duplicate.
      const own = txn?.own(key);
      const exists = own
        ? own.doc !== null
        : txn
          ? this.#visibleAt(coll, key, txn.readTs)
          : coll.latest.has(key);
      if (exists) throw coll.duplicateKeyError(doc, coll.indexes[0]!);
    }
    if (doc) {
      for (const index of coll.indexes) {
        if (!index.unique) continue;
        for (const k of indexKeys(doc, index)) {
          const held = this.heldKeys.get(`${coll.ns}|${index.name}|${k}`);
          if (held && held !== txn) {
            if (txn) throw this.#conflict(txn, 'an index key another transaction holds');
            return new Blocked(held);
          }
        }
      }
      if (txn) {
        // Keys its own writes hold, then committed ones (seen at the snapshot or not).
        for (const index of coll.indexes) {
          if (!index.unique) continue;
          for (const k of indexKeys(doc, index)) {
            for (const [otherKey, w] of txn.writes) {
              if (otherKey === key || w.coll !== coll || !w.doc) continue;
              if (indexKeys(w.doc, index).includes(k)) throw coll.duplicateKeyError(doc, index);
            }
          }
        }
        const clash = coll.uniqueHolder(doc, key);
        if (clash && !this.#deletedByTxn(txn, clash.holder)) {
          if (coll.lastCommitTs(clash.holder) > txn.readTs) {
            throw this.#conflict(txn, 'an index key committed after the transaction started');
          }
          throw coll.duplicateKeyError(doc, clash.index);
        }
      } else {
        const clash = coll.uniqueHolder(doc, key);
        if (clash) throw coll.duplicateKeyError(doc, clash.index);
      }
    }
    if (txn) {
      const previous = txn.writes.get(key);
      txn.writes.set(key, {
        coll,
        doc,
        op: previous?.op === 'i' && doc ? 'i' : op,
      });
      this.heldDocs.set(key, txn);
      if (doc) {
        for (const index of coll.indexes) {
          if (!index.unique) continue;
          for (const k of indexKeys(doc, index)) {
            const held = `${coll.ns}|${index.name}|${k}`;
            this.heldKeys.set(held, txn);
            txn.keys.add(held);
          }
        }
      }
      return this.clock;
    }
    const ts = ++this.clock;
    coll.apply(key, doc, ts);
    this.oplog.push({
      ts,
      wallTime: new Date(),
      ops: [{ db: coll.db, coll: coll.name, op, id, ...(doc ? { doc } : {}) }],
    });
    coll.prune(key, this.#oldestNeeded());
    this.onCommit(ts);
    return ts;
  }

  begin(lsid: string, txnNumber: number): Txn {
    const txn = new Txn(lsid, txnNumber, this.clock, Date.now());
    this.openTxns.add(txn);
    return txn;
  }

  /** Commits `txn` at a new timestamp (one oplog entry for all its writes). */
  commit(txn: Txn): number {
    if (txn.state !== 'open') throw new Error('commit of a transaction that is not open');
    this.#release(txn);
    txn.finish('committed');
    if (txn.writes.size === 0) return this.clock;
    const ts = ++this.clock;
    const ops: OplogOp[] = [];
    const oldest = this.#oldestNeeded();
    for (const [key, w] of txn.writes) {
      w.coll.apply(key, w.doc, ts);
      w.coll.prune(key, oldest);
      ops.push({
        db: w.coll.db,
        coll: w.coll.name,
        op: w.op,
        id: w.doc?._id ?? idFromKey(w, key),
        ...(w.doc ? { doc: w.doc } : {}),
      });
    }
    this.oplog.push({ ts, wallTime: new Date(), ops });
    this.onCommit(ts);
    return ts;
  }

  abort(txn: Txn, reason: string): void {
    if (txn.state !== 'open') return;
    this.#release(txn);
    txn.finish('aborted', reason);
  }

  /** Appends a catalog change (a drop) to the oplog. */
  logDrop(db: string, coll: string): number {
    const ts = ++this.clock;
    this.oplog.push({ ts, wallTime: new Date(), ops: [{ db, coll, op: 'drop' }] });
    this.onCommit(ts);
    return ts;
  }

  /** Removes oplog entries at or before `ts`: change streams cannot resume before it. */
  truncateOplog(ts: number): void {
    while (this.oplog.length > 0 && this.oplog[0]!.ts <= ts) {
      this.oplogTruncatedThrough = this.oplog.shift()!.ts;
    }
    this.oplogTruncatedThrough = Math.max(this.oplogTruncatedThrough, ts);
  }

  /** A failover: everything after the majority commit point is gone. */
  rollbackToMajority(): number {
    const to = this.majorityTs;
    let removed = 0;
    while (this.oplog.length > 0 && this.oplog[this.oplog.length - 1]!.ts > to) {
      this.oplog.pop();
      removed += 1;
    }
    for (const colls of this.dbs.values()) for (const coll of colls.values()) coll.rollbackTo(to);
    return removed;
  }

  #visibleAt(coll: Collection, key: string, ts: number): boolean {
    const chain = coll.versions.get(key);
    if (!chain) return false;
    for (let i = chain.length - 1; i >= 0; i -= 1) {
      if (chain[i]!.ts <= ts) return chain[i]!.doc !== null;
    }
    return false;
  }

  #deletedByTxn(txn: Txn, key: string): boolean {
    const w = txn.writes.get(key);
    return w !== undefined && w.doc === null;
  }

  #conflict(txn: Txn, what: string): SimError {
    this.abort(txn, 'write conflict');
    return simError(
      Code.WriteConflict,
      `Caused by :: Write conflict during plan execution and yielding is disabled. :: Please retry your operation or multi-document transaction. (${what})`,
      ['TransientTransactionError'],
    );
  }

  #release(txn: Txn): void {
    this.openTxns.delete(txn);
    for (const key of txn.writes.keys())
      if (this.heldDocs.get(key) === txn) this.heldDocs.delete(key);
    for (const key of txn.keys) if (this.heldKeys.get(key) === txn) this.heldKeys.delete(key);
  }

  #oldestNeeded(): number {
    let oldest = this.majorityTs;
    for (const txn of this.openTxns) oldest = Math.min(oldest, txn.readTs);
    return oldest;
  }
}

function describeTxn(txn: Txn): string {
  return `session ${txn.lsid.slice(0, 8)} txnNumber ${txn.txnNumber}, ${txn.state}, open ${Date.now() - txn.startedAt} ms, ${txn.writes.size} writes`;
}

function versionAt(coll: Collection, key: string, ts: number): Doc | null {
  const chain = coll.versions.get(key);
  if (!chain) return null;
  for (let i = chain.length - 1; i >= 0; i -= 1) if (chain[i]!.ts <= ts) return chain[i]!.doc;
  return null;
}

/** The `_id` values a filter's `_id` predicate pins, if it pins any. */
function pinnedIds(predicate: unknown): unknown[] | undefined {
  if (predicate === undefined) return undefined;
  if (predicate === null || typeof predicate !== 'object') return [predicate];
  if (Array.isArray(predicate)) return undefined;
  if (Object.getPrototypeOf(predicate) !== Object.prototype) return [predicate];
  const keys = Object.keys(predicate);
  if (keys.length !== 1) return keys.some((k) => k.startsWith('$')) ? undefined : [predicate];
  const p = predicate as Document;
  if (keys[0] === '$eq') return pinnedIds(p.$eq);
  if (keys[0] === '$in' && Array.isArray(p.$in)) {
    return p.$in.every((v) => v === null || typeof v !== 'object' || !isRegex(v))
      ? p.$in
      : undefined;
  }
  return keys[0]!.startsWith('$') ? undefined : [predicate];
}

function isRegex(value: unknown): boolean {
  return value instanceof RegExp || (value as { _bsontype?: string })._bsontype === 'BSONRegExp';
}

function idFromKey(w: { coll: Collection }, key: string): unknown {
  const raw = key.slice(w.coll.ns.length + 1);
  if (raw.startsWith('s')) return raw.slice(1);
  return (BSON.EJSON.parse(raw, { relaxed: false }) as { v: unknown }).v;
}
