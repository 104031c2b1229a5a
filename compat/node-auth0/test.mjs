// Auth0's Node.js SDK (npm "auth0", node-auth0) against a running Gatehouse.
// Not part of CI or `go test`: see README.md in this folder for how to run it.
import { ManagementClient, AuthenticationClient, UserInfoClient } from "auth0";

function env(name, fallback) {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === "") {
    console.error(`missing ${name}`);
    process.exit(2);
  }
  return v;
}

const base = new URL(env("GATEHOUSE_URL"));
const domain = base.host; // host[:port]: the SDK builds every URL as `https://${domain}/...`
const origin = base.origin;
const admin = { clientId: env("GATEHOUSE_ADMIN_CLIENT_ID"), clientSecret: env("GATEHOUSE_ADMIN_CLIENT_SECRET") };
const realm = env("GATEHOUSE_REALM");
const username = env("GATEHOUSE_USERNAME");
const password = env("GATEHOUSE_PASSWORD");

// The SDK has no base-URL option: ManagementClient, AuthenticationClient,
// UserInfoClient and the ID token validator all hard-code `https://${domain}`
// (dist/esm/management/wrapper/ManagementClient.mjs, auth/base-auth-api.mjs,
// userinfo/index.mjs, auth/id-token-validator.mjs). Over https (Gatehouse's
// --tls-cert/--tls-key, NODE_EXTRA_CA_CERTS for a self-signed certificate)
// nothing is changed. For plain http on loopback, every fetch to
// https://<domain> is sent to http://<domain> instead. ManagementClient deletes
// its `fetch` option (ManagementClient.mjs: `delete _options.fetch`) and the
// Fern core then calls the global fetch (management/core/fetcher/getFetchFn.mjs),
// so the rewrite has to replace globalThis.fetch. The ID token validator cannot
// be redirected (its issuer is `https://${domain}/` and jose fetches the JWKS
// with node:https), so over http every grant that returns an id_token fails in
// the SDK: use https for a full run.
if (base.protocol === "http:") {
  const plainFetch = globalThis.fetch;
  const httpsOrigin = `https://${domain}`;
  globalThis.fetch = (input, init) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    if (url.startsWith(httpsOrigin + "/")) {
      const rewritten = origin + url.slice(httpsOrigin.length);
      return plainFetch(typeof input === "string" || input instanceof URL ? rewritten : new Request(rewritten, input), init);
    }
    return plainFetch(input, init);
  };
}

const mgmt = new ManagementClient({
  domain,
  ...admin,
  // The default audience is `https://${domain}/api/v2/` (management/wrapper/auth-helpers.mjs);
  // Gatehouse's is its issuer followed by api/v2/.
  audience: `${origin}/api/v2/`,
  fetch: globalThis.fetch,
});
// AuthenticationClient is built for confidential clients: it refuses to send a
// grant without client_secret or client_assertion (auth/client-authentication.mjs),
// so a public native app (token_endpoint_auth_method "none", like the demo's)
// cannot use it. The password grant below runs as the application this script
// creates, with the realm's connection enabled for it.
let auth;
const userInfo = new UserInfoClient({ domain, fetch: globalThis.fetch });

const results = [];
async function step(name, fn) {
  try {
    const detail = await fn();
    results.push({ name, ok: true });
    console.log(`ok   ${name}${detail ? `: ${detail}` : ""}`);
    return true;
  } catch (err) {
    results.push({ name, ok: false });
    const status = err.statusCode ?? err.status ?? "";
    const body = err.body !== undefined ? JSON.stringify(err.body) : "";
    console.log(`FAIL ${name}: ${status} ${err.name}: ${err.message} ${body}`.trim());
    if (process.env.DEBUG) console.log(err);
    return false;
  }
}

async function all(pagePromise) {
  const items = [];
  for await (const item of await pagePromise) items.push(item);
  return items;
}

function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

const run = Date.now().toString(36);
let app, connection, api, grant, user, tokens, refreshed;

// --- Management API ---
await step("clients.create (regular_web, password-realm)", async () => {
  app = await mgmt.clients.create({
    name: `sdk-compat ${run}`,
    app_type: "regular_web",
    token_endpoint_auth_method: "client_secret_post",
    grant_types: ["http://auth0.com/oauth/grant-type/password-realm", "refresh_token"],
  });
  assert(app.client_id && app.client_secret, "client_id and client_secret in the answer");
  auth = new AuthenticationClient({ domain, clientId: app.client_id, clientSecret: app.client_secret, fetch: globalThis.fetch });
  return app.client_id;
});

await step("clients.list (all pages, per_page=2)", async () => {
  const list = await all(mgmt.clients.list({ per_page: 2 }));
  assert(list.some((c) => c.client_id === app?.client_id), "the new app is listed");
  assert(new Set(list.map((c) => c.client_id)).size === list.length, "no client listed twice");
  return `${list.length} clients`;
});

await step("connections.create (waad, options)", async () => {
  connection = await mgmt.connections.create({
    name: `sdk-compat-${run}`,
    strategy: "waad",
    display_name: "SDK compat",
    options: {
      tenant_domain: "contoso.onmicrosoft.com",
      domain_aliases: ["contoso.com"],
      client_id: "0f0c1b6e-9a6f-4c55-9bbc-1a2b3c4d5e6f",
      client_secret: "sdk-compat-client-secret-value",
      identity_api: "microsoft-identity-platform-v2.0",
      basic_profile: true,
      ext_profile: true,
      ext_groups: true,
    },
  });
  assert(connection.id, "id in the answer");
  assert(connection.options?.client_secret !== "sdk-compat-client-secret-value", "secret not echoed");
  return connection.id;
});

await step("connections.clients.update (enable the app)", async () => {
  await mgmt.connections.clients.update(connection.id, [{ client_id: app.client_id, status: true }]);
});

await step("connections.clients.get (enabled clients)", async () => {
  const enabled = await all(mgmt.connections.clients.get(connection.id));
  assert(enabled.some((c) => c.client_id === app.client_id), "the app is enabled");
  return `${enabled.length} enabled`;
});

await step("connections.get and connections.update", async () => {
  const got = await mgmt.connections.get(connection.id);
  assert(got.options?.tenant_domain === "contoso.onmicrosoft.com", "options read back");
  const upd = await mgmt.connections.update(connection.id, { display_name: "SDK compat (renamed)", options: { ...got.options, client_secret: undefined, ext_groups: false } });
  assert(upd.display_name === "SDK compat (renamed)" && upd.options?.ext_groups === false, "update applied");
});

await step("clients.get, clients.update and clients.rotateSecret", async () => {
  const got = await mgmt.clients.get(app.client_id);
  assert(got.client_id === app.client_id, "same client");
  const upd = await mgmt.clients.update(app.client_id, { description: "made by compat/node-auth0" });
  assert(upd.description === "made by compat/node-auth0", "update applied");
  const rot = await mgmt.clients.rotateSecret(app.client_id);
  assert(rot.client_secret && rot.client_secret !== app.client_secret, "new secret");
  app.client_secret = rot.client_secret;
  auth = new AuthenticationClient({ domain, clientId: app.client_id, clientSecret: app.client_secret, fetch: globalThis.fetch });
});

await step("connections.list (all pages, take=1)", async () => {
  const list = await all(mgmt.connections.list({ take: 1 }));
  assert(list.some((c) => c.id === connection?.id), "the new connection is listed");
  return `${list.length} connections`;
});

await step("connections.list (strategy=waad)", async () => {
  const list = await all(mgmt.connections.list({ strategy: ["waad"] }));
  assert(list.length >= 1 && list.every((c) => c.strategy === "waad"), "only waad connections");
  return `${list.length} connections`;
});

await step(`connections.list (name=${realm}) and enable the app on it`, async () => {
  const [realmConnection] = await all(mgmt.connections.list({ name: realm }));
  assert(realmConnection?.name === realm, "the realm's connection");
  await mgmt.connections.clients.update(realmConnection.id, [{ client_id: app.client_id, status: true }]);
  return realmConnection.id;
});

await step("resourceServers.create", async () => {
  api = await mgmt.resourceServers.create({
    name: `SDK compat API ${run}`,
    identifier: `https://api.sdk-compat.example/${run}`,
    scopes: [{ value: "read:things", description: "Read things" }],
    signing_alg: "RS256",
  });
  assert(api.id && api.identifier, "id and identifier in the answer");
  return api.id;
});

await step("resourceServers.list (all pages)", async () => {
  const list = await all(mgmt.resourceServers.list({ per_page: 1 }));
  assert(list.some((r) => r.id === api?.id), "the new API is listed");
  return `${list.length} APIs`;
});

await step("clientGrants.create", async () => {
  grant = await mgmt.clientGrants.create({ client_id: app.client_id, audience: api.identifier, scope: ["read:things"] });
  assert(grant.id, "id in the answer");
  return grant.id;
});

await step("resourceServers.get/update and clientGrants.get/update", async () => {
  const rs = await mgmt.resourceServers.get(api.id);
  assert(rs.identifier === api.identifier, "same API");
  const rsu = await mgmt.resourceServers.update(api.id, { scopes: [{ value: "read:things" }, { value: "write:things" }] });
  assert(rsu.scopes?.length === 2, "scopes updated");
  const g = await mgmt.clientGrants.get(grant.id);
  assert(g.audience === api.identifier, "same grant");
  const gu = await mgmt.clientGrants.update(grant.id, { scope: ["read:things", "write:things"] });
  assert(gu.scope?.length === 2, "grant scope updated");
});

await step("clientGrants.list (audience)", async () => {
  const list = await all(mgmt.clientGrants.list({ audience: api.identifier }));
  assert(list.some((g) => g.id === grant?.id), "the new grant is listed");
  return `${list.length} grants`;
});

// --- Authentication API ---
await step("oauth.passwordGrant (realm)", async () => {
  const { data } = await auth.oauth.passwordGrant({ username, password, realm, scope: "openid profile email offline_access" });
  tokens = data;
  assert(tokens.access_token && tokens.id_token, "access and ID token");
  assert(tokens.refresh_token, "refresh token (offline_access)");
  return `token_type ${tokens.token_type}, expires_in ${tokens.expires_in}`;
});

await step("oauth.passwordGrant with a wrong password is refused", async () => {
  try {
    await auth.oauth.passwordGrant({ username, password: password + "-wrong", realm, scope: "openid" });
  } catch (err) {
    assert(err.name === "AuthApiError" && err.error === "invalid_grant", `AuthApiError invalid_grant, got ${err.name} ${err.error}`);
    return `${err.statusCode} ${err.error}: ${err.error_description}`;
  }
  throw new Error("a wrong password was accepted");
});

await step("userinfo", async () => {
  const { data } = await userInfo.getUserInfo(tokens.access_token);
  assert(data.sub, "sub");
  return `${data.sub} ${data.email ?? ""}`;
});

await step("oauth.refreshTokenGrant", async () => {
  const { data } = await auth.oauth.refreshTokenGrant({ refresh_token: tokens.refresh_token });
  refreshed = data;
  assert(refreshed.access_token, "access token");
  return `refresh_token ${refreshed.refresh_token ? "rotated" : "kept"}`;
});

await step("oauth.revokeRefreshToken", async () => {
  await auth.oauth.revokeRefreshToken({ token: refreshed.refresh_token ?? tokens.refresh_token });
});

await step("oauth.refreshTokenGrant after revoke is refused", async () => {
  try {
    await auth.oauth.refreshTokenGrant({ refresh_token: refreshed.refresh_token ?? tokens.refresh_token });
  } catch (err) {
    assert(err.error === "invalid_grant", `invalid_grant, got ${err.error} ${err.message}`);
    return `${err.statusCode} ${err.error}`;
  }
  throw new Error("the revoked refresh token still works");
});

// --- Users, logs, keys (after the login, so the user exists) ---
await step("users.list (all pages)", async () => {
  const list = await all(mgmt.users.list({ per_page: 1 }));
  user = list.find((u) => u.email?.toLowerCase() === username.toLowerCase());
  assert(user, "the user who signed in is listed");
  return `${list.length} users`;
});

await step("users.list (q=email, search_engine=v3)", async () => {
  const list = await all(mgmt.users.list({ q: `email:"${username}"`, search_engine: "v3" }));
  assert(list.length === 1 && list[0].user_id === user?.user_id, "exactly the user");
});

await step("users.get", async () => {
  const u = await mgmt.users.get(user.user_id);
  assert(u.user_id === user.user_id && Array.isArray(u.identities), "user with identities");
  return u.user_id;
});

await step("users.update (app_metadata)", async () => {
  const u = await mgmt.users.update(user.user_id, { app_metadata: { sdk_compat: run } });
  assert(u.app_metadata?.sdk_compat === run, "app_metadata stored");
});

await step("users.logs.list and users.refreshToken.list", async () => {
  const logs = await all(mgmt.users.logs.list(user.user_id, { per_page: 2 }));
  assert(logs.length > 0, "the user's events");
  const rts = await all(mgmt.users.refreshToken.list(user.user_id));
  return `${logs.length} events, ${rts.length} refresh tokens`;
});

await step("users.get of an unknown user is a 404 the SDK recognises", async () => {
  try {
    await mgmt.users.get("waad|no-such-user");
  } catch (err) {
    assert(err.statusCode === 404 && err.body?.errorCode === "inexistent_user", `404 inexistent_user, got ${err.statusCode} ${JSON.stringify(err.body)}`);
    return `${err.name} ${err.body.errorCode}`;
  }
  throw new Error("an unknown user was found");
});

await step("tenants.settings.get", async () => {
  const t = await mgmt.tenants.settings.get();
  assert(typeof t === "object", "settings");
});

await step("users.listUsersByEmail", async () => {
  const list = await mgmt.users.listUsersByEmail({ email: username });
  assert(list.length === 1 && list[0].user_id === user?.user_id, "exactly the user");
});

await step("logs.list (all pages, per_page=5)", async () => {
  const list = await all(mgmt.logs.list({ per_page: 5 }));
  assert(list.some((l) => l.type === "sepft"), "the password login is logged");
  return `${list.length} events`;
});

await step("logs.get", async () => {
  const [first] = (await mgmt.logs.list({ per_page: 1 })).data;
  const ev = await mgmt.logs.get(first.log_id);
  assert(ev.log_id === first.log_id, "same event");
  return `${ev.type}`;
});

let rotated;
await step("keys.signing.rotate", async () => {
  rotated = await mgmt.keys.signing.rotate();
  assert(rotated.kid && rotated.cert, "kid and cert");
  return rotated.kid;
});

await step("keys.signing.list", async () => {
  const keys = await mgmt.keys.signing.list();
  assert(keys.some((k) => k.kid === rotated?.kid && k.next), "the rotated key is next");
  assert(keys.some((k) => k.current), "a current key");
  return `${keys.length} keys`;
});

await step("keys.signing.get", async () => {
  const k = await mgmt.keys.signing.get(rotated.kid);
  assert(k.kid === rotated.kid, "same key");
});

// --- clean-up ---
await step("clientGrants.delete", () => mgmt.clientGrants.delete(grant.id));
await step("resourceServers.delete", () => mgmt.resourceServers.delete(api.id));
await step("connections.delete", () => mgmt.connections.delete(connection.id));
await step("clients.delete", () => mgmt.clients.delete(app.client_id));

const failed = results.filter((r) => !r.ok);
console.log(`\n${results.length - failed.length}/${results.length} passed`);
process.exit(failed.length ? 1 : 0);
