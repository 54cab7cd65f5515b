import { describe, expect, it } from 'vitest';
import { RateLimited, RateLimiter } from '../../src/rateLimiter.js';

describe('RateLimiter', () => {
  it('allows a client its points in a window, then refuses with how long to wait', async () => {
    const limits = new RateLimiter({ registrations: { points: 3, windowMs: 60_000 } });
    for (let i = 0; i < 3; i += 1) await limits.consume('registrations', 'ip:1');
    const refused = await limits.consume('registrations', 'ip:1').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RateLimited);
    const error = refused as RateLimited;
    expect(error.limit).toBe('registrations');
    expect(error.retryAfterMs).toBeGreaterThan(0);
    expect(error.retryAfterMs).toBeLessThanOrEqual(60_000);
    expect(error.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(error.retryAfterSeconds).toBeLessThanOrEqual(60);
  });

  it('counts each client and each limit on its own', async () => {
    const limits = new RateLimiter({ a: { points: 1 }, b: { points: 1 } });
    await limits.consume('a', 'client-1');
    await limits.consume('a', 'client-2');
    await limits.consume('b', 'client-1');
    await expect(limits.consume('a', 'client-1')).rejects.toBeInstanceOf(RateLimited);
    await expect(limits.consume('b', 'client-2')).resolves.toBeUndefined();
  });

  it('takes several points at once, and refuses a request bigger than what is left', async () => {
    const limits = new RateLimiter({ mutations: { points: 10 } });
    await limits.consume('mutations', 'u', 8);
    await expect(limits.consume('mutations', 'u', 3)).rejects.toBeInstanceOf(RateLimited);
  });

  it('refuses concurrent calls beyond the limit: exactly the limit passes', async () => {
    const limits = new RateLimiter({ subscribes: { points: 50 } });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 200 }, () => limits.consume('subscribes', 'ip:9')),
    );
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(50);
    for (const o of outcomes) {
      if (o.status === 'rejected') expect(o.reason).toBeInstanceOf(RateLimited);
    }
  });

  it('lets a client again once its window has passed', async () => {
    const limits = new RateLimiter({ a: { points: 1, windowMs: 1_000 } });
    await limits.consume('a', 'c');
    const refused = (await limits.consume('a', 'c').catch((e: unknown) => e)) as RateLimited;
    await new Promise((resolve) => setTimeout(resolve, refused.retryAfterMs + 50));
    await expect(limits.consume('a', 'c')).resolves.toBeUndefined();
  });

  it('never refuses under a limit of 0 points (off)', async () => {
    const limits = new RateLimiter({ a: { points: 0 } });
    for (let i = 0; i < 1_000; i += 1) await limits.consume('a', 'c');
  });

  it('rejects limits that make no sense', () => {
    expect(() => new RateLimiter({ a: { points: -1 } })).toThrow(RangeError);
    expect(() => new RateLimiter({ a: { points: 1.5 } })).toThrow(RangeError);
    expect(() => new RateLimiter({ a: { points: 1, windowMs: 10 } })).toThrow(RangeError);
  });
});
