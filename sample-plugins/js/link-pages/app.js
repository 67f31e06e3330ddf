// A source for paginated REST lists in the GitHub style: each page answers a JSON array and links
// the next page with a `Link: <URL>; rel="next"` header. The first read starts at config `url`;
// the secret `token`, when set, goes out as `Authorization: Bearer <token>`.
//
// The cursor is the URL to read next. When a page is only partly read (a read takes at most
// `maxRecords`), or at the last page, the cursor is that page's URL with `#skip=N`, the number of
// its items already read: the fragment never reaches the server, and the next read skips those
// items, so nothing is read twice and items appended to the last page are picked up.

import { source, json, config, http, Internal } from '@plugboard/sdk';

/** Pages one read follows at most, so a run of empty pages cannot exhaust the time budget. */
const MAX_PAGES = 20;

/** The `rel="next"` target of a `Link` header, resolved against `base`. */
function nextLink(header, base) {
  if (!header) return undefined;
  for (const [, target, params] of header.matchAll(/<([^>]*)>([^,<]*)/g)) {
    const rel = /;\s*rel\s*=\s*"?([^";]*)"?/i.exec(params);
    if (rel && rel[1].toLowerCase().split(/\s+/).includes('next')) return resolve(target.trim(), base);
  }
  return undefined;
}

function resolve(target, base) {
  if (/^https?:\/\//i.test(target)) return target;
  const [, origin, path] = /^(https?:\/\/[^/?#]*)([^?#]*)/i.exec(base);
  if (target.startsWith('/')) return origin + target;
  return origin + path.replace(/[^/]*$/, '') + target;
}

/** A cursor `URL#skip=N` as `{url, skip}`. */
function parseCursor(cursor) {
  const match = /^(.*)#skip=(\d+)$/.exec(cursor);
  return match ? { url: match[1], skip: Number(match[2]) } : { url: cursor, skip: 0 };
}

export const reader = source(async (cursor, maxRecords) => {
  let { url, skip } = parseCursor(cursor ?? config.require('url'));
  const token = config.get('token');
  const headers = { accept: 'application/json', 'user-agent': 'plugboard-js-link-pages' };
  if (token) headers.authorization = `Bearer ${token}`;

  const records = [];
  for (let pages = 0; pages < MAX_PAGES; pages += 1) {
    const answer = (await http.fetch(url, { headers })).assertOk();
    const items = await answer.json();
    if (!Array.isArray(items)) throw new Internal(`GET ${url}: expected a JSON array, got ${typeof items}`);
    const room = maxRecords - records.length;
    const taken = items.slice(skip, skip + room);
    for (const item of taken) {
      const key = item !== null && typeof item === 'object' && item.id !== undefined ? String(item.id) : undefined;
      records.push(json.record(item, { key }));
    }
    const read = skip + taken.length;
    const next = nextLink(answer.headers.get('link'), url);
    if (read < items.length || next === undefined) return { records, nextCursor: `${url}#skip=${read}` };
    if (records.length >= maxRecords) return { records, nextCursor: next };
    url = next;
    skip = 0;
  }
  return { records, nextCursor: url };
});
