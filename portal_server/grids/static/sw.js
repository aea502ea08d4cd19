/* Service worker of the grid worker's app: the shell is served from the cache when offline.
   API calls are not cached here: the page keeps its own offline queue (localStorage). */
var CACHE = "ctv-grid-v1";
var SHELL = ["/m/grid/", "/m/grid/app.js", "/m/grid/app.css", "/m/grid/manifest.webmanifest", "/m/grid/icon.svg"];

self.addEventListener("install", function (e) {
  e.waitUntil(caches.open(CACHE).then(function (c) { return c.addAll(SHELL); }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (e) {
  e.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k !== CACHE; }).map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener("fetch", function (e) {
  var url = new URL(e.request.url);
  if (e.request.method !== "GET" || url.pathname.indexOf("/m/grid/") !== 0) return;
  // Network first (fresh app after an update), the cache when there is no signal.
  e.respondWith(fetch(e.request).then(function (resp) {
    var copy = resp.clone();
    caches.open(CACHE).then(function (c) { c.put(e.request, copy); });
    return resp;
  }).catch(function () {
    return caches.match(e.request, {ignoreSearch: true});
  }));
});
