import { MongoClient, type CommandStartedEvent, type Document } from 'mongodb';
import { FakePrimary, describeCommand, type WireCommand } from './fakePrimary.js';

/** A fake primary and a real driver client connected to it, with command monitoring on. */
export interface Wire {
  fake: FakePrimary;
  client: MongoClient;
  /** `commandStarted` events the driver emitted, in order. */
  started: CommandStartedEvent[];
  /** Runs `action` and returns what it resolved to plus the commands sent meanwhile. */
  during<T>(action: () => Promise<T>): Promise<{ value: T; commands: WireCommand[] }>;
  close(): Promise<void>;
}

export async function openWire(options: { clientOptions?: Document } = {}): Promise<Wire> {
  const fake = await FakePrimary.start();
  const client = new MongoClient(fake.uri, {
    monitorCommands: true,
    serverSelectionTimeoutMS: 2_000,
    heartbeatFrequencyMS: 500,
    ...options.clientOptions,
  });
  const started: CommandStartedEvent[] = [];
  client.on('commandStarted', (event) => {
    if (event.commandName !== 'hello' && event.commandName !== 'isMaster') started.push(event);
  });
  await client.connect();
  return {
    fake,
    client,
    started,
    async during(action) {
      const from = fake.commands.length;
      const value = await action();
      return { value, commands: fake.commands.slice(from) };
    },
    async close() {
      await client.close();
      await fake.close();
    },
  };
}

/** The commands as `name collection` strings, for pinning a sequence. */
export function sequence(commands: readonly WireCommand[]): string[] {
  return commands.map(describeCommand);
}

export const isCommand =
  (name: string, target?: string) =>
  (command: WireCommand): boolean =>
    command.name === name && (target === undefined || command.body[name] === target);
