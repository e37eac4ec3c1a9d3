import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { bearerAuth, checkTokens, MIN_TOKEN_LENGTH, tokenMatches } from '../../src/serve/auth';

const GOOD = 'a-serving-token-of-24ch';

describe('serving tokens', () => {
  it('refuses at start an empty, blank, short or spaced token, naming which', () => {
    expect(() => checkTokens([''])).toThrow(/token 1 of the configured tokens is empty/);
    expect(() => checkTokens([GOOD, 'short'], 'SERVE_TOKENS')).toThrow(/token 2 of SERVE_TOKENS is too short/);
    expect(() => checkTokens(['\u00a0'.repeat(MIN_TOKEN_LENGTH)])).toThrow(/white space/);
    expect(() => checkTokens([`${GOOD} x`])).toThrow(/white space/);
    expect(() => checkTokens([GOOD, 'x'.repeat(MIN_TOKEN_LENGTH)])).not.toThrow();
  });

  it('never matches an empty token', () => {
    expect(tokenMatches('', [''])).toBe(false);
    expect(tokenMatches(GOOD, [GOOD])).toBe(true);
  });

  it('a blank bearer (NBSP) is refused even if a blank token slipped into the list', async () => {
    const app = Fastify();
    await app.register(async (api) => {
      await api.register(bearerAuth, { tokens: ['', GOOD] });
      api.get('/secret', async () => ({ ok: true }));
    });
    const call = (authorization: string) => app.inject({ url: '/secret', headers: { authorization } });
    expect((await call('Bearer \u00a0')).statusCode).toBe(401);
    expect((await call('Bearer ')).statusCode).toBe(401);
    expect((await call(`Bearer ${GOOD}`)).statusCode).toBe(200);
    await app.close();
  });
});
