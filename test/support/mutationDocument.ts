/**
 * A mutation's text selecting `__typename`, `selection` on its `success` member and
 * `code message` on any error: `mutationDocument('addCard', 'AddCardSuccess', 'card { id }')`
 * takes `$input: AddCardInput!`.
 */
export const mutationDocument = (name: string, success: string, selection: string) => `
  mutation ($input: ${name[0]!.toUpperCase()}${name.slice(1)}Input!) {
    ${name}(input: $input) {
      __typename
      ... on ${success} { ${selection} }
      ... on Error { code message }
    }
  }`;
