import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** An OTLP/JSON attribute value. */
interface AnyValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
}

/** One span as an OTLP/HTTP JSON export carries it, flattened with its scope. */
export interface ReceivedSpan {
  scope: string;
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  attributes: Record<string, string | number | boolean>;
  links: { traceId: string; spanId: string }[];
  /** The attributes of the resource that exported it (`service.name`, `host.name`...). */
  resource: Record<string, string | number | boolean>;
}

/** One export request, as received. */
export interface ReceivedExport {
  path: string;
  contentType: string;
  body: Buffer;
}

/**
 * A tiny OTLP/HTTP trace receiver on loopback (what a collector's `otlp` receiver does on
 * :4318): answers every POST with 200 and keeps it; JSON exports are decoded into spans.
 * Enough to test exporting without a collector or the internet.
 */
export class OtlpReceiver {
  readonly exports: ReceivedExport[] = [];
  readonly spans: ReceivedSpan[] = [];

  private constructor(
    private readonly server: Server,
    /** `http://127.0.0.1:<port>`, for `OTEL_EXPORTER_OTLP_ENDPOINT`. */
    readonly endpoint: string,
  ) {}

  static async start(): Promise<OtlpReceiver> {
    const started: { receiver?: OtlpReceiver } = {};
    const server = createServer((request, response) => {
      void readBody(request).then((body) => {
        started.receiver?.receive({
          path: request.url ?? '/',
          contentType: request.headers['content-type'] ?? '',
          body,
        });
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    started.receiver = new OtlpReceiver(server, `http://127.0.0.1:${port}`);
    return started.receiver;
  }

  receive(received: ReceivedExport): void {
    this.exports.push(received);
    if (!received.contentType.includes('json')) return;
    const payload = JSON.parse(received.body.toString('utf8')) as {
      resourceSpans?: {
        resource?: { attributes?: { key: string; value: AnyValue }[] };
        scopeSpans?: {
          scope?: { name?: string };
          spans?: {
            name: string;
            traceId: string;
            spanId: string;
            parentSpanId?: string;
            attributes?: { key: string; value: AnyValue }[];
            links?: { traceId: string; spanId: string }[];
          }[];
        }[];
      }[];
    };
    for (const resource of payload.resourceSpans ?? []) {
      const resourceAttributes = attributesOf(resource.resource?.attributes);
      for (const scoped of resource.scopeSpans ?? []) {
        for (const span of scoped.spans ?? []) {
          this.spans.push({
            scope: scoped.scope?.name ?? '',
            name: span.name,
            traceId: span.traceId,
            spanId: span.spanId,
            parentSpanId: span.parentSpanId ?? '',
            attributes: attributesOf(span.attributes),
            links: (span.links ?? []).map(({ traceId, spanId }) => ({ traceId, spanId })),
            resource: resourceAttributes,
          });
        }
      }
    }
  }

  /** Waits (up to `timeoutMs`) until `found` returns something for the spans so far. */
  async waitFor<T>(
    found: (spans: ReceivedSpan[]) => T | undefined,
    what: string,
    timeoutMs = 60_000,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const result = found(this.spans);
      if (result !== undefined) return result;
      if (Date.now() > deadline) {
        const names = this.spans.map((s) => `${s.name}(${s.traceId.slice(0, 8)})`);
        throw new Error(`no ${what} among ${this.spans.length} spans: ${names.join(', ')}`);
      }
      await sleep(50);
    }
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function attributesOf(
  attributes: { key: string; value: AnyValue }[] | undefined,
): Record<string, string | number | boolean> {
  return Object.fromEntries((attributes ?? []).map(({ key, value }) => [key, valueOf(value)]));
}

function valueOf(value: AnyValue): string | number | boolean {
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.boolValue !== undefined) return value.boolValue;
  return JSON.stringify(value);
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
