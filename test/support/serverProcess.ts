import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The repository this file belongs to. */
export const REPO_ROOT = resolve(import.meta.dirname, '../..');

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** What it wrote to stdout alone, and to stderr alone (the last 64 KiB of each). */
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** Resident set size now, in bytes (from /proc); 0 once the process is gone. */
  rss(): number;
  /** SIGKILLs the process if it is still running and waits for it. */
  kill(): Promise<void>;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => done(port));
    });
  });
}

/** Resident set size of `pid` in bytes, from /proc; 0 when it is gone. */
export function rssOf(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1];
    return kb ? Number(kb) * 1024 : 0;
  } catch {
    return 0;
  }
}

export interface StartServerProcessOptions {
  /** The checkout to run (its `src/main.ts` through tsx). @default this repository */
  cwd?: string;
  env?: Record<string, string>;
  /** Command and arguments instead of `node --import tsx src/main.ts`. */
  command?: readonly string[];
  /** How long the server may take to answer /health. @default 30_000 */
  readyTimeoutMs?: number;
}

/**
 * Starts the real server as its own process on the memory store, 127.0.0.1 and a free
 * port, and waits until `/health` answers. Used by the e2e tests that need a whole
 * process (signals, memory, sockets) and by the abuse bench.
 */
export async function startServerProcess(
  options: StartServerProcessOptions = {},
): Promise<ServerProcess> {
  const cwd = options.cwd ?? REPO_ROOT;
  const port = await freePort();
  const [command, ...args] = options.command ?? [
    process.execPath,
    '--import',
    'tsx',
    'src/main.ts',
  ];
  const child = spawn(command!, args, {
    cwd,
    env: {
      ...process.env,
      STORE: 'memory',
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const streams = { stdout: '', stderr: '' };
  const keep = (stream: keyof typeof streams) => (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-64 * 1024);
    streams[stream] = (streams[stream] + chunk.toString('utf8')).slice(-64 * 1024);
  };
  child.stdout.on('data', keep('stdout'));
  child.stderr.on('data', keep('stderr'));
  const exited = new Promise<number | string>((done) =>
    child.once('exit', (code, signal) => done(code ?? signal ?? 'unknown')),
  );
  let gone = false;
  void exited.then(() => (gone = true));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (gone) throw new Error(`server exited before it was ready:\n${output}`);
    try {
      const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1_000) });
      await response.body?.cancel();
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server not ready in time:\n${output}`);
    }
    await sleep(100);
  }
  return {
    child,
    pid: child.pid!,
    url,
    output: () => output,
    stdout: () => streams.stdout,
    stderr: () => streams.stderr,
    exited,
    rss: () => (gone ? 0 : rssOf(child.pid!)),
    async kill() {
      if (!gone) child.kill('SIGKILL');
      await exited;
    },
  };
}
