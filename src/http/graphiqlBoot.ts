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

  /**
   * The operations of a document, read from its text: GraphiQL's parsed document and
   * operation name lag a few hundred ms behind the editor (right after a tab switch
   * they are the previous tab's), and the text sent is the editor's own.
   */
  function operationsIn(query) {
    var text = String(query).replace(/"""[\\s\\S]*?"""|"(?:[^"\\\\\\n]|\\\\.)*"|#[^\\n\\r]*/g, ' ');
    var found = [];
    var depth = 0;
    var parens = 0;
    var definition = null;
    var tokens = /[{}()]|@?[_A-Za-z][_0-9A-Za-z]*/g;
    var match;
    while ((match = tokens.exec(text))) {
      var token = match[0];
      if (token === '(') parens += 1;
      else if (token === ')') parens = Math.max(0, parens - 1);
      else if (parens > 0) continue;
      else if (token === '{') {
        if (depth === 0) found.push(definition || { type: 'query', name: null });
        definition = null;
        depth += 1;
      } else if (token === '}') depth = Math.max(0, depth - 1);
      else if (depth === 0 && token.charAt(0) !== '@') {
        if (definition === null) definition = { type: token, name: null };
        else if (definition.name === null) definition.name = token;
      }
    }
    return found.filter(function (d) {
      return d.type === 'query' || d.type === 'mutation' || d.type === 'subscription';
    });
  }

  /** The operation to run: the one named, else the document's only one. */
  function chooseOperation(params) {
    var operations = operationsIn(params.query);
    var named = operations.filter(function (d) { return d.name !== null && d.name === params.operationName; });
    var chosen = named[0] || (operations.length === 1 ? operations[0] : null);
    return {
      query: params.query,
      variables: params.variables || undefined,
      operationName: chosen ? chosen.name || undefined : params.operationName || undefined,
      type: chosen ? chosen.type : 'query'
    };
  }

  function post(request, credentials) {
    var headers = Object.assign(
      { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' },
      credentials.headers
    );
    return fetch(endpoint.href, {
      method: 'POST',
      credentials: 'same-origin',
      headers: headers,
      body: JSON.stringify({
        query: request.query,
        variables: request.variables,
        operationName: request.operationName
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

  function subscribe(request, credentials) {
    return {
      subscribe: function (observer) {
        var client = graphqlWs.createClient({
          url: wsEndpoint.href,
          retryAttempts: 0,
          connectionParams: credentials.sent === null ? {} : { authorization: credentials.sent }
        });
        var stop = client.subscribe(
          {
            query: request.query,
            variables: request.variables,
            operationName: request.operationName
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
    var request = chooseOperation(params);
    return request.type === 'subscription'
      ? subscribe(request, credentials)
      : post(request, credentials);
  }

  document.addEventListener('DOMContentLoaded', function () {
    YogaGraphiQL.renderYogaGraphiQL(
      document.getElementById('root'),
      Object.assign({}, config.graphiql, { fetcher: fetcher })
    );
  });
})();
`;
