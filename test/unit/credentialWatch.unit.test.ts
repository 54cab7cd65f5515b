import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CredentialWatch, type Credential } from '../../src/identity/credentialWatch.js';

const start = Date.parse('2026-01-01T00:00:00Z');
const TTL = 15 * 60_000;

describe('CredentialWatch', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: start });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('ends what a credential opened at its expiry when it cannot be renewed (a JWT)', async () => {
    const watch = new CredentialWatch();
    const onEnd = vi.fn();
    watch.watch({ expiresAt: new Date(start + TTL), sessionId: null }, onEnd);
    await vi.advanceTimersByTimeAsync(TTL - 1);
    expect(onEnd).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(onEnd).toHaveBeenCalledOnce();
  });

  it('keeps it open while its session is used (the expiry slid), and ends it at the expiry it has then', async () => {
    const watch = new CredentialWatch();
    const onEnd = vi.fn();
    // The session is used halfway through its life: its expiry moves TTL past that use.
    let expiresNow = new Date(start + TTL);
    const credential: Credential = {
      expiresAt: new Date(start + TTL),
      sessionId: 's1',
      renew: () => Promise.resolve(expiresNow),
    };
    watch.watch(credential, onEnd);
    await vi.advanceTimersByTimeAsync(TTL / 2);
    expiresNow = new Date(start + TTL / 2 + TTL);
    await vi.advanceTimersByTimeAsync(TTL / 2);
    expect(onEnd).not.toHaveBeenCalled();
    expect(watch.watched).toBe(1);
    await vi.advanceTimersByTimeAsync(TTL / 2 - 1);
    expect(onEnd).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(onEnd).toHaveBeenCalledOnce();
    expect(watch.watched).toBe(0);
  });

  it('ends it when the renewal says the session ended, or cannot be read', async () => {
    const watch = new CredentialWatch();
    const ended = vi.fn();
    const failed = vi.fn();
    watch.watch(
      { expiresAt: new Date(start + TTL), sessionId: 's1', renew: () => Promise.resolve(null) },
      ended,
    );
    watch.watch(
      {
        expiresAt: new Date(start + TTL),
        sessionId: 's2',
        renew: () => Promise.reject(new Error('store unreachable')),
      },
      failed,
    );
    await vi.advanceTimersByTimeAsync(TTL);
    expect(ended).toHaveBeenCalledOnce();
    expect(failed).toHaveBeenCalledOnce();
  });

  it('ends it at once when its session ends, renewable or not', () => {
    const watch = new CredentialWatch();
    const onEnd = vi.fn();
    const stop = watch.watch(
      {
        expiresAt: new Date(start + TTL),
        sessionId: 's1',
        renew: () => Promise.resolve(new Date(start + 2 * TTL)),
      },
      onEnd,
    );
    watch.sessionEnded('s1');
    expect(onEnd).toHaveBeenCalledOnce();
    stop();
    expect(watch.watched).toBe(0);
  });
});
