/**
 * The script that starts GraphiQL on its page, served as a file (the page allows no
 * inline script). It gives GraphiQL a fetcher of its own instead of yoga's, so that
 * one sign-in holds for every tab:
 *
 * - The page keeps one shared `Authorization` header in the browser's `localStorage`
 *   (under `GRAPHIQL_AUTHORIZATION_KEY`): the token of the last `registerUser` or
 *   `signIn` answer, or the header of the last operation a tab ran with an
 *   `Authorization` header of its own (in its Headers) that the server accepted.
 * - Every operation of a tab without its own `Authorization` header sends the shared
 *   one; a tab's own header wins for that tab.
 * - The shared header is forgotten when the server refuses it (`UNAUTHENTICATED` and
 *   no data) or after a `signOut` made with it, so the page does not go on sending a
 *   dead token (the next run is anonymous, e.g. `registerUser` again).
 *
 * Queries and mutations are POSTed to the GraphQL endpoint; subscriptions run on a
 * websocket of their own (graphql-ws, served beside GraphiQL), whose
 * `connectionParams` carry the header. Other windows of the same site share the
 * storage, so a second window (for a subscription) is signed in too.
 *
 * The script reads its settings from the page's JSON block `#graphiql-config`:
 * `{ endpoint, workers, graphiql }` (see `graphiqlAssets.ts`). It is a string here, so a
 * compiled build carries it without copying assets.
 */

/** Where the shared header is kept in the browser. */
export const GRAPHIQL_AUTHORIZATION_KEY = 'corkboard:graphiql:authorization';

/** The id of the page's JSON block that configures the script. */
export const GRAPHIQL_CONFIG_ID = 'graphiql-config';

export const GRAPHIQL_BOOT_SCRIPT = `'use strict';
(function () {
  var config = JSON.parse(document.getElementById(${JSON.stringify(GRAPHIQL_CONFIG_ID)}).textContent);
  self.MonacoEnvironment = {
    globalAPI: false,
    getWorkerUrl: function (moduleId, label) { return config.workers[label]; }
  };

  var KEY = ${JSON.stringify(GRAPHIQL_AUTHORIZATION_KEY)};
  var shared = {
    get: function () { try { return localStorage.getItem(KEY); } catch (e) { return null; } },
    set: function (value) { try { localStorage.setItem(KEY, value); } catch (e) { /* storage off */ } },
    forget: function (value) {
      try { if (localStorage.getItem(KEY) === value) localStorage.removeItem(KEY); } catch (e) { /* storage off */ }
    }
  };

  var endpoint = new URL(config.endpoint, location.href);
  var wsEndpoint = new URL(endpoint.href);
  wsEndpoint.protocol = endpoint.protocol === 'https:' ? 'wss:' : 'ws:';

  function ownAuthorization(headers) {
    if (!headers || typeof headers !== 'object') return null;
    var names = Object.keys(headers);
    for (var i = 0; i < names.length; i++) {
      var value = headers[names[i]];
      if (names[i].toLowerCase() === 'authorization' && typeof value === 'string' && value.trim()) {
        return value.trim();
      }
    }
    return null;
  }

  /** The headers to send for a tab, and which Authorization they carry. */
  function credentialsFor(tabHeaders) {
    var headers = {};
    var names = Object.keys(tabHeaders || {});
    for (var i = 0; i < names.length; i++) headers[names[i]] = String(tabHeaders[names[i]]);
    var own = ownAuthorization(tabHeaders);
    var sent = own !== null ? own : shared.get();
    if (own === null && sent !== null) headers.Authorization = sent;
    return { headers: headers, sent: sent, own: own !== null };
  }

  /** What an answer teaches about the page's sign-in. */
  function learn(result, credentials) {
    if (!result || typeof result !== 'object') return;
    // Refused credentials fail the whole operation: no data, an UNAUTHENTICATED error.
    var errors = Array.isArray(result.errors) ? result.errors : [];
    var refused = !result.data && errors.some(function (e) {
      return e && e.extensions && e.extensions.code === 'UNAUTHENTICATED';
    });
    if (refused) {
      if (credentials.sent !== null) shared.forget(credentials.sent);
      return;
    }
    var data = result.data && typeof result.data === 'object' ? result.data : {};
    var fields = ['registerUser', 'signIn'];
    for (var i = 0; i < fields.length; i++) {
      var payload = data[fields[i]];
      if (payload && typeof payload.token === 'string') {
        shared.set('Bearer ' + payload.token);
        return;
      }
    }
    var signedOut = data.signOut;
    if (signedOut && (signedOut.__typename === 'SignOutSuccess' || 'sessionId' in signedOut)) {
      if (credentials.sent !== null) shared.forget(credentials.sent);
      return;
    }
    if (credentials.own && credentials.sent !== null) shared.set(credentials.sent);
  }

  function operationOf(params, documentAST) {
    var definitions = (documentAST && documentAST.definitions) || [];
    var operations = definitions.filter(function (d) { return d.kind === 'OperationDefinition'; });
    var named = operations.filter(function (d) { return d.name && d.name.value === params.operationName; });
    var chosen = named[0] || (operations.length === 1 ? operations[0] : null);
    return chosen ? chosen.operation : 'query';
  }

  function post(params, credentials) {
    var headers = Object.assign(
      { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' },
      credentials.headers
    );
    return fetch(endpoint.href, {
      method: 'POST',
      credentials: 'same-origin',
      headers: headers,
      body: JSON.stringify({
        query: params.query,
        variables: params.variables || undefined,
        operationName: params.operationName || undefined
      })
    }).then(function (response) {
      return response.text().then(function (text) {
        var result;
        try { result = JSON.parse(text); } catch (e) {
          result = { errors: [{ message: 'HTTP ' + response.status + ': ' + text.slice(0, 300) }] };
        }
        learn(result, credentials);
        return result;
      });
    });
  }

  function subscribe(params, credentials) {
    return {
      subscribe: function (observer) {
        var client = graphqlWs.createClient({
          url: wsEndpoint.href,
          retryAttempts: 0,
          connectionParams: credentials.sent === null ? {} : { authorization: credentials.sent }
        });
        var stop = client.subscribe(
          {
            query: params.query,
            variables: params.variables || undefined,
            operationName: params.operationName || undefined
          },
          {
            next: function (result) { learn(result, credentials); observer.next(result); },
            error: function (error) {
              if (Array.isArray(error)) {
                // The server refused the operation: its GraphQL errors, shown as an answer.
                var result = { errors: error };
                learn(result, credentials);
                observer.next(result);
                observer.complete();
                return;
              }
              var reason = error && typeof error.code === 'number'
                ? 'websocket closed (' + error.code + (error.reason ? ': ' + error.reason : '') + ')'
                : (error && error.message) || 'websocket error';
              observer.error(new Error(reason));
            },
            complete: function () { observer.complete(); }
          }
        );
        return { unsubscribe: function () { stop(); client.dispose(); } };
      }
    };
  }

  function fetcher(params, options) {
    var credentials = credentialsFor(options && options.headers);
    return operationOf(params, options && options.documentAST) === 'subscription'
      ? subscribe(params, credentials)
      : post(params, credentials);
  }

  document.addEventListener('DOMContentLoaded', function () {
    YogaGraphiQL.renderYogaGraphiQL(
      document.getElementById('root'),
      Object.assign({}, config.graphiql, { fetcher: fetcher })
    );
  });
})();
`;
