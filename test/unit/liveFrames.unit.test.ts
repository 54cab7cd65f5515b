import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { messageOf, nextFrame } from '../../src/live/frames.js';

/** ws's frame parser (exported by ws, not declared by its types). */
interface FrameReceiver {
  on(event: 'message', listener: (data: Buffer, binary: boolean) => void): void;
  on(event: 'error', listener: (error: Error) => void): void;
  write(chunk: Buffer): boolean;
}
const { Receiver } = createRequire(import.meta.url)('ws') as {
  Receiver: new (options: { isServer: boolean }) => FrameReceiver;
};

/** What a websocket client reads from `frame`: its messages, as text, with their kind. */
function receive(frame: Buffer): { text: string; binary: boolean }[] {
  const messages: { text: string; binary: boolean }[] = [];
  // ws's own parser, as a client (frames from a server are unmasked).
  const receiver = new Receiver({ isServer: false });
  receiver.on('message', (data: Buffer, binary: boolean) =>
    messages.push({ text: data.toString(), binary }),
  );
  receiver.on('error', (error) => {
    throw error;
  });
  receiver.write(frame);
  return messages;
}

const payloadOf = (value: unknown) => Buffer.from(JSON.stringify(value));

describe('nextFrame', () => {
  it.each([
    ['a short message (7-bit length)', 10],
    ['a medium one (16-bit length)', 1_000],
    ['a long one (64-bit length)', 70_000],
  ])('frames %s as one final text message a websocket client reads whole', (_, size) => {
    const payload = { data: { boardChanges: { text: 'x'.repeat(size) } } };
    const frame = nextFrame('0b6c2f3e-1d1a-4d5c-9a0e-0c4b8f5d2a11', payloadOf(payload));
    const messages = receive(frame);
    expect(messages).toHaveLength(1);
    expect(messages[0]!.binary).toBe(false);
    expect(JSON.parse(messages[0]!.text)).toEqual({
      id: '0b6c2f3e-1d1a-4d5c-9a0e-0c4b8f5d2a11',
      type: 'next',
      payload,
    });
    expect(messageOf(frame).toString()).toBe(messages[0]!.text);
  });

  it('escapes an id JSON cannot take as it is, and keeps non-ASCII payloads intact', () => {
    const id = 'sub "1"\\ é ✓ 😀';
    const payload = { data: { boardChanges: { title: 'Ünïcödé ✓ 😀' } } };
    const [message] = receive(nextFrame(id, payloadOf(payload)));
    expect(JSON.parse(message!.text)).toEqual({ id, type: 'next', payload });
  });
});
