// The phone pages' service worker: a page opened before opens again without a network (the last copy of it),
// with the console's styles and scripts. Only GETs of this site are touched; actions go by the outbox.
"use strict";
const CACHE = "juwei-phone-1";
const SHELL = ["/static/console.css", "/static/console.js", "/static/outbox.js"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

async function fromNetworkElseCache(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    // Only a page that really opened is kept (not a sign-in redirect or an error page).
    if (response.ok && !response.redirected) await cache.put(request, response.clone());
    return response;
  } catch (error) {
    const kept = await cache.match(request, { ignoreSearch: false });
    if (kept) return kept;
    throw error;
  }
}

async function fromCacheElseNetwork(request) {
  const kept = await caches.match(request);
  if (kept) {
    fetch(request).then((fresh) => fresh.ok && caches.open(CACHE).then((c) => c.put(request, fresh))).catch(() => {});
    return kept;
  }
  return fromNetworkElseCache(request);
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/static/")) {
    event.respondWith(fromCacheElseNetwork(request));
  } else if (request.mode === "navigate" && url.pathname.startsWith("/phone/")) {
    event.respondWith(fromNetworkElseCache(request));
  }
});

// Sign-out: what this phone kept of the person's pages goes with them.
self.addEventListener("message", (event) => {
  if (event.data === "forget") event.waitUntil(caches.delete(CACHE));
});
