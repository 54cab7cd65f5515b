import { ApolloProvider } from '@apollo/client/react';
import { useEffect, useMemo, useState } from 'react';
import { BoardList } from './BoardList.js';
import { BoardView } from './BoardView.js';
import { connect } from './connection.js';
import { SignIn, type Viewer } from './SignIn.js';

/** Where the page keeps the signed-in viewer (per browser profile, like a session cookie). */
const SESSION_KEY = 'corkboard-demo-session';

function storedSession(): Viewer | null {
  try {
    const raw = localStorage.getItem(SESSION_KEY);
    return raw ? (JSON.parse(raw) as Viewer) : null;
  } catch {
    return null;
  }
}

/** The board shown: `#/board/<id>` in the URL, so a reload or a link opens it again. */
function useRoute(): [string | null, (boardId: string | null) => void] {
  const read = () => /^#\/board\/(.+)$/.exec(location.hash)?.[1] ?? null;
  const [boardId, setBoardId] = useState(read);
  useEffect(() => {
    const onHash = () => setBoardId(read());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  const go = (id: string | null) => {
    location.hash = id ? `#/board/${id}` : '#/';
  };
  return [boardId ? decodeURIComponent(boardId) : null, go];
}

/** Signed out: the sign-in form. Signed in: the boards, or one board. */
export function App() {
  const [viewer, setViewer] = useState<Viewer | null>(storedSession);
  const [boardId, openBoard] = useRoute();
  const [notice, setNotice] = useState<string | null>(null);
  // A notice is about the board the viewer just lost: opening a board clears it.
  useEffect(() => {
    if (boardId) setNotice(null);
  }, [boardId]);
  const connection = useMemo(() => (viewer ? connect(viewer.token) : null), [viewer]);
  useEffect(() => () => connection?.close(), [connection]);

  const signIn = (next: Viewer) => {
    localStorage.setItem(SESSION_KEY, JSON.stringify(next));
    setViewer(next);
  };
  const signOut = () => {
    localStorage.removeItem(SESSION_KEY);
    setViewer(null);
    openBoard(null);
  };

  if (!viewer || !connection) return <SignIn onSignedIn={signIn} />;
  return (
    <ApolloProvider client={connection.apollo}>
      <header className="top">
        <a href="#/" className="brand">
          Corkboard
        </a>
        <span className="viewer" data-testid="viewer">
          {viewer.displayName} <span className="muted">@{viewer.username}</span>
        </span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      {notice && (
        <div className="notice" role="status" data-testid="notice">
          {notice}{' '}
          <button type="button" onClick={() => setNotice(null)}>
            Dismiss
          </button>
        </div>
      )}
      {boardId ? (
        <BoardView
          key={boardId}
          boardId={boardId}
          viewer={viewer}
          connection={connection}
          onLeave={(reason) => {
            setNotice(reason);
            openBoard(null);
          }}
          onSessionEnded={signOut}
        />
      ) : (
        <BoardList onOpen={openBoard} />
      )}
    </ApolloProvider>
  );
}
