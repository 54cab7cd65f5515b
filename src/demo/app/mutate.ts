import type { ApolloClient, OperationVariables } from '@apollo/client';

/**
 * Runs a mutation and gives its data. A request that failed outright (offline, a refused
 * session, a masked server error: no result union to read) goes to `onFailure` and gives
 * undefined; the expected failures come back as data, in the result union.
 */
export async function mutateOr<TData, TVariables extends OperationVariables>(
  apollo: ApolloClient,
  options: ApolloClient.MutateOptions<TData, TVariables>,
  onFailure: (error: unknown) => void,
): Promise<TData | undefined> {
  try {
    return (await apollo.mutate(options)).data ?? undefined;
  } catch (error) {
    onFailure(error);
    return undefined;
  }
}
