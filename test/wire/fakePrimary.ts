/**
 * A scripted MongoDB replica set primary for wire-level tests: a TCP server that speaks
 * the wire protocol to the real driver, answers `hello` as the primary of a one-member
 * replica set, records every other command, and replies from a per-test script with
 * defaults that make the adapters' ordinary commands succeed.
 *
 * Wire format (MongoDB manual, "MongoDB Wire Protocol"):
 * - every message starts with a 16-byte header: messageLength, requestID, responseTo,
 *   opCode (int32 little-endian);
 * - OP_MSG (2013): flagBits (uint32), then sections: kind 0 is one BSON document (the
 *   command body), kind 1 is a document sequence (int32 size, cstring identifier, BSON
 *   documents) that the driver may use for `documents`/`updates` of write commands;
 * - OP_QUERY (2004) is used by the driver only for the first handshake (`isMaster` /
 *   `hello` on `admin.$cmd`, before it knows the server's wire version): flags, cstring
 *   collection, numberToSkip, numberToReturn, query document; it is answered with
 *   OP_REPLY (1): responseFlags, cursorID (int64), startingFrom, numberReturned, documents.
 *
 * Nothing here is a database: `find` answers empty batches unless a script says otherwise.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { BSON, type Document } from 'mongodb';

export const OP_REPLY = 1;
export const OP_QUERY = 2004;
export const OP_MSG = 2013;

/** One command the fake received (handshakes and monitoring `hello`s are not recorded). */
export interface WireCommand {
  /** The command name: the first key of the body (`find`, `insert`, `commitTransaction`...). */
  name: string;
  /** `$db` of the command. */
  db: string;
  /** The body, with document sequences folded in under their identifiers. */
  body: Document;
  /** Which TCP connection carried it (1, 2, ... in accept order). */
  connection: number;
}

/** What a script answers: a reply document, or a fault. */
export type ScriptedReply =
  | Document
  | { $delayMs: number; reply: Document }
  /** Closes the connection without answering: the driver sees a network error. */
  | { $hangUp: true }
  /** Answers `reply` (a hang-up too) once `$await` settles, whichever way. */
  | { $await: Promise<unknown>; reply: Document | { $hangUp: true } };

/**
 * A per-test script step: answers a command, or returns undefined to leave it to the
 * next step (and finally to the defaults).
 */
export type Script = (command: WireCommand, fake: FakePrimary) => ScriptedReply | undefined;

export const HANDSHAKE_COMMANDS = new Set(['hello', 'ismaster', 'isMaster']);

export class FakePrimary {
  readonly commands: WireCommand[] = [];
  /** Position counter handed out by the default `findAndModify` answer. */
  counter = 0;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #scripts: Script[] = [];
  #connections = 0;
  #unavailable = false;
  readonly host: string;

  private constructor(server: Server) {
    this.#server = server;
    this.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  static async start(): Promise<FakePrimary> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const fake = new FakePrimary(server);
    server.on('connection', (socket) => fake.#accept(socket));
    return fake;
  }

  /** A connection string for the driver: a replica set named rs0 with this one member. */
  get uri(): string {
    return `mongodb://${this.host}/?replicaSet=rs0`;
  }

  /**
   * While true the server is unreachable: open connections are cut and new ones closed
   * at once, so the driver's monitor fails and server selection times out.
   */
  get unavailable(): boolean {
    return this.#unavailable;
  }

  set unavailable(value: boolean) {
    this.#unavailable = value;
    if (value) for (const socket of this.#sockets) socket.destroy();
  }

  /** Adds a script step; later steps are asked first. */
  script(step: Script): void {
    this.#scripts.unshift(step);
  }

  /** Answers the next `count` commands matching `match` with `reply`, then stops. */
  failNext(match: (command: WireCommand) => boolean, reply: ScriptedReply, count = 1): void {
    let left = count;
    this.script((command) => {
      if (left <= 0 || !match(command)) return undefined;
      left -= 1;
      return reply;
    });
  }

  /** Commands recorded from index `from` on, as `name` or `name collection` for reading. */
  names(from = 0): string[] {
    return this.commands.slice(from).map(describeCommand);
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket: Socket): void {
    if (this.#unavailable) {
      socket.destroy();
      return;
    }
    const connection = ++this.#connections;
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => undefined);
    let pending = Buffer.alloc(0);
    // Messages on one connection are answered in order, as a server does.
    let queue = Promise.resolve();
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4) {
        const length = pending.readInt32LE(0);
        if (pending.length < length) break;
        const message = pending.subarray(0, length);
        pending = pending.subarray(length);
        queue = queue.then(() => this.#handle(socket, connection, message));
      }
    });
  }

  async #handle(socket: Socket, connection: number, message: Buffer): Promise<void> {
    const requestId = message.readInt32LE(4);
    const opCode = message.readInt32LE(12);
    if (opCode === OP_QUERY) {
      // Only the first handshake comes this way.
      let offset = 20;
      while (message[offset] !== 0) offset += 1;
      offset += 1 + 8;
      const query = BSON.deserialize(message.subarray(offset), {
        allowObjectSmallerThanBufferSize: true,
      });
      socket.write(encodeReply(requestId, this.#hello(connection, query)));
      return;
    }
    if (opCode !== OP_MSG) throw new Error(`the fake primary does not speak opCode ${opCode}`);
    const body = decodeMessage(message);
    const name = Object.keys(body)[0]!;
    const command: WireCommand = { name, db: String(body.$db), body, connection };
    let reply: ScriptedReply;
    if (HANDSHAKE_COMMANDS.has(name)) {
      reply = this.#hello(connection, body);
    } else {
      this.commands.push(command);
      reply = this.#answer(command);
    }
    if ('$await' in reply) {
      const { $await, reply: then } = reply as {
        $await: Promise<unknown>;
        reply: Document | { $hangUp: true };
      };
      await $await.catch(() => undefined);
      reply = then;
    }
    if ('$hangUp' in reply) {
      socket.destroy();
      return;
    }
    if ('$delayMs' in reply) {
      const { $delayMs, reply: later } = reply as { $delayMs: number; reply: Document };
      await sleep($delayMs);
      reply = later;
    }
    if (!socket.destroyed) socket.write(encodeMessage(requestId, reply));
  }

  #answer(command: WireCommand): ScriptedReply {
    for (const step of this.#scripts) {
      const reply = step(command, this);
      if (reply !== undefined) return reply;
    }
    return this.defaultReply(command);
  }

  /** What a healthy primary with empty collections would answer. */
  defaultReply(command: WireCommand): Document {
    const { name, body, db } = command;
    const ns = `${db}.${String(body[name])}`;
    switch (name) {
      case 'find':
      case 'aggregate':
      case 'listCollections':
      case 'listIndexes':
        return { cursor: { id: BSON.Long.ZERO, ns, firstBatch: [] }, ok: 1 };
      case 'getMore':
        return {
          cursor: { id: BSON.Long.ZERO, ns: `${db}.${String(body.collection)}`, nextBatch: [] },
          ok: 1,
        };
      case 'findAndModify':
        this.counter += 1;
        return {
          lastErrorObject: { n: 1, updatedExisting: true },
          value: { _id: body.query?._id ?? 'position', value: this.counter },
          ok: 1,
        };
      case 'insert':
        return { n: (body.documents as unknown[]).length, ok: 1 };
      case 'update':
        return {
          n: (body.updates as unknown[]).length,
          nModified: (body.updates as unknown[]).length,
          ok: 1,
        };
      case 'delete':
        return { n: (body.deletes as unknown[]).length, ok: 1 };
      case 'count':
        return { n: 0, ok: 1 };
      default:
        return { ok: 1 };
    }
  }

  #hello(connection: number, _request: Document): Document {
    return {
      helloOk: true,
      isWritablePrimary: true,
      ismaster: true,
      secondary: false,
      setName: 'rs0',
      setVersion: 1,
      electionId: new BSON.ObjectId('7fffffff0000000000000001'),
      hosts: [this.host],
      primary: this.host,
      me: this.host,
      maxBsonObjectSize: 16 * 1024 * 1024,
      maxMessageSizeBytes: 48_000_000,
      maxWriteBatchSize: 100_000,
      localTime: new Date(),
      logicalSessionTimeoutMinutes: 30,
      connectionId: connection,
      minWireVersion: 0,
      // MongoDB 7.0.
      maxWireVersion: 21,
      readOnly: false,
      ok: 1,
    };
  }
}

/** `find streams`, `insert commits`, `commitTransaction`: the name and, when it has one, the collection. */
export function describeCommand(command: WireCommand): string {
  const target = command.body[command.name];
  return typeof target === 'string' ? `${command.name} ${target}` : command.name;
}

/** A server error reply, as the server sends it. */
export function serverError(code: number, codeName: string, labels: string[] = []): Document {
  return {
    ok: 0,
    code,
    codeName,
    errmsg: `${codeName} (scripted)`,
    ...(labels.length > 0 ? { errorLabels: labels } : {}),
  };
}

/**
 * A write command's reply whose only document hit a unique index: E11000, reported as a
 * write error with the server's message (which names namespace and index).
 */
export function duplicateKeyReply(ns: string, id: string, index = '_id_'): Document {
  return {
    ok: 1,
    n: 0,
    writeErrors: [
      {
        index: 0,
        code: 11000,
        errmsg: `E11000 duplicate key error collection: ${ns} index: ${index} dup key: { _id: "${id}" }`,
        keyPattern: { _id: 1 },
        keyValue: { _id: id },
      },
    ],
  };
}

/** The command body of an OP_MSG, with its document sequences folded in. */
export function decodeMessage(message: Buffer): Document {
  let offset = 20;
  let body: Document | undefined;
  const sequences: Record<string, Document[]> = {};
  while (offset < message.length) {
    const kind = message[offset]!;
    offset += 1;
    if (kind === 0) {
      const size = message.readInt32LE(offset);
      body = BSON.deserialize(message.subarray(offset, offset + size));
      offset += size;
    } else if (kind === 1) {
      const size = message.readInt32LE(offset);
      const end = offset + size;
      let cursor = offset + 4;
      const nameEnd = message.indexOf(0, cursor);
      const identifier = message.toString('utf8', cursor, nameEnd);
      cursor = nameEnd + 1;
      const documents: Document[] = [];
      while (cursor < end) {
        const docSize = message.readInt32LE(cursor);
        documents.push(BSON.deserialize(message.subarray(cursor, cursor + docSize)));
        cursor += docSize;
      }
      sequences[identifier] = documents;
      offset = end;
    } else {
      // A checksum (flag bit 0) is the only other thing that can follow the sections.
      break;
    }
  }
  if (!body) throw new Error('OP_MSG without a body section');
  return { ...body, ...sequences };
}

function header(length: number, responseTo: number, opCode: number): Buffer {
  const head = Buffer.alloc(16);
  head.writeInt32LE(length, 0);
  head.writeInt32LE(Math.floor(Math.random() * 2 ** 31), 4);
  head.writeInt32LE(responseTo, 8);
  head.writeInt32LE(opCode, 12);
  return head;
}

/** An OP_MSG reply to request `responseTo`. */
export function encodeMessage(responseTo: number, reply: Document): Buffer {
  const body = BSON.serialize(reply);
  const flags = Buffer.alloc(5);
  flags.writeUInt32LE(0, 0);
  flags[4] = 0;
  return Buffer.concat([header(16 + 5 + body.length, responseTo, OP_MSG), flags, body]);
}

/** An OP_REPLY (answer to the first, OP_QUERY handshake) to request `responseTo`. */
export function encodeReply(responseTo: number, reply: Document): Buffer {
  const body = BSON.serialize(reply);
  const fields = Buffer.alloc(20);
  fields.writeInt32LE(0, 0);
  fields.writeBigInt64LE(0n, 4);
  fields.writeInt32LE(0, 12);
  fields.writeInt32LE(1, 16);
  return Buffer.concat([header(16 + 20 + body.length, responseTo, OP_REPLY), fields, body]);
}
