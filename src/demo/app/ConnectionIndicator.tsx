import { useEffect, useState } from 'react';
import type { Connection, ConnectionState } from './connection.js';

/** The connection indicator: live, reconnecting or resyncing. */
export function ConnectionIndicator({ connection }: { connection: Connection }) {
  const [state, setState] = useState<ConnectionState>(connection.state());
  useEffect(() => connection.onState(setState), [connection]);
  return (
    <span
      className={`connection ${state}`}
      data-testid="connection"
      data-state={state}
      role="status"
    >
      {state}
    </span>
  );
}
