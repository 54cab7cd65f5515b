/**
 * Rebuilds every read model of a running server, without downtime, through its
 * admin API: starts `rebuildReadModels` and draws the progress of the
 * `projectorStatus` subscription until reads have switched to the new generation.
 * Works on any store (memory included: the server rebuilds in its own process).
 * Ctrl-C cancels the rebuild; reads stay on the current generation.
 *
 *   ADMIN_TOKEN=<token printed by npm start> npm run rebuild
 *   PORT=4001 … / CORKBOARD_URL=http://host:4000/graphql …
 */
import { SingleBar } from 'cli-progress';
import { createClient } from 'graphql-ws';
import { WebSocket } from 'ws';
import { CliError, graphqlUrl, postGraphQL, runScript } from './cli.js';

const url = graphqlUrl();

const REBUILD = `mutation {
  rebuildReadModels {
    __typename
    ... on Error { code message }
    ... on RebuildReadModelsSuccess { rebuild { id } }
    ... on RebuildInProgressError { rebuild { id } }
  }
}`;
const CANCEL = `mutation { cancelRebuild { __typename ... on Error { message } } }`;
const STATUS = `subscription {
  projectorStatus {
    rebuild { id state processed total rate etaSeconds error fromGeneration toGeneration }
  }
}`;

interface Rebuild {
  id: string;
  state: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';
  processed: number;
  total: number;
  rate: number;
  etaSeconds: number | null;
  error: string | null;
  fromGeneration: string | null;
  toGeneration: string | null;
}

await runScript('rebuild', url, async () => {
  const token = process.env.ADMIN_TOKEN;
  if (!token) {
    throw new CliError(
      "set ADMIN_TOKEN to the server's admin token (its ADMIN_TOKEN, or the one `npm start` printed)",
    );
  }
  const started = await postGraphQL(url, REBUILD, {}, token);
  if (started.errors?.length) throw new CliError(started.errors[0]!.message);
  const payload = started.data?.rebuildReadModels as
    { __typename: string; message?: string; rebuild?: { id: string } } | undefined;
  if (!payload?.rebuild) throw new CliError(payload?.message ?? JSON.stringify(started));
  if (payload.__typename === 'RebuildInProgressError') {
    console.log('a rebuild is already running on this server: following it');
  }
  const id = payload.rebuild.id;

  const client = createClient({
    url: url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 3,
  });
  const bar = new SingleBar({
    format:
      'rebuild [{bar}] {percentage}% | {value}/{total} commits | {rate} commits/s | ETA {eta}',
    hideCursor: true,
  });
  bar.start(1, 0, { rate: 0, eta: '-' });
  let cancelling = false;
  process.once('SIGINT', () => {
    cancelling = true;
    void postGraphQL(url, CANCEL, {}, token);
  });
  try {
    const final = await new Promise<Rebuild>((resolve, reject) => {
      client.subscribe<{ projectorStatus: { rebuild: Rebuild | null } }>(
        { query: STATUS },
        {
          next: ({ data, errors }) => {
            if (errors?.length) return reject(new CliError(errors[0]!.message));
            const rebuild = data?.projectorStatus.rebuild;
            if (!rebuild || rebuild.id !== id) return;
            bar.setTotal(Math.max(1, rebuild.total));
            bar.update(rebuild.state === 'SUCCEEDED' ? rebuild.total : rebuild.processed, {
              rate: Math.round(rebuild.rate),
              eta: rebuild.etaSeconds === null ? '-' : `${rebuild.etaSeconds.toFixed(1)} s`,
            });
            if (rebuild.state !== 'RUNNING') resolve(rebuild);
          },
          error: (error) => reject(error instanceof Error ? error : new CliError(String(error))),
          complete: () => reject(new CliError('the server ended the status subscription')),
        },
      );
    });
    bar.stop();
    switch (final.state) {
      case 'SUCCEEDED':
        console.log(
          `rebuilt ${final.processed} commits into generation ${final.toGeneration}; reads now use it (was ${final.fromGeneration}).`,
        );
        return;
      case 'CANCELLED':
        throw new CliError(
          `${cancelling ? 'cancelled' : 'cancelled by another admin'}; reads stay on generation ${final.fromGeneration}`,
        );
      case 'FAILED':
      case 'RUNNING':
        throw new CliError(
          `failed: ${final.error}; reads stay on generation ${final.fromGeneration}`,
        );
    }
  } finally {
    bar.stop();
    await client.dispose();
  }
});
