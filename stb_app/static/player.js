/* Playing HLS on the TV: hls.js (ES5 build) over Media Source Extensions, the browser's own HLS
   otherwise. Fatal errors are told and retried. A browser that refuses to start with sound starts
   muted and says so; OK then turns the sound on. Used by the video page (/tv/play) and the
   meetings' live and replay pages. ES5. */
(function () {
  var P = window.TVPlayer = {};

  /* Start src in video; say(text), when given, is told what the player is doing. */
  P.start = function (src, video, say) {
    var hls = null, retries = 0, stopped = false;
    say = say || function () {};
    function play() {
      var p = video.play();
      if (p && p['catch']) {
        p['catch'](function () {   /* autoplay with sound refused: start muted, OK unmutes */
          video.muted = true;
          video.play();
          say('已静音　按确认键打开声音');
        });
      }
    }
    function load() {
      if (stopped) { return; }
      /* hls.js wherever Media Source Extensions exist (the same behaviour on every box);
         the browser's own HLS only where there is no MSE. */
      if (window.Hls && window.Hls.isSupported()) {
        hls = new window.Hls({liveSyncDurationCount: 2, maxBufferLength: 10});
        hls.on(window.Hls.Events.ERROR, function (ev, data) {
          if (!data.fatal) { return; }
          say('视频暂时无法播放，正在重试……');
          hls.destroy();
          if (retries < 20) { retries = retries + 1; setTimeout(load, 3000); }
        });
        hls.on(window.Hls.Events.MANIFEST_PARSED, play);
        hls.loadSource(src);
        hls.attachMedia(video);
      } else if (video.canPlayType && video.canPlayType('application/vnd.apple.mpegurl')) {
        video.src = src;
        play();
      } else {
        say('此机顶盒不能播放该视频');
      }
    }
    video.addEventListener('playing', function () {
      if (stopped) { return; }
      retries = 0;
      say(video.muted ? '已静音　按确认键打开声音' : '正在播放');
    });
    load();
    /* The player last started (TVPlayer.current): its hls.js tells the rendition it picked. */
    return (P.current = {video: video, reload: function () { if (hls) { hls.destroy(); } load(); },
      /* hls.js of this start (null with the browser's own HLS): its playingDate, levels... */
      hls: function () { return hls; },
      /* Stop for good (zapping to another channel starts anew). */
      stop: function () {
        stopped = true;
        if (hls) { hls.destroy(); hls = null; }
        video.removeAttribute('src');
        if (video.load) { video.load(); }
      }});
  };

  /* The video page: OSD state, OK = sound on if muted, else pause/play. */
  P.play = function (src, video, stateEl) {
    function say(t) { TV.setText(stateEl, t); }
    video.addEventListener('pause', function () { say('已暂停　按确认键继续'); });
    video.addEventListener('waiting', function () { say('正在缓冲……'); });
    video.addEventListener('ended', function () { say('播放结束　按返回键离开'); });
    TV.actions.toggle = function () {
      if (video.muted) { video.muted = false; say('正在播放'); return; }
      if (video.paused) { video.play(); } else { video.pause(); }
    };
    P.video = video;
    return P.start(src, video, say);
  };
})();
