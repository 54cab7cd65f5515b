import { createCorkboardClient } from '@corkboard/client';
import { useState, type FormEvent, type InputHTMLAttributes } from 'react';
import { describeError } from './errors.js';

/** The signed-in user and the bearer token every request sends. */
export interface Viewer {
  id: string;
  username: string;
  displayName: string;
  token: string;
}

type Mode = 'register' | 'signIn' | 'token';

/** The server's GraphQL endpoint: the page's own origin. */
const GRAPHQL_URL = new URL('/graphql', location.href).href;

/**
 * Sign-in with what the server's default identity offers: register (a new account and
 * its first session), sign in with a password set earlier, or paste a bearer token
 * (the seed's, or an identity provider's JWT in OIDC mode).
 */
export function SignIn({ onSignedIn }: { onSignedIn: (viewer: Viewer) => void }) {
  const [mode, setMode] = useState<Mode>('register');
  const [username, setUsername] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [password, setPassword] = useState('');
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const client = createCorkboardClient({ url: GRAPHQL_URL });
      switch (mode) {
        case 'register': {
          const result = await client.registerUser({
            input: { username, displayName: displayName || username },
          });
          if (result.__typename === 'RegisterUserSuccess') {
            onSignedIn({ ...result.user, token: result.token });
          } else if ('code' in result) setError(describeError(result));
          break;
        }
        case 'signIn': {
          const result = await client.signIn({ input: { username, password } });
          if (result.__typename === 'SignInSuccess') {
            onSignedIn({ ...result.user, token: result.token });
          } else if ('code' in result) setError(describeError(result));
          break;
        }
        case 'token': {
          const me = await createCorkboardClient({ url: GRAPHQL_URL, token }).me();
          if (me) onSignedIn({ ...me, token });
          else setError('The server does not know this token.');
          break;
        }
        default: {
          const unexpected: never = mode;
          throw new Error(String(unexpected));
        }
      }
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : String(failure));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="sign-in">
      <h1>Corkboard</h1>
      <p className="muted">
        A live board on the Corkboard API. Open it in two windows as two users.
      </p>
      <div role="tablist" className="tabs">
        {(
          [
            ['register', 'Register'],
            ['signIn', 'Sign in'],
            ['token', 'Use a token'],
          ] as const
        ).map(([value, label]) => (
          <button
            key={value}
            type="button"
            role="tab"
            aria-selected={mode === value}
            onClick={() => setMode(value)}
          >
            {label}
          </button>
        ))}
      </div>
      <form onSubmit={(event) => void submit(event)}>
        {mode !== 'token' && (
          <TextField
            label="Username"
            name="username"
            autoComplete="username"
            required
            value={username}
            onChange={setUsername}
          />
        )}
        {mode === 'register' && (
          <TextField
            label="Display name"
            name="displayName"
            value={displayName}
            onChange={setDisplayName}
          />
        )}
        {mode === 'signIn' && (
          <TextField
            label="Password"
            name="password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onChange={setPassword}
          />
        )}
        {mode === 'token' && (
          <TextField label="Bearer token" name="token" required value={token} onChange={setToken} />
        )}
        <button type="submit" disabled={busy}>
          {mode === 'register' ? 'Register' : mode === 'signIn' ? 'Sign in' : 'Use token'}
        </button>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}

/** A labelled text input showing `value`; `onChange` gets each new text. */
function TextField({
  label,
  onChange,
  ...input
}: { label: string; value: string; onChange: (value: string) => void } & Omit<
  InputHTMLAttributes<HTMLInputElement>,
  'value' | 'onChange'
>) {
  return (
    <label>
      {label}
      <input {...input} onChange={(e) => onChange(e.target.value)} />
    </label>
  );
}
