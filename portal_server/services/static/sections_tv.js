/* TV pages of the 下沉服务 / 养老助老 / 社区管理 / 平安社区 / 社区党建 sections:
   remote-control focus, Back, colour keys, XHR. ES5 only (old STB browsers). */
(function () {
  var KEYMAP = {37: 'left', 38: 'up', 39: 'right', 40: 'down', 3: 'left', 1: 'up', 4: 'right', 2: 'down',
    13: 'ok', 8: 'back', 27: 'back', 461: 'back', 10009: 'back', 640: 'back', 340: 'back',
    33: 'pageup', 34: 'pagedown', 372: 'pageup', 373: 'pagedown',
    403: 'red', 404: 'green', 405: 'yellow', 406: 'blue', 275: 'red', 276: 'green', 277: 'yellow', 278: 'blue'};
  var S = window.SX = window.SX || {};
  S.actions = S.actions || {};
  var focused = null, lastKeyAt = 0, lastCode = -1;

  function hasClass(el, c) { return (' ' + el.className + ' ').indexOf(' ' + c + ' ') >= 0; }
  function addClass(el, c) { if (!hasClass(el, c)) { el.className = (el.className + ' ' + c).replace(/^\s+/, ''); } }
  function removeClass(el, c) { el.className = (' ' + el.className + ' ').replace(' ' + c + ' ', ' ').replace(/^\s+|\s+$/g, ''); }
  S.addClass = addClass;
  S.removeClass = removeClass;

  function focusables() {
    var all = document.querySelectorAll('.focusable'), out = [];
    for (var i = 0; i < all.length; i++) {
      if (all[i].offsetWidth > 0 || all[i].offsetHeight > 0) { out.push(all[i]); }
    }
    return out;
  }

  S.focus = function (el) {
    if (!el) { return; }
    if (focused) { removeClass(focused, 'focused'); }
    focused = el;
    addClass(el, 'focused');
    var box = document.getElementById('scroller');
    if (box && box.contains && box.contains(el)) {
      var top = el.offsetTop - box.offsetTop;
      if (top < box.scrollTop) { box.scrollTop = top; }
      else if (top + el.offsetHeight > box.scrollTop + box.clientHeight) { box.scrollTop = top + el.offsetHeight - box.clientHeight; }
    }
  };

  function center(el) {
    var r = el.getBoundingClientRect();
    return {x: r.left + r.width / 2, y: r.top + r.height / 2};
  }

  function move(dir) {
    var list = focusables();
    if (!focused || !list.length) { S.focus(list[0]); return; }
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
    if (best) { S.focus(best); }
    else if (dir === 'down' || dir === 'up') { scrollText(dir === 'down' ? 1 : -1); }
  }

  function scrollText(sign) {
    var box = document.getElementById('scroller');
    if (box) { box.scrollTop = box.scrollTop + sign * (box.clientHeight - 60); }
  }

  function activate(el) {
    if (!el) { return; }
    var name = el.getAttribute('data-ok');
    if (name && S.actions[name]) { S.actions[name](el); return; }
    var href = el.getAttribute('data-href');
    if (href) { window.location.href = href; }
  }

  S.back = function () {
    var b = document.body.getAttribute('data-back');
    if (b) { window.location.href = b; } else { window.history.back(); }
  };

  S.status = function (text, bad) {
    var s = document.getElementById('status-line');
    if (s) {
      s.innerHTML = '';
      s.appendChild(document.createTextNode(text));
      s.className = bad ? 'bad' : '';
    }
  };

  /* JSON request with the box's cookie; done(status, body). */
  S.request = function (method, url, body, done) {
    var xhr = new XMLHttpRequest();
    xhr.open(method, url, true);
    xhr.setRequestHeader('Content-Type', 'application/json');
    xhr.timeout = 20000;
    xhr.onreadystatechange = function () {
      if (xhr.readyState !== 4) { return; }
      var data = null;
      try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
      done(xhr.status, data);
    };
    xhr.send(body ? JSON.stringify(body) : null);
  };

  S.errorText = function (status, data) {
    if (data && data.error && data.error.message) { return data.error.message; }
    if (status === 0) { return '网络连接失败，请稍后再试'; }
    return '操作失败（' + status + '），请稍后再试';
  };

  /* Read aloud: ask for the speech file of data-speech (made by a worker: poll while 202), then play it. */
  function playSpeech(url) {
    var audio = document.getElementById('speech-audio');
    audio.src = url;
    try { audio.play(); } catch (e) { /* autoplay refused: nothing else to do */ }
    S.status('正在朗读');
  }
  S.actions.speak = function (el) {
    var ref = el.getAttribute('data-speech'), tries = 0;
    S.status('正在准备朗读……');
    function answer(status, data) {
      if (status === 200 && data && data.url) { playSpeech(data.url); return; }
      if ((status === 202 || (status === 200 && data && data.status === 'pending')) && tries < 30) {
        tries = tries + 1;
        setTimeout(function () { S.request('GET', '/api/v1/speech?ref=' + encodeURIComponent(ref), null, answer); }, 1000);
        return;
      }
      S.status(S.errorText(status, data), true);
    }
    S.request('POST', '/api/v1/speech', {ref: ref}, answer);
  };

  document.onkeydown = function (ev) {
    ev = ev || window.event;
    var code = ev.keyCode || ev.which;
    var now = new Date().getTime();
    var key = KEYMAP[code];
    if (code >= 48 && code <= 57) { key = 'digit'; }
    if (!key) { return true; }
    if (code === lastCode && now - lastKeyAt < 100) { return false; }
    lastKeyAt = now;
    lastCode = code;
    if (key === 'ok') { activate(focused); }
    else if (key === 'back') { S.back(); }
    else if (key === 'pagedown') { scrollText(1); }
    else if (key === 'pageup') { scrollText(-1); }
    else if (key === 'digit') { if (S.onDigit) { S.onDigit(code - 48); } }
    else if (key === 'left' || key === 'right' || key === 'up' || key === 'down') { move(key); }
    else if (S.onKey) { S.onKey(key); }
    if (ev.preventDefault) { ev.preventDefault(); }
    return false;
  };

  S.start = function () {
    var list = focusables(), first = null;
    for (var i = 0; i < list.length; i++) {
      if (list[i].getAttribute('data-autofocus') !== null) { first = list[i]; break; }
    }
    S.focus(first || list[0]);
    for (var j = 0; j < list.length; j++) {
      list[j].onclick = (function (el) { return function () { S.focus(el); activate(el); return false; }; })(list[j]);
    }
  };
})();
