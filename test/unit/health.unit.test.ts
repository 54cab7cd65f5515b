import { describe, expect, it } from 'vitest';
import { checkHealth, HealthReasonCode, type HealthSources } from '../../src/ops/health.js';

/** Sources of a healthy process, with `overrides` breaking what a test needs broken. */
function sources(overrides: Partial<HealthSources> = {}): HealthSources {
  return {
    storeKind: 'memory',
    store: { headPosition: () => Promise.resolve(3) },
    changeLog: { read: () => Promise.resolve({ kind: 'entries', entries: [] }) },
    projector: {
      lag: () => Promise.resolve({ commitsBehind: 0, secondsBehind: 0 } as never),
    },
    follower: { seen: 3 },
    loops: () => [],
    maxLagSeconds: 30,
    ...overrides,
  };
}

describe('health reasons', () => {
  it('reports an unreachable store as a code, its error message only in the details', async () => {
    const secret = 'connect ECONNREFUSED db-7.internal:27017 (user corkboard)';
    const report = await checkHealth(
      sources({ store: { headPosition: () => Promise.reject(new Error(secret)) } }),
    );
    expect(report.status).toBe('down');
    expect(report.reasons).toEqual([HealthReasonCode.StoreUnreachable]);
    expect(JSON.stringify(report.reasons)).not.toContain('27017');
    expect(report.details).toEqual([`store unreachable: ${secret}`]);
  });

  it('reports a store that does not answer in time, and lag over the bound, as codes', async () => {
    const report = await checkHealth(
      sources({
        store: { headPosition: () => new Promise(() => {}) },
        probeTimeoutMs: 20,
      }),
    );
    expect(report.reasons).toEqual([HealthReasonCode.StoreUnreachable]);
    const behind = await checkHealth(
      sources({
        projector: {
          lag: () => Promise.resolve({ commitsBehind: 9, secondsBehind: 31 } as never),
        },
      }),
    );
    expect(behind).toMatchObject({
      status: 'degraded',
      reasons: [HealthReasonCode.ProjectorBehind],
    });
  });
});
