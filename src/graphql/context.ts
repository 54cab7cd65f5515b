import type { BoardAccessView } from '../boards/board/accessView.js';
import type { BoardCommands } from '../boards/commands.js';
import type { Credential, CredentialWatch } from '../identity/credentialWatch.js';
import type { Authenticator } from './auth.js';
import type { UserDoc } from '../boards/readModel.js';
import type { BoardReads } from '../boards/reads.js';
import type { BoardChangeHub, LiveConnection } from '../live/BoardChangeHub.js';
import type { Logger } from '../logger.js';
import type { ChangeLogFollower } from '../projector/ChangeLogFollower.js';
import type { ProjectorRuntime } from '../projector/ProjectorRuntime.js';
import type { EventStore } from '../eventstore/types.js';
import type { ReadModelStore } from '../projector/types.js';

/** What every request shares: the app's services. */
export interface Services {
  commands: BoardCommands;
  readModels: ReadModelStore;
  /** The book of record, for answers the read model cannot give yet. */
  store: EventStore;
  /** Who may read a board, decided on the event store: every read's access check. */
  access: BoardAccessView;
  follower: ChangeLogFollower;
  /** Fans the change log out to `boardChanges` subscriptions. */
  live: BoardChangeHub;
  logger: Logger;
  /** How long a mutation waits for its commit to be projected. */
  readYourWritesTimeoutMs: number;
  /** The read side, for the admin API (status, rebuild). */
  projector: ProjectorRuntime;
  /** The bearer token that makes a caller an admin. */
  adminToken: string;
  /** Who callers are: the built-in issuer or an OpenID Connect provider. */
  auth: Authenticator;
  /** Ends subscriptions (and their websockets) when their credential ends. */
  credentials: CredentialWatch;
  /** `SESSION_TTL`: a built-in session expires this long after its last use. */
  sessionTtlMs: number;
}

/** The GraphQL context of one operation (HTTP request or websocket subscribe). */
export interface GraphQLContext {
  services: Services;
  /** The authenticated caller; null when anonymous. */
  viewer: UserDoc | null;
  /** What the viewer authenticated with (its expiry, its session); null when anonymous. */
  credential: Credential | null;
  /** Whether the caller sent the admin token (see `ADMIN_TOKEN`). */
  isAdmin: boolean;
  /** Aborted when the client goes away: every store read and wait honours it. */
  signal: AbortSignal;
  /** Batched, membership-checked reads of the current read model generation. */
  reads: BoardReads;
  /**
   * After a command committed at `position`: waits (bounded) until it is projected,
   * then makes later reads of this operation see it.
   */
  settle(position: number): Promise<void>;
  /**
   * The newest commit position `settle` gave up waiting for (the read model had not
   * reached it within the timeout); null when every write of the operation was
   * projected in time. Reported to the client as `extensions.readModelBehind`.
   */
  readModelBehind: number | null;
  /**
   * Whether a command of this operation has succeeded (committed, or replayed a commit).
   * Its later commands then wait on a busy stream instead of being refused with `BUSY`,
   * which would fail the whole answer (`data: null`, HTTP 503), that write included.
   */
  wrote: boolean;
  /** The websocket an operation arrived on (absent over HTTP and SSE). */
  connection?: LiveConnection;
  /** The graphql-ws id of the operation, with `connection`. */
  operationId?: string;
}
