import { SpanKind, type Attributes, type Context, type Link } from '@opentelemetry/api';
import { SamplingDecision, type Sampler, type SamplingResult } from '@opentelemetry/sdk-trace';
import { OPERATION_SPAN_NAME, ROOT_SPANS, SAMPLED_BY_LINK_ONLY } from './spans.js';

/**
 * The root sampler of Corkboard's parent-based sampling, for a span with no parent:
 * - not recorded unless it may start a trace (an HTTP request, a GraphQL operation, one
 *   of `ROOT_SPANS`): a child span started with no parent is work of a request that is not
 *   traced;
 * - an HTTP request's span is sampled (the request was decided on before its span
 *   started, see `traceRequest`);
 * - sampled when it links to a sampled trace; otherwise, the work on a commit is not
 *   (see `SAMPLED_BY_LINK_ONLY`), and the rest (a GraphQL operation over a websocket, a
 *   subscription's replay or resync) is as `fallback` decides.
 */
export class LinkedTraceSampler implements Sampler {
  constructor(private readonly fallback: Sampler) {}

  shouldSample(
    context: Context,
    traceId: string,
    name: string,
    kind: SpanKind,
    attributes: Attributes,
    links: Link[],
  ): SamplingResult {
    if (!mayStartTrace(name, kind)) return { decision: SamplingDecision.NOT_RECORD };
    if (kind === SpanKind.SERVER) return { decision: SamplingDecision.RECORD_AND_SAMPLED };
    if (links.some((link) => (link.context.traceFlags & 1) === 1)) {
      return { decision: SamplingDecision.RECORD_AND_SAMPLED };
    }
    if (SAMPLED_BY_LINK_ONLY.has(name)) return { decision: SamplingDecision.NOT_RECORD };
    return this.fallback.shouldSample(context, traceId, name, kind, attributes, links);
  }

  toString(): string {
    return `LinkedTraceSampler{${this.fallback.toString()}}`;
  }
}

/** Whether a span named `name` of `kind` may start a trace. */
function mayStartTrace(name: string, kind: SpanKind): boolean {
  return kind === SpanKind.SERVER || ROOT_SPANS.has(name) || OPERATION_SPAN_NAME.test(name);
}
