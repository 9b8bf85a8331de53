// The routing list (分流转办事项清单) as data: which desk owns each category of request, which are
// redirected to other hotlines (12313, 12395, 12348) and which to utilities. Each city keeps its own
// list (国办发〔2022〕12号 asks every city to draw one up), so it is configuration, validated here.
import { z } from 'zod';
import { CategoryCodeSchema, DeskIdSchema, DivisionCodeSchema } from './ticket-stub.js';

const Name = z.string().trim().min(1).max(200);
const PhoneNumber = z.string().regex(/^\d{3,12}$/, 'a number of 3-12 digits');

export const ROUTING_SECTIONS = ['12345-to-110', '110-to-12345', 'emergency-service', 'other-hotline', 'utility'] as const;

/** What the agent does for a hotline or utility category: carry the call over, or tell the caller. */
export const RedirectActionSchema = z.enum(['transfer', 'advise']);
export type RedirectAction = z.infer<typeof RedirectActionSchema>;

const RouteSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('desk'), desk: DeskIdSchema }).strict(),
  z.object({ kind: z.literal('hotline'), hotline: z.string().min(1) }).strict(),
  z.object({ kind: z.literal('utility'), utility: z.string().min(1) }).strict(),
]);
export type Route = z.infer<typeof RouteSchema>;

const SubcategorySchema = z
  .object({ code: CategoryCodeSchema, name: Name, description: z.string().max(500).optional() })
  .strict();

const CategorySchema = z
  .object({
    code: CategoryCodeSchema,
    name: Name,
    section: z.enum(ROUTING_SECTIONS),
    description: z.string().max(1000).optional(),
    /** The list's own words on where to send the caller (引导分流至…). */
    guidance: z.string().max(200).optional(),
    route: RouteSchema,
    subcategories: z.array(SubcategorySchema),
  })
  .strict();
export type RoutingCategory = z.infer<typeof CategorySchema>;

const HotlineSchema = z
  .object({
    name: Name,
    number: PhoneNumber,
    action: RedirectActionSchema,
    /** The configured desk dialled when the action is transfer. */
    desk: DeskIdSchema.optional(),
  })
  .strict()
  .refine((h) => h.action !== 'transfer' || h.desk !== undefined, { message: 'a transfer action names the desk to dial', path: ['desk'] });

const UtilitySchema = z
  .object({
    name: Name,
    operator: Name,
    numbers: z.array(PhoneNumber),
    action: RedirectActionSchema,
    desk: DeskIdSchema.optional(),
    note: z.string().max(300).optional(),
  })
  .strict()
  .refine((u) => u.action !== 'transfer' || u.desk !== undefined, { message: 'a transfer action names the desk to dial', path: ['desk'] })
  .refine((u) => u.numbers.length > 0 || u.note !== undefined, {
    message: 'a utility without numbers needs a note saying who supplies them',
    path: ['numbers'],
  });

export const RoutingListSchema = z
  .object({
    city: z.object({ name: Name, divisionCode: DivisionCodeSchema }).strict(),
    source: Name,
    /** Danger to life, property or public safety goes here first (110), or to one of the services. */
    emergency: z.object({ desk: DeskIdSchema, services: z.array(DeskIdSchema).min(1) }).strict(),
    /** Malicious, threatening or repeated nuisance callers are passed here (恶意骚扰…第一时间转交110). */
    harassmentDesk: DeskIdSchema,
    hotlines: z.record(z.string().min(1), HotlineSchema),
    utilities: z.record(z.string().min(1), UtilitySchema),
    categories: z.array(CategorySchema).min(1),
  })
  .strict()
  .superRefine((list, ctx) => {
    const seen = new Map<string, string>();
    list.categories.forEach((category, i) => {
      const codes: [string, (string | number)[]][] = [
        [category.code, ['categories', i, 'code']],
        ...category.subcategories.map((s, j): [string, (string | number)[]] => [s.code, ['categories', i, 'subcategories', j, 'code']]),
      ];
      for (const [code, path] of codes) {
        if (seen.has(code)) ctx.addIssue({ code: 'custom', path, message: `code ${code} is used twice (also at ${seen.get(code)})` });
        else seen.set(code, path.join('.'));
      }
      category.subcategories.forEach((s, j) => {
        if (!s.code.startsWith(`${category.code}.`)) {
          ctx.addIssue({
            code: 'custom',
            path: ['categories', i, 'subcategories', j, 'code'],
            message: `a sub-category code starts with its category's code and a dot (${category.code}.)`,
          });
        }
      });
      const route = category.route;
      if (route.kind === 'hotline' && !(route.hotline in list.hotlines)) {
        ctx.addIssue({ code: 'custom', path: ['categories', i, 'route', 'hotline'], message: `no hotline ${route.hotline} in hotlines` });
      }
      if (route.kind === 'utility' && !(route.utility in list.utilities)) {
        ctx.addIssue({ code: 'custom', path: ['categories', i, 'route', 'utility'], message: `no utility ${route.utility} in utilities` });
      }
    });
  });

export type RoutingList = z.infer<typeof RoutingListSchema>;

export type RoutingListResult = { ok: true; list: RoutingList } | { ok: false; problems: string[] };

/** Parses a list and checks every desk it names is configured; problems carry the path and the reason. */
export function parseRoutingList(raw: unknown, configuredDesks: readonly string[]): RoutingListResult {
  const parsed = RoutingListSchema.safeParse(raw);
  if (!parsed.success) {
    return { ok: false, problems: parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`) };
  }
  const list = parsed.data;
  const desks = new Set(configuredDesks);
  const problems: string[] = [];
  const need = (desk: string | undefined, path: string) => {
    if (desk !== undefined && !desks.has(desk)) problems.push(`${path}: desk ${desk} is not configured in desks`);
  };
  need(list.emergency.desk, 'emergency.desk');
  list.emergency.services.forEach((d, i) => need(d, `emergency.services.${i}`));
  need(list.harassmentDesk, 'harassmentDesk');
  for (const [id, h] of Object.entries(list.hotlines)) need(h.desk, `hotlines.${id}.desk`);
  for (const [id, u] of Object.entries(list.utilities)) need(u.desk, `utilities.${id}.desk`);
  list.categories.forEach((c, i) => {
    if (c.route.kind === 'desk') need(c.route.desk, `categories.${i}.route.desk`);
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, list };
}

/** Where a category (or one of its sub-categories) sends the call. */
export type Resolution =
  | { readonly kind: 'desk'; readonly desk: string }
  | {
      readonly kind: 'redirect';
      readonly via: 'hotline' | 'utility';
      readonly id: string;
      readonly name: string;
      readonly action: RedirectAction;
      readonly desk: string | null;
      readonly numbers: readonly string[];
      readonly note: string | null;
    };

export interface ResolvedCategory {
  readonly category: RoutingCategory;
  readonly subcategory: { readonly code: string; readonly name: string } | null;
  readonly resolution: Resolution;
}

/** Looks a category up by code (category or sub-category) or by its exact Chinese name. */
export function resolveCategory(list: RoutingList, key: string): ResolvedCategory | null {
  const wanted = key.trim();
  for (const category of list.categories) {
    if (category.code === wanted || category.name === wanted) {
      return { category, subcategory: null, resolution: resolutionOf(list, category) };
    }
    const sub = category.subcategories.find((s) => s.code === wanted || s.name === wanted);
    if (sub) return { category, subcategory: { code: sub.code, name: sub.name }, resolution: resolutionOf(list, category) };
  }
  return null;
}

function resolutionOf(list: RoutingList, category: RoutingCategory): Resolution {
  const route = category.route;
  if (route.kind === 'desk') return { kind: 'desk', desk: route.desk };
  if (route.kind === 'hotline') {
    const h = list.hotlines[route.hotline];
    if (!h) throw new RangeError(`hotline ${route.hotline} missing from a validated list`);
    return { kind: 'redirect', via: 'hotline', id: route.hotline, name: h.name, action: h.action, desk: h.desk ?? null, numbers: [h.number], note: null };
  }
  const u = list.utilities[route.utility];
  if (!u) throw new RangeError(`utility ${route.utility} missing from a validated list`);
  return { kind: 'redirect', via: 'utility', id: route.utility, name: u.name, action: u.action, desk: u.desk ?? null, numbers: u.numbers, note: u.note ?? null };
}
