/* Home screen: personal facts (check-in, notices, items for this household) from /tv/api/me. ES5. */
(function () {
  function el(id) { return document.getElementById(id); }
  function link(text, url) {
    var a = document.createElement('a');
    a.className = 'notice focusable';
    a.setAttribute('data-href', url);
    TV.setText(a, text);
    a.onclick = function () { TV.focus(a); TV.activate(a); return false; };
    return a;
  }
  function showCheckin(st) {
    var b = el('checkin');
    if (!st || !st.required) { b.style.display = 'none'; return; }
    b.style.display = 'block';
    if (st.done_today) {
      TV.addClass(b, 'done');
      b.innerHTML = '今天已报平安<small>谢谢，家人放心</small>';
    } else {
      TV.removeClass(b, 'done');
      b.innerHTML = '报平安<small>按确认键告诉家人和网格员</small>';
    }
  }
  function apply(data) {
    var st = data.state || {};
    showCheckin(st.checkin);
    var box = el('notices'), i;
    var notices = data.notices || [];
    for (i = 0; i < (data.personal || []).length && notices.length < 3; i++) {
      notices.push({text: '为您推荐：' + data.personal[i].title, url: data.personal[i].url});
    }
    if (notices.length) {
      box.innerHTML = '';
      for (i = 0; i < notices.length && i < 3; i++) { box.appendChild(link(notices[i].text, notices[i].url)); }
    }
    var fb = st.feedback;
    if (fb && fb.unrated_replies) {
      var badge = el('badge-interaction');
      TV.setText(badge, String(fb.unrated_replies));
      badge.style.display = 'block';
    }
  }
  function load() {
    TV.request('GET', '/tv/api/me', null, function (status, data) {
      if (status === 200 && data) { apply(data); }
    });
  }
  TV.actions.checkin = function (b) {
    if (TV.hasClass(b, 'done')) { TV.status('今天已经报过平安了'); return; }
    TV.status('正在报平安……');
    TV.requestWithRetry('POST', '/api/v1/checkins', {}, function (status, data) {
      if (status === 200 || status === 201) { showCheckin({required: true, done_today: true}); TV.status('已报平安，谢谢！'); }
      else { TV.status(TV.errorText(status, data), true); }
    });
  };
  /* Digits 1–8 open the section of that number at once (the numbers are on the tiles). */
  TV.onDigit = function (n) {
    var tiles = document.querySelectorAll('.tile[data-section]');
    if (n >= 1 && n <= tiles.length) { TV.focus(tiles[n - 1]); TV.activate(tiles[n - 1]); }
  };
  load();
  setInterval(load, 120000);
})();
