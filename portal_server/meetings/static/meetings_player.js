/* The meeting player on the TV: the portal's TVPlayer plays the live or replay playlist; on a live
   meeting the open motion shows over the video and the colour keys vote (green 赞成, red 反对,
   yellow 弃权). ES5 only. */
(function () {
  var cfg = window.MEETING, video = document.getElementById('video');
  var NAMES = { yes: '赞成', no: '反对', abstain: '弃权' };
  var KEY_CHOICE = { green: 'yes', red: 'no', yellow: 'abstain' };
  var motion = null, ended = false, player = null, started = cfg.status === 'live' || cfg.mode === 'replay';

  function start(src) {   /* the portal's player: hls.js or native HLS, retries, muted fallback */
    player = TVPlayer.start(src, video, function (text) { TV.status(text); });
  }
  function message(text) {
    var el = document.getElementById('message');
    el.textContent = text;
    el.style.display = text ? 'block' : 'none';
  }
  function showMotion(m) {
    var ov = document.getElementById('overlay'), keys, i;
    motion = m;
    if (!m) { ov.className = 'mt-overlay'; return; }
    ov.className = 'mt-overlay shown';
    document.getElementById('motion-title').textContent = m.title;
    keys = ov.querySelectorAll('.mt-key');
    for (i = 0; i < keys.length; i++) {
      keys[i].className = keys[i].className.replace(/\s*chosen/g, '') +
        (keys[i].getAttribute('data-choice') === m.my_vote ? ' chosen' : '');
    }
    document.getElementById('motion-results').textContent = m.my_vote ?
      '您已选择：' + NAMES[m.my_vote] + '（表决结束前可以改）' : '请用遥控器的彩色键表决';
  }
  function poll() {
    TV.request('GET', '/api/v1/meetings/' + cfg.id + '/state', null, function (status, data) {
      if (status !== 200 || !data) { return; }
      if (data.status === 'ended' && !ended) {
        ended = true;
        showMotion(null);
        message('会议已结束，回放稍后可在“往期回放”中观看');
      }
      if (data.status === 'scheduled') { message('会议还没有开始，开始后这里自动播放'); }
      if (data.status === 'live') {
        if (ended) { window.location.reload(); return; }  /* the encoder came back: play again */
        if (!started) { started = true; message(''); start(cfg.src); }
        showMotion(data.motion);
      }
    });
  }
  function vote(choice) {
    if (!motion) { return; }
    TV.request('POST', '/api/v1/meetings/' + cfg.id + '/motions/' + motion.id + '/vote', { choice: choice },
      function (status, data) {
        if (status === 200) {
          motion.my_vote = data.choice;
          showMotion(motion);
          TV.status('已表决：' + NAMES[data.choice]);
        } else {
          TV.status((data && data.error && data.error.code === 'conflict') ? '表决已结束' : '表决没有成功，请再试一次', true);
          poll();
        }
      });
  }
  TV.onKey = function (key) {
    if (cfg.mode === 'live' && KEY_CHOICE[key]) { vote(KEY_CHOICE[key]); return true; }
    return false;
  };
  if (started) { start(cfg.src); }
  if (cfg.mode === 'live') {
    TV.request('POST', '/api/v1/meetings/' + cfg.id + '/attend', {}, function () {});
    poll();
    window.setInterval(poll, 2000);
  }
  window.MEETING_PLAYER = { video: video, vote: vote, poll: poll };
})();
