import { once } from 'node:events';
import { afterEach } from 'vitest';
import WebSocket from 'ws';
import type { TestServer } from './server.js';

/** Raw graphql-transport-ws sockets for e2e tests, each closed after its test. */

const closers: (() => unknown)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

/** Polls `condition` until it holds (or throws after `timeoutMs`). */
export async function until(condition: () => boolean, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** What one subscription id received on a socket. */
export interface Received {
  /** `payload` of each `next`, in arrival order. */
  next: any[];
  error: any[] | null;
  complete: boolean;
}

/** One graphql-transport-ws socket carrying any number of subscriptions (anonymous: `null`). */
export async function openSocket(s: TestServer, token: string | null) {
  const socket = new WebSocket(s.wsUrl, 'graphql-transport-ws');
  closers.push(() => socket.terminate());
  const byId = new Map<string, Received>();
  /** Every frame, raw, as the server wrote it. */
  const frames: string[] = [];
  /** Frames that came as binary messages (graphql-ws sends text only). */
  let binary = 0;
  socket.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) binary += 1;
    const text = data.toString();
    frames.push(text);
    const message = JSON.parse(text) as { id?: string; type: string; payload?: any };
    const received = message.id === undefined ? undefined : byId.get(message.id);
    if (!received) return;
    if (message.type === 'next') received.next.push(message.payload);
    if (message.type === 'error') received.error = message.payload;
    if (message.type === 'complete') received.complete = true;
  });
  await once(socket, 'open');
  socket.send(
    JSON.stringify({
      type: 'connection_init',
      payload: token === null ? {} : { authorization: `Bearer ${token}` },
    }),
  );
  await until(() => frames.some((f) => f.includes('connection_ack')), 'the ack');
  return {
    socket,
    frames,
    get binaryFrames() {
      return binary;
    },
    subscribe(id: string, query: string, variables: Record<string, unknown>): Received {
      const received: Received = { next: [], error: null, complete: false };
      byId.set(id, received);
      socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query, variables } }));
      return received;
    },
    complete(id: string) {
      socket.send(JSON.stringify({ id, type: 'complete' }));
    },
  };
}
