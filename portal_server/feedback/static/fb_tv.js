/* Feedback TV pages: remote-control focus, digit keys and XHR (ES5 only: old STB browsers). */
(function () {
  var KEYMAP = {37: 'left', 38: 'up', 39: 'right', 40: 'down', 3: 'left', 1: 'up', 4: 'right', 2: 'down',
    13: 'ok', 8: 'back', 27: 'back', 461: 'back', 10009: 'back', 640: 'back', 340: 'back',
    33: 'pageup', 34: 'pagedown', 372: 'pageup', 373: 'pagedown',
    403: 'red', 404: 'green', 405: 'yellow', 406: 'blue', 275: 'red', 276: 'green', 277: 'yellow', 278: 'blue'};
  var FB = window.FB = window.FB || {};
  FB.actions = FB.actions || {};
  var focused = null;
  var lastKeyAt = 0, lastCode = -1;

  function hasClass(el, c) { return (' ' + el.className + ' ').indexOf(' ' + c + ' ') >= 0; }
  function addClass(el, c) { if (!hasClass(el, c)) { el.className = (el.className + ' ' + c).replace(/^\s+/, ''); } }
  function removeClass(el, c) { el.className = (' ' + el.className + ' ').replace(' ' + c + ' ', ' ').replace(/^\s+|\s+$/g, ''); }

  function focusables() {
    var all = document.querySelectorAll('.focusable');
    var out = [];
    for (var i = 0; i < all.length; i++) {
      if (all[i].offsetWidth > 0 || all[i].offsetHeight > 0) { out.push(all[i]); }
    }
    return out;
  }

  FB.focus = function (el) {
    if (!el) { return; }
    if (focused) { removeClass(focused, 'focused'); }
    focused = el;
    addClass(el, 'focused');
    if (el.scrollIntoView) { el.scrollIntoView(false); }
  };

  function center(el) {
    var r = el.getBoundingClientRect();
    return {x: r.left + r.width / 2, y: r.top + r.height / 2};
  }

  function move(dir) {
    var list = focusables();
    if (!focused) { FB.focus(list[0]); return; }
    var c = center(focused), best = null, bestScore = 1e9;
    for (var i = 0; i < list.length; i++) {
      var el = list[i];
      if (el === focused) { continue; }
      var p = center(el), dx = p.x - c.x, dy = p.y - c.y, main, side;
      if (dir === 'left') { main = -dx; side = dy; }
      else if (dir === 'right') { main = dx; side = dy; }
      else if (dir === 'up') { main = -dy; side = dx; }
      else { main = dy; side = dx; }
      if (main <= 2) { continue; }
      var score = main + Math.abs(side) * 2;
      if (score < bestScore) { bestScore = score; best = el; }
    }
    if (best) { FB.focus(best); }
  }

  function activate(el) {
    if (!el) { return; }
    var name = el.getAttribute('data-ok');
    if (name && FB.actions[name]) { FB.actions[name](el); return; }
    var href = el.getAttribute('data-href') || el.getAttribute('href');
    if (href) { window.location.href = href; }
  }

  FB.back = function () {
    var b = document.body.getAttribute('data-back');
    if (b) { window.location.href = b; } else { window.history.back(); }
  };

  FB.status = function (text) {
    var s = document.getElementById('status-line');
    if (s) { s.innerHTML = ''; s.appendChild(document.createTextNode(text)); }
  };

  /* JSON request with the box's cookie; calls done(status, body). */
  FB.request = function (method, url, body, done) {
    var xhr = new XMLHttpRequest();
    xhr.open(method, url, true);
    xhr.setRequestHeader('Content-Type', 'application/json');
    xhr.timeout = 15000;
    xhr.onreadystatechange = function () {
      if (xhr.readyState !== 4) { return; }
      var data = null;
      try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
      done(xhr.status, data);
    };
    xhr.send(body ? JSON.stringify(body) : null);
  };

  /* The same request retried (same body, so the same idempotency key) on network trouble. */
  FB.requestWithRetry = function (method, url, body, done, tries) {
    tries = tries || 0;
    FB.request(method, url, body, function (status, data) {
      if ((status === 0 || status >= 500) && tries < 4) {
        FB.status('网络不稳定，正在重试……');
        setTimeout(function () { FB.requestWithRetry(method, url, body, done, tries + 1); }, 1000 * (tries + 1));
        return;
      }
      done(status, data);
    });
  };

  document.onkeydown = function (ev) {
    ev = ev || window.event;
    var code = ev.keyCode || ev.which;
    var now = new Date().getTime();
    var key = KEYMAP[code];
    if (code >= 48 && code <= 57) { key = 'digit'; }
    if (code >= 96 && code <= 105) { key = 'digit'; code = code - 48; }
    if (!key) { return true; }
    if (code === lastCode && now - lastKeyAt < 100) { return false; }  /* throttle held keys */
    lastKeyAt = now;
    lastCode = code;
    if (key === 'ok') { activate(focused); }
    else if (key === 'back') { FB.back(); }
    else if (key === 'digit') { if (FB.onDigit) { FB.onDigit(code - 48); } }
    else if (key === 'left' || key === 'right' || key === 'up' || key === 'down') { move(key); }
    else if (FB.onKey) { FB.onKey(key); }
    if (ev.preventDefault) { ev.preventDefault(); }
    return false;
  };

  FB.start = function () {
    var list = focusables(), first = null;
    for (var i = 0; i < list.length; i++) {
      if (list[i].getAttribute('data-autofocus') !== null) { first = list[i]; break; }
    }
    FB.focus(first || list[0]);
    for (var j = 0; j < list.length; j++) {
      list[j].onclick = (function (el) { return function (e) { FB.focus(el); activate(el); if (e && e.preventDefault) { e.preventDefault(); } return false; }; })(list[j]);
    }
  };
})();
