/* The channel player of 视频直播 (ES5). Zapping: digits (the typed number plays after 2 s, or at
   once with 4 digits), channel +/- (PageUp/PageDown) and up/down, without reloading the page.
   OK shows the info banner (now/next); OK while it shows pauses, and OK again resumes from where
   it paused (timeshift: the channel's catch-up from the pause point, chained until it reaches
   live) with a position bar. With data.catchup a past programme plays as catch-up. A channel
   whose source is lost shows the slate "信号中断，正在恢复" and comes back by itself.
   Test hooks: body[data-playing] = the channel's id, body[data-mode] = live | timeshift | catchup. */
(function () {
  var C = window.TVChannels = {};
  var BANNER_MS = 6000, DIGIT_MS = 2000, LIVE_LAG_S = 8;

  function byId(id) { return document.getElementById(id); }
  function now() { return new Date().getTime() / 1000; }
  function pad(n) { return n < 10 ? '0' + n : String(n); }
  function hm(t) { var d = new Date(t * 1000); return pad(d.getHours()) + ':' + pad(d.getMinutes()); }
  function mmss(s) { s = Math.max(0, Math.round(s)); return Math.floor(s / 60) + ':' + pad(s % 60); }
  function show(el, on) { el.style.display = on ? 'block' : 'none'; }

  C.init = function (data) {
    var list = data.channels, idx = 0, i;
    var video = byId('video'), player = null;
    var mode = 'live', paused = false, pausedAt = 0, vodStart = 0, vodEnd = 0;
    var typed = '', digitTimer = null, bannerTimer = null, status = {};
    for (i = 0; i < list.length; i++) { if (list[i].id === data.current) { idx = i; } }

    function say(t) { TV.setText(byId('osd-state'), t); }
    function ch() { return list[idx]; }
    function setMode(m) { mode = m; document.body.setAttribute('data-mode', m); }

    function load(src) {
      if (player) { player.stop(); }
      player = TVPlayer.start(src, video, say);
    }
    function catchupSrc(c, a, b) {
      return data.catchup_base + encodeURIComponent(c.id) + '.m3u8?start=' + Math.floor(a) + '&end=' + Math.floor(b);
    }

    /* The time (epoch s) of the picture on screen. */
    function position() {
      if (mode !== 'live') { return vodStart + (video.currentTime || 0); }
      var h = player && player.hls ? player.hls() : null;
      if (h && h.playingDate) { return h.playingDate.getTime() / 1000; }
      return now() - LIVE_LAG_S;
    }

    /* Zap time (tests, measurements): key press → first frame, in ms. */
    var zapAt = 0;
    C.lastZapMs = null;
    video.addEventListener('timeupdate', function () {
      if (zapAt && video.currentTime > 0) { C.lastZapMs = new Date().getTime() - zapAt; zapAt = 0; }
    });

    function tune(n) {
      zapAt = new Date().getTime();
      C.lastZapMs = null;
      idx = (n + list.length) % list.length;
      paused = false;
      setMode('live');
      document.body.setAttribute('data-playing', ch().id);
      document.title = ch().number + ' ' + ch().name;
      if (window.history && window.history.replaceState) {
        window.history.replaceState(null, '', '/tv/channels/watch?ch=' + encodeURIComponent(ch().id));
      }
      load(ch().url);
      banner();
      slate();
    }

    /* ---- the info banner ---- */
    function banner() {
      var c = ch(), nowp = c.now, nx = c.next, t = now();
      TV.setText(byId('b-no'), String(c.number));
      TV.setText(byId('b-name'), c.name);
      if (mode === 'catchup') {
        TV.setText(byId('b-now'), '回看 ' + hm(vodStart) + '–' + hm(vodEnd) + ' ' + (data.catchup.title || ''));
        TV.setText(byId('b-next'), '按返回键回到频道列表');
      } else {
        TV.setText(byId('b-now'), nowp ? hm(nowp.start) + '–' + hm(nowp.stop) + ' ' + nowp.title : (c.kind === 'village' ? '村务厅会议直播' : '暂无节目信息'));
        TV.setText(byId('b-next'), nx ? hm(nx.start) + ' ' + nx.title : '—');
      }
      var f = 0;
      if (mode === 'catchup') { f = (position() - vodStart) / Math.max(1, vodEnd - vodStart); }
      else if (nowp) { f = (t - nowp.start) / Math.max(1, nowp.stop - nowp.start); }
      byId('b-fill').style.width = Math.round(Math.max(0, Math.min(1, f)) * 100) + '%';
      timeshiftBar();
      show(byId('banner'), true);
      if (bannerTimer) { clearTimeout(bannerTimer); }
      bannerTimer = setTimeout(function () { if (!paused && mode !== 'timeshift') { show(byId('banner'), false); } bannerTimer = null; }, BANNER_MS);
    }
    function bannerShown() { return byId('banner').style.display !== 'none'; }

    /* The position bar of timeshift: the last 30 minutes up to live, the marker where we are. */
    function timeshiftBar() {
      var on = paused || mode === 'timeshift';
      show(byId('b-ts'), on);
      if (!on) { return; }
      var behind = now() - position(), span = 1800;
      var x = 1 - Math.min(span, Math.max(0, behind)) / span;
      byId('ts-fill').style.width = Math.round(x * 100) + '%';
      byId('ts-pos').style.left = Math.round(x * 100) + '%';
      TV.setText(byId('ts-text'), (paused ? '已暂停　' : '时移播放　') + '比直播晚 ' + mmss(behind));
    }

    /* ---- pause / resume (timeshift) ---- */
    function pause() {
      pausedAt = position();
      paused = true;
      video.pause();
      say('已暂停　按确认键继续');
      banner();
    }
    function resume() {
      paused = false;
      if (mode === 'catchup' || (mode === 'live' && now() - pausedAt < 4) || !ch().catchup) {
        video.play();
      } else {
        setMode('timeshift');
        vodStart = pausedAt;
        vodEnd = now();
        load(catchupSrc(ch(), vodStart, vodEnd));
      }
      say('正在播放');
      banner();
    }
    video.addEventListener('ended', function () {
      if (mode === 'timeshift') {   /* carry on from where the last piece ended, live once caught up */
        if (now() - vodEnd < 6) { tune(idx); return; }
        vodStart = vodEnd;
        vodEnd = now();
        load(catchupSrc(ch(), vodStart, vodEnd));
      } else if (mode === 'catchup') {
        say('回看结束　按返回键离开');
      }
    });

    TV.actions.ok = function () {
      if (video.muted) { video.muted = false; say('正在播放'); }
      if (!bannerShown()) { banner(); return; }
      if (paused) { resume(); } else { pause(); }
    };

    /* ---- zapping ---- */
    function commitDigits() {
      var want = parseInt(typed, 10), j;
      typed = '';
      digitTimer = null;
      show(byId('digits'), false);
      for (j = 0; j < list.length; j++) {
        if (list[j].number === want) { tune(j); return; }
      }
      say('没有 ' + want + ' 频道');
      banner();
    }
    TV.onDigit = function (n) {
      typed = (typed + n).substring(0, 4);
      TV.setText(byId('digits'), typed);
      show(byId('digits'), true);
      if (digitTimer) { clearTimeout(digitTimer); }
      if (typed.length >= 4) { commitDigits(); } else { digitTimer = setTimeout(commitDigits, DIGIT_MS); }
      return true;
    };
    TV.onPage = function (d) { tune(idx - d); return true; };   /* PageUp: channel +, PageDown: channel - */
    TV.onEdge = function (key) { tune(idx + (key === 'up' ? 1 : -1)); return true; };

    /* ---- the slate while the source is lost ---- */
    function slate() {
      show(byId('slate'), mode === 'live' && status[ch().id] === 'source_lost');
    }
    function poll() {
      TV.request('GET', data.status_url + '?t=' + new Date().getTime(), null, function (code, st) {
        if (code === 200 && st) {
          var was = status[ch().id];
          status = st;
          if (was === 'source_lost' && st[ch().id] === 'live' && mode === 'live') { load(ch().url); }
          slate();
        }
      });
    }
    for (i = 0; i < list.length; i++) { status[list[i].id] = list[i].status; }
    setInterval(poll, 5000);
    setInterval(function () { if (bannerShown()) { timeshiftBar(); } }, 1000);

    if (data.catchup) {
      setMode('catchup');
      vodStart = data.catchup.start;
      vodEnd = data.catchup.end;
      document.body.setAttribute('data-playing', ch().id);
      load(catchupSrc(ch(), vodStart, vodEnd));
      banner();
    } else {
      tune(idx);
    }
  };
})();
