/* 网格员工作台 (/m/grid/): tasks, households, visits with photo and location, events, the day's log,
   patrols. Every visit goes into an offline queue (localStorage) with a client-generated idempotency
   key first, and leaves it only when the server has stored it: written in a dead zone, it is sent
   when the signal returns, never lost, and never stored twice (a replay of the key returns the
   stored entry). */
(function () {
  "use strict";
  var API = "/api/v1";
  var K_TOKEN = "ctvGrid.token", K_QUEUE = "ctvGrid.queue", K_DAY = "ctvGrid.day", K_PATROL = "ctvGrid.patrol";
  var MAX_PHOTO = 10 * 1024 * 1024;
  var state = {day: null, photo: null, flushing: false, watch: null};

  function $(sel) { return document.querySelector(sel); }
  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  function load(k, dflt) { try { var v = localStorage.getItem(k); return v ? JSON.parse(v) : dflt; } catch (e) { return dflt; } }
  function save(k, v) { localStorage.setItem(k, JSON.stringify(v)); }
  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "k" + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }
  function banner(text, error) {
    var b = $("#banner");
    b.textContent = text; b.className = "banner" + (error ? " error" : ""); b.hidden = !text;
  }
  function netState() {
    var q = load(K_QUEUE, []);
    $("#net").textContent = (navigator.onLine ? "在线" : "离线") + (q.length ? " · 待发送 " + q.length : "");
  }

  function api(method, path, body) {
    var headers = {"Content-Type": "application/json"};
    var tok = localStorage.getItem(K_TOKEN);
    if (tok) headers.Authorization = "Bearer " + tok;
    return fetch(API + path, {method: method, headers: headers, body: body ? JSON.stringify(body) : undefined})
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (data) {
          if (r.status === 401) { showLogin(); }
          if (!r.ok) { var err = new Error((data.error && data.error.message) || ("出错了（" + r.status + "）")); err.status = r.status; throw err; }
          return data;
        });
      });
  }

  // Login ----------------------------------------------------------------------------------
  function showLogin() { $("#login").hidden = false; $("#app").hidden = true; }
  $("#login-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var f = e.target;
    api("POST", "/auth/token", {username: f.username.value.trim(), password: f.password.value}).then(function (d) {
      if (d.roles.indexOf("grid_worker") < 0 && d.roles.indexOf("admin") < 0) { banner("该账号不是网格员账号", true); return; }
      localStorage.setItem(K_TOKEN, d.token);
      f.password.value = "";
      start();
    }).catch(function (err) { banner(err.status === 401 ? "用户名或密码错误" : err.message, true); });
  });
  $("#logout").addEventListener("click", function () { localStorage.removeItem(K_TOKEN); localStorage.removeItem(K_DAY); showLogin(); });

  // Tabs -------------------------------------------------------------------------------------
  Array.prototype.forEach.call(document.querySelectorAll(".tabs button"), function (b) {
    b.addEventListener("click", function () { tab(b.getAttribute("data-tab")); });
  });
  function tab(name) {
    Array.prototype.forEach.call(document.querySelectorAll(".tabs button"), function (b) {
      b.className = b.getAttribute("data-tab") === name ? "on" : "";
    });
    Array.prototype.forEach.call(document.querySelectorAll(".tab"), function (s) { s.hidden = s.id !== "tab-" + name; });
  }

  // The day ------------------------------------------------------------------------------
  function refresh() {
    return api("GET", "/grids/me").then(function (d) { save(K_DAY, d); state.day = d; render(); })
      .catch(function (err) { if (!state.day) banner(navigator.onLine ? err.message : "离线：显示上次同步的数据", !navigator.onLine ? false : true); });
  }

  function hhName(id) {
    var hs = (state.day && state.day.households) || [];
    for (var i = 0; i < hs.length; i++) if (hs[i].id === id) return hs[i].head_name + "（" + hs[i].address + "）";
    return "";
  }

  function render() {
    var d = state.day; if (!d) return;
    $("#who").textContent = d.worker.name + " · " + d.worker.village + (d.grids.length ? " · " + d.grids.map(function (g) { return g.name; }).join("、") : "");
    var t = d.tasks, h = "";
    h += "<h2>养老关爱（" + t.care.length + "）</h2>";
    h += t.care.length ? t.care.map(function (c) {
      return '<div class="card"><b>' + esc(c.kind_name) + "</b> " + esc(c.name) + '<div class="meta">' + esc(c.address) + " · " + esc(c.phone) + " · " + esc(c.status_name) + "</div>" +
        '<button type="button" class="secondary" data-visit="' + c.household.id + '">记录走访</button></div>';
    }).join("") : '<p class="empty">没有待处理的关爱任务。</p>';
    h += "<h2>预警未确认户（上门告知）</h2>";
    var doors = 0;
    h += t.alerts.map(function (a) {
      doors += a.households.length;
      return '<div class="card"><b>' + esc(a.headline) + "</b>" + a.households.map(function (x) {
        return '<div class="meta">' + esc(x.name) + " · " + esc(x.address) + "</div>";
      }).join("") + "</div>";
    }).join("");
    if (!doors) h += '<p class="empty">没有需要上门告知的住户。</p>';
    h += "<h2>回访（" + t.follow_ups.length + "）</h2>";
    h += t.follow_ups.length ? t.follow_ups.map(function (o) {
      return '<div class="card"><b>' + esc(o.code) + "</b> " + esc(o.content) + '<div class="meta">答复：' + esc(o.reply) + "</div>" +
        '<form class="follow" data-order="' + o.id + '"><label>回访情况<input name="message" required placeholder="如：居民对处理结果满意"></label>' +
        '<button type="submit" class="secondary">记录回访</button></form></div>';
    }).join("") : '<p class="empty">没有待回访的诉求。</p>';
    $("#tab-tasks").innerHTML = h;

    $("#tab-households").innerHTML = "<h2>我的住户（" + d.households.length + "户）</h2>" + (d.households.map(function (x) {
      return '<div class="card"><b>' + esc(x.head_name) + "</b> " + x.tag_names.map(function (n) { return '<span class="tag">' + esc(n) + "</span>"; }).join("") +
        '<div class="meta">' + esc(x.address) + " · " + esc(x.phone) + " · " + x.members + '人</div><button type="button" class="secondary" data-visit="' + x.id + '">记录走访</button></div>';
    }).join("") || '<p class="empty">还没有划入住户。</p>');

    $("#hh-select").innerHTML = d.households.map(function (x) {
      return '<option value="' + x.id + '">' + esc(x.head_name) + " · " + esc(x.address) + "</option>";
    }).join("");
    $("#cat-select").innerHTML = d.categories.map(function (c) { return '<option value="' + c.code + '">' + esc(c.name) + "</option>"; }).join("");
    renderLog();
    renderPatrol();
  }

  function renderLog() {
    var d = state.day || {log: []}, q = load(K_QUEUE, []);
    var rows = q.map(function (v) {
      return '<div class="card pending"><b>' + (v.kind === "event" ? "事件上报" : "走访") + "</b> " + esc(hhName(v.household_id)) +
        '<div class="meta">待发送（有信号时自动发送）</div><div>' + esc(v.note) + "</div></div>";
    }).concat((d.log || []).slice().reverse().map(function (v) {
      return '<div class="card"><b>' + esc(v.kind_name) + "</b> " + esc(v.household || "") + '<div class="meta">' + esc(v.time) +
        (v.feedback_id ? " · 已生成诉求工单" : "") + (v.photo ? " · 有照片" : "") + (v.lat != null ? " · 有位置" : "") + "</div><div>" + esc(v.note) + "</div></div>";
    }));
    $("#tab-log").innerHTML = "<h2>民情日志（今日 " + ((d.log || []).length + q.length) + " 条）</h2>" + (rows.join("") || '<p class="empty">今天还没有记录。</p>');
    netState();
  }

  // A follow-up visit (回访) of a closed order: the feedback loop's own action.
  document.addEventListener("submit", function (e) {
    var f = e.target, id = f.getAttribute && f.getAttribute("data-order");
    if (!id) return;
    e.preventDefault();
    api("POST", "/feedback/" + id + "/actions", {action: "follow_up", message: f.message.value.trim()})
      .then(function () { banner("回访已记录"); return refresh(); })
      .catch(function (err) { banner(navigator.onLine ? err.message : "当前无信号，请有信号时再记录回访", true); });
  });

  document.addEventListener("click", function (e) {
    var id = e.target.getAttribute && e.target.getAttribute("data-visit");
    if (id) { $("#hh-select").value = id; tab("record"); }
  });

  // Recording a visit ----------------------------------------------------------------------
  Array.prototype.forEach.call(document.querySelectorAll("input[name=kind]"), function (r) {
    r.addEventListener("change", function () { $("#cat-row").hidden = !document.querySelector("input[name=kind][value=event]").checked; });
  });

  function photoMsg(text) { var m = $("#photo-msg"); m.textContent = text; m.hidden = !text; }

  $("#photo").addEventListener("change", function (e) {
    state.photo = null; photoMsg("");
    var f = e.target.files && e.target.files[0];
    if (!f) return;
    if (!/^image\//.test(f.type)) { photoMsg("所选文件不是图片，请拍照或选择 JPG、PNG 图片"); e.target.value = ""; return; }
    if (f.size > MAX_PHOTO) { photoMsg("照片太大（超过10MB），请重新拍照或选择较小的图片"); e.target.value = ""; return; }
    var img = new Image(), url = URL.createObjectURL(f);
    img.onload = function () {
      var scale = Math.min(1, 1280 / Math.max(img.width, img.height));
      var c = document.createElement("canvas");
      c.width = Math.round(img.width * scale); c.height = Math.round(img.height * scale);
      c.getContext("2d").drawImage(img, 0, 0, c.width, c.height);
      state.photo = c.toDataURL("image/jpeg", 0.8);
      URL.revokeObjectURL(url);
    };
    img.onerror = function () { photoMsg("无法读取这张图片，请重新拍照"); e.target.value = ""; URL.revokeObjectURL(url); };
    img.src = url;
  });

  function position() {
    return new Promise(function (resolve) {
      if (!$("#geo").checked || !navigator.geolocation) return resolve(null);
      navigator.geolocation.getCurrentPosition(function (p) { resolve(p.coords); }, function () { resolve(null); },
        {timeout: 8000, maximumAge: 60000});
    });
  }

  $("#visit-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var f = e.target, kind = document.querySelector("input[name=kind]:checked").value;
    if (!f.household_id.value) { banner("请选择住户", true); return; }
    if (kind === "event" && !f.note.value.trim()) { banner("上报事件请填写情况说明", true); return; }
    var entry = {idempotency_key: uuid(), household_id: parseInt(f.household_id.value, 10), kind: kind,
                 note: f.note.value.trim(), category: kind === "event" ? f.category.value : null,
                 photo: state.photo, recorded_at: new Date().toISOString()};
    position().then(function (c) {
      if (c) { entry.lat = c.latitude; entry.lon = c.longitude; }
      var q = load(K_QUEUE, []); q.push(entry); save(K_QUEUE, q);  // queued first: never lost
      f.note.value = ""; f.photo.value = ""; state.photo = null; photoMsg("");
      banner(navigator.onLine ? "正在保存…" : "当前无信号，已存入待发送，有信号时自动发送");
      renderLog(); tab("log");
      flush();
    });
  });

  // The offline queue ------------------------------------------------------------------------
  function flush() {
    if (state.flushing || !localStorage.getItem(K_TOKEN)) return Promise.resolve();
    var q = load(K_QUEUE, []);
    if (!q.length) { netState(); return Promise.resolve(); }
    state.flushing = true;
    var entry = q[0];
    return api("POST", "/visits", entry).then(function (v) {
      dequeue(entry.idempotency_key);
      banner(v.feedback_id ? "已保存，事件已转为诉求工单" : "已保存");
      return true;
    }, function (err) {
      if (err.status && err.status >= 400 && err.status < 500 && err.status !== 401 && err.status !== 429) {
        dequeue(entry.idempotency_key);  // the server refused it: say why, do not retry forever
        banner("未能保存：" + err.message, true);
        return true;
      }
      netState();
      return false;  // no signal or server trouble: keep it, try again later
    }).then(function (again) {
      state.flushing = false;
      if (again) { renderLog(); return refresh().then(flush); }
    });
  }
  function dequeue(key) { save(K_QUEUE, load(K_QUEUE, []).filter(function (x) { return x.idempotency_key !== key; })); }

  window.addEventListener("online", function () { netState(); flush(); });
  window.addEventListener("offline", netState);
  setInterval(flush, 15000);

  // Patrols --------------------------------------------------------------------------------
  function renderPatrol() {
    var p = (state.day && state.day.patrol) || load(K_PATROL, null);
    $("#patrol-state").textContent = p && !p.ended_at ? "巡查中，已记录 " + (p.points || 0) + " 个轨迹点。" : "未在巡查。";
    $("#patrol-btn").textContent = p && !p.ended_at ? "结束巡查" : "开始巡查";
  }
  function track(p) {
    if (!navigator.geolocation || state.watch !== null) return;
    var pts = [];
    state.watch = navigator.geolocation.watchPosition(function (pos) {
      pts.push([pos.coords.latitude, pos.coords.longitude, Date.now() / 1000]);
      if (pts.length >= 5) { var send = pts; pts = []; api("POST", "/patrols/" + p.id + "/track", {points: send}).catch(function () { pts = send.concat(pts); }); }
    }, function () {}, {enableHighAccuracy: true});
    state.flushTrack = function () { var s = pts; pts = []; return s; };
  }
  $("#patrol-btn").addEventListener("click", function () {
    var p = state.day && state.day.patrol;
    if (p && !p.ended_at) {
      if (state.watch !== null) { navigator.geolocation.clearWatch(state.watch); state.watch = null; }
      api("POST", "/patrols/" + p.id + "/stop", {points: state.flushTrack ? state.flushTrack() : []}).then(function (d) {
        banner("巡查结束，全程约 " + Math.round(d.distance_m) + " 米"); state.day.patrol = null; save(K_PATROL, null); renderPatrol();
      }).catch(function (err) { banner(err.message, true); });
    } else {
      api("POST", "/patrols").then(function (d) { state.day.patrol = d; save(K_PATROL, d); renderPatrol(); track(d); banner("巡查开始"); })
        .catch(function (err) { banner(navigator.onLine ? err.message : "当前无信号，无法开始巡查", true); });
    }
  });

  // Start ------------------------------------------------------------------------------------
  function start() {
    if (!localStorage.getItem(K_TOKEN)) { showLogin(); return; }
    $("#login").hidden = true; $("#app").hidden = false;
    state.day = load(K_DAY, null);
    render(); netState();
    refresh().then(function () { var p = state.day && state.day.patrol; if (p && !p.ended_at) track(p); flush(); });
  }
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/m/grid/sw.js", {scope: "/m/grid/"}).catch(function () {});
  }
  start();
})();
