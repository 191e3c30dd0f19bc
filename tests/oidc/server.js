// A real OpenID provider (the certified `oidc-provider`) on loopback, for tandem's OIDC client tests.
//
// Usage: node tests/oidc/server.js PORT
//
// It serves discovery at http://127.0.0.1:PORT/.well-known/openid-configuration and its signing keys at
// /jwks. One client, `tandem-test` (secret `tandem-test-secret`, client_secret_basic or _post), may use the
// client_credentials grant with a resource indicator: `urn:tandem` (the gateway's audience) or
// `urn:other` (a different audience, for the wrong-audience test). Access tokens are RS256 JWTs whose
// `aud` is the resource, `sub` is the client id, and which carry `groups` and `project` claims.
// The RSA signing key is generated at start, so its `kid` changes on every run.

import { generateKeyPairSync, randomUUID } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';

const port = Number.parseInt(process.argv[2] ?? '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node server.js PORT');
  process.exit(2);
}

const issuer = `http://127.0.0.1:${port}`;
const RESOURCES = new Set(['urn:tandem', 'urn:other']);
const GROUPS = ['eng', 'platform'];
const PROJECT = 'oidc-project';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: `test-${randomUUID()}`, alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'tandem-test',
      client_secret: 'tandem-test-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'api',
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [signingKey] },
  scopes: ['api'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:tandem',
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resourceIndicator) => {
        if (!RESOURCES.has(resourceIndicator)) {
          throw new errors.InvalidTarget(`unknown resource ${resourceIndicator}`);
        }
        return {
          scope: 'api',
          audience: resourceIndicator,
          accessTokenTTL: 10 * 60,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  extraTokenClaims: () => ({ groups: GROUPS, project: PROJECT }),
});

provider.on('server_error', (_ctx, err) => console.error('server_error', err));

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer} (kid ${signingKey.kid})`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
