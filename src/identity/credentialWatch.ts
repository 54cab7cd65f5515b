import { MAX_TIMER_MS } from '../config.js';

/** What a caller authenticated with, as long-lived operations must honour it. */
export interface Credential {
  /** When it stops being accepted (a JWT's `exp` plus the clock skew); null: never. */
  expiresAt: Date | null;
  /** The built-in issuer's session it belongs to; null for a provider's JWT. */
  sessionId: string | null;
  /**
   * Its expiry as it stands now, asked when `expiresAt` is reached: a built-in session's
   * slides forward with every use, so what was opened with it lasts as long as the
   * session does. Null, or a time already past: it has ended. Absent: `expiresAt` is
   * final (a JWT's `exp`).
   */
  renew?: () => Promise<Date | null>;
}

/**
 * Ends long-lived operations (subscriptions, the websockets carrying them) when the
 * credential they were opened with ends: at its expiry, or at once when its session is
 * revoked (`sessionEnded`, called for every ended session this process learns of from
 * the change log, so every instance closes its own connections within one commit).
 */
export class CredentialWatch {
  readonly #bySession = new Map<string, Set<() => void>>();

  /**
   * Calls `onEnd` once when `credential` expires (asking its `renew` first, when it has
   * one) or its session ends; returns the function that stops watching (call it when
   * the operation ends first).
   */
  watch(credential: Credential, onEnd: () => void): () => void {
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const { sessionId, expiresAt, renew } = credential;
    const stop = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (sessionId !== null) {
        const watchers = this.#bySession.get(sessionId);
        watchers?.delete(end);
        if (watchers?.size === 0) this.#bySession.delete(sessionId);
      }
    };
    const end = () => {
      if (done) return;
      stop();
      onEnd();
    };
    if (expiresAt !== null) {
      const arm = (until: Date) => {
        const left = until.getTime() - Date.now();
        if (left > 0) {
          timer = setTimeout(() => arm(until), Math.min(left, MAX_TIMER_MS));
          timer.unref();
          return;
        }
        if (!renew) return end();
        // Used since it was opened? Then it lives on, until the expiry it has now.
        renew().then(
          (next) => {
            if (done) return;
            if (next === null || next.getTime() <= Date.now()) end();
            else arm(next);
          },
          () => end(),
        );
      };
      arm(expiresAt);
      if (done) return stop;
    }
    if (sessionId !== null) {
      let watchers = this.#bySession.get(sessionId);
      if (!watchers) this.#bySession.set(sessionId, (watchers = new Set()));
      watchers.add(end);
    }
    return stop;
  }

  /** The session ended (revoked, signed out): everything opened with it ends now. */
  sessionEnded(sessionId: string): void {
    const watchers = this.#bySession.get(sessionId);
    if (!watchers) return;
    for (const end of [...watchers]) end();
  }

  /** Operations watched now, for tests and metrics. */
  get watched(): number {
    let count = 0;
    for (const watchers of this.#bySession.values()) count += watchers.size;
    return count;
  }
}
