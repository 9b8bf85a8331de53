// API keys per role (Authorization: Bearer <key>, X-Api-Key, or Basic with the key as the password, which
// is what a browser can send for /docs). Keys are compared as SHA-256 digests in constant time, so
// neither a key's length nor its prefix leaks through timing.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Role } from '../config.js';
import { AppError } from '../errors.js';

export interface Principal {
  readonly name: string;
  readonly role: Role;
}

export interface ApiKey {
  readonly name: string;
  readonly role: Role;
  readonly key: string;
}

export class ApiKeyAuthenticator {
  private readonly digests: { digest: Buffer; principal: Principal }[];

  constructor(keys: readonly ApiKey[]) {
    this.digests = keys.map((k) => ({ digest: digestOf(k.key), principal: { name: k.name, role: k.role } }));
  }

  /** The principal a presented key belongs to, or null. Every stored key is compared. */
  identify(presented: string): Principal | null {
    const digest = digestOf(presented);
    let found: Principal | null = null;
    for (const entry of this.digests) {
      if (timingSafeEqual(entry.digest, digest)) found = entry.principal;
    }
    return found;
  }

  /** Reads the credential from the request and checks the role; throws 401/403. */
  authorise(request: FastifyRequest, roles: readonly Role[]): Principal {
    const presented = credentialOf(request.headers.authorization, request.headers['x-api-key']);
    if (presented === null) throw new AppError('unauthorized', 'an API key is required (Authorization: Bearer <key>)');
    const principal = this.identify(presented);
    if (!principal) throw new AppError('unauthorized', 'unknown API key');
    if (!roles.includes(principal.role)) {
      throw new AppError('forbidden', `the ${principal.role} role may not do this`, { allowed: roles });
    }
    return principal;
  }
}

export function credentialOf(authorization: string | undefined, apiKey: string | string[] | undefined): string | null {
  if (typeof authorization === 'string') {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (bearer?.[1]) return bearer[1];
    const basic = /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(authorization);
    if (basic?.[1]) {
      // user:password; the user name is free (a browser's prompt asks for one), the key is the password.
      const pair = Buffer.from(basic[1], 'base64').toString('utf8');
      const colon = pair.indexOf(':');
      const password = colon >= 0 ? pair.slice(colon + 1) : '';
      if (password.length > 0) return password;
    }
  }
  if (typeof apiKey === 'string' && apiKey.length > 0) return apiKey;
  return null;
}

function digestOf(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}
