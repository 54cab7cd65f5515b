/**
 * The driver fix in `patches/mongodb+*.patch`, pinned through the real driver on the simulator.
 *
 * When a server closes connections (a stepdown does), the driver can run a command on a
 * connection whose socket is already destroyed but whose `close` event has not been delivered
 * yet. Node then accepts the write, returns false and emits neither `drain` nor `error`; the
 * unpatched driver waits for `drain` forever. When that command is the monitor's heartbeat,
 * the monitor never checks the server again: the client never reconnects (seen in the seeded
 * fault runs as a client that stopped opening connections after a cut).
 */
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MongoClient } from 'mongodb';
import { MongoNetworkError } from 'mongodb';
import type { MongoSim } from './MongoSim.js';
import { startSimAndClient, stopSimAndClient } from './simClient.js';
import { until } from '../support/until.js';

/** The driver's internals this test reaches: one server's monitor connection. */
interface DriverConnection {
  closed: boolean;
  socket: { destroy(): void };
  command(ns: unknown, command: object, options: object): Promise<unknown>;
}

/** The driver's internals this test reaches: the server's monitor. */
interface DriverMonitor {
  connection: DriverConnection | null;
  monitorId: { lastExecutionEnded: number; isExecutionInProgress: boolean };
  requestCheck(): void;
}

let sim: MongoSim;
let client: MongoClient;

beforeAll(
  async () => ({ sim, client } = await startSimAndClient({ serverSelectionTimeoutMS: 2_000 })),
);
afterAll(() => stopSimAndClient({ sim, client }));

/** The server's monitor, once its connection is open and no heartbeat is running. */
async function idleMonitor(): Promise<DriverMonitor> {
  const servers = (client as any).topology.s.servers as Map<string, { monitor?: DriverMonitor }>;
  let monitor: DriverMonitor | undefined;
  await until(
    () => {
      monitor = [...servers.values()][0]?.monitor;
      return (
        monitor?.connection != null &&
        !monitor.connection.closed &&
        !monitor.monitorId.isExecutionInProgress
      );
    },
    20_000,
    'the monitor to connect',
  );
  return monitor!;
}

/** Settles with what `promise` did, or 'still waiting' after `ms`. */
function within(promise: Promise<unknown>, ms: number): Promise<unknown> {
  return Promise.race([
    promise.then(
      () => 'answered',
      (error: unknown) => error,
    ),
    new Promise((resolve) => setTimeout(() => resolve('still waiting'), ms)),
  ]);
}

describe('driver connection on a socket destroyed before its close event', () => {
  it('fails the command with a network error instead of waiting forever', async () => {
    const connection = (await idleMonitor()).connection!;
    const { ns } = createRequire(import.meta.url)('mongodb/lib/utils.js') as {
      ns: (name: string) => unknown;
    };
    // Destroyed now; the 'close' event comes later, after this synchronous call has written.
    connection.socket.destroy();
    const outcome = await within(connection.command(ns('admin.$cmd'), { hello: 1 }, {}), 5_000);
    expect(outcome).toBeInstanceOf(MongoNetworkError);
  });

  it('ends a write waiting for drain when the connection closes meanwhile', async () => {
    const connection = (await idleMonitor()).connection!;
    const { ns } = createRequire(import.meta.url)('mongodb/lib/utils.js') as {
      ns: (name: string) => unknown;
    };
    // A full socket buffer: the write is accepted and the driver waits for 'drain'; the
    // socket then closes without an error, so neither 'drain' nor 'error' ever comes.
    const socket = connection.socket as unknown as { write: () => boolean; destroy(): void };
    socket.write = () => false;
    const command = connection.command(ns('admin.$cmd'), { hello: 1 }, {});
    await new Promise((resolve) => setImmediate(resolve));
    socket.destroy();
    expect(await within(command, 5_000)).toBeInstanceOf(MongoNetworkError);
  });

  it('keeps the monitor checking when its heartbeat meets such a socket, so the client reconnects', async () => {
    const monitor = await idleMonitor();
    // A check requested within 500 ms of the last one is deferred; past that it runs at once.
    await until(() => performance.now() - monitor.monitorId.lastExecutionEnded > 600, 5_000);
    const failed = new Promise((resolve) => client.once('serverHeartbeatFailed', resolve));
    monitor.connection!.socket.destroy();
    monitor.requestCheck(); // the heartbeat is written now, before the close event is delivered
    sim.cutConnections(); // and the pool's connections go too: only the monitor can bring it back
    expect(await within(failed, 5_000)).not.toBe('still waiting');
    await until(
      async () => (await within(client.db('admin').command({ ping: 1 }), 5_000)) === 'answered',
      30_000,
      'a ping to be answered after the cut',
    );
  });
});
