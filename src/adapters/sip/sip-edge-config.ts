// Configuration of the SIP edge (drachtio). Exported for the composition root, which alone reads config.
import { z } from 'zod';
import { CategoryCodeSchema, DeskIdSchema, DivisionCodeSchema } from '../../domain/ticket-stub.js';

/** A dialable desk number: 110, 12345, 12313, or a specialist seat's extension. */
const DeskNumberSchema = z.string().regex(/^\+?\d{2,20}$/, 'a desk number is 2-20 digits');
const HostSchema = z
  .string()
  .regex(/^(?:\[[0-9A-Fa-f:.]+\]|[0-9A-Za-z.-]{1,253})$/, 'a host name, IPv4 address or [IPv6] address');

export const TrunkSchema = z
  .object({
    /** The name the transfer service uses in `target.trunk` (备用专线: one per backup line). */
    name: z.string().regex(/^[0-9A-Za-z][0-9A-Za-z_.-]{0,63}$/),
    host: HostSchema,
    port: z.number().int().min(1).max(65535).default(5060),
    transport: z.enum(['udp', 'tcp', 'tls']).default('udp'),
    /**
     * RFC 3325 §5: P-Asserted-Identity only goes to a next hop inside the trust domain. The other desk's
     * switch normally is; a trunk through a carrier may not be.
     */
    trustDomain: z.boolean().default(true),
  })
  .strict();
export type Trunk = z.infer<typeof TrunkSchema>;

export const DeskRouteSchema = z
  .object({
    /** Request-URI / Refer-To user parts that mean this desk. */
    numbers: z.array(DeskNumberSchema).min(1),
    /** In order; the first is the main line, the rest are backups. May be empty for a desk only reached by REFER. */
    trunks: z.array(TrunkSchema).default([]),
    /** Whether an agent's phone may REFER a call to this desk (110, 12345, hotlines, specialist seats). */
    referTarget: z.boolean().default(true),
  })
  .strict();

export const PeerSchema = z
  .object({
    name: z.string().regex(/^[0-9A-Za-z][0-9A-Za-z_-]{0,31}$/),
    /** The desk whose calls this peer carries (the 12345 PBX → 12345, the 110 switch → 110). */
    desk: DeskIdSchema,
    /** Source addresses drachtio-server reports for this peer's requests. */
    addresses: z.array(z.union([z.ipv4(), z.ipv6()])).min(1),
    /** RFC 3325 trust domain: only a trusted peer's asserted identity (and From number) is believed. */
    trusted: z.boolean().default(false),
    /** Ticket fields a plain PBX cannot send; headers X-Division-Code / X-Category-Code override them. */
    divisionCode: DivisionCodeSchema,
    categoryCode: CategoryCodeSchema,
  })
  .strict();
export type Peer = z.infer<typeof PeerSchema>;

export const SipEdgeConfigSchema = z
  .object({
    /** The id the transfer service registers this CallControl under (`citizenLeg.switchId`). */
    switchId: z.string().regex(/^[0-9A-Za-z][0-9A-Za-z_-]{0,31}$/).default('sip-edge'),
    drachtio: z
      .object({
        host: HostSchema.default('127.0.0.1'),
        port: z.number().int().min(1).max(65535).default(9022),
        secret: z.string().min(1),
        /** srf sends `ping` every interval; no frame for an interval + 2 s and the link is treated as down. */
        pingIntervalMs: z.number().int().min(5000).max(300000).default(15000),
        retryMaxDelayMs: z.number().int().min(100).max(60000).default(5000),
      })
      .strict(),
    /** Host used in the URIs we write (P-Asserted-Identity, Diversion, History-Info). */
    domain: HostSchema.default('hotline.invalid'),
    peers: z.array(PeerSchema).default([]),
    desks: z.record(DeskIdSchema, DeskRouteSchema),
    /** RFC 5806 Diversion or RFC 7044 History-Info for the transferring desk. */
    diversionStyle: z.enum(['diversion', 'history-info']).default('diversion'),
    limits: z
      .object({
        maxMessageBytes: z.number().int().min(1024).max(65535).default(16384),
        maxHeaderBytes: z.number().int().min(128).max(8192).default(1024),
        /** Give up on a REFER's new leg after this long (15 s is common for attended/blind transfer). */
        referTimeoutSeconds: z.number().int().min(1).max(120).default(15),
      })
      .strict()
      .default({ maxMessageBytes: 16384, maxHeaderBytes: 1024, referTimeoutSeconds: 15 }),
  })
  .strict()
  .superRefine((config, ctx) => {
    const seen = new Map<string, string>();
    for (const [desk, route] of Object.entries(config.desks)) {
      for (const number of route.numbers) {
        const other = seen.get(number);
        if (other !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['desks', desk, 'numbers'], message: `${number} is also desk ${other}` });
        }
        seen.set(number, desk);
      }
    }
    const trunkNames = new Set<string>();
    for (const [desk, route] of Object.entries(config.desks)) {
      route.trunks.forEach((trunk, i) => {
        if (trunkNames.has(trunk.name)) {
          ctx.addIssue({ code: 'custom', path: ['desks', desk, 'trunks', i, 'name'], message: 'trunk names are unique' });
        }
        trunkNames.add(trunk.name);
      });
    }
    config.peers.forEach((peer, i) => {
      if (!(peer.desk in config.desks)) {
        ctx.addIssue({ code: 'custom', path: ['peers', i, 'desk'], message: `no desk ${peer.desk} in desks` });
      }
    });
  });
export type SipEdgeConfig = z.infer<typeof SipEdgeConfigSchema>;

/** The trunk names for a desk, in order, for the transfer service's `target.trunks`. */
export function trunkNamesFor(config: SipEdgeConfig, desk: string): string[] {
  return (config.desks[desk]?.trunks ?? []).map((t) => t.name);
}

export function findTrunk(config: SipEdgeConfig, name: string): Trunk | null {
  for (const route of Object.values(config.desks)) {
    const trunk = route.trunks.find((t) => t.name === name);
    if (trunk) return trunk;
  }
  return null;
}
