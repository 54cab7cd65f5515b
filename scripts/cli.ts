/**
 * What the command-line scripts (seed, rebuild, example-client) share: where the
 * server is, one GraphQL call, and failing with one clear line instead of a stack.
 */

/**
 * The GraphQL endpoint: `CORKBOARD_URL` when set, else `http://localhost:$PORT/graphql`
 * (PORT defaults to 4000, as for the server).
 */
export function graphqlUrl(env: NodeJS.ProcessEnv = process.env): string {
  return env.CORKBOARD_URL || `http://localhost:${env.PORT || 4000}/graphql`;
}

/** A failure the script reports as one line. */
export class CliError extends Error {
  override readonly name = 'CliError';
}

/** The line to print when nothing answers at `url`. */
export const noServerAt = (url: string) =>
  `no Corkboard server answers at ${url}: start one with \`npm start\` first (or set CORKBOARD_URL / PORT)`;

/** Whether `error` is fetch's or the websocket's "could not connect". */
export function isConnectionRefused(error: unknown): boolean {
  const cause = error instanceof Error ? (error.cause as { code?: string } | undefined) : undefined;
  return (
    (error instanceof TypeError && error.message === 'fetch failed') ||
    ['ECONNREFUSED', 'ENOTFOUND', 'ECONNRESET'].includes(cause?.code ?? '') ||
    ['ECONNREFUSED', 'ENOTFOUND'].includes((error as { code?: string } | null)?.code ?? '')
  );
}

export interface GraphQLResult {
  data?: Record<string, any>;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
}

/** POSTs one operation; a server that does not answer is a `CliError` naming `url`. */
export async function postGraphQL(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  token?: string,
): Promise<GraphQLResult> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new CliError(noServerAt(url));
  }
  const text = await response.text();
  try {
    return JSON.parse(text) as GraphQLResult;
  } catch {
    throw new CliError(`${url} answered HTTP ${response.status} without GraphQL: is it Corkboard?`);
  }
}

/**
 * Runs a script's body; any failure ends the process with `<name>: <one line>` and
 * exit code 1 (a connection refused becomes `noServerAt(url)`).
 */
export async function runScript(name: string, url: string, body: () => Promise<void>) {
  try {
    await body();
  } catch (error) {
    const message = isConnectionRefused(error)
      ? noServerAt(url)
      : error instanceof Error
        ? error.message
        : String(error);
    console.error(`${name}: ${message.split('\n')[0]}`);
    process.exit(1);
  }
}
