// OpenID Provider for the end-to-end tests: oidc-provider 9 with its development
// interactions (any login name and password are accepted), one confidential client
// `client1`, and an issuer path that looks like Keycloak's (`/realms/demo`).
//
// Configuration comes from the environment; see README.md beside this file.
// stdout carries exactly one line, `oidc-provider listening on <issuer>`, once the
// server accepts connections. Everything else goes to stderr.

import { existsSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

// oidc-provider prints its notices with console.info (stdout). Keep stdout for the
// ready line only.
console.log = console.error;
console.info = console.error;

function fail(message) {
  console.error(`idp: ${message}`);
  process.exit(2);
}

function list(name) {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return [];
  return raw.split(',').map((s) => s.trim()).filter(Boolean);
}

function seconds(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) fail(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

function flag(name) {
  const raw = process.env[name];
  if (raw === undefined || raw === '' || raw === '0') return false;
  if (raw === '1') return true;
  return fail(`${name} must be 1 or 0, got ${JSON.stringify(raw)}`);
}

function milliseconds(name) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return 0;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) fail(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return n;
}

const port = Number(process.env.IDP_PORT);
if (!Number.isInteger(port) || port <= 0 || port > 65535) fail('IDP_PORT must be set to a TCP port');

let issuerPath = process.env.IDP_ISSUER_PATH ?? '/realms/demo';
issuerPath = issuerPath.replace(/\/+$/, '');
if (issuerPath !== '' && !issuerPath.startsWith('/')) issuerPath = `/${issuerPath}`;
const origin = `http://127.0.0.1:${port}`;
const issuer = `${origin}${issuerPath}`;

const tokenAuthMethod = process.env.IDP_TOKEN_AUTH_METHOD || 'client_secret_basic';
// private_key_jwt (RFC 7523): client1 has no secret; its public keys come from
// IDP_CLIENT_JWKS_URI (the component's /jwks.json), fetched when an assertion arrives.
const privateKeyJwt = tokenAuthMethod === 'private_key_jwt';
const clientJwksUri = process.env.IDP_CLIENT_JWKS_URI || undefined;
if (privateKeyJwt && !clientJwksUri) fail('IDP_CLIENT_JWKS_URI must be set with IDP_TOKEN_AUTH_METHOD=private_key_jwt');
const clientSecret = process.env.IDP_CLIENT_SECRET;
if (!clientSecret && !privateKeyJwt) fail('IDP_CLIENT_SECRET must be set');
const redirectUris = list('IDP_REDIRECT_URIS');
if (redirectUris.length === 0) fail('IDP_REDIRECT_URIS must list at least one redirect URI');
const postLogoutRedirectUris = list('IDP_POST_LOGOUT_REDIRECT_URIS');
const backchannelLogoutUri = process.env.IDP_BACKCHANNEL_LOGOUT_URI || undefined;
const idTokenAlg = process.env.IDP_ID_TOKEN_SIGNING_ALG || 'RS256';
// Refresh-token rotation for every client: each refresh grant consumes the refresh
// token it presents and issues a new one; presenting a consumed one again revokes
// the whole grant (oidc-provider's reuse detection).
const rotateRefreshTokens = flag('IDP_ROTATE_REFRESH_TOKENS');
// A slow IdP: the answer to every refresh_token grant is held back this long.
const refreshDelayMs = milliseconds('IDP_REFRESH_DELAY_MS');

// An exact word or nothing: `choice('IDP_PAR', 'required')` is true when the variable
// says `required`, false when it is unset or empty.
function choice(name, word) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return false;
  if (raw === word) return true;
  return fail(`${name} must be ${word} or empty, got ${JSON.stringify(raw)}`);
}
// PAR (RFC 9126) is always on, as oidc-provider's default; IDP_PAR=required refuses
// an authorization request that was not pushed (and says so in discovery).
const parRequired = choice('IDP_PAR', 'required');
// DPoP (RFC 9449): oidc-provider accepts proofs by default but never asks for a
// nonce (its default requireNonce returns false, and without a nonceSecret it has
// none to give). IDP_DPOP=required gives it a fresh nonce secret, demands a nonce in
// every proof, and registers client1 with dpop_bound_access_tokens.
const dpopRequired = choice('IDP_DPOP', 'required');
// FAPI 2.0 Security Profile as oidc-provider enforces it: PKCE on every request,
// private_key_jwt assertions with aud = the issuer, redirect_uri never omitted, no
// access tokens in query strings.
const fapi2 = choice('IDP_FAPI', '2.0');

// Start-up steps go to stderr with their times, so a slow or stuck start-up says
// where it is.
function step(what) {
  console.error(`idp: ${what} (${Math.round(process.uptime() * 1000)} ms after start)`);
}

// Fresh signing keys for every run: an RS256 key (the default for ID tokens) and an
// ES256 key, both published in the JWKS.
function signingKey(type, options, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  step(`generated the ${alg} signing key`);
  return { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg };
}
step('modules loaded');
const jwks = {
  keys: [
    signingKey('rsa', { modulusLength: 2048 }, 'RS256'),
    signingKey('ec', { namedCurve: 'P-256' }, 'ES256'),
  ],
};

function capitalise(login) {
  return login
    .split(/[\s._-]+/)
    .filter(Boolean)
    .map((part) => part[0].toUpperCase() + part.slice(1))
    .join(' ') || login;
}

const client = {
  client_id: 'client1',
  ...(privateKeyJwt ? { jwks_uri: clientJwksUri } : { client_secret: clientSecret }),
  client_name: 'Spin OIDC client (e2e)',
  redirect_uris: redirectUris,
  post_logout_redirect_uris: postLogoutRedirectUris,
  response_types: ['code'],
  grant_types: ['authorization_code', 'refresh_token'],
  token_endpoint_auth_method: tokenAuthMethod,
  id_token_signed_response_alg: idTokenAlg,
};
if (dpopRequired) client.dpop_bound_access_tokens = true;
if (backchannelLogoutUri) {
  client.backchannel_logout_uri = backchannelLogoutUri;
  client.backchannel_logout_session_required = true;
}

const configuration = {
  clients: [client],
  jwks,
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          preferred_username: sub,
          name: capitalise(sub),
          email: `${sub}@example.test`,
        };
      },
    };
  },
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  responseTypes: ['code'],
  // Keycloak's endpoint layout under the issuer, so nothing but discovery tells a
  // client where the endpoints are.
  routes: {
    authorization: '/protocol/openid-connect/auth',
    token: '/protocol/openid-connect/token',
    userinfo: '/protocol/openid-connect/userinfo',
    jwks: '/protocol/openid-connect/certs',
    end_session: '/protocol/openid-connect/logout',
    revocation: '/protocol/openid-connect/revoke',
    pushed_authorization_request: '/protocol/openid-connect/ext/par/request',
  },
  // Like Keycloak: the claims of the granted scopes are in the ID token too, not only
  // at the userinfo endpoint.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  // Without IDP_ROTATE_REFRESH_TOKENS, oidc-provider's default rule: a confidential
  // client keeps its refresh token until 70% of its lifetime has passed.
  ...(rotateRefreshTokens ? { rotateRefreshToken: () => true } : {}),
  // Refresh tokens only when offline_access was requested and granted (the default
  // rule, spelled out): oidc-provider drops offline_access from a request that does not
  // carry prompt=consent.
  issueRefreshToken: async (ctx, c, code) => c.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    backchannelLogout: { enabled: Boolean(backchannelLogoutUri) },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: parRequired },
    ...(dpopRequired ? {
      dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true },
    } : {}),
    ...(fapi2 ? { fapi: { enabled: true, profile: '2.0' } } : {}),
  },
  ttl: {
    AccessToken: seconds('IDP_ACCESS_TOKEN_TTL', 300),
    AuthorizationCode: 60,
    IdToken: seconds('IDP_ID_TOKEN_TTL', 300),
    RefreshToken: seconds('IDP_REFRESH_TOKEN_TTL', 3600),
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
  // oidc-provider refuses outgoing requests (back-channel logout) to special-use
  // addresses such as loopback; the tests' relying party lives on 127.0.0.1.
  fetch: (url, options) => {
    const { dispatcher, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
};

const provider = new Provider(issuer, configuration);
step('provider configured');
provider.on('server_error', (ctx, err) => console.error('idp: server_error', err));
provider.on('grant.error', (ctx, err) => console.error('idp: grant.error', err.message, err.error_description ?? ''));
provider.on('authorization.error', (ctx, err) => console.error('idp: authorization.error', err.message, err.error_description ?? ''));
provider.on('end_session.error', (ctx, err) => console.error('idp: end_session.error', err.message, err.error_description ?? ''));
provider.on('backchannel.error', (ctx, err, c) => console.error('idp: backchannel.error', c.clientId, err.message));
provider.on('backchannel.success', (ctx, c, accountId, sid) => console.error('idp: backchannel.success', c.clientId, accountId, sid));

// Every refresh_token grant the token endpoint answers (granted or refused) is
// counted and logged as `idp: refresh_token grant #<n> -> <status>`, after it was
// processed and before its answer is sent (and before IDP_REFRESH_DELAY_MS starts):
// the line is on record while the client still waits. Installed before the
// provider's routes, so it sees the request after oidc-provider has handled it.
let refreshGrants = 0;
provider.use(async (ctx, next) => {
  await next();
  if (ctx.oidc?.route !== 'token' || ctx.oidc.params?.grant_type !== 'refresh_token') return;
  refreshGrants += 1;
  const held = refreshDelayMs > 0 ? `, answer held back ${refreshDelayMs} ms` : '';
  console.error(`idp: refresh_token grant #${refreshGrants} -> ${ctx.status}${held}`);
  if (refreshDelayMs > 0) await new Promise((resolve) => { setTimeout(resolve, refreshDelayMs); });
});
step(`refresh tokens ${rotateRefreshTokens ? 'rotate on every use' : 'rotate by the default rule'}; refresh answers held back ${refreshDelayMs} ms`);

step(`pushed authorization requests ${parRequired ? 'required' : 'optional'}; DPoP nonces ${dpopRequired ? 'required, client1 DPoP-bound' : 'not asked for'}; FAPI 2.0 ${fapi2 ? 'on' : 'off'}`);

const yes = (v) => (v ? 'yes' : 'no');

// How the client authenticated at the token and revocation endpoints, one line each:
// `idp: client auth <route>: basic=<yes|no> client_secret=<yes|no> client_assertion=<yes|no> -> <status>`
// (never the values), so a test can check that a private_key_jwt client never sends
// a secret.
provider.use(async (ctx, next) => {
  await next();
  const route = ctx.oidc?.route;
  if (route !== 'token' && route !== 'revocation') return;
  const params = ctx.oidc.params ?? {};
  const basic = /^basic /i.test(ctx.headers.authorization ?? '');
  console.error(`idp: client auth ${route}: basic=${yes(basic)} client_secret=${yes(params.client_secret)} client_assertion=${yes(params.client_assertion)} -> ${ctx.status}`);
});

// Every pushed authorization request: `idp: par: client_assertion=<yes|no>
// dpop_jkt=<yes|no> -> <status>` (never the values), so a test can see that a login
// was pushed, how the client authenticated, and whether it bound the code to a key.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.oidc?.route !== 'pushed_authorization_request') return;
  const body = ctx.oidc.body ?? {};
  console.error(`idp: par: client_assertion=${yes(body.client_assertion)} dpop_jkt=${yes(body.dpop_jkt)} -> ${ctx.status}`);
});

// Whether a DPoP proof carries a nonce claim. The proof is decoded, not verified:
// this says what the client sent; oidc-provider judges it.
function proofHasNonce(proof) {
  try {
    const payload = JSON.parse(Buffer.from(proof.split('.')[1], 'base64url').toString('utf8'));
    return payload !== null && typeof payload === 'object' && payload.nonce !== undefined;
  } catch {
    return false;
  }
}

// Every token and userinfo request: `idp: dpop <route>: proof=<yes|no> nonce=<yes|no>
// -> <status>`, so a test can follow the nonce challenge (a refusal with
// use_dpop_nonce, then a retry whose proof carries the nonce).
provider.use(async (ctx, next) => {
  await next();
  const route = ctx.oidc?.route;
  if (route !== 'token' && route !== 'userinfo') return;
  const proof = ctx.get('DPoP');
  console.error(`idp: dpop ${route}: proof=${yes(proof)} nonce=${yes(proof && proofHasNonce(proof))} -> ${ctx.status}`);
});

const callback = provider.callback();

const server = createServer((req, res) => {
  const start = Date.now();
  res.on('finish', () => console.error(`idp: ${req.method} ${req.originalUrl ?? req.url} -> ${res.statusCode} (${Date.now() - start} ms)`));
  const url = req.url ?? '/';
  const inside = issuerPath === ''
    || url === issuerPath
    || url.startsWith(`${issuerPath}/`)
    || url.startsWith(`${issuerPath}?`);
  if (!inside) {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
    return;
  }
  // Mount the provider under the issuer path the way express does: oidc-provider finds
  // its mount path from req.originalUrl minus req.url.
  req.originalUrl = url;
  req.url = url.slice(issuerPath.length) || '/';
  if (req.url.startsWith('?')) req.url = `/${req.url}`;
  callback(req, res);
});

server.on('error', (err) => fail(`cannot listen on 127.0.0.1:${port}: ${err.message}`));
// For the harness's test of its start-up retry: while the marker file does not exist,
// create it and never get ready.
const stallMarker = process.env.IDP_STALL_FIRST_START;
if (stallMarker && !existsSync(stallMarker)) {
  writeFileSync(stallMarker, '');
  step('stalling on purpose (IDP_STALL_FIRST_START)');
  setInterval(() => {}, 1 << 30);
} else {
  server.listen(port, '127.0.0.1', () => {
    process.stdout.write(`oidc-provider listening on ${issuer}\n`);
  });
}

function shutdown(signal) {
  console.error(`idp: ${signal}, exiting`);
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
