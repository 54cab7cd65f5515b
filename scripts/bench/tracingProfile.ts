/**
 * bench:tracing's profile accounting (with BENCH_CPU_PROF): the share of the live servers'
 * main-thread CPU profile samples, over the rounds only, whose running function is
 * tracing's own code: the OpenTelemetry packages, the module hooks they install, async
 * hooks (on only for sampled traces) and Corkboard's telemetry code. A direct figure of
 * what tracing runs, free of the process-to-process noise of CPU time; it leaves out
 * what tracing costs indirectly (collecting the garbage it makes, V8's helper threads).
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Where a function's code is, for `isTracingCode`. */
const TRACING_CODE = [
  /\/node_modules\/@opentelemetry\//,
  /\/node_modules\/@envelop\/opentelemetry\//,
  /\/node_modules\/(import|require)-in-the-middle\//,
  /\/dist\/telemetry\//,
  /\/dist\/live\/liveTraces\.js$/,
  /^node:(internal\/)?async_hooks$/,
];

/** Whether a function at `url` (a profile's call frame) is tracing's code. */
export function isTracingCode(url: string): boolean {
  return TRACING_CODE.some((pattern) => pattern.test(url));
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string } }[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Samples of a profile's thread, over a window: busy ones, and of them tracing's. */
export interface ProfileShare {
  samples: number;
  tracing: number;
}

/**
 * The main-thread profiles in `dir` (`--cpu-prof` names them `CPU.<date>.<time>.<pid>.0.<n>`),
 * counted over `window` (µs of the monotonic clock, as `process.hrtime` and the profiles
 * have it): busy samples (not idle) and those whose running function is tracing's.
 */
export function profileShares(dir: string, window: readonly [number, number]): ProfileShare[] {
  return readdirSync(dir)
    .filter((file) => /\.\d+\.0\.\d+\.cpuprofile$/.test(file))
    .map((file) => {
      const profile = JSON.parse(readFileSync(`${dir}/${file}`, 'utf8')) as CpuProfile;
      const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
      const share: ProfileShare = { samples: 0, tracing: 0 };
      let at = profile.startTime;
      profile.samples.forEach((id, i) => {
        at += profile.timeDeltas[i]!;
        if (at < window[0] || at > window[1]) return;
        const frame = frames.get(id)!;
        if (frame.functionName === '(idle)') return;
        share.samples += 1;
        if (isTracingCode(frame.url)) share.tracing += 1;
      });
      return share;
    });
}

/** `0.84 % (0.80-0.88)`: tracing's share over all servers' samples, and each server's range. */
export function formatShares(shares: readonly ProfileShare[]): string {
  const percent = (s: ProfileShare) => (100 * s.tracing) / Math.max(1, s.samples);
  const total = shares.reduce(
    (sum, s) => ({ samples: sum.samples + s.samples, tracing: sum.tracing + s.tracing }),
    { samples: 0, tracing: 0 },
  );
  const each = shares.map(percent);
  return `${percent(total).toFixed(2)} % (${Math.min(...each).toFixed(2)}-${Math.max(...each).toFixed(2)}) of ${total.samples} samples`;
}
