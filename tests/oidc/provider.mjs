// A real OpenID provider for the integration tests: panva's `oidc-provider` (certified OpenID
// Connect implementation) on 127.0.0.1, with its own small login and consent pages so a browser
// can sign in with a user name and password. Nothing here is an imitation of an OP: discovery,
// authorization, PKCE, the token endpoint and the RS256 ID tokens are oidc-provider's own.
//
//   node provider.mjs PORT [CONFIG_JSON]      (PORT 0: any free port)
//   OIDC_TEST_CONFIG='{...}' node provider.mjs 0
//
// CONFIG_JSON (argument, else the environment variable OIDC_TEST_CONFIG):
//   {
//     "clients": [{"client_id": "rp", "client_secret": "...", "redirect_uris": ["http://127.0.0.1:1234/cb"]}],
//     "accounts": {"jan": {"password": "...", "claims": {"bsn": "999999990", "name": "Jan"}}},
//     "exit_with_stdin": true
//   }
// `clients` are oidc-provider client metadata (confidential, authorization code; the defaults
// below fill in grant and response types). `accounts` default to one account "test" / "test"
// with BSN 999999990. With `exit_with_stdin` the provider stops when its standard input closes,
// so a test that dies cannot leave it running.
//
// Scopes: `openid` (sub), `bsn` (the claim `bsn`), `profile` (name). PKCE (S256) is required.
// Claims of the granted scopes go into the ID token itself (conformIdTokenClaims: false), so a
// relying party reads the BSN from the ID token without calling userinfo. The signing key (RSA
// 2048, RS256) and the cookie keys are made at start and never written anywhere.
//
// When listening it prints one line on stdout: {"issuer":"http://127.0.0.1:PORT","ready":true}.
// Diagnostics go to stderr.

import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

// stdout carries only the ready line; oidc-provider's notices (console.info) go to stderr.
console.info = (...args) => console.error(...args);

function fail(message) {
  process.stderr.write(`provider.mjs: ${message}\n`);
  process.exit(2);
}

const portArg = process.argv[2];
if (portArg === undefined || !/^\d{1,5}$/.test(portArg) || Number(portArg) > 65535) {
  fail('usage: node provider.mjs PORT [CONFIG_JSON] (PORT 0 picks a free port)');
}
let config;
try {
  config = JSON.parse(process.argv[3] ?? process.env.OIDC_TEST_CONFIG ?? '{}');
} catch (e) {
  fail(`CONFIG_JSON is not JSON: ${e.message}`);
}
if (!Array.isArray(config.clients) || config.clients.length === 0) {
  fail('CONFIG_JSON needs "clients": [{"client_id", "client_secret", "redirect_uris"}]');
}
const clients = config.clients.map((c) => ({
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  ...c,
}));
const accounts = config.accounts ?? {
  test: { password: 'test', claims: { bsn: '999999990' } },
};

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)} - test OpenID provider</title>
<style>body{font-family:sans-serif;max-width:28em;margin:3em auto}label{display:block;margin-top:1em}
input{font-size:1em;padding:.3em;width:100%}button{margin-top:1.5em;font-size:1em;padding:.4em 1.2em}
.error{color:#a00}</style></head>
<body><h1>${escapeHtml(title)}</h1>
<p>Test OpenID provider at ${escapeHtml(issuerUrl)}</p>
${body}
</body></html>`;
}

function loginPage(uid, clientId, error) {
  return page('Sign in', `
<p>Sign in to continue to <strong>${escapeHtml(clientId)}</strong>.</p>
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label for="login">Username</label><input id="login" name="login" autocomplete="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>`);
}

function consentPage(uid, clientId, scopes, claims) {
  const items = [...scopes, ...claims].map((s) => `<li>${escapeHtml(s)}</li>`).join('');
  return page('Authorize', `
<p><strong>${escapeHtml(clientId)}</strong> asks for:</p><ul>${items}</ul>
<form method="post" action="/interaction/${escapeHtml(uid)}/confirm"><button type="submit">Continue</button></form>
<form method="post" action="/interaction/${escapeHtml(uid)}/abort"><button type="submit">Cancel</button></form>`);
}

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
      if (body.length > 16 * 1024) {
        reject(new Error('form too large'));
        req.destroy();
      }
    });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

function send(res, status, html) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    // No form-action: a browser applies it to the redirects after a form post too, and those
    // lead to the client's redirect_uri on another origin.
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
  });
  res.end(html);
}

const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(portArg), '127.0.0.1', resolve);
});
const issuerUrl = `http://127.0.0.1:${server.address().port}`;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: randomBytes(8).toString('hex'),
  alg: 'RS256',
  use: 'sig',
};

const provider = new Provider(issuerUrl, {
  clients,
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  scopes: ['openid', 'bsn', 'profile'],
  claims: { openid: ['sub'], bsn: ['bsn'], profile: ['name'] },
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  ttl: {
    AuthorizationCode: 60, AccessToken: 600, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600,
  },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    if (!Object.hasOwn(accounts, id)) {
      return undefined;
    }
    return {
      accountId: id,
      async claims() {
        return { sub: id, ...(accounts[id].claims ?? {}) };
      },
    };
  },
});
for (const event of ['server_error', 'authorization.error', 'grant.error', 'end_session.error']) {
  provider.on(event, (ctx, err) => {
    process.stderr.write(`provider.mjs: ${event}: ${err.message}${err.error_description ? ` (${err.error_description})` : ''}\n`);
  });
}

const providerCallback = provider.callback();

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    send(res, 400, page('Error', '<p>This sign-in is not the current one.</p>'));
    return;
  }
  const clientId = details.params.client_id;
  if (req.method === 'GET' && action === undefined) {
    if (details.prompt.name === 'login') {
      send(res, 200, loginPage(uid, clientId));
    } else {
      const d = details.prompt.details;
      send(res, 200, consentPage(uid, clientId, d.missingOIDCScope ?? [], d.missingOIDCClaims ?? []));
    }
    return;
  }
  if (req.method !== 'POST') {
    send(res, 405, page('Error', '<p>Method not allowed.</p>'));
    return;
  }
  const form = await readForm(req);
  if (action === 'login' && details.prompt.name === 'login') {
    const login = form.get('login') ?? '';
    const account = Object.hasOwn(accounts, login) ? accounts[login] : undefined;
    if (account === undefined || account.password !== form.get('password')) {
      send(res, 200, loginPage(uid, clientId, 'Unknown user name or wrong password.'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
    return;
  }
  if (action === 'confirm' && details.prompt.name === 'consent') {
    const d = details.prompt.details;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId });
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    if (d.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }
  if (action === 'abort') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    return;
  }
  send(res, 400, page('Error', '<p>Unexpected step.</p>'));
}

server.on('request', (req, res) => {
  const match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm|abort))?$/.exec(req.url.split('?')[0]);
  if (!match) {
    providerCallback(req, res);
    return;
  }
  interaction(req, res, match[1], match[2]).catch((err) => {
    process.stderr.write(`provider.mjs: interaction: ${err.message}\n`);
    if (!res.headersSent) {
      send(res, 400, page('Error', `<p>${escapeHtml(err.message)}</p>`));
    }
  });
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (config.exit_with_stdin) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}

process.stdout.write(`${JSON.stringify({ issuer: issuerUrl, ready: true })}\n`);
