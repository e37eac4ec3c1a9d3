/**
 * Bearer-token auth: an `onRequest` hook, registered only in the context of the protected routes, so
 * the public ones (/ping, /health, the docs) are public by where they are registered, not by a list.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Shorter tokens are guessable; an empty one would let `Bearer <blank>` through. */
export const MIN_TOKEN_LENGTH = 16;

/**
 * Refuses, at start, a token list a client could pass without knowing a secret: empty or blank
 * tokens (an empty token file once made `['']` the list), tokens under MIN_TOKEN_LENGTH characters,
 * or tokens with white space (the header is trimmed, so they could never match as written).
 */
export function checkTokens(tokens: readonly string[], source = 'the configured tokens'): void {
  tokens.forEach((t, i) => {
    const what = `token ${i + 1} of ${source}`;
    if (/\s/u.test(t) || t !== t.trim()) throw new Error(`${what} contains white space; tokens are single words`);
    if (t.length < MIN_TOKEN_LENGTH)
      throw new Error(
        `${what} is ${t.length ? 'too short' : 'empty'}: tokens need at least ${MIN_TOKEN_LENGTH} characters`,
      );
  });
}

/** Constant-time token check: compares SHA-256 digests, so neither content nor length leaks. */
export function tokenMatches(given: string, tokens: readonly string[]): boolean {
  if (!given) return false;
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
