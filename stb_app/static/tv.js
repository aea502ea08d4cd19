/* CommuniTV set-top-box portal: the remote-control engine shared by every TV page.
   ES5 only (old QtWebKit-era STB browsers): no let/const, arrow functions, classes,
   template literals, fetch or Promises.

   Focus: every .focusable can take focus; the focused one also gets "focused".
   OK on an element: data-ok="name" calls TV.actions[name](el); data-href navigates.
   Pages hook TV.onKey(key) for colour keys ('red','green','yellow','blue') and
   TV.onDigit(n) for digits; returning true from them means "handled". */
(function () {
  var KEYMAP = {37: 'left', 38: 'up', 39: 'right', 40: 'down', 3: 'left', 1: 'up', 4: 'right', 2: 'down',
    13: 'ok', 8: 'back', 27: 'back', 461: 'back', 10009: 'back', 640: 'back', 340: 'back',
    33: 'pageup', 34: 'pagedown', 372: 'pageup', 373: 'pagedown',
    403: 'red', 404: 'green', 405: 'yellow', 406: 'blue', 275: 'red', 276: 'green', 277: 'yellow', 278: 'blue',
    82: 'red', 71: 'green', 89: 'yellow', 66: 'blue'};  /* r g y b on a keyboard, for testing */
  var HOLD_MS = 120;           /* a held key repeats at most this often */
  var STACK_MAX = 20;
  var TV = window.TV = window.TV || {};
  TV.actions = TV.actions || {};
  var focused = null, lastKeyAt = 0, lastCode = -1, modal = null;

  /* ---- small DOM helpers ---- */
  function hasClass(el, c) { return (' ' + el.className + ' ').indexOf(' ' + c + ' ') >= 0; }
  function addClass(el, c) { if (!hasClass(el, c)) { el.className = (el.className + ' ' + c).replace(/^\s+/, ''); } }
  function removeClass(el, c) { el.className = (' ' + el.className + ' ').replace(' ' + c + ' ', ' ').replace(/^\s+|\s+$/g, ''); }
  function byId(id) { return document.getElementById(id); }
  function setText(el, text) { if (el) { el.innerHTML = ''; el.appendChild(document.createTextNode(text)); } }
  TV.addClass = addClass;
  TV.removeClass = removeClass;
  TV.hasClass = hasClass;
  TV.setText = setText;

  function visible(el) {
    if (!(el.offsetWidth > 0 || el.offsetHeight > 0)) { return false; }
    for (var p = el; p && p !== document.body; p = p.parentNode) {
      if (p.style && p.style.display === 'none') { return false; }
    }
    return true;
  }

  function focusables() {
    var scope = modal || document;
    var all = scope.querySelectorAll('.focusable'), out = [];
    for (var i = 0; i < all.length; i++) { if (visible(all[i])) { out.push(all[i]); } }
    return out;
  }
  TV.focusables = focusables;

  /* ---- cookies and the per-window navigation stack (window.name survives page loads) ---- */
  TV.cookie = function (name) {
    var parts = document.cookie.split(/;\s*/);
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].indexOf(name + '=') === 0) { return decodeURIComponent(parts[i].substring(name.length + 1)); }
    }
    return null;
  };
  TV.setCookie = function (name, value) {
    document.cookie = name + '=' + encodeURIComponent(value) + '; path=/; max-age=31536000';
  };

  function readStack() {
    var n = window.name || '';
    if (n.indexOf('ctv:') !== 0) { return []; }
    try { return JSON.parse(n.substring(4)) || []; } catch (e) { return []; }
  }
  function writeStack(s) {
    while (s.length > STACK_MAX) { s.shift(); }
    window.name = 'ctv:' + JSON.stringify(s);
  }
  function here() { return window.location.pathname + window.location.search; }
  function focusIndex() {
    var list = focusables();
    for (var i = 0; i < list.length; i++) { if (list[i] === focused) { return i; } }
    return 0;
  }
  /* What names an element across page loads (the index alone moves when personal parts load late). */
  function focusKey(el) {
    if (!el) { return ''; }
    return el.id || el.getAttribute('data-section') || el.getAttribute('data-href') || el.getAttribute('data-ok') || '';
  }
  function findByKey(list, key) {
    if (!key) { return null; }
    for (var i = 0; i < list.length; i++) { if (focusKey(list[i]) === key) { return list[i]; } }
    return null;
  }

  /* ---- focus and spatial movement ---- */
  TV.focused = function () { return focused; };
  TV.focus = function (el) {
    if (!el) { return; }
    if (focused) { removeClass(focused, 'focused'); }
    focused = el;
    addClass(el, 'focused');
    var box = byId('scroller');
    if (box && box.contains && box.contains(el) && el.offsetParent) {
      var top = el.offsetTop - box.offsetTop;
      if (top < box.scrollTop) { box.scrollTop = top; }
      else if (top + el.offsetHeight > box.scrollTop + box.clientHeight) { box.scrollTop = top + el.offsetHeight - box.clientHeight; }
    }
    if (TV.onFocus) { TV.onFocus(el); }
  };

  function center(el) {
    var r = el.getBoundingClientRect();
    return {x: r.left + r.width / 2, y: r.top + r.height / 2, r: r};
  }

  function move(dir) {
    var list = focusables();
    if (!list.length) { return false; }
    if (!focused || !visible(focused)) { TV.focus(list[0]); return true; }
    var c = center(focused), best = null, bestScore = 1e9;
    for (var i = 0; i < list.length; i++) {
      var el = list[i];
      if (el === focused) { continue; }
      var p = center(el), dx = p.x - c.x, dy = p.y - c.y, main, side, overlap;
      if (dir === 'left') { main = c.r.left - p.r.right; side = dy; overlap = p.r.bottom > c.r.top && p.r.top < c.r.bottom; }
      else if (dir === 'right') { main = p.r.left - c.r.right; side = dy; overlap = p.r.bottom > c.r.top && p.r.top < c.r.bottom; }
      else if (dir === 'up') { main = c.r.top - p.r.bottom; side = dx; overlap = p.r.right > c.r.left && p.r.left < c.r.right; }
      else { main = p.r.top - c.r.bottom; side = dx; overlap = p.r.right > c.r.left && p.r.left < c.r.right; }
      if (main < -4) { continue; }
      if ((dir === 'left' && dx >= 0) || (dir === 'right' && dx <= 0) || (dir === 'up' && dy >= 0) || (dir === 'down' && dy <= 0)) { continue; }
      var score = Math.max(main, 0) + Math.abs(side) * (overlap ? 0.5 : 2.5);
      if (score < bestScore) { bestScore = score; best = el; }
    }
    if (best) { TV.focus(best); return true; }
    return false;
  }
  TV.move = move;

  function scrollText(sign) {
    var box = byId('scroller');
    if (!box) { return false; }
    var before = box.scrollTop;
    box.scrollTop = box.scrollTop + sign * (box.clientHeight - 60);
    return box.scrollTop !== before;
  }

  /* ---- navigation: check the server answers before leaving a working page ---- */
  TV.go = function (url, push) {
    if (push !== false) {
      var s = readStack();
      s.push({u: here(), f: focusIndex(), k: focusKey(focused), p: TV.pageNo || 0});
      writeStack(s);
    }
    TV.status('');
    TV.request('GET', url, null, function (status) {
      if (status === 0) {
        if (push !== false) { var s2 = readStack(); s2.pop(); writeStack(s2); }
        TV.offline(true);
        return;
      }
      window.location.href = url;
    }, true);
  };

  TV.back = function () {
    if (TV.onBack && TV.onBack() === true) { return; }
    var s = readStack();
    var prev = s.pop();
    if (prev) {
      prev.restore = 1;
      s.push(prev);
      writeStack(s);
      TV.go(prev.u, false);
      return;
    }
    var b = document.body.getAttribute('data-back');
    if (b === 'exit') { TV.confirmExit(); return; }
    if (b) { TV.go(b, false); } else { window.history.back(); }
  };

  TV.home = function () {
    writeStack([]);
    TV.go(document.body.getAttribute('data-home') || '/tv/', false);
  };

  function activate(el) {
    if (!el) { return; }
    var name = el.getAttribute('data-ok');
    if (name && TV.actions[name]) { TV.actions[name](el); return; }
    var href = el.getAttribute('data-href');
    if (href) { TV.go(href); }
  }
  TV.activate = activate;

  /* ---- feedback on screen ---- */
  TV.status = function (text, bad) {
    var s = byId('status-line');
    if (s) { setText(s, text); s.className = bad ? 'bad' : ''; }
  };
  TV.offline = function (on) {
    var b = byId('offline');
    if (b) { b.style.display = on ? 'block' : 'none'; }
    TV.isOffline = !!on;
  };

  /* ---- time: the server's clock and the city's zone, whatever the box's own clock and zone ----
     Every answer's Date header tells how far the box's clock is off (to the second, which is what a
     clock showing minutes needs); the page says the city's UTC offset (data-tz-offset, minutes). */
  var skewMs = 0, skewKnown = false;
  function learnTime(xhr) {
    var h = null;
    try { h = xhr.getResponseHeader('Date'); } catch (e) { h = null; }
    var t = h ? Date.parse(h) : NaN;
    if (isNaN(t)) { return; }
    var first = !skewKnown;
    skewMs = t + 500 - new Date().getTime();   /* the header drops the milliseconds: take the middle */
    skewKnown = true;
    if (first) { tick(); }
  }
  /* The server's time now (epoch ms). */
  TV.now = function () { return new Date().getTime() + skewMs; };
  /* A Date whose getUTC* fields read the city's wall clock at epoch ms (default: now). */
  TV.cityDate = function (ms) {
    var off = parseInt(document.body.getAttribute('data-tz-offset') || '480', 10);
    if (isNaN(off)) { off = 480; }
    return new Date((ms === undefined ? TV.now() : ms) + off * 60000);
  };
  /* "YYYY-MM-DD" of today in the city. */
  TV.today = function () {
    var d = TV.cityDate();
    return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate());
  };

  /* JSON request as this box; done(status, body). status 0 = no answer. Writes carry the box's
     token in X-Terminal-Token (the server refuses a write carried by the cookie alone from
     another site; old STB browsers ignore SameSite). The token is read once per page from
     /tv/api/token, which only our own pages can read. */
  TV.token = TV.token || null;
  TV.request = function (method, url, body, done, raw) {
    if (method !== 'GET' && !TV.token) {
      send('GET', '/tv/api/token', null, function (status, data) {
        if (status === 200 && data && data.token) { TV.token = data.token; }
        send(method, url, body, done, raw);
      }, false);
      return;
    }
    send(method, url, body, done, raw);
  };
  function send(method, url, body, done, raw) {
    var xhr = new XMLHttpRequest(), finished = false;
    xhr.open(method, url, true);
    if (!raw) { xhr.setRequestHeader('Content-Type', 'application/json'); }
    if (method !== 'GET' && TV.token) { xhr.setRequestHeader('X-Terminal-Token', TV.token); }
    xhr.timeout = 15000;
    function finish(status) {
      if (finished) { return; }
      finished = true;
      if (status > 0) { learnTime(xhr); }
      var data = null;
      if (!raw) { try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; } }
      if (status === 0) { TV.offline(true); } else if (TV.isOffline) { TV.offline(false); }
      done(status, data);
    }
    xhr.onreadystatechange = function () { if (xhr.readyState === 4) { finish(xhr.status); } };
    xhr.ontimeout = function () { finish(0); };
    xhr.send(body ? JSON.stringify(body) : null);
  }

  /* The same request retried (same body, so the same idempotency key) on network trouble. */
  TV.requestWithRetry = function (method, url, body, done, tries) {
    tries = tries || 0;
    TV.request(method, url, body, function (status, data) {
      if ((status === 0 || status >= 500) && tries < 4) {
        TV.status('网络不稳定，正在重试……');
        setTimeout(function () { TV.requestWithRetry(method, url, body, done, tries + 1); }, 1000 * (tries + 1));
        return;
      }
      done(status, data);
    });
  };

  TV.errorText = function (status, data) {
    if (data && data.error && data.error.message) { return data.error.message; }
    if (status === 0) { return '网络连接异常，请稍后再试'; }
    return '操作失败（' + status + '），请稍后再试';
  };

  /* ---- modal dialogs (exit confirmation, alerts): focus stays inside ---- */
  TV.openModal = function (el, focusEl) {
    TV.saved = focused;
    modal = el;
    el.style.display = 'block';
    TV.focus(focusEl || focusables()[0]);
  };
  TV.closeModal = function () {
    if (!modal) { return; }
    modal.style.display = 'none';
    modal = null;
    if (TV.saved) { TV.focus(TV.saved); }
  };

  TV.confirmExit = function () {
    var d = byId('exit-dialog');
    if (!d) { window.history.back(); return; }
    TV.openModal(d, byId('exit-stay'));
  };
  TV.actions.stay = function () { TV.closeModal(); };
  TV.actions.exit = function () {
    TV.closeModal();
    writeStack([]);
    if (window.ctvBridge && window.ctvBridge.exitPortal) { window.ctvBridge.exitPortal(); return; }
    if (window.history.length > 1) { window.history.back(); } else { window.location.href = 'about:blank'; }
  };

  /* ---- large-text "simple mode" (on unless the household turned it off) ---- */
  TV.simple = function () { return TV.cookie('ctv_simple') !== '0'; };
  TV.toggleSimple = function () {
    var on = !TV.simple();
    TV.setCookie('ctv_simple', on ? '1' : '0');
    if (on) { addClass(document.body, 'simple'); } else { removeClass(document.body, 'simple'); }
    TV.status(on ? '已切换为大字模式' : '已切换为标准模式');
    if (TV.onLayout) { TV.onLayout(); }
  };

  /* ---- read aloud: the server makes the speech file (poll while 202), then it plays ---- */
  TV.actions.speak = function (el) {
    var ref = el.getAttribute('data-speech'), tries = 0;
    TV.status('正在准备朗读……');
    function answer(status, data) {
      if (status === 200 && data && data.url) {
        var audio = byId('speech-audio');
        audio.src = data.url;
        try { audio.play(); } catch (e) { /* autoplay refused */ }
        TV.status('正在朗读');
        return;
      }
      if ((status === 202 || (status === 200 && data && data.status === 'pending')) && tries < 30) {
        tries = tries + 1;
        setTimeout(function () { TV.request('GET', '/api/v1/speech?ref=' + encodeURIComponent(ref), null, answer); }, 1000);
        return;
      }
      TV.status(TV.errorText(status, data), true);
    }
    TV.request('POST', '/api/v1/speech', {ref: ref}, answer);
  };

  /* ---- emergency alerts: full screen, OK acknowledges, cannot be dismissed otherwise ---- */
  var shownAlert = null;
  function ackedIds() { return (TV.cookie('ctv_acked') || '').split('.'); }
  TV.showAlert = function (a) {
    var box = byId('alert');
    if (!box || !a) { return; }
    shownAlert = a;
    box.className = 'sev-' + (a.severity || 'Unknown');
    setText(byId('alert-event'), (a.event || '紧急通知') + (a.severity ? '　' + ({Extreme: '特别严重', Severe: '严重', Moderate: '较重', Minor: '一般'}[a.severity] || '') : ''));
    setText(byId('alert-headline'), a.headline || '');
    setText(byId('alert-description'), a.description || '');
    setText(byId('alert-instruction'), a.instruction || '');
    var audio = byId('alert-audio');
    if (audio && a.audio_url && audio.getAttribute('data-src') !== a.audio_url) {
      audio.setAttribute('data-src', a.audio_url);
      audio.src = a.audio_url;
      try { audio.play(); } catch (e) { /* autoplay refused: the text is on screen */ }
    }
    if (modal !== box) { TV.openModal(box, byId('alert-ok')); }
  };
  TV.clearAlert = function () {
    var box = byId('alert');
    shownAlert = null;
    var audio = byId('alert-audio');
    if (audio && audio.pause) { audio.pause(); audio.removeAttribute('data-src'); }
    if (box && modal === box) { TV.closeModal(); }
  };
  TV.actions.ackAlert = function () {
    var a = shownAlert;
    if (!a) { TV.clearAlert(); return; }
    var ids = ackedIds();
    ids.push(String(a.id));
    TV.setCookie('ctv_acked', ids.slice(-10).join('.'));
    TV.clearAlert();
    TV.request('POST', '/api/v1/alerts/' + a.id + '/ack', {}, function () { pollAlerts(); });
  };
  function applyAlerts(list) {
    var acked = ackedIds(), next = null;
    for (var i = 0; i < list.length; i++) {
      var known = false;
      for (var j = 0; j < acked.length; j++) { if (acked[j] === String(list[i].id)) { known = true; } }
      if (!known) { next = list[i]; break; }
    }
    var banner = byId('alert-banner');
    if (banner) {
      banner.style.display = list.length ? 'block' : 'none';
      if (list.length) { setText(banner, '⚠ ' + list[0].headline); }
    }
    if (next) { TV.showAlert(next); } else if (shownAlert) { TV.clearAlert(); }
  }
  var activeAlerts = [], pushedAt = 0;
  function pollAlerts() {
    var url = document.body.getAttribute('data-alerts');
    if (!url) { return; }
    var sentAt = new Date().getTime();
    TV.request('GET', url + (url.indexOf('?') < 0 ? '?' : '&') + 't=' + sentAt, null, function (status, data) {
      /* an answer asked for before the last pushed change may predate it: the next poll decides */
      if (status === 200 && data && data.alerts && sentAt > pushedAt) { activeAlerts = data.alerts; applyAlerts(data.alerts); }
    });
  }
  TV.pollAlerts = pollAlerts;

  /* ---- alerts pushed by the server (stb_app/push.py): a connection that nginx holds ----
     A WebSocket where the browser has one that works; else (none, or an old draft one that never
     opens) an XHR long-poll on the same URL. Refused or dropped: the page polls alert.json every
     5 s as before and says nothing, and reconnects with exponential backoff and full jitter (a
     city-wide power cut must not become a reconnect storm). While pushed, the poll slows to once
     a minute. */
  var push = {ws: null, up: false, tries: 0, timer: null, lastPoll: 0, wsFails: 0, lpModified: null, lpEtag: null};
  var WS_FAILS_BEFORE_LONGPOLL = 3;
  var POLL_MS = 5000, POLL_PUSHED_MS = 60000, BACKOFF_BASE_MS = 1000, BACKOFF_MAX_MS = 60000;
  function onPushed(msg) {
    if (msg && msg.type === 'notice') { onNotice(msg); return; }
    if (!msg || msg.type !== 'alert') { return; }
    pushedAt = new Date().getTime();
    var list = [], i, id = msg.op === 'show' && msg.alert ? msg.alert.id : msg.id;
    for (i = 0; i < activeAlerts.length; i++) { if (activeAlerts[i].id !== id) { list.push(activeAlerts[i]); } }
    if (msg.op === 'show' && msg.alert) { list.unshift(msg.alert); }
    activeAlerts = list;
    applyAlerts(list);
    /* then the file, 1–4 s later (jittered, so a city's boxes do not all ask at once) */
    setTimeout(pollAlerts, 1000 + Math.floor(Math.random() * 3000));
  }
  TV.onPushed = onPushed;

  /* ---- notices pushed by the server (stb_app/push.py): content published or withdrawn, a meeting
     live or over. The notice line (#notices, on the home screen; else the status line) says it at
     once; the parts of the page that list items (data-refresh, optionally data-section) are fetched
     again 0.3–2.3 s later and swapped in, keeping the focus where it was. Jittered: after a city-wide
     item every page of the city asks for its page again, and only the first few of a village may
     find the file gone and reach the app, which renders it once for the rest. */
  var NOTICE_MAX = 3, refreshTimer = null;
  function noticeKey(msg) { return msg.kind + ':' + msg.id; }
  TV.showNotice = function (text, url, key) {
    var box = byId('notices');
    if (!box) { TV.status(text); return; }
    TV.dropNotice(key);
    var kids = box.childNodes, i;
    for (i = kids.length - 1; i >= 0; i--) {   /* the welcome line gives way */
      if (kids[i].nodeType !== 1 || !hasClass(kids[i], 'focusable')) { box.removeChild(kids[i]); }
    }
    var a = document.createElement('a');
    a.className = 'notice focusable';
    a.setAttribute('data-notice', key);
    if (url) { a.setAttribute('data-href', url); }
    setText(a, text);
    a.onclick = function () { TV.focus(a); activate(a); return false; };
    box.insertBefore(a, box.firstChild);
    while (box.childNodes.length > NOTICE_MAX) {
      var last = box.lastChild;
      if (last === focused) { TV.focus(a); }
      box.removeChild(last);
    }
  };
  TV.dropNotice = function (key) {
    var box = byId('notices');
    if (!box) { return; }
    var kids = box.childNodes;
    for (var i = kids.length - 1; i >= 0; i--) {
      if (kids[i].nodeType === 1 && kids[i].getAttribute('data-notice') === key) {
        if (kids[i] === focused) { focused = null; }
        box.removeChild(kids[i]);
      }
    }
    if (!focused) { TV.focus(focusables()[0]); }
  };
  function swapParts(html) {
    var fresh = document.createElement('div'), parts = document.querySelectorAll('[data-refresh]'), i, j;
    fresh.innerHTML = html;
    for (i = 0; i < parts.length; i++) {
      var part = parts[i], src = part.id ? fresh.querySelector('#' + part.id) : null;
      if (!src) { continue; }
      var hadFocus = focused && part.contains(focused), key = focusKey(focused), idx = 0;
      if (hadFocus) {
        var old = part.querySelectorAll('.focusable');
        for (j = 0; j < old.length; j++) { if (old[j] === focused) { idx = j; } }
      }
      part.innerHTML = src.innerHTML;
      var now = part.querySelectorAll('.focusable');
      for (j = 0; j < now.length; j++) {
        now[j].onclick = (function (el) { return function () { TV.focus(el); activate(el); return false; }; })(now[j]);
      }
      if (hadFocus) {
        focused = null;
        TV.focus(findByKey(now, key) || now[Math.min(idx, now.length - 1)] || focusables()[0]);
      }
    }
    if (TV.onRefreshed) { TV.onRefreshed(); }
  }
  TV.refreshParts = function (section) {
    var parts = document.querySelectorAll('[data-refresh]'), want = false;
    for (var i = 0; i < parts.length; i++) {
      var s = parts[i].getAttribute('data-section');
      if (!section || !s || s === section) { want = true; }
    }
    if (!want) { return; }
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(function () {
      var xhr = new XMLHttpRequest();
      xhr.open('GET', window.location.pathname + '?t=' + new Date().getTime(), true);
      xhr.onreadystatechange = function () {
        if (xhr.readyState === 4 && xhr.status === 200) { swapParts(xhr.responseText); }
      };
      xhr.send(null);
    }, 300 + Math.floor(Math.random() * 2000));
  };
  function onNotice(msg) {
    var key = noticeKey(msg), path = window.location.pathname;
    if (msg.op === 'published' || msg.op === 'live') {
      if (msg.title) {
        TV.showNotice(msg.kind === 'meeting' ? msg.title + ' 正在直播' : '新发布：' + msg.title, msg.url, key);
      }
    } else {
      TV.dropNotice(key);
      if (msg.kind === 'content' && path.indexOf('/i-' + msg.id + '.html') >= 0) {
        TV.status('这条内容已撤下');
      }
    }
    if (msg.kind === 'content') { TV.refreshParts(msg.op === 'published' ? msg.section : null); }
  }
  function pushUrl(path) {
    var l = window.location;
    return (l.protocol === 'https:' ? 'wss://' : 'ws://') + l.host + path;
  }
  function pushRetry() {
    push.up = false;
    push.ws = null;
    var cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * Math.pow(2, push.tries));
    push.tries += 1;
    clearTimeout(push.timer);
    push.timer = setTimeout(pushConnect, Math.floor(Math.random() * cap));
  }
  /* nchan's long-poll: each answer is one message; Last-Modified/Etag say where to resume. */
  function longPoll() {
    var path = document.body.getAttribute('data-push'), xhr = new XMLHttpRequest(), done = false;
    xhr.open('GET', path, true);
    if (push.lpModified) { xhr.setRequestHeader('If-Modified-Since', push.lpModified); }
    if (push.lpEtag) { xhr.setRequestHeader('If-None-Match', push.lpEtag); }
    xhr.onreadystatechange = function () {
      if (xhr.readyState !== 4 || done) { return; }
      done = true;
      var st = xhr.status, msg = null;
      if (st === 200) {
        push.lpModified = xhr.getResponseHeader('Last-Modified');
        push.lpEtag = xhr.getResponseHeader('Etag');
        try { msg = JSON.parse(xhr.responseText); } catch (e) { msg = null; }
      }
      if (st === 200 || st === 304 || st === 408) {   /* 408: nothing for a while, ask again */
        push.up = true;
        push.tries = 0;
        if (msg) { onPushed(msg); }
        longPoll();
      } else {
        pushRetry();
      }
    };
    xhr.send(null);
  }
  function pushConnect() {
    var path = document.body.getAttribute('data-push');
    if (!path) { return; }
    if (!window.WebSocket || push.wsFails >= WS_FAILS_BEFORE_LONGPOLL) { longPoll(); return; }
    var ws, opened = false;
    try { ws = new window.WebSocket(pushUrl(path)); } catch (e) { push.wsFails += 1; pushRetry(); return; }
    push.ws = ws;
    ws.onopen = function () {
      opened = true;
      push.up = true;
      push.tries = 0;
      push.wsFails = 0;
      pollAlerts();   /* anything that changed while we were away */
    };
    ws.onmessage = function (ev) {
      var msg = null;
      try { msg = JSON.parse(ev.data); } catch (e) { msg = null; }
      onPushed(msg);
    };
    ws.onerror = function () { /* onclose follows */ };
    ws.onclose = function () {
      if (!opened) { push.wsFails += 1; }
      if (push.ws === ws) { pushRetry(); }
    };
  }
  function alertTimer() {
    var now = new Date().getTime();
    if (now - push.lastPoll >= (push.up ? POLL_PUSHED_MS : POLL_MS) - 250) {
      push.lastPoll = now;
      pollAlerts();
    }
  }
  TV.pushConnected = function () { return push.up; };

  /* ---- keys ---- */
  document.onkeydown = function (ev) {
    ev = ev || window.event;
    var code = ev.keyCode || ev.which;
    var now = new Date().getTime();
    var key = KEYMAP[code];
    if (code >= 96 && code <= 105) { code = code - 48; }
    if (code >= 48 && code <= 57) { key = 'digit'; }
    if (!key) { return true; }
    if (code === lastCode && now - lastKeyAt < HOLD_MS) { return false; }
    lastKeyAt = now;
    lastCode = code;
    if (ev.preventDefault) { ev.preventDefault(); }
    if (modal && modal.id === 'alert') {   /* an alert takes every key but OK */
      if (key === 'ok') { activate(focused); }
      return false;
    }
    if (key === 'ok') { activate(focused); }
    else if (key === 'back') { if (modal) { TV.closeModal(); } else { TV.back(); } }
    else if (key === 'digit') { if (TV.onDigit) { TV.onDigit(code - 48); } }
    else if (key === 'left' || key === 'right') { move(key); }
    else if (key === 'up' || key === 'down') {
      if (!move(key)) {
        if (TV.onEdge && TV.onEdge(key) === true) { return false; }
        scrollText(key === 'down' ? 1 : -1);
      }
    }
    else if (key === 'pageup' || key === 'pagedown') {
      if (!(TV.onPage && TV.onPage(key === 'pagedown' ? 1 : -1) === true)) { scrollText(key === 'pagedown' ? 1 : -1); }
    }
    else if (!(TV.onKey && TV.onKey(key) === true)) {
      if (key === 'blue') { TV.toggleSimple(); }
      else if (key === 'red' && document.body.getAttribute('data-back') !== 'exit') { TV.home(); }
    }
    return false;
  };

  /* ---- clock ---- */
  function pad(n) { return n < 10 ? '0' + n : String(n); }
  function tick() {
    var el = byId('clock');
    if (!el) { return; }
    var d = TV.cityDate(), w = '日一二三四五六'.charAt(d.getUTCDay());
    setText(el, (d.getUTCMonth() + 1) + '月' + d.getUTCDate() + '日 星期' + w + ' ' + pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()));
  }

  /* The scrolling box (#scroller) ends above the key hints, whatever came before it on the page;
     with data-fit="N" it also grows to fill the room, leaving N more pixels free. */
  function fitScroller() {
    var sc = byId('scroller'), hints = document.querySelectorAll('.safe .hint');
    if (!sc) { return; }
    var fit = sc.getAttribute('data-fit');
    var bottom = (hints.length ? hints[0].getBoundingClientRect().top : 684) - 10 - (fit ? parseInt(fit, 10) || 0 : 0);
    var room = Math.floor(bottom - sc.getBoundingClientRect().top);
    if (room > 80 && (fit !== null || sc.offsetHeight > room)) { sc.style.height = room + 'px'; }
  }

  /* One page view for the leaders' figures: nginx logs it and answers 204 (no Python). */
  TV.beacon = function () {
    try {
      var img = new Image();
      img.src = '/tv/beacon?p=' + encodeURIComponent(window.location.pathname) + '&t=' + new Date().getTime();
      TV.lastBeacon = img;
    } catch (e) { /* figures are never worth a broken page */ }
  };

  TV.start = function () {
    if (TV.simple()) { addClass(document.body, 'simple'); }
    fitScroller();
    if (TV.onLayout) { TV.onLayout(); }
    var list = focusables(), first = null, s = readStack(), top = s.length ? s[s.length - 1] : null;
    if (top && top.restore && top.u === here()) {
      s.pop();
      writeStack(s);
      if (TV.onRestore) { TV.onRestore(top.p || 0); }
      list = focusables();
      first = findByKey(list, top.k) || list[top.f] || null;
    }
    if (!first) {
      for (var i = 0; i < list.length; i++) {
        if (list[i].getAttribute('data-autofocus') !== null) { first = list[i]; break; }
      }
    }
    TV.focus(first || list[0]);
    var all = document.querySelectorAll('.focusable');
    for (var j = 0; j < all.length; j++) {
      all[j].onclick = (function (el) { return function (e) { TV.focus(el); activate(el); if (e && e.preventDefault) { e.preventDefault(); } return false; }; })(all[j]);
    }
    tick();
    setInterval(tick, 15000);
    TV.beacon();
    push.lastPoll = new Date().getTime();
    pollAlerts();
    setInterval(alertTimer, 1000);
    pushConnect();
  };
})();
