// The routing check every transfer passes before its stub is stored: a pure function of the list and
// the request. Order matters and follows the policy texts:
//   1. danger to life, property or public safety → 110 at once, emergency priority, whatever the list
//      says (国办发〔2022〕12号; 桂林方案 三(一) "如存在危及人身和财产安全、公共安全的紧急情况，110应当及时派警先行处置");
//   2. harassment (恶意骚扰、扬言恐吓…) → the harassment desk (110), with its own reason;
//   3. an emergency is never refused by the list;
//   4. otherwise the list: the owner desk, a redirect, or an agent's recorded reason to go elsewhere.
import { z } from 'zod';
import { resolveCategory, type RedirectAction, type RoutingList } from './routing-list.js';
import type { DeskId } from './ticket-stub.js';

export const HarassmentKindSchema = z.enum(['malicious', 'threatening', 'drunk', 'repeated']);
export type HarassmentKind = z.infer<typeof HarassmentKindSchema>;

export type RoutingBasis = 'danger' | 'harassment' | 'emergency' | 'list' | 'override' | 'redirect' | 'unlisted';

/** What the routing check decided, kept on the transfer and in its call record. */
export interface TransferRouting {
  readonly basis: RoutingBasis;
  readonly requestedTo: DeskId;
  readonly categoryCode: string;
  readonly categoryName: string | null;
  /** The desk the list gives the category to, when it gives it to a desk. */
  readonly listedOwner: DeskId | null;
  readonly overrideReason: string | null;
  readonly danger: boolean;
  readonly harassment: HarassmentKind | null;
  readonly redirect: { readonly via: 'hotline' | 'utility'; readonly id: string; readonly action: RedirectAction } | null;
  /**
   * The nuisance mark: null until the lookup answers (it runs beside the call, never before it), and
   * stays null when the lookup failed.
   */
  readonly nuisance: NuisanceMark | null;
}

/** The caller's number is flagged as a nuisance, or calls often. */
export interface NuisanceMark {
  readonly flagged: HarassmentKind | null;
  /** Transfers of this number within the repeat window, this one included. */
  readonly recentCalls: number;
  readonly repeated: boolean;
}

/** The nuisance mark as a schema: how the API and the live feed show it. */
export const NuisanceMarkSchema = z.object({
  flagged: HarassmentKindSchema.nullable(),
  recentCalls: z.number(),
  repeated: z.boolean(),
});

/** The same, as a schema: how the API shows it. It holds no number, only the nuisance mark. */
export const TransferRoutingSchema = z.object({
  basis: z.enum(['danger', 'harassment', 'emergency', 'list', 'override', 'redirect', 'unlisted']),
  requestedTo: z.string(),
  categoryCode: z.string(),
  categoryName: z.string().nullable(),
  listedOwner: z.string().nullable(),
  overrideReason: z.string().nullable(),
  danger: z.boolean(),
  harassment: HarassmentKindSchema.nullable(),
  redirect: z.object({ via: z.enum(['hotline', 'utility']), id: z.string(), action: z.enum(['transfer', 'advise']) }).nullable(),
  nuisance: NuisanceMarkSchema.nullable(),
});

export interface RoutingInput {
  readonly from: DeskId;
  readonly to: DeskId;
  readonly categoryCode: string;
  readonly emergencyPriority: boolean;
  readonly danger: boolean;
  readonly harassment: HarassmentKind | null;
  readonly reason: string | null;
  /** What to do with a category the list does not know. */
  readonly unlisted: 'allow' | 'refuse';
}

export type RoutingRefusal =
  | 'category_owned_elsewhere'
  | 'category_redirected'
  | 'category_unlisted'
  | 'danger_already_at_emergency_desk';

export type RoutingVerdict =
  | {
      readonly ok: true;
      readonly to: DeskId;
      readonly emergency: boolean;
      readonly routing: Omit<TransferRouting, 'nuisance'>;
    }
  | { readonly ok: false; readonly code: RoutingRefusal; readonly message: string; readonly details: Record<string, unknown> };

export function decideRouting(list: RoutingList, input: RoutingInput): RoutingVerdict {
  const resolved = resolveCategory(list, input.categoryCode);
  const base = {
    requestedTo: input.to,
    categoryCode: input.categoryCode,
    categoryName: resolved ? (resolved.subcategory?.name ?? resolved.category.name) : null,
    listedOwner: resolved?.resolution.kind === 'desk' ? resolved.resolution.desk : null,
    overrideReason: null,
    danger: input.danger,
    harassment: input.harassment,
    redirect: null,
  } satisfies Omit<TransferRouting, 'basis' | 'nuisance'>;

  if (input.danger) {
    // 119, 120, 122 and their specialist seats take their own emergencies; anything else goes to 110.
    const keepsTarget = input.to !== list.emergency.desk && list.emergency.services.includes(input.to);
    const to = keepsTarget ? input.to : list.emergency.desk;
    if (to === input.from) {
      return {
        ok: false,
        code: 'danger_already_at_emergency_desk',
        message: `danger to life, property or public safety stays with ${input.from}: dispatch it there`,
        details: { desk: input.from },
      };
    }
    return { ok: true, to, emergency: true, routing: { ...base, basis: 'danger' } };
  }

  if (input.harassment !== null) {
    return {
      ok: true,
      to: list.harassmentDesk,
      emergency: input.emergencyPriority,
      routing: { ...base, basis: 'harassment' },
    };
  }

  if (input.emergencyPriority) {
    return { ok: true, to: input.to, emergency: true, routing: { ...base, basis: 'emergency' } };
  }

  if (!resolved) {
    if (input.unlisted === 'refuse') {
      return {
        ok: false,
        code: 'category_unlisted',
        message: `category ${input.categoryCode} is not in the routing list`,
        details: { category: input.categoryCode },
      };
    }
    return { ok: true, to: input.to, emergency: false, routing: { ...base, basis: 'unlisted' } };
  }

  const resolution = resolved.resolution;
  const reason = input.reason;
  if (resolution.kind === 'desk') {
    if (resolution.desk === input.to) return { ok: true, to: input.to, emergency: false, routing: { ...base, basis: 'list' } };
    if (reason !== null) {
      return { ok: true, to: input.to, emergency: false, routing: { ...base, basis: 'override', overrideReason: reason } };
    }
    return {
      ok: false,
      code: 'category_owned_elsewhere',
      message: `the routing list gives ${base.categoryName ?? input.categoryCode} to ${resolution.desk}, not ${input.to}; give a reason to transfer anyway`,
      details: { category: resolved.category.code, owner: resolution.desk, requested: input.to },
    };
  }

  const redirect = { via: resolution.via, id: resolution.id, action: resolution.action } as const;
  if (resolution.action === 'transfer' && resolution.desk === input.to) {
    return { ok: true, to: input.to, emergency: false, routing: { ...base, basis: 'redirect', redirect } };
  }
  if (reason !== null) {
    return { ok: true, to: input.to, emergency: false, routing: { ...base, basis: 'override', overrideReason: reason, redirect } };
  }
  return {
    ok: false,
    code: 'category_redirected',
    message:
      resolution.action === 'transfer'
        ? `the routing list redirects ${base.categoryName ?? input.categoryCode} to ${resolution.name} (${resolution.desk}): use a redirect`
        : `the routing list says to advise the caller to call ${resolution.name}${resolution.numbers.length ? ` (${resolution.numbers.join(', ')})` : ''}`,
    details: {
      category: resolved.category.code,
      action: resolution.action,
      redirect: resolution.id,
      desk: resolution.desk,
      numbers: resolution.numbers,
    },
  };
}
