// API keys per role (Authorization: Bearer <key>, or X-Api-Key). Keys are compared as SHA-256 digests
// in constant time, so neither a key's length nor its prefix leaks through timing.
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
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match?.[1]) return match[1];
  }
  if (typeof apiKey === 'string' && apiKey.length > 0) return apiKey;
  return null;
}

function digestOf(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}
