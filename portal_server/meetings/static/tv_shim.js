/* A minimal stand-in for the portal's focus engine (global TV) when the page is not inside the
   portal base: arrows move the focus, OK follows data-href or calls TV.actions[data-ok], Back goes
   to body[data-back]. ES5 only. */
(function () {
  if (window.TV) { return; }
  var TV = { actions: {}, onKey: null };
  var KEYS = { 37: 'left', 38: 'up', 39: 'right', 40: 'down', 13: 'ok', 8: 'back', 27: 'back', 461: 'back',
    10009: 'back', 640: 'back', 340: 'back', 403: 'red', 404: 'green', 405: 'yellow', 406: 'blue',
    275: 'red', 276: 'green', 277: 'yellow', 278: 'blue' };
  function items() { return document.querySelectorAll('.focusable'); }
  function current() { return document.querySelector('.focusable.focused'); }
  TV.focus = function (el) {
    var c = current();
    if (c) { c.className = c.className.replace(/\s*focused/g, ''); }
    if (el) { el.className += ' focused'; if (el.scrollIntoView) { el.scrollIntoView(false); } }
  };
  function move(dir) {
    var list = items(), c = current(), best = null, bestD = 1e9, i, r, cr, dx, dy, d;
    if (!c) { TV.focus(list[0]); return; }
    cr = c.getBoundingClientRect();
    for (i = 0; i < list.length; i++) {
      if (list[i] === c) { continue; }
      r = list[i].getBoundingClientRect();
      dx = (r.left + r.width / 2) - (cr.left + cr.width / 2);
      dy = (r.top + r.height / 2) - (cr.top + cr.height / 2);
      if ((dir === 'down' && dy <= 0) || (dir === 'up' && dy >= 0) || (dir === 'right' && dx <= 0) || (dir === 'left' && dx >= 0)) { continue; }
      d = (dir === 'up' || dir === 'down') ? Math.abs(dy) + 3 * Math.abs(dx) : Math.abs(dx) + 3 * Math.abs(dy);
      if (d < bestD) { bestD = d; best = list[i]; }
    }
    if (best) { TV.focus(best); }
  }
  TV.request = function (method, url, body, done) {
    var x = new XMLHttpRequest();
    x.open(method, url, true);
    x.setRequestHeader('Content-Type', 'application/json');
    x.onreadystatechange = function () {
      if (x.readyState !== 4) { return; }
      var data = null;
      try { data = JSON.parse(x.responseText); } catch (e) { data = null; }
      if (done) { done(x.status, data); }
    };
    x.send(body ? JSON.stringify(body) : null);
  };
  TV.status = function (text, bad) {
    var s = document.getElementById('status-line');
    if (s) { s.textContent = text || ''; s.className = bad ? 'bad' : ''; }
  };
  document.addEventListener('keydown', function (ev) {
    var key = KEYS[ev.keyCode], c = current();
    if (!key) { return; }
    ev.preventDefault();
    if (key === 'ok' && c) {
      if (c.getAttribute('data-href')) { window.location.href = c.getAttribute('data-href'); }
      else if (c.getAttribute('data-ok') && TV.actions[c.getAttribute('data-ok')]) { TV.actions[c.getAttribute('data-ok')](c); }
    } else if (key === 'back') {
      window.location.href = document.body.getAttribute('data-back') || '/tv/';
    } else if (key === 'left' || key === 'right' || key === 'up' || key === 'down') {
      move(key);
    } else if (TV.onKey) {
      TV.onKey(key);
    }
  });
  window.TV = TV;
  window.setTimeout(function () { if (!current()) { TV.focus(items()[0]); } }, 0);
})();
