// The same checks with node-auth0 4.x, the API most existing apps were written
// against: auth0 6.4.0 ships it as `auth0/legacy` (its dependency
// "auth0-legacy": "npm:auth0@^4.37.1", pinned in package-lock.json).
// Run it like test.mjs (README.md), over https: 4.x also builds every URL as
// `https://${domain}` (auth0-legacy/dist/esm/management/management-client.js,
// auth/base-auth-api.js) and checks the ID token's iss against it.
import { ManagementClient, AuthenticationClient, UserInfoClient } from "auth0/legacy";

function env(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`missing ${name}`);
    process.exit(2);
  }
  return v;
}

const base = new URL(env("GATEHOUSE_URL"));
if (base.protocol !== "https:") {
  console.error("test-v4.mjs needs an https GATEHOUSE_URL (README.md)");
  process.exit(2);
}
const domain = base.host;
const realm = env("GATEHOUSE_REALM");
const username = env("GATEHOUSE_USERNAME");
const password = env("GATEHOUSE_PASSWORD");

const mgmt = new ManagementClient({
  domain,
  clientId: env("GATEHOUSE_ADMIN_CLIENT_ID"),
  clientSecret: env("GATEHOUSE_ADMIN_CLIENT_SECRET"),
});
const userInfo = new UserInfoClient({ domain });
let auth;

const results = [];
async function step(name, fn) {
  try {
    const detail = await fn();
    results.push(true);
    console.log(`ok   ${name}${detail ? `: ${detail}` : ""}`);
  } catch (err) {
    results.push(false);
    const body = err.body !== undefined ? (typeof err.body === "string" ? err.body : JSON.stringify(err.body)) : "";
    console.log(`FAIL ${name}: ${err.statusCode ?? ""} ${err.name}: ${err.message} ${body}`.trim());
    if (process.env.DEBUG) console.log(err);
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

// 4.x has no page iterator: read offset pages with include_totals until total.
async function allPages(fn, key, perPage) {
  const items = [];
  for (let page = 0; ; page++) {
    const { data } = await fn({ page, per_page: perPage, include_totals: true });
    assert(Array.isArray(data[key]), `"${key}" array in the page`);
    items.push(...data[key]);
    if (data[key].length === 0 || items.length >= data.total) return items;
  }
}

const run = Date.now().toString(36);
let app, connection, api, grant, user, tokens, refreshed, rotated;

await step("clients.create", async () => {
  ({ data: app } = await mgmt.clients.create({
    name: `sdk-compat-v4 ${run}`,
    app_type: "regular_web",
    token_endpoint_auth_method: "client_secret_post",
    grant_types: ["http://auth0.com/oauth/grant-type/password-realm", "refresh_token"],
  }));
  assert(app.client_id && app.client_secret, "client_id and client_secret");
  auth = new AuthenticationClient({ domain, clientId: app.client_id, clientSecret: app.client_secret });
  return app.client_id;
});

await step("clients.getAll (all pages)", async () => {
  const list = await allPages((q) => mgmt.clients.getAll(q), "clients", 2);
  assert(list.some((c) => c.client_id === app?.client_id), "the new app is listed");
  return `${list.length} clients`;
});

await step("connections.create (waad)", async () => {
  ({ data: connection } = await mgmt.connections.create({
    name: `sdk-compat-v4-${run}`,
    strategy: "waad",
    options: {
      tenant_domain: "contoso.onmicrosoft.com",
      client_id: "0f0c1b6e-9a6f-4c55-9bbc-1a2b3c4d5e6f",
      client_secret: "sdk-compat-client-secret-value",
      identity_api: "microsoft-identity-platform-v2.0",
      ext_groups: true,
    },
  }));
  assert(connection.id, "id");
  return connection.id;
});

await step("connections.updateEnabledClients and getEnabledClients", async () => {
  await mgmt.connections.updateEnabledClients({ id: connection.id }, [{ client_id: app.client_id, status: true }]);
  const { data } = await mgmt.connections.getEnabledClients({ id: connection.id });
  assert(data.clients.some((c) => c.client_id === app.client_id), "the app is enabled");
});

await step("connections.getAll (all pages)", async () => {
  const list = await allPages((q) => mgmt.connections.getAll(q), "connections", 1);
  assert(list.some((c) => c.id === connection?.id), "the new connection is listed");
  const realmConnection = list.find((c) => c.name === realm);
  assert(realmConnection, "the realm's connection");
  await mgmt.connections.updateEnabledClients({ id: realmConnection.id }, [{ client_id: app.client_id, status: true }]);
  return `${list.length} connections`;
});

await step("resourceServers.create and clientGrants.create", async () => {
  ({ data: api } = await mgmt.resourceServers.create({
    name: `SDK compat v4 ${run}`,
    identifier: `https://api.sdk-compat.example/v4/${run}`,
    scopes: [{ value: "read:things", description: "Read things" }],
  }));
  ({ data: grant } = await mgmt.clientGrants.create({ client_id: app.client_id, audience: api.identifier, scope: ["read:things"] }));
  const { data: grants } = await mgmt.clientGrants.getAll({ audience: api.identifier });
  assert(grants.some((g) => g.id === grant.id), "the grant is listed");
  return `${api.id} ${grant.id}`;
});

await step("oauth.passwordGrant (realm)", async () => {
  ({ data: tokens } = await auth.oauth.passwordGrant({ username, password, realm, scope: "openid profile email offline_access" }));
  assert(tokens.access_token && tokens.id_token && tokens.refresh_token, "access, ID and refresh token");
});

await step("userinfo", async () => {
  const { data } = await userInfo.getUserInfo(tokens.access_token);
  return data.sub;
});

await step("oauth.refreshTokenGrant and revokeRefreshToken", async () => {
  ({ data: refreshed } = await auth.oauth.refreshTokenGrant({ refresh_token: tokens.refresh_token }));
  assert(refreshed.access_token, "access token");
  await auth.oauth.revokeRefreshToken({ token: refreshed.refresh_token ?? tokens.refresh_token });
  try {
    await auth.oauth.refreshTokenGrant({ refresh_token: refreshed.refresh_token ?? tokens.refresh_token });
  } catch (err) {
    assert(err.error === "invalid_grant", `invalid_grant, got ${err.error}`);
    return `after revoke: ${err.statusCode} ${err.error}`;
  }
  throw new Error("the revoked refresh token still works");
});

await step("users.getAll (all pages) and users.get", async () => {
  const list = await allPages((q) => mgmt.users.getAll(q), "users", 1);
  user = list.find((u) => u.email?.toLowerCase() === username.toLowerCase());
  assert(user, "the user is listed");
  const { data } = await mgmt.users.get({ id: user.user_id });
  assert(data.user_id === user.user_id, "same user");
  return `${list.length} users`;
});

await step("users.getAll (q=email) and usersByEmail.getByEmail", async () => {
  const { data: found } = await mgmt.users.getAll({ q: `email:"${username}"`, search_engine: "v3" });
  assert(found.length === 1 && found[0].user_id === user.user_id, "exactly the user (q)");
  const { data: byEmail } = await mgmt.usersByEmail.getByEmail({ email: username });
  assert(byEmail.length === 1 && byEmail[0].user_id === user.user_id, "exactly the user (by email)");
});

await step("logs.getAll (all pages) and logs.get", async () => {
  const list = await allPages((q) => mgmt.logs.getAll(q), "logs", 5);
  assert(list.some((l) => l.type === "sepft"), "the password login is logged");
  const { data } = await mgmt.logs.get({ id: list[0].log_id });
  assert(data.log_id === list[0].log_id, "same event");
  return `${list.length} events`;
});

await step("keys.rotate, keys.getAll, keys.get", async () => {
  ({ data: rotated } = await mgmt.keys.rotate());
  const { data: keys } = await mgmt.keys.getAll();
  assert(keys.some((k) => k.kid === rotated.kid && k.next), "the rotated key is next");
  const { data: k } = await mgmt.keys.get({ kid: rotated.kid });
  assert(k.kid === rotated.kid, "same key");
  return rotated.kid;
});

await step("clean-up", async () => {
  await mgmt.clientGrants.delete({ id: grant.id });
  await mgmt.resourceServers.delete({ id: api.id });
  await mgmt.connections.delete({ id: connection.id });
  await mgmt.clients.delete({ client_id: app.client_id });
});

const failed = results.filter((ok) => !ok).length;
console.log(`\n${results.length - failed}/${results.length} passed`);
process.exit(failed ? 1 : 0);
