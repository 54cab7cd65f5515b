/**
 * A stateful MongoDB replica set simulator for tests: a loopback TCP server that the real
 * `mongodb` driver talks to over OP_MSG (the wire codec of `test/wire/fakePrimary.ts`),
 * answering `hello` as the primary of a one-member replica set with sessions, and
 * EVALUATING every command the adapters send: queries, updates (operators and pipelines,
 * `$$NOW`) and aggregation pipelines by `mingo`, unique indexes, transactions, read and
 * write concern against a simulated majority commit point, and change streams.
 *
 * `SIM_COMMANDS` lists the commands and options it evaluates; the storage model is in
 * `engine.ts`. Anything else is answered CommandNotFound and recorded in `unsupported`, so
 * a test notices an adapter using what the simulator does not model.
 *
 * The control API (`pauseReplication`, `advanceMajority`, `stepDown`, `cutConnections`,
 * `killClient`, `fault`, `truncateOplog`) lets tests and the seeded fault runs place
 * faults deterministically.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Aggregator, Query, update as applyOperators } from 'mingo';
import { BSON, type Document } from 'mongodb';
import {
  OP_MSG,
  OP_QUERY,
  decodeMessage,
  encodeMessage,
  encodeReply,
} from '../wire/fakePrimary.js';
import {
  Blocked,
  Code,
  Engine,
  SimError,
  simError,
  indexKeys,
  type Collection,
  type Doc,
  type IndexSpec,
  type OplogEntry,
  type Txn,
} from './engine.js';
import { Rng } from './rng.js';

/**
 * The commands the simulator evaluates, with the options it honours. Everything the mongo
 * adapters (event store, feed, snapshots, projector storage) send is here.
 */
export const SIM_COMMANDS = {
  hello:
    'handshake and monitoring (also isMaster/ismaster): primary or, during an election, secondary',
  ping: 'ok',
  endSessions:
    'ok; open transactions stay until their lifetime limit (the server reaps them later)',
  killSessions: "aborts the sessions' open transactions",
  create: 'NamespaceExists (48) when it exists',
  drop: 'NamespaceNotFound (26) when missing; invalidates change streams on it',
  dropDatabase: 'drops every collection; invalidates their change streams',
  listCollections: 'filter, nameOnly',
  createIndexes: 'key (compound, dotted, multikey), name, unique, expireAfterSeconds (TTL)',
  listIndexes: 'the indexes',
  insert: 'documents, ordered; unique indexes; in or outside a transaction',
  update:
    'q, u (operators incl. $setOnInsert, replacement, pipeline with $$NOW), upsert, multi, ordered',
  delete: 'q, limit (0 or 1)',
  findAndModify: 'query, update (operators or pipeline), remove, new, upsert, sort, fields',
  find: 'filter, sort, projection, skip, limit, batchSize, singleBatch, readConcern',
  aggregate:
    'pipeline by mingo ($match, $project, $filter, $sort, $group...), readConcern; $changeStream (startAfter, resumeAfter, startAtOperationTime, fullDocument)',
  getMore: 'batchSize, maxTimeMS (change streams wait for majority-committed changes)',
  killCursors: 'cursors',
  commitTransaction: 'writeConcern (majority waits for the commit point, wtimeout), maxTimeMS',
  abortTransaction: 'ok, or NoSuchTransaction',
} as const;

/** Read concern levels as the server reads them. */
type ReadLevel = 'local' | 'majority' | 'snapshot' | 'available' | 'linearizable';

/** A fault placed on the next commands that match. */
export interface Fault {
  match: (command: SimCommand) => boolean;
  /**
   * `hangUpBefore`: the connection is cut and the command never runs; `hangUpAfter`: the
   * command runs and its reply is lost; `killClient`: the client that sent it dies before
   * it runs (all its connections are cut and it may not reconnect), leaving its sessions'
   * transactions open on the server.
   */
  action: 'hangUpBefore' | 'hangUpAfter' | 'killClient';
  /** How many matching commands it hits. @default 1 */
  count?: number;
}

/** A command to hold before it runs (see `MongoSim.hold`). */
interface Hold {
  match: (command: SimCommand) => boolean;
  release: Promise<void>;
  held: () => void;
}

/** A command as the simulator received it. */
export interface SimCommand {
  name: string;
  db: string;
  body: Document;
  /** The client's `appName`, if it set one. */
  appName: string | undefined;
  /** Whether it is a statement of a multi-document transaction. */
  inTransaction: boolean;
}

export interface SimOptions {
  /** Seed of the simulator's own random choices (replication lag). @default 1 */
  seed?: number;
  /** The server's transactionLifetimeLimitSeconds, in ms. @default 60_000 */
  transactionLifetimeLimitMs?: number;
  /**
   * How long the majority commit point trails a write: [min, max] ms, drawn per write from
   * the seed. @default [0, 0] (the next timer tick)
   */
  replicationLagMs?: readonly [number, number];
  /** How often the TTL monitor deletes expired documents. @default 60_000 (the server's) */
  ttlMonitorIntervalMs?: number;
  /** How long an election takes after a stepdown. @default 200 */
  electionMs?: number;
  /** Oplog entries kept; older ones are truncated (change streams then lose history). @default 1_000_000 */
  oplogMaxEntries?: number;
}

const HW = 0xffffffff;

interface Connection {
  id: number;
  socket: Socket;
  appName: string | undefined;
}

interface Session {
  id: string;
  txn: Txn | undefined;
  /** The highest txnNumber seen. */
  txnNumber: number;
  /** Committed transactions' timestamps, by txnNumber (rolled back with the data). */
  committed: Map<number, number>;
  /** Retryable writes' replies, by txnNumber (rolled back with the data). */
  retryable: Map<number, { ts: number; reply: Document }>;
  /** Connections' apps that used it (for killClient). */
  appName: string | undefined;
}

interface FindCursor {
  kind: 'find';
  id: bigint;
  ns: string;
  docs: Document[];
  lsid: string | undefined;
}

interface ChangeCursor {
  kind: 'change';
  id: bigint;
  ns: string;
  db: string;
  coll: string | undefined;
  pipeline: Document[];
  /** Last position scanned: [ts, index within the oplog entry]. */
  after: [number, number];
  fullDocument: string;
  /** An invalidate was returned: the cursor is done. */
  invalidated: boolean;
  lsid: string | undefined;
}

type Cursor = FindCursor | ChangeCursor;

type WriteConcern = { w: number | 'majority'; wtimeout: number | undefined };

interface Waiter {
  ts: number;
  resolve: (outcome: 'ok' | 'interrupted') => void;
}

/** Labels a retryable-write command's error carries for these codes (server 4.4+). */
const RETRYABLE_CODES = new Set([6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436]);

function encodeToken(ts: number, index: number): Document {
  return { _data: ts.toString(16).padStart(16, '0') + index.toString(16).padStart(8, '0') };
}

function decodeToken(token: unknown): [number, number] {
  const data = (token as { _data?: unknown } | null)?._data;
  if (typeof data !== 'string' || !/^[0-9a-f]{24}$/.test(data)) {
    throw simError(Code.BadValue, `invalid resume token: ${JSON.stringify(token)}`, [
      'NonResumableChangeStreamError',
    ]);
  }
  return [parseInt(data.slice(0, 16), 16), parseInt(data.slice(16), 16)];
}

function after(a: [number, number], b: [number, number]): boolean {
  return a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);
}

function lsidOf(body: Document): string | undefined {
  const id = (body.lsid as { id?: BSON.Binary } | undefined)?.id;
  return id ? Buffer.from(id.buffer).toString('hex') : undefined;
}

function isPlainObject(value: unknown): value is Document {
  return (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    Object.getPrototypeOf(value) === Object.prototype
  );
}

function num(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof BSON.Long || value instanceof BSON.Int32 || value instanceof BSON.Double) {
    return Number(value.valueOf());
  }
  return Number(value);
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

/** Fields a query pins by equality: an upsert's inserted document starts from them. */
function equalityFields(filter: Document): Document {
  const out: Document = {};
  for (const [key, value] of Object.entries(filter)) {
    if (key === '$and' && Array.isArray(value)) {
      for (const part of value) Object.assign(out, equalityFields(part as Document));
    } else if (key.startsWith('$')) {
      continue;
    } else if (isPlainObject(value) && Object.keys(value).some((k) => k.startsWith('$'))) {
      const keys = Object.keys(value);
      if (keys.length === 1 && keys[0] === '$eq') out[key] = value.$eq;
    } else {
      out[key] = value;
    }
  }
  return out;
}

/** Whether a filter is equality predicates alone (the server retries such an upsert's E11000). */
function equalityOnly(filter: Document): boolean {
  return Object.entries(filter).every(
    ([key, value]) =>
      !key.startsWith('$') &&
      (!isPlainObject(value) ||
        (Object.keys(value).length === 1 && Object.keys(value)[0] === '$eq') ||
        !Object.keys(value).some((k) => k.startsWith('$'))),
  );
}

function matches(docs: Doc[], filter: Document | undefined): Doc[] {
  if (!filter || Object.keys(filter).length === 0) return docs;
  if (docs.length === 0) return docs;
  const query = new Query(filter);
  return docs.filter((d) => query.test(d));
}

/** Applies an update (`u`) to `doc`: operators, a pipeline or a replacement. */
function applyUpdate(doc: Doc, u: unknown, inserting: boolean): Doc {
  let next: Doc;
  if (Array.isArray(u)) {
    const [out] = new Aggregator(u as Document[]).run<Doc>([clone(doc)]);
    next = out ?? doc;
  } else if (isPlainObject(u) && Object.keys(u).some((k) => k.startsWith('$'))) {
    next = clone(doc);
    const { $setOnInsert, ...operators } = u;
    if (Object.keys(operators).length > 0) applyOperators(next, operators as never);
    if (inserting && $setOnInsert) applyOperators(next, { $set: $setOnInsert });
  } else if (isPlainObject(u)) {
    next = { _id: doc._id, ...u };
    if (u._id !== undefined && !BSON_equal(u._id, doc._id)) {
      throw simError(
        Code.ImmutableField,
        "After applying the update, the (immutable) field '_id' was found to have been altered",
      );
    }
  } else {
    throw simError(Code.FailedToParse, 'update must be an object or a pipeline');
  }
  if (!BSON_equal(next._id, doc._id)) {
    throw simError(
      Code.ImmutableField,
      "After applying the update, the (immutable) field '_id' was found to have been altered",
    );
  }
  return next;
}

function BSON_equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  return (
    BSON.EJSON.stringify({ v: a }, { relaxed: false }) ===
    BSON.EJSON.stringify({ v: b }, { relaxed: false })
  );
}

function project(docs: Document[], projection: Document | undefined): Document[] {
  if (!projection || Object.keys(projection).length === 0) return docs;
  return new Query({}).find(docs, projection).all() as Document[];
}

/**
 * The simulator. `start()` listens on 127.0.0.1; `uri` is the connection string for the
 * driver (a replica set named rs0).
 */
export class MongoSim {
  readonly engine = new Engine();
  readonly host: string;
  /** Commands received, by name (the coverage of a run). */
  readonly commandCounts = new Map<string, number>();
  /** Commands answered CommandNotFound. */
  readonly unsupported: string[] = [];
  /** Commands being run now, with when each started (to tell what a stuck run waits on). */
  readonly #inFlight = new Map<SimCommand, number>();
  /** Per client: connections accepted, handshakes answered, sockets the simulator ended and why. */
  readonly #connectionEvents = new Map<string, Map<string, number>>();
  readonly #server: Server;
  readonly #connections = new Set<Connection>();
  readonly #sessions = new Map<string, Session>();
  readonly #cursors = new Map<bigint, Cursor>();
  readonly #faults: Fault[] = [];
  readonly #holds: Hold[] = [];
  readonly #deadApps = new Set<string>();
  readonly #options: Required<SimOptions>;
  readonly #rng: Rng;
  #waiters: Waiter[] = [];
  /** Wakes change stream getMores waiting for majority-committed changes. */
  #changeWaiters = new Set<() => void>();
  #nextConnection = 0;
  #nextCursor = 1n;
  #replicationPaused = false;
  #state: 'primary' | 'electing' = 'primary';
  #term = 1;
  #elected: Promise<void> = Promise.resolve();
  #ttlTimer: NodeJS.Timeout;
  #closed = false;

  private constructor(server: Server, options: SimOptions) {
    this.#server = server;
    this.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    this.#options = {
      seed: options.seed ?? 1,
      transactionLifetimeLimitMs: options.transactionLifetimeLimitMs ?? 60_000,
      replicationLagMs: options.replicationLagMs ?? [0, 0],
      ttlMonitorIntervalMs: options.ttlMonitorIntervalMs ?? 60_000,
      electionMs: options.electionMs ?? 200,
      oplogMaxEntries: options.oplogMaxEntries ?? 1_000_000,
    };
    this.#rng = new Rng(this.#options.seed);
    this.engine.onCommit = (ts) => this.#replicate(ts);
    this.#ttlTimer = setInterval(() => this.#ttlPass(), this.#options.ttlMonitorIntervalMs);
    this.#ttlTimer.unref();
  }

  static async start(options: SimOptions = {}): Promise<MongoSim> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const sim = new MongoSim(server, options);
    server.on('connection', (socket) => sim.#accept(socket));
    return sim;
  }

  /** A connection string for the driver: a replica set named rs0 with this one member. */
  get uri(): string {
    return `mongodb://${this.host}/?replicaSet=rs0`;
  }

  // ---------------------------------------------------------------- control API

  /** Holds the majority commit point where it is: majority writes wait, majority reads lag. */
  pauseReplication(): void {
    this.#replicationPaused = true;
  }

  /** Lets the commit point follow the primary again (and catch up now). */
  resumeReplication(): void {
    this.#replicationPaused = false;
    this.advanceMajority();
  }

  /** Moves the majority commit point to `ts` (default: everything the primary has). */
  advanceMajority(ts: number = this.engine.clock): void {
    const to = Math.min(ts, this.engine.clock);
    if (to <= this.engine.majorityTs) return;
    this.engine.majorityTs = to;
    const ready = this.#waiters.filter((w) => w.ts <= to);
    this.#waiters = this.#waiters.filter((w) => w.ts > to);
    for (const w of ready) w.resolve('ok');
    for (const wake of [...this.#changeWaiters]) wake();
  }

  /**
   * The primary steps down (or dies): open transactions abort, writes waiting for the
   * majority are interrupted, cursors die, everything after the majority commit point is
   * rolled back, and until a new primary is elected (`electionMs`) every command that
   * needs a primary fails with NotWritablePrimary / NotPrimaryNoSecondaryOk and `hello`
   * answers as a secondary. Resolves once the new primary is up.
   */
  async stepDown(options: { electionMs?: number; cutConnections?: boolean } = {}): Promise<void> {
    if (this.#state === 'electing') return this.#elected;
    this.#state = 'electing';
    for (const txn of [...this.engine.openTxns]) this.engine.abort(txn, 'stepdown');
    for (const w of this.#waiters) w.resolve('interrupted');
    this.#waiters = [];
    this.#cursors.clear();
    for (const wake of [...this.#changeWaiters]) wake();
    this.engine.rollbackToMajority();
    for (const session of this.#sessions.values()) {
      for (const [n, ts] of session.committed) {
        if (ts > this.engine.majorityTs) session.committed.delete(n);
      }
      for (const [n, r] of session.retryable) {
        if (r.ts > this.engine.majorityTs) session.retryable.delete(n);
      }
    }
    if (options.cutConnections) this.cutConnections();
    const electionMs = options.electionMs ?? this.#options.electionMs;
    this.#elected = new Promise((resolve) =>
      setTimeout(() => {
        this.#term += 1;
        this.#state = 'primary';
        resolve();
      }, electionMs),
    );
    return this.#elected;
  }

  /** Whether a primary is up (false during an election). */
  get isPrimary(): boolean {
    return this.#state === 'primary';
  }

  /** Cuts every open connection: commands in flight get a network error. */
  cutConnections(): void {
    for (const c of this.#connections) this.#end(c, 'cutConnections');
  }

  /**
   * The client with this `appName` dies: its connections are cut and refused from now on.
   * Its sessions are not ended: their open transactions stay, holding what they wrote,
   * until `transactionLifetimeLimitMs` (or a `killSessions`).
   */
  killClient(appName: string): void {
    this.#deadApps.add(appName);
    for (const c of this.#connections) if (c.appName === appName) this.#end(c, 'killClient');
  }

  /** Whether the client with this `appName` was killed. */
  isDead(appName: string): boolean {
    return this.#deadApps.has(appName);
  }

  /** The commands running now, oldest first: name, client, how long so far, the body. */
  inFlight(): string[] {
    const now = performance.now();
    return [...this.#inFlight].map(
      ([c, at]) =>
        `${c.name} from ${c.appName ?? '?'} for ${Math.round(now - at)} ms: ${JSON.stringify(c.body).slice(0, 300)}`,
    );
  }

  /**
   * Holds the next command matching `match` (before it runs) until `release` resolves, to
   * place another client's commands inside a transaction deterministically. Resolves once
   * the command is held.
   */
  hold(match: (command: SimCommand) => boolean, release: Promise<void>): Promise<void> {
    return new Promise((held) => this.#holds.push({ match, release, held }));
  }

  /** Places a fault on the next matching commands. */
  fault(fault: Fault): void {
    this.#faults.push({ ...fault, count: fault.count ?? 1 });
  }

  /** Drops oplog entries up to the newest (or `ts`): resuming before them fails with 286. */
  truncateOplog(ts: number = this.engine.clock): void {
    this.engine.truncateOplog(ts);
  }

  /** Runs the TTL monitor now (it also runs every `ttlMonitorIntervalMs`). */
  runTtlMonitor(): void {
    this.#ttlPass();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#ttlTimer);
    for (const txn of [...this.engine.openTxns]) this.engine.abort(txn, 'shutdown');
    for (const w of this.#waiters) w.resolve('interrupted');
    for (const wake of [...this.#changeWaiters]) wake();
    this.cutConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  // ---------------------------------------------------------------- wire

  #accept(socket: Socket): void {
    const connection: Connection = { id: ++this.#nextConnection, socket, appName: undefined };
    this.#connections.add(connection);
    socket.on('close', () => this.#connections.delete(connection));
    socket.on('end', () => this.#noteConnection(connection, 'ended by the client'));
    socket.on('error', () => undefined);
    socket.setNoDelay(true);
    let pending: Buffer = Buffer.alloc(0);
    let queue = Promise.resolve();
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 4) {
        const length = pending.readInt32LE(0);
        if (pending.length < length) break;
        const message = pending.subarray(0, length);
        pending = pending.subarray(length);
        queue = queue.then(() =>
          this.#handle(connection, message).catch((error: unknown) => {
            this.#end(connection, `handler threw: ${String(error).slice(0, 200)}`);
          }),
        );
      }
    });
  }

  async #handle(connection: Connection, message: Buffer): Promise<void> {
    const { socket } = connection;
    if (socket.destroyed) return;
    const requestId = message.readInt32LE(4);
    const opCode = message.readInt32LE(12);
    if (opCode === OP_QUERY) {
      let offset = 20;
      while (message[offset] !== 0) offset += 1;
      offset += 1 + 8;
      const query = BSON.deserialize(message.subarray(offset), {
        allowObjectSmallerThanBufferSize: true,
      });
      if (!this.#identify(connection, query)) return;
      socket.write(encodeReply(requestId, this.#hello(connection)));
      return;
    }
    if (opCode !== OP_MSG) throw new Error(`opCode ${opCode} is not simulated`);
    const flags = message.readUInt32LE(16);
    const body = decodeMessage(message);
    const name = Object.keys(body)[0]!;
    if (name === 'hello' || name === 'isMaster' || name === 'ismaster') {
      if (!this.#identify(connection, body)) return;
      socket.write(encodeMessage(requestId, this.#hello(connection)));
      return;
    }
    const command: SimCommand = {
      name,
      db: String(body.$db),
      body,
      appName: connection.appName,
      inTransaction: body.autocommit === false,
    };
    this.commandCounts.set(name, (this.commandCounts.get(name) ?? 0) + 1);
    const hold = this.#holds.findIndex((h) => h.match(command));
    if (hold >= 0) {
      const [{ release, held }] = this.#holds.splice(hold, 1) as [Hold];
      held();
      await release;
    }
    const fault = this.#takeFault(command);
    if (fault === 'hangUpBefore') {
      this.#end(connection, 'hangUpBefore');
      return;
    }
    if (fault === 'killClient') {
      this.killClient(connection.appName ?? '');
      this.#end(connection, 'killClient');
      return;
    }
    const started = performance.now();
    this.#inFlight.set(command, started);
    let reply: Document;
    try {
      reply = await this.#run(command);
    } finally {
      this.#inFlight.delete(command);
    }
    // SIM_TRACE=<ms>: log every command slower than that (for finding what a test waits on).
    if (process.env.SIM_TRACE && performance.now() - started > Number(process.env.SIM_TRACE)) {
      console.info(
        `[sim] ${name} ${String(body[name])} took ${Math.round(performance.now() - started)} ms`,
        JSON.stringify(body).slice(0, 300),
        JSON.stringify(reply).slice(0, 300),
      );
    }
    // moreToCome (bit 1): an unacknowledged write expects no reply.
    if ((flags & 2) !== 0) return;
    if (fault === 'hangUpAfter' || socket.destroyed) {
      this.#end(connection, fault === 'hangUpAfter' ? 'hangUpAfter' : 'already ended');
      return;
    }
    socket.write(encodeMessage(requestId, reply));
  }

  /** Ends a connection from the server side, noting why. */
  #end(connection: Connection, why: string): void {
    this.#noteConnection(connection, `ended: ${why}`);
    connection.socket.destroy();
  }

  #noteConnection(connection: Connection, what: string): void {
    const app = connection.appName ?? '(before its handshake)';
    const events = this.#connectionEvents.get(app) ?? new Map<string, number>();
    events.set(what, (events.get(what) ?? 0) + 1);
    this.#connectionEvents.set(app, events);
  }

  /** Per client, what happened to its connections (to tell why a client lost the server). */
  connectionEvents(): string[] {
    return [...this.#connectionEvents].map(
      ([app, events]) => `${app}: ${[...events].map(([what, n]) => `${what} x${n}`).join(', ')}`,
    );
  }

  /** Records the client's appName from its handshake; false if that client is dead. */
  #identify(connection: Connection, hello: Document): boolean {
    const appName = (hello.client as { application?: { name?: string } } | undefined)?.application
      ?.name;
    if (appName !== undefined) connection.appName = appName;
    this.#noteConnection(connection, 'handshake');
    if (connection.appName !== undefined && this.#deadApps.has(connection.appName)) {
      this.#end(connection, 'handshake of a dead client');
      return false;
    }
    return true;
  }

  #takeFault(command: SimCommand): Fault['action'] | undefined {
    for (const fault of this.#faults) {
      if ((fault.count ?? 0) > 0 && fault.match(command)) {
        fault.count = (fault.count ?? 1) - 1;
        return fault.action;
      }
    }
    return undefined;
  }

  #hello(connection: Connection): Document {
    const primary = this.#state === 'primary';
    return {
      helloOk: true,
      isWritablePrimary: primary,
      ismaster: primary,
      secondary: !primary,
      setName: 'rs0',
      setVersion: 1,
      ...(primary
        ? {
            electionId: new BSON.ObjectId(`7fffffff${this.#term.toString(16).padStart(16, '0')}`),
            primary: this.host,
          }
        : {}),
      hosts: [this.host],
      me: this.host,
      maxBsonObjectSize: 16 * 1024 * 1024,
      maxMessageSizeBytes: 48_000_000,
      maxWriteBatchSize: 100_000,
      localTime: new Date(),
      logicalSessionTimeoutMinutes: 30,
      connectionId: connection.id,
      minWireVersion: 0,
      // MongoDB 7.0.
      maxWireVersion: 21,
      readOnly: false,
      ok: 1,
    };
  }

  // ---------------------------------------------------------------- commands

  async #run(command: SimCommand): Promise<Document> {
    const { body } = command;
    const isCommitOrAbort =
      command.name === 'commitTransaction' || command.name === 'abortTransaction';
    const retryableWrite =
      !command.inTransaction && body.txnNumber !== undefined && !isCommitOrAbort;
    try {
      return { ...(await this.#dispatch(command)), ok: 1 };
    } catch (error) {
      if (!(error instanceof SimError)) {
        return {
          ok: 0,
          code: 1,
          codeName: 'InternalError',
          errmsg: `simulator: ${error instanceof Error ? error.stack : String(error)}`,
        };
      }
      const labels = new Set(error.labels);
      if ((retryableWrite || isCommitOrAbort) && RETRYABLE_CODES.has(error.code)) {
        labels.add('RetryableWriteError');
      }
      if (command.inTransaction && !isCommitOrAbort) {
        if ([112, 251, 10107, 13435, 11602].includes(error.code)) {
          labels.add('TransientTransactionError');
        }
      }
      if (isCommitOrAbort && error.code === 251) labels.add('TransientTransactionError');
      return {
        ok: 0,
        errmsg: error.message,
        code: error.code,
        codeName: error.codeName,
        ...(labels.size > 0 ? { errorLabels: [...labels] } : {}),
        ...error.extra,
      };
    }
  }

  #session(body: Document): Session | undefined {
    const id = lsidOf(body);
    if (id === undefined) return undefined;
    let session = this.#sessions.get(id);
    if (!session) {
      session = {
        id,
        txn: undefined,
        txnNumber: -1,
        committed: new Map(),
        retryable: new Map(),
        appName: undefined,
      };
      this.#sessions.set(id, session);
    }
    return session;
  }

  /** The transaction a statement belongs to (starting it on `startTransaction`). */
  #txnOf(session: Session | undefined, body: Document): Txn {
    if (!session) throw simError(Code.InvalidOptions, 'a transaction needs a session');
    const txnNumber = num(body.txnNumber)!;
    if (body.startTransaction === true) {
      if (txnNumber < session.txnNumber) {
        throw simError(Code.TransactionTooOld, `txnNumber ${txnNumber} is too old`);
      }
      if (session.txn?.state === 'open') this.engine.abort(session.txn, 'superseded');
      session.txnNumber = txnNumber;
      const txn = this.engine.begin(session.id, txnNumber);
      txn.timer = setTimeout(() => {
        this.engine.abort(txn, 'transactionLifetimeLimitSeconds');
      }, this.#options.transactionLifetimeLimitMs);
      txn.timer.unref();
      session.txn = txn;
      return txn;
    }
    const txn = session.txn;
    if (!txn || txn.txnNumber !== txnNumber || txn.state !== 'open') {
      throw simError(
        Code.NoSuchTransaction,
        `Transaction with { txnNumber: ${txnNumber} } has been aborted${txn?.abortReason ? ` (${txn.abortReason})` : ''}.`,
      );
    }
    return txn;
  }

  #requirePrimary(command: SimCommand): void {
    if (this.#state === 'primary') return;
    const write = !['find', 'aggregate', 'getMore', 'listCollections', 'listIndexes'].includes(
      command.name,
    );
    if (write) throw simError(Code.NotWritablePrimary, 'not primary');
    throw simError(Code.NotPrimaryNoSecondaryOk, 'not primary and secondaryOk=false');
  }

  async #dispatch(command: SimCommand): Promise<Document> {
    const { name, body, db } = command;
    switch (name) {
      case 'ping':
      case 'endSessions':
        return {};
      case 'buildInfo':
        return { version: '7.0.0', versionArray: [7, 0, 0, 0] };
      case 'killSessions': {
        for (const entry of (body.killSessions as Document[]) ?? []) {
          const id = Buffer.from((entry.id as BSON.Binary).buffer).toString('hex');
          const txn = this.#sessions.get(id)?.txn;
          if (txn) this.engine.abort(txn, 'killSessions');
        }
        return {};
      }
      default:
        break;
    }
    this.#requirePrimary(command);
    const session = this.#session(body);
    if (session && command.appName) session.appName = command.appName;
    switch (name) {
      case 'commitTransaction':
        return this.#commitTransaction(session, body);
      case 'abortTransaction': {
        const txn = this.#txnOf(session, body);
        this.engine.abort(txn, 'abortTransaction');
        return {};
      }
      case 'getMore':
        return this.#getMore(body, command);
      case 'killCursors': {
        const ids = ((body.cursors as unknown[]) ?? []).map((c) => BigInt(num(c)!));
        for (const id of ids) this.#cursors.delete(id);
        return { cursorsKilled: ids.map((id) => BSON.Long.fromBigInt(id)), cursorsNotFound: [] };
      }
      default:
        break;
    }
    const txn = command.inTransaction ? this.#txnOf(session, body) : undefined;
    try {
      return await this.#collectionCommand(command, db, session, txn);
    } catch (error) {
      // Any failed statement aborts its transaction.
      if (txn) this.engine.abort(txn, `a statement failed: ${(error as Error).message}`);
      throw error;
    }
  }

  async #collectionCommand(
    command: SimCommand,
    db: string,
    session: Session | undefined,
    txn: Txn | undefined,
  ): Promise<Document> {
    const { name, body } = command;
    const target = body[name];
    const collName = typeof target === 'string' ? target : undefined;
    const retryable =
      !txn && session && body.txnNumber !== undefined ? num(body.txnNumber) : undefined;
    if (retryable !== undefined && session) {
      const done = session.retryable.get(retryable);
      if (done) {
        await this.#awaitWriteConcern(done.ts, body);
        return { ...done.reply, retriedWrite: true };
      }
    }
    const run = async (): Promise<Document> => {
      switch (name) {
        case 'create':
          return this.#create(db, collName!);
        case 'drop':
          return this.#drop(db, collName!);
        case 'dropDatabase':
          return this.#dropDatabase(db);
        case 'listCollections':
          return this.#listCollections(db, body);
        case 'createIndexes':
          return this.#createIndexes(db, collName!, body);
        case 'listIndexes': {
          const coll = this.engine.collection(db, collName!, false);
          if (!coll) throw simError(Code.NamespaceNotFound, `ns does not exist: ${db}.${collName}`);
          const docs = coll.indexes.map((i) => ({
            v: 2,
            key: i.key,
            name: i.name,
            ...(i.unique && i.name !== '_id_' ? { unique: true } : {}),
            ...(i.expireAfterSeconds !== undefined
              ? { expireAfterSeconds: i.expireAfterSeconds }
              : {}),
          }));
          return this.#cursorReply(`${db}.${collName}`, docs, body, undefined);
        }
        case 'find':
          return this.#find(db, collName!, body, txn, session);
        case 'aggregate':
          return this.#aggregate(db, target, body, txn, session);
        case 'insert':
          return this.#insert(db, collName!, body, txn);
        case 'update':
          return this.#update(db, collName!, body, txn);
        case 'delete':
          return this.#delete(db, collName!, body, txn);
        case 'findAndModify':
          return this.#findAndModify(db, collName!, body, txn);
        default:
          this.unsupported.push(name);
          throw simError(Code.CommandNotFound, `no such command: '${name}' (not simulated)`);
      }
    };
    const reply = await run();
    const writes = [
      'insert',
      'update',
      'delete',
      'findAndModify',
      'create',
      'drop',
      'dropDatabase',
      'createIndexes',
    ];
    if (!txn && writes.includes(name)) {
      const ts = this.engine.clock;
      if (retryable !== undefined && session) session.retryable.set(retryable, { ts, reply });
      await this.#awaitWriteConcern(ts, body, reply);
    }
    return reply;
  }

  #writeConcern(body: Document): WriteConcern {
    const wc = body.writeConcern as Document | undefined;
    // MongoDB 5.0+ defaults to w: "majority" (the implicit default write concern).
    const w = wc?.w ?? 'majority';
    return {
      w: w === 'majority' ? 'majority' : (num(w) ?? 1),
      wtimeout: num(wc?.wtimeout ?? wc?.wtimeoutMS),
    };
  }

  /** Waits for the write concern; a timeout or interruption goes into `reply` or throws. */
  async #awaitWriteConcern(ts: number, body: Document, reply?: Document): Promise<void> {
    const wc = this.#writeConcern(body);
    if (wc.w !== 'majority') return;
    const timeouts = [wc.wtimeout, num(body.maxTimeMS)].filter(
      (t): t is number => t !== undefined && t > 0,
    );
    const outcome = await this.#awaitMajority(
      ts,
      timeouts.length ? Math.min(...timeouts) : undefined,
    );
    if (outcome === 'ok') return;
    if (outcome === 'interrupted') {
      throw simError(
        Code.InterruptedDueToReplStateChange,
        'operation was interrupted because the node stepped down',
      );
    }
    const wce = {
      code: 64,
      codeName: 'WriteConcernFailed',
      errmsg: 'waiting for replication timed out',
      errInfo: { wtimeout: true, writeConcern: { w: 'majority', wtimeout: wc.wtimeout ?? 0 } },
    };
    if (reply) reply.writeConcernError = wce;
    else throw new SimError(64, 'WriteConcernFailed', wce.errmsg, [], { errInfo: wce.errInfo });
  }

  #awaitMajority(
    ts: number,
    timeoutMs: number | undefined,
  ): Promise<'ok' | 'interrupted' | 'timeout'> {
    if (ts <= this.engine.majorityTs) return Promise.resolve('ok');
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = {
        ts,
        resolve: (outcome) => {
          clearTimeout(timer);
          resolve(outcome);
        },
      };
      this.#waiters.push(waiter);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.#waiters = this.#waiters.filter((w) => w !== waiter);
          resolve('timeout');
        }, timeoutMs);
      }
    });
  }

  #replicate(ts: number): void {
    const [min, max] = this.#options.replicationLagMs;
    const lag = max > 0 ? this.#rng.int(min, max) : 0;
    const trim = this.engine.oplog.length - this.#options.oplogMaxEntries;
    if (trim > 0) this.engine.truncateOplog(this.engine.oplog[trim - 1]!.ts);
    const advance = () => {
      if (!this.#replicationPaused && this.#state === 'primary') this.advanceMajority(ts);
    };
    if (lag === 0) setImmediate(advance);
    else setTimeout(advance, lag).unref();
  }

  async #commitTransaction(session: Session | undefined, body: Document): Promise<Document> {
    if (!session) throw simError(Code.InvalidOptions, 'commitTransaction needs a session');
    const txnNumber = num(body.txnNumber)!;
    const committedAt = session.committed.get(txnNumber);
    let ts: number;
    if (committedAt !== undefined) {
      // A retried commit: the outcome of the one transaction.
      ts = committedAt;
    } else {
      const txn = this.#txnOf(session, body);
      ts = this.engine.commit(txn);
      session.committed.set(txnNumber, ts);
    }
    const reply: Document = {};
    await this.#awaitWriteConcern(ts, body, reply);
    return reply;
  }

  // ---------------------------------------------------------------- catalog

  #create(db: string, name: string): Document {
    if (this.engine.collection(db, name, false)) {
      throw simError(Code.NamespaceExists, `Collection ${db}.${name} already exists.`);
    }
    this.engine.collection(db, name, true);
    return {};
  }

  #drop(db: string, name: string): Document {
    const colls = this.engine.dbs.get(db);
    const coll = colls?.get(name);
    if (!coll) throw simError(Code.NamespaceNotFound, 'ns not found');
    this.#refuseHeld(coll);
    colls!.delete(name);
    this.engine.logDrop(db, name);
    return { ns: coll.ns, nIndexesWas: coll.indexes.length };
  }

  #dropDatabase(db: string): Document {
    const colls = this.engine.dbs.get(db);
    if (colls) {
      for (const coll of colls.values()) this.#refuseHeld(coll);
      for (const name of colls.keys()) this.engine.logDrop(db, name);
      this.engine.dbs.delete(db);
    }
    return { dropped: db };
  }

  /** A drop waits for no transaction here: it aborts the ones holding the collection. */
  #refuseHeld(coll: Collection): void {
    for (const txn of [...this.engine.openTxns]) {
      for (const w of txn.writes.values()) {
        if (w.coll === coll) {
          this.engine.abort(txn, 'collection dropped');
          break;
        }
      }
    }
  }

  #listCollections(db: string, body: Document): Document {
    const colls = [...(this.engine.dbs.get(db)?.values() ?? [])];
    const docs = matches(
      colls.map((c) => ({ _id: c.name, name: c.name, type: 'collection' })),
      body.filter as Document | undefined,
    ).map(({ name, type }) =>
      body.nameOnly ? { name, type } : { name, type, options: {}, info: { readOnly: false } },
    );
    return this.#cursorReply(`${db}.$cmd.listCollections`, docs, body, undefined);
  }

  #createIndexes(db: string, name: string, body: Document): Document {
    const existed = this.engine.collection(db, name, false) !== undefined;
    const coll = this.engine.collection(db, name, true)!;
    const before = coll.indexes.length;
    for (const raw of body.indexes as Document[]) {
      const spec: IndexSpec = {
        name: String(raw.name),
        key: Object.fromEntries(
          Object.entries(raw.key as Document).map(([k, v]) => [k, num(v) ?? 1]),
        ),
        unique: raw.unique === true,
        ...(raw.expireAfterSeconds !== undefined
          ? { expireAfterSeconds: num(raw.expireAfterSeconds)! }
          : {}),
      };
      const same = coll.indexes.find((i) => i.name === spec.name);
      const sameKey = coll.indexes.find((i) => JSON.stringify(i.key) === JSON.stringify(spec.key));
      if (same) {
        if (JSON.stringify(same.key) !== JSON.stringify(spec.key)) {
          throw simError(
            Code.IndexKeySpecsConflict,
            `An existing index has the same name as the requested index but different keys: ${spec.name}`,
          );
        }
        if (same.unique !== spec.unique || same.expireAfterSeconds !== spec.expireAfterSeconds) {
          throw simError(
            Code.IndexOptionsConflict,
            `An existing index has the same name as the requested index but different options: ${spec.name}`,
          );
        }
        continue;
      }
      if (sameKey) {
        throw simError(
          Code.IndexOptionsConflict,
          `Index already exists with a different name: ${sameKey.name}`,
        );
      }
      if (spec.unique) {
        const seen = new Map<string, Doc>();
        for (const doc of coll.latest.values()) {
          for (const k of indexKeys(doc, spec)) {
            if (seen.has(k)) throw coll.duplicateKeyError(doc, spec);
            seen.set(k, doc);
          }
        }
        coll.indexes.push(spec);
        coll.unique.set(spec.name, new Map());
        coll.rebuild();
      } else {
        coll.indexes.push(spec);
      }
    }
    return {
      createdCollectionAutomatically: !existed,
      numIndexesBefore: before,
      numIndexesAfter: coll.indexes.length,
    };
  }

  // ---------------------------------------------------------------- reads

  #readTs(body: Document, txn: Txn | undefined): number | undefined {
    if (txn) return undefined;
    const level = (body.readConcern as { level?: ReadLevel } | undefined)?.level ?? 'local';
    switch (level) {
      case 'majority':
      case 'snapshot':
      case 'linearizable':
        return this.engine.majorityTs;
      case 'local':
      case 'available':
        return undefined;
      default:
        throw simError(Code.BadValue, `unknown read concern level ${String(level)}`);
    }
  }

  #find(
    db: string,
    name: string,
    body: Document,
    txn: Txn | undefined,
    session: Session | undefined,
  ): Document {
    const coll = this.engine.collection(db, name, false);
    const filter = (body.filter as Document) ?? {};
    const { docs, exact } = this.engine.candidates(coll, filter, this.#readTs(body, txn), txn);
    let cursor = new Query(exact ? {} : filter).find(docs);
    if (body.sort && Object.keys(body.sort as Document).length > 0) {
      cursor = cursor.sort(body.sort as never);
    }
    const skip = num(body.skip);
    if (skip) cursor = cursor.skip(skip);
    const limit = num(body.limit);
    if (limit) cursor = cursor.limit(Math.abs(limit));
    const found = project(cursor.all() as Document[], body.projection as Document | undefined);
    return this.#cursorReply(
      `${db}.${name}`,
      found,
      body,
      session,
      (limit ?? 0) < 0 || body.singleBatch === true,
    );
  }

  #cursorReply(
    ns: string,
    docs: Document[],
    body: Document,
    session: Session | undefined,
    singleBatch = false,
  ): Document {
    const size = num((body.cursor as Document | undefined)?.batchSize ?? body.batchSize) ?? 101;
    const first = docs.slice(0, size || docs.length);
    const rest = docs.slice(first.length);
    let id = 0n;
    if (rest.length > 0 && !singleBatch) {
      id = this.#nextCursor++;
      this.#cursors.set(id, { kind: 'find', id, ns, docs: rest, lsid: session?.id });
    }
    return { cursor: { id: BSON.Long.fromBigInt(id), ns, firstBatch: first } };
  }

  #aggregate(
    db: string,
    target: unknown,
    body: Document,
    txn: Txn | undefined,
    session: Session | undefined,
  ): Document {
    const pipeline = (body.pipeline as Document[]) ?? [];
    const collName = typeof target === 'string' ? target : undefined;
    const first = pipeline[0];
    if (first && '$changeStream' in first) {
      if (txn) throw simError(Code.InvalidOptions, '$changeStream is not allowed in a transaction');
      return this.#openChangeStream(
        db,
        collName,
        first.$changeStream as Document,
        pipeline.slice(1),
        body,
        session,
      );
    }
    if (!collName) throw simError(Code.InvalidOptions, 'aggregate on a database is not simulated');
    const coll = this.engine.collection(db, collName, false);
    const docs = this.engine.read(coll, this.#readTs(body, txn), txn);
    const out = new Aggregator(pipeline).run<Document>(docs);
    return this.#cursorReply(`${db}.${collName}`, out, body, session);
  }

  async #getMore(body: Document, command: SimCommand): Promise<Document> {
    const id = BigInt(num(body.getMore)!);
    const cursor = this.#cursors.get(id);
    const ns = `${command.db}.${String(body.collection)}`;
    if (!cursor) {
      throw simError(Code.CursorNotFound, `cursor id ${id} not found`, [
        'ResumableChangeStreamError',
      ]);
    }
    if (cursor.kind === 'find') {
      const size = num(body.batchSize) || cursor.docs.length;
      const batch = cursor.docs.splice(0, size);
      if (cursor.docs.length === 0) this.#cursors.delete(id);
      return {
        cursor: {
          id: BSON.Long.fromBigInt(cursor.docs.length === 0 ? 0n : id),
          ns,
          nextBatch: batch,
        },
      };
    }
    const waitMs = num(body.maxTimeMS) ?? 1_000;
    let batch = this.#changes(cursor, num(body.batchSize));
    if (batch.events.length === 0 && waitMs > 0) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#changeWaiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, waitMs);
        this.#changeWaiters.add(wake);
      });
      if (!this.#cursors.has(id)) {
        throw simError(Code.InterruptedDueToReplStateChange, 'cursor killed by a stepdown', [
          'ResumableChangeStreamError',
        ]);
      }
      batch = this.#changes(cursor, num(body.batchSize));
    }
    if (cursor.invalidated) this.#cursors.delete(id);
    return {
      cursor: {
        id: BSON.Long.fromBigInt(cursor.invalidated ? 0n : id),
        ns,
        nextBatch: batch.events,
        postBatchResumeToken: batch.token,
      },
    };
  }

  // ---------------------------------------------------------------- change streams

  #openChangeStream(
    db: string,
    coll: string | undefined,
    spec: Document,
    pipeline: Document[],
    body: Document,
    session: Session | undefined,
  ): Document {
    const token = spec.startAfter ?? spec.resumeAfter;
    let start: [number, number];
    if (token !== undefined) {
      start = decodeToken(token);
      this.#checkResumable(start);
    } else if (spec.startAtOperationTime) {
      const t = spec.startAtOperationTime as BSON.Timestamp;
      start = [Number(t.low ?? t.getLowBits()) - 1, HW];
      this.#checkResumable(start);
    } else {
      // Without a resume point a stream starts at the newest operation.
      start = [this.engine.clock, HW];
    }
    const id = this.#nextCursor++;
    const cursor: ChangeCursor = {
      kind: 'change',
      id,
      ns: coll ? `${db}.${coll}` : `${db}.$cmd.aggregate`,
      db,
      coll,
      pipeline,
      after: start,
      fullDocument: String(spec.fullDocument ?? 'default'),
      invalidated: false,
      lsid: session?.id,
    };
    this.#cursors.set(id, cursor);
    const size = num((body.cursor as Document | undefined)?.batchSize);
    const batch = this.#changes(cursor, size);
    if (cursor.invalidated) this.#cursors.delete(id);
    return {
      cursor: {
        id: BSON.Long.fromBigInt(cursor.invalidated ? 0n : id),
        ns: cursor.ns,
        firstBatch: batch.events,
        postBatchResumeToken: batch.token,
      },
    };
  }

  /** Refuses a resume point the oplog no longer covers (286), or an event it never had (280). */
  #checkResumable([ts, index]: [number, number]): void {
    if (ts < this.engine.oplogTruncatedThrough) {
      throw simError(
        Code.ChangeStreamHistoryLost,
        'Resume of change stream was not possible, as the resume point may no longer be in the oplog.',
        ['NonResumableChangeStreamError'],
      );
    }
    if (index === HW) return;
    const entry = this.engine.oplog.find((e) => e.ts === ts);
    if (!entry || index >= entry.ops.length) {
      throw simError(
        Code.ChangeStreamFatalError,
        'cannot resume stream; the resume token was not found.',
        ['NonResumableChangeStreamError'],
      );
    }
  }

  /** Majority-committed changes after the cursor's position, through its pipeline. */
  #changes(
    cursor: ChangeCursor,
    batchSize: number | undefined,
  ): { events: Document[]; token: Document } {
    const limit = batchSize && batchSize > 0 ? batchSize : Number.MAX_SAFE_INTEGER;
    const majority = this.engine.majorityTs;
    const events: Document[] = [];
    const oplog = this.engine.oplog;
    // The first entry after the cursor (binary search on ts).
    let lo = 0;
    let hi = oplog.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (oplog[mid]!.ts < cursor.after[0]) lo = mid + 1;
      else hi = mid;
    }
    let scannedTo: [number, number] = cursor.after;
    outer: for (let i = lo; i < oplog.length; i += 1) {
      const entry = oplog[i]!;
      if (entry.ts > majority) break;
      for (let j = 0; j < entry.ops.length; j += 1) {
        const at: [number, number] = [entry.ts, j];
        if (!after(at, cursor.after)) continue;
        if (events.length >= limit) break outer;
        const op = entry.ops[j]!;
        scannedTo = at;
        if (op.db !== cursor.db || (cursor.coll !== undefined && op.coll !== cursor.coll)) continue;
        const event = this.#changeEvent(entry, j);
        if (op.op === 'drop' && cursor.coll !== undefined) {
          for (const e of this.#throughPipeline(event, cursor.pipeline)) events.push(e);
          events.push({
            _id: encodeToken(entry.ts, HW - 1),
            operationType: 'invalidate',
            clusterTime: new BSON.Timestamp({ t: entry.ts, i: 0 }),
            wallTime: entry.wallTime,
          });
          cursor.invalidated = true;
          cursor.after = at;
          return { events, token: encodeToken(entry.ts, HW - 1) };
        }
        for (const e of this.#throughPipeline(event, cursor.pipeline)) events.push(e);
      }
      if (events.length < limit) scannedTo = [entry.ts, HW];
    }
    if (events.length < limit) {
      // Everything up to the commit point was scanned: the high-water mark moves there.
      scannedTo = after([majority, HW], scannedTo) ? [majority, HW] : scannedTo;
    }
    cursor.after = scannedTo;
    return { events, token: encodeToken(scannedTo[0], scannedTo[1]) };
  }

  #changeEvent(entry: OplogEntry, index: number): Document {
    const op = entry.ops[index]!;
    const base = {
      _id: encodeToken(entry.ts, index),
      clusterTime: new BSON.Timestamp({ t: entry.ts, i: index + 1 }),
      wallTime: entry.wallTime,
      ns: { db: op.db, coll: op.coll },
    };
    switch (op.op) {
      case 'i':
        return {
          ...base,
          operationType: 'insert',
          documentKey: { _id: op.id },
          fullDocument: op.doc,
        };
      case 'u':
        return {
          ...base,
          operationType: 'replace',
          documentKey: { _id: op.id },
          fullDocument: op.doc,
        };
      case 'd':
        return { ...base, operationType: 'delete', documentKey: { _id: op.id } };
      case 'drop':
        return { ...base, operationType: 'drop' };
      default: {
        const never: never = op.op;
        throw new Error(`unknown oplog op ${String(never)}`);
      }
    }
  }

  #throughPipeline(event: Document, pipeline: Document[]): Document[] {
    if (pipeline.length === 0) return [event];
    const out = new Aggregator(pipeline).run<Document>([clone(event)]);
    for (const e of out) {
      if (!BSON_equal(e._id, event._id)) {
        throw simError(
          Code.ChangeStreamFatalError,
          'Encountered an event whose _id field, which contains the resume token, was modified by the pipeline.',
          ['NonResumableChangeStreamError'],
        );
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- writes

  /** Runs one write statement, waiting (bounded by maxTimeMS) while a transaction blocks it. */
  async #statement<T>(
    body: Document,
    txn: Txn | undefined,
    attempt: () => T | Blocked,
  ): Promise<T> {
    const maxTimeMS = num(body.maxTimeMS);
    const deadline = maxTimeMS ? Date.now() + maxTimeMS : undefined;
    for (;;) {
      const result = attempt();
      if (!(result instanceof Blocked)) return result;
      if (txn) throw new Error('a transaction statement cannot block');
      const left = deadline === undefined ? undefined : deadline - Date.now();
      if (left !== undefined && left <= 0) {
        throw simError(Code.MaxTimeMSExpired, 'operation exceeded time limit');
      }
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        result.txn.ended.then(() => false),
        new Promise<boolean>((resolve) => {
          if (left !== undefined) timer = setTimeout(() => resolve(true), left);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) throw simError(Code.MaxTimeMSExpired, 'operation exceeded time limit');
      if (this.#state !== 'primary') throw simError(Code.NotWritablePrimary, 'not primary');
    }
  }

  async #insert(db: string, name: string, body: Document, txn: Txn | undefined): Promise<Document> {
    const coll = this.engine.collection(db, name, true)!;
    const documents = body.documents as Doc[];
    const ordered = body.ordered !== false;
    const writeErrors: Document[] = [];
    let n = 0;
    for (const [index, doc] of documents.entries()) {
      try {
        await this.#statement(body, txn, () => this.#insertOne(coll, doc, txn));
        n += 1;
      } catch (error) {
        if (!(error instanceof SimError) || txn) throw error;
        if (error.code !== 11000) throw error;
        writeErrors.push({ index, code: error.code, errmsg: error.message, ...error.extra });
        if (ordered) break;
      }
    }
    return { n, ...(writeErrors.length ? { writeErrors } : {}) };
  }

  #insertOne(coll: Collection, doc: Doc, txn: Txn | undefined): Blocked | number {
    if (doc._id === undefined) throw simError(Code.BadValue, 'documents need an _id');
    return this.engine.write(coll, doc._id, clone(doc), 'i', txn);
  }

  async #update(db: string, name: string, body: Document, txn: Txn | undefined): Promise<Document> {
    const coll = this.engine.collection(db, name, true)!;
    const ordered = body.ordered !== false;
    const writeErrors: Document[] = [];
    const upserted: Document[] = [];
    let n = 0;
    let nModified = 0;
    for (const [index, statement] of (body.updates as Document[]).entries()) {
      try {
        const result = await this.#statement(body, txn, () =>
          this.#updateOne(coll, statement, txn),
        );
        n += result.matched + (result.upserted !== undefined ? 1 : 0);
        nModified += result.modified;
        if (result.upserted !== undefined) upserted.push({ index, _id: result.upserted });
      } catch (error) {
        if (!(error instanceof SimError) || txn) throw error;
        writeErrors.push({ index, code: error.code, errmsg: error.message, ...error.extra });
        if (ordered) break;
      }
    }
    return {
      n,
      nModified,
      ...(upserted.length ? { upserted } : {}),
      ...(writeErrors.length ? { writeErrors } : {}),
    };
  }

  /**
   * One update statement, atomically: finds the matches in the writer's view, writes each.
   * Returns Blocked (nothing written) when a transaction holds a document it must write.
   */
  #updateOne(
    coll: Collection,
    statement: Document,
    txn: Txn | undefined,
    sort?: Document,
  ):
    | {
        matched: number;
        modified: number;
        upserted?: unknown;
        before?: Doc | null;
        after?: Doc | null;
      }
    | Blocked {
    const filter = (statement.q as Document) ?? {};
    const multi = statement.multi === true;
    const { docs: candidates, exact } = this.engine.candidates(coll, filter, undefined, txn);
    let found = exact ? candidates : matches(candidates, filter);
    if (sort && Object.keys(sort).length > 0) {
      found = new Query({}).find(found).sort(sort).all() as Doc[];
    }
    if (!multi) found = found.slice(0, 1);
    if (found.length === 0) {
      if (statement.upsert !== true) return { matched: 0, modified: 0, before: null, after: null };
      const seed = clone(equalityFields(filter)) as Doc;
      const u = statement.u;
      let doc: Doc;
      if (Array.isArray(u) || Object.keys(u as Document).some((k) => k.startsWith('$'))) {
        const start = {} as Doc;
        for (const [path, value] of Object.entries(seed)) setPath(start, path, value);
        doc = applyUpdateNoIdCheck(start, u, true);
      } else {
        doc = { ...(seed._id !== undefined ? { _id: seed._id } : {}), ...(u as Document) } as Doc;
      }
      if (doc._id === undefined) {
        const { _id: _missing, ...fields } = doc;
        doc = { _id: new BSON.ObjectId(), ...fields };
      }
      try {
        const written = this.engine.write(coll, doc._id, doc, 'i', txn);
        if (written instanceof Blocked) return written;
      } catch (error) {
        // The server retries an upsert's duplicate key once when its filter is equality
        // predicates alone on the index's fields (manual, "Upsert with Duplicate Values").
        if (
          error instanceof SimError &&
          error.code === 11000 &&
          !txn &&
          equalityOnly(filter) &&
          Object.keys((error.extra.keyPattern as Document) ?? {}).every((f) => f in filter)
        ) {
          return this.#updateOne(coll, { ...statement, upsert: false }, txn, sort);
        }
        throw error;
      }
      return { matched: 0, modified: 0, upserted: doc._id, before: null, after: doc };
    }
    // Check every target first, so that a blocked statement writes nothing.
    if (!txn) {
      for (const doc of found) {
        const holder = this.engine.heldDocs.get(this.engine.keyOf(coll, doc._id));
        if (holder) return new Blocked(holder);
      }
    }
    let modified = 0;
    let last: { before: Doc; after: Doc } | undefined;
    for (const doc of found) {
      const next = applyUpdate(doc, statement.u, false);
      const changed = !BSON_equal(next, doc);
      if (changed) {
        const written = this.engine.write(coll, doc._id, next, 'u', txn);
        if (written instanceof Blocked) return written;
        modified += 1;
      }
      last = { before: doc, after: next };
    }
    return {
      matched: found.length,
      modified,
      before: last?.before ?? null,
      after: last?.after ?? null,
    };
  }

  async #delete(db: string, name: string, body: Document, txn: Txn | undefined): Promise<Document> {
    const coll = this.engine.collection(db, name, false);
    let n = 0;
    if (!coll) return { n };
    for (const statement of body.deletes as Document[]) {
      n += await this.#statement(body, txn, () => {
        const q = statement.q as Document;
        const { docs: candidates, exact } = this.engine.candidates(coll, q, undefined, txn);
        let found = exact ? candidates : matches(candidates, q);
        if (num(statement.limit) === 1) found = found.slice(0, 1);
        if (!txn) {
          for (const doc of found) {
            const holder = this.engine.heldDocs.get(this.engine.keyOf(coll, doc._id));
            if (holder) return new Blocked(holder);
          }
        }
        for (const doc of found) {
          const written = this.engine.write(coll, doc._id, null, 'd', txn);
          if (written instanceof Blocked) return written;
        }
        return found.length;
      });
    }
    return { n };
  }

  async #findAndModify(
    db: string,
    name: string,
    body: Document,
    txn: Txn | undefined,
  ): Promise<Document> {
    const coll = this.engine.collection(db, name, true)!;
    const query = (body.query as Document) ?? {};
    if (body.remove === true) {
      const removed = await this.#statement(body, txn, () => {
        const [doc] = new Query(query)
          .find(this.engine.candidates(coll, query, undefined, txn).docs)
          .sort((body.sort as never) ?? {})
          .limit(1)
          .all() as Doc[];
        if (!doc) return null;
        const written = this.engine.write(coll, doc._id, null, 'd', txn);
        return written instanceof Blocked ? written : doc;
      });
      return {
        lastErrorObject: { n: removed ? 1 : 0 },
        value: removed ? project([removed], body.fields as Document)[0] : null,
      };
    }
    const result = await this.#statement(body, txn, () =>
      this.#updateOne(
        coll,
        { q: query, u: body.update, upsert: body.upsert === true },
        txn,
        body.sort as Document,
      ),
    );
    const value = body.new === true ? result.after : result.before;
    return {
      lastErrorObject: {
        n: result.matched + (result.upserted !== undefined ? 1 : 0),
        updatedExisting: result.matched > 0,
        ...(result.upserted !== undefined ? { upserted: result.upserted } : {}),
      },
      value: value ? project([value], body.fields as Document)[0] : null,
    };
  }

  // ---------------------------------------------------------------- TTL

  #ttlPass(): void {
    if (this.#state !== 'primary') return;
    const now = Date.now();
    for (const colls of this.engine.dbs.values()) {
      for (const coll of colls.values()) {
        for (const index of coll.indexes) {
          if (index.expireAfterSeconds === undefined) continue;
          const field = Object.keys(index.key)[0]!;
          for (const doc of [...coll.latest.values()]) {
            const at = doc[field];
            if (!(at instanceof Date)) continue;
            if (at.getTime() + index.expireAfterSeconds * 1000 > now) continue;
            if (this.engine.heldDocs.has(this.engine.keyOf(coll, doc._id))) continue;
            this.engine.write(coll, doc._id, null, 'd', undefined);
          }
        }
      }
    }
  }
}

function setPath(doc: Document, path: string, value: unknown): void {
  const parts = path.split('.');
  let at = doc;
  for (const part of parts.slice(0, -1)) {
    if (!isPlainObject(at[part])) at[part] = {};
    at = at[part] as Document;
  }
  at[parts[parts.length - 1]!] = value;
}

function applyUpdateNoIdCheck(doc: Doc, u: unknown, inserting: boolean): Doc {
  if (doc._id !== undefined) return applyUpdate(doc, u, inserting);
  const { _id: _missing, ...fields } = doc;
  const withId = { _id: '__sim_pending_id__', ...fields } as Doc;
  const next = applyUpdate(withId, u, inserting);
  const { _id: _ignored, ...rest } = next;
  return rest as Doc;
}
