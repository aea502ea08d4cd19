/* The video page: hls.js (ES5 build) over Media Source Extensions, the browser's own HLS otherwise.
   OK pauses and plays; errors are told on screen and retried. ES5. */
(function () {
  var P = window.TVPlayer = {};
  P.play = function (src, video, stateEl) {
    var hls = null, retries = 0;
    function say(t) { TV.setText(stateEl, t); }
    video.addEventListener('playing', function () { say('正在播放'); retries = 0; });
    video.addEventListener('pause', function () { say('已暂停　按确认键继续'); });
    video.addEventListener('waiting', function () { say('正在缓冲……'); });
    video.addEventListener('ended', function () { say('播放结束　按返回键离开'); });
    function start() {
      /* hls.js wherever Media Source Extensions exist (the same behaviour on every box);
         the browser's own HLS only where there is no MSE. */
      if (window.Hls && window.Hls.isSupported()) {
        hls = new window.Hls({liveSyncDurationCount: 2, maxBufferLength: 10});
        hls.on(window.Hls.Events.ERROR, function (ev, data) {
          if (!data.fatal) { return; }
          say('视频暂时无法播放，正在重试……');
          hls.destroy();
          if (retries < 20) { retries = retries + 1; setTimeout(start, 3000); }
        });
        hls.loadSource(src);
        hls.attachMedia(video);
        hls.on(window.Hls.Events.MANIFEST_PARSED, function () { video.play(); });
      } else {
        video.src = src;
        video.play();
      }
    }
    TV.actions.toggle = function () {
      if (video.paused) { video.play(); } else { video.pause(); }
    };
    P.video = video;
    start();
  };
})();
