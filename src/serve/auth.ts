/**
 * Bearer-token auth: an `onRequest` hook, registered only in the context of the protected routes, so
 * the public ones (/ping, /health, the docs) are public by where they are registered, not by a list.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Constant-time token check: compares SHA-256 digests, so neither content nor length leaks. */
export function tokenMatches(given: string, tokens: readonly string[]): boolean {
  const g = digest(given);
  let ok = false;
  for (const t of tokens) ok = timingSafeEqual(g, digest(t)) || ok;
  return ok;
}

export interface BearerAuthOptions {
  /** Accepted tokens; empty disables auth (buildApp allows that only with `allowNoAuth`). */
  tokens: readonly string[];
}

const auth: FastifyPluginAsync<BearerAuthOptions> = async (app, { tokens }) => {
  if (tokens.length === 0) return;
  app.addHook('onRequest', async (req, reply) => {
    const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
    if (!m)
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer')
        .send({ error: 'Unauthorized', message: 'Missing bearer token: send "Authorization: Bearer <token>"' });
    if (!tokenMatches(m[1]!.trim(), tokens))
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer error="invalid_token"')
        .send({ error: 'Unauthorized', message: 'Invalid bearer token' });
  });
};

/** fastify-plugin lifts the hook into the context that registers it: register it beside the protected routes. */
export const bearerAuth = fp(auth, { name: 'bearer-auth', fastify: '5.x' });
