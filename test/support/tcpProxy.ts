import { createConnection, createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface TcpProxy {
  /** Where clients connect instead of the target: `127.0.0.1:<port>`. */
  port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /**
   * Cuts every open connection at once, both legs: the server's socket and the
   * client's are destroyed, as when a load balancer or the network drops them.
   */
  dropAll(): void;
  /** While true, new connections are cut as soon as they are accepted (the target looks down). */
  refusing: boolean;
  close(): Promise<void>;
}

/** A TCP proxy to `targetPort` on localhost, for tests that cut connections. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const open = new Set<Socket>();
  let accepted = 0;
  const track = (socket: Socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    // A cut connection errors on the other leg; that is the point here.
    socket.on('error', () => {});
  };
  const state = { refusing: false };
  const server = createServer((client) => {
    if (state.refusing) {
      client.on('error', () => {});
      client.destroy();
      return;
    }
    accepted++;
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    track(client);
    track(upstream);
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const dropAll = () => {
    for (const socket of open) socket.destroy();
  };
  return {
    port: (server.address() as AddressInfo).port,
    get accepted() {
      return accepted;
    },
    get refusing() {
      return state.refusing;
    },
    set refusing(value: boolean) {
      state.refusing = value;
    },
    dropAll,
    async close() {
      dropAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
