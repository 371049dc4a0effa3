// A city portal's OpenID Connect provider, for the visitor-account tests and the demo: npm's
// `oidc-provider` (a certified implementation) with its development sign-in pages, which take
// any password. Never for production.
//
//   node provider.mjs --port 4100 --client-id office --client-secret S \
//        --redirect-uri http://127.0.0.1:8080/visitor/callback [--code-ttl 60]
//
// Two clients are registered with the same redirect address: the office's, and `other`, whose
// codes the office must refuse. The portal's people are below; an unknown login is a person
// with no name claims. Their sign-ins need no consent screen here (the office asks its own).
// It prints `oidc-provider listening on <issuer>` once it accepts connections.

import Provider from "oidc-provider";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    port: { type: "string" },
    issuer: { type: "string" },
    "client-id": { type: "string", default: "office" },
    "client-secret": { type: "string" },
    "redirect-uri": { type: "string" },
    "code-ttl": { type: "string", default: "60" },
  },
});
for (const name of ["port", "client-secret", "redirect-uri"]) {
  if (!args[name]) {
    console.error(`provider.mjs: --${name} is required`);
    process.exit(2);
  }
}
const port = Number(args.port);
const issuer = args.issuer ?? `http://127.0.0.1:${port}`;

const PEOPLE = {
  kulipanov: { family_name: "Кулипанов", given_name: "Денис", middle_name: "Анатольевич" },
  ivanova: { family_name: "Иванова", given_name: "Мария", middle_name: "Петровна" },
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: args["client-id"],
      client_secret: args["client-secret"],
      redirect_uris: [args["redirect-uri"]],
      grant_types: ["authorization_code"],
      response_types: ["code"],
    },
    {
      client_id: "other",
      client_secret: "other-secret-other-secret-other-secret",
      redirect_uris: [args["redirect-uri"]],
      grant_types: ["authorization_code"],
      response_types: ["code"],
    },
  ],
  claims: { openid: ["sub"], profile: ["family_name", "given_name", "middle_name"] },
  // The name claims go in the ID token itself, as many portals do.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  ttl: { AuthorizationCode: Number(args["code-ttl"]) },
  cookies: { keys: ["test-provider-cookie-key-not-secret"] },
  features: { devInteractions: { enabled: true } },
  async findAccount(_ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, ...(PEOPLE[id] ?? {}) };
      },
    };
  },
  // First-party: the scopes are granted without the provider's own consent page.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      ?? ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      return ctx.oidc.provider.Grant.find(grantId);
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope("openid profile");
    await grant.save();
    ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId, grant.jti);
    return grant;
  },
});

provider.listen(port, "127.0.0.1", () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
