import { MongoClient, type MongoClientOptions } from 'mongodb';
import { MongoSim } from './MongoSim.js';

/** A simulator and a client of the real driver connected to it. */
export interface SimAndClient {
  sim: MongoSim;
  client: MongoClient;
}

/**
 * Starts a simulator and connects a client to it with `options`: a test file's
 * `beforeAll(async () => ({ sim, client } = await startSimAndClient()))`.
 */
export async function startSimAndClient(options: MongoClientOptions = {}): Promise<SimAndClient> {
  const sim = await MongoSim.start();
  const client = await new MongoClient(sim.uri, options).connect();
  return { sim, client };
}

/** Closes the client, then the simulator: the file's `afterAll`. */
export async function stopSimAndClient({ sim, client }: SimAndClient): Promise<void> {
  await client.close();
  await sim.close();
}
