/**
 * The baseline of `npm run bench:http`: a bare graphql-yoga (the version Corkboard uses,
 * its defaults, no plugins) on Corkboard's own SDL, answering from plain objects held in
 * memory. It answers exactly what Corkboard answered for the same queries (the bench
 * checks), so the difference between the two is what Corkboard's reads cost on top of
 * yoga and graphql-js: stores, auth, rules, masking, plugins.
 *
 * Started by `http.ts` as a child process: `BARE_FIXTURES` names a JSON file of
 * `{ board, me, boards, node }` (the `data` fields Corkboard answered), `PORT` the port.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { resolve } from 'node:path';
import { createSchema, createYoga } from 'graphql-yoga';

/** The root fields the bench's queries read, as Corkboard answered them. */
export interface BareFixtures {
  board: unknown;
  me: unknown;
  boards: unknown;
  node: unknown;
}

const fixtures = JSON.parse(readFileSync(process.env.BARE_FIXTURES!, 'utf8')) as BareFixtures;
const typeDefs = readFileSync(resolve(import.meta.dirname, '../../schema/schema.graphql'), 'utf8');

// Plain objects all the way down: graphql-js's default resolvers read each field; the
// one abstract type the queries cross (`node`) resolves from the answer's __typename.
const schema = createSchema({
  typeDefs,
  resolvers: {
    Query: {
      board: () => fixtures.board,
      me: () => fixtures.me,
      boards: () => fixtures.boards,
      node: () => fixtures.node,
    },
    Node: { __resolveType: (value: { __typename: string }) => value.__typename },
  },
});

const yoga = createYoga({ schema, logging: false });
createServer(yoga.requestListener).listen(Number(process.env.PORT), '127.0.0.1');
