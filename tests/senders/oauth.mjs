// A real OAuth 2.0 authorization server (oauth2-mock-server, RFC 6749 client credentials and
// refresh tokens, made strict about rotation: only the latest refresh token it issued is accepted,
// as servers that rotate them behave; the first is printed at start) and a
// resource server that accepts only the access tokens it issued — the JWT verified with jose
// against the issuer's own keys, and not revoked — for the connections tests
// (tests/all/connections.rs). Prints {"token_url", "resource"} as one line, then serves until
// stdin closes.
//   GET /data, /slow (150 ms): `[{"n": N}]` with a valid token, else 401
//   GET /stats: {"issued", "max_in_flight", "requests": [{"at", "ok", "path"}], "refreshed",
//                "refresh_refused", "refresh_clients"}
//   POST /revoke: every token issued so far is refused from now on
import { randomUUID } from "node:crypto";
import http from "node:http";
import { createLocalJWKSet, jwtVerify } from "jose";
import { OAuth2Server } from "oauth2-mock-server";

const server = new OAuth2Server();
await server.issuer.keys.generate("RS256");
const valid = new Set();
let issued = 0;
let refreshToken = randomUUID();
let refreshed = 0;
let refreshRefused = 0;
const refreshClients = [];
server.service.on("beforeResponse", (response, req) => {
  if (req.body?.grant_type === "refresh_token") {
    const basic = (req.headers.authorization ?? "").replace(/^Basic /, "");
    refreshClients.push(basic ? Buffer.from(basic, "base64").toString() : `public:${req.body.client_id}`);
    if (req.body.refresh_token !== refreshToken) {
      refreshRefused += 1;
      response.statusCode = 400;
      response.body = { error: "invalid_grant" };
      return;
    }
    refreshed += 1;
    refreshToken = response.body.refresh_token;
  }
  if (response.statusCode === 200 && response.body.access_token) {
    issued += 1;
    valid.add(response.body.access_token);
  }
});
await server.start(0, "127.0.0.1");
const jwks = createLocalJWKSet({ keys: server.issuer.keys.toJSON(false) });

const requests = [];
let inFlight = 0;
let maxInFlight = 0;
const send = (res, status, body) => {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
};
const resource = http.createServer(async (req, res) => {
  if (req.url === "/stats") {
    const refresh = { refreshed, refresh_refused: refreshRefused, refresh_clients: refreshClients };
    return send(res, 200, { issued, max_in_flight: maxInFlight, requests, ...refresh });
  }
  if (req.url === "/revoke") {
    valid.clear();
    return send(res, 200, {});
  }
  inFlight += 1;
  maxInFlight = Math.max(maxInFlight, inFlight);
  const at = Date.now();
  try {
    const auth = req.headers.authorization ?? "";
    let ok = false;
    if (auth.startsWith("Bearer ") && valid.has(auth.slice(7))) {
      try {
        await jwtVerify(auth.slice(7), jwks, { issuer: server.issuer.url });
        ok = true;
      } catch {
        ok = false;
      }
    }
    if (req.url === "/slow") await new Promise((done) => setTimeout(done, 150));
    requests.push({ at, ok, path: req.url });
    if (ok) send(res, 200, [{ n: requests.length }]);
    else send(res, 401, { error: "invalid_token" });
  } finally {
    inFlight -= 1;
  }
});
resource.listen(0, "127.0.0.1", () => {
  const { port } = resource.address();
  const started = { token_url: `${server.issuer.url}/token`, resource: `http://127.0.0.1:${port}`, refresh_token: refreshToken };
  process.stdout.write(JSON.stringify(started) + "\n");
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
