import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { KeyedQueue, KeyedQueueFull } from '../../src/keyedQueue.js';

describe('KeyedQueue', () => {
  it('runs 100 sections on one key one at a time, in call order', async () => {
    const queue = new KeyedQueue();
    let running = 0;
    let most = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        queue.run(['column-1'], async () => {
          running += 1;
          most = Math.max(most, running);
          await sleep(Math.random() * 2);
          order.push(i);
          running -= 1;
        }),
      ),
    );
    expect(most).toBe(1);
    expect(order).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(queue.activeKeys).toBe(0);
  });

  it('runs sections on different keys at the same time', async () => {
    const queue = new KeyedQueue();
    let running = 0;
    let most = 0;
    await Promise.all(
      ['a', 'b', 'c'].map((key) =>
        queue.run([key], async () => {
          running += 1;
          most = Math.max(most, running);
          await sleep(20);
          running -= 1;
        }),
      ),
    );
    expect(most).toBe(3);
  });

  it('never deadlocks sections holding overlapping keys taken in opposite orders', async () => {
    const queue = new KeyedQueue();
    const held = new Set<string>();
    const sections = Array.from({ length: 60 }, (_, i) => {
      const keys = i % 2 === 0 ? ['x', 'y'] : ['y', 'x'];
      return queue.run(i % 3 === 0 ? ['x'] : keys, async () => {
        const mine = i % 3 === 0 ? ['x'] : keys;
        for (const key of mine) {
          expect(held.has(key)).toBe(false);
          held.add(key);
        }
        await sleep(1);
        for (const key of mine) held.delete(key);
        return i;
      });
    });
    expect(await Promise.all(sections)).toEqual(Array.from({ length: 60 }, (_, i) => i));
  });

  it('releases a key when its section fails', async () => {
    const queue = new KeyedQueue();
    await expect(
      queue.run(['k'], () => Promise.reject(new Error('decide failed'))),
    ).rejects.toThrow('decide failed');
    expect(await queue.run(['k'], () => Promise.resolve('next'))).toBe('next');
    expect(queue.size('k')).toBe(0);
  });

  it('refuses a section at once when too many wait on one of its keys', async () => {
    const queue = new KeyedQueue({ maxPending: 2 });
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const running = queue.run(['k'], () => gate);
    const waiting = [queue.run(['k'], async () => 1), queue.run(['k'], async () => 2)];
    await expect(queue.run(['other', 'k'], async () => 3)).rejects.toBeInstanceOf(KeyedQueueFull);
    // The refused section took no place on `other` either.
    expect(queue.size('other')).toBe(0);
    open();
    await running;
    expect(await Promise.all(waiting)).toEqual([1, 2]);
  });
});
