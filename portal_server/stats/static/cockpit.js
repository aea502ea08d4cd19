/* The leaders' cockpit: figures with change, trends, ranking, section views and the map with
 * drill-down (click a town → its villages → a village). Data: one JSON for figures, one for the map. */
(function () {
  'use strict';
  var root = document.getElementById('cockpit');
  var screen = root.getAttribute('data-screen') === '1';
  if (screen) { document.body.className += ' wall'; CTVCharts.theme = 'dark'; }
  var level = root.getAttribute('data-level');
  var state = {data: null, map: null, charts: {}};
  window.__cockpit = state;   // tests and the curious read what is drawn

  function pct(v) { return v === null || v === undefined ? '—' : (Math.round(v * 1000) / 10) + '%'; }
  function num(v) { return v === null || v === undefined ? '—' : String(v); }
  function rate(a, b) { return b ? a / b : null; }
  function qs() { return window.location.search.replace(/^\?/, ''); }
  function url(base) {
    var extra = qs().split('&').filter(function (p) { return /^(from|to)=/.test(p); }).join('&');
    return base + (extra ? (base.indexOf('?') < 0 ? '?' : '&') + extra : '');
  }
  function get(u, done) {
    var x = new XMLHttpRequest();
    x.open('GET', u);
    x.onload = function () {
      var body = null;
      try { body = JSON.parse(x.responseText); } catch (e) { body = null; }
      if (x.status !== 200) {
        var el = document.getElementById('cockpit-error');
        el.textContent = (body && body.error && body.error.message) || ('加载失败（' + x.status + '）');
        el.hidden = false;
        return;
      }
      done(body);
    };
    x.send();
  }
  function childUrl(code) {
    return '?region=' + code + (screen ? '&screen=1' : '') + (qs().match(/(^|&)(from|to)=[^&]*/g) || []).join('').replace(/^&?/, '&');
  }

  var FIGS = [
    ['终端在线', function (o) { return o.terminals.online + '/' + o.terminals.total; }, function (o) { return rate(o.terminals.online, o.terminals.total); }],
    ['日均活跃机顶盒', function (o) { return num(o.tv.active_boxes); }, function (o) { return o.tv.active_boxes; }],
    ['电视页面浏览', function (o) { return num(o.tv.page_views); }, function (o) { return o.tv.page_views; }],
    ['收到诉求', function (o) { return num(o.feedback.received); }, function (o) { return o.feedback.received; }],
    ['诉求按期办结率', function (o) { return pct(o.feedback.on_time_rate); }, function (o) { return o.feedback.on_time_rate; }],
    ['群众满意度', function (o) { return o.feedback.satisfaction === null ? '—' : o.feedback.satisfaction + ' 分'; }, function (o) { return o.feedback.satisfaction; }],
    ['受理办件', function (o) { return num(o.cases.received); }, function (o) { return o.cases.received; }],
    ['办件按期办结率', function (o) { return pct(o.cases.on_time_rate); }, function (o) { return o.cases.on_time_rate; }],
    ['报平安', function (o) { return o.checkins.done + '/' + o.checkins.expected; }, function (o) { return rate(o.checkins.done, o.checkins.expected); }],
    ['发布预警', function (o) { return num(o.alerts.sent); }, function (o) { return o.alerts.sent; }],
    ['预警触达率', function (o) { return pct(o.alerts.reach_rate); }, function (o) { return o.alerts.reach_rate; }],
    ['召开会议', function (o) { return num(o.meetings.held); }, function (o) { return o.meetings.held; }],
    ['参会户次', function (o) { return num(o.meetings.attendance); }, function (o) { return o.meetings.attendance; }],
    ['村务公开逾期村', function (o) { return num(o.affairs.late_villages); }, function (o) { return o.affairs.late_villages; }]
  ];

  function change(now, before) {
    if (now === null || before === null || now === undefined || before === undefined) { return ['flat', '上期无数据']; }
    var d = now - before;
    if (Math.abs(d) < 1e-9) { return ['flat', '与上期持平']; }
    var txt = (d > 0 ? '比上期 ↑ ' : '比上期 ↓ ') + (Math.abs(d) < 1 && Math.abs(now) <= 1 ? (Math.round(Math.abs(d) * 1000) / 10) + ' 个百分点' : Math.round(Math.abs(d) * 10) / 10);
    return [d > 0 ? 'up' : 'down', txt];
  }

  function figures(d) {
    var box = document.getElementById('figures');
    box.innerHTML = '';
    FIGS.forEach(function (f) {
      var c = change(f[2](d.now), f[2](d.before));
      var div = document.createElement('div');
      div.className = 'fig';
      div.innerHTML = '<div class="k"></div><div class="v"></div><div class="d ' + c[0] + '"></div>';
      div.children[0].textContent = f[0];
      div.children[1].textContent = f[1](d.now);
      div.children[2].textContent = c[1];
      box.appendChild(div);
    });
    document.getElementById('period').textContent = d.from + ' 至 ' + d.to;
  }

  var picked = {'tv.active_boxes': true, 'feedback.received': true, 'checkins.done': true};
  function trends(d) {
    var pick = document.getElementById('trend-pick');
    if (!pick.children.length) {
      Object.keys(d.trends).forEach(function (m) {
        var l = document.createElement('label');
        l.innerHTML = '<input type="checkbox"> <span></span>';
        l.children[0].checked = !!picked[m];
        l.children[1].textContent = d.trends[m].name;
        l.children[0].onchange = function () { picked[m] = this.checked; trends(state.data); };
        pick.appendChild(l);
      });
    }
    var cats = null, series = [];
    Object.keys(d.trends).forEach(function (m) {
      if (!picked[m]) { return; }
      var t = d.trends[m];
      cats = cats || t.points.map(function (p) { return p.t.slice(5); });
      series.push({name: t.name, data: t.points.map(function (p) { return p.v; })});
      series.push({name: t.name + '（上期）', dashed: true, data: t.previous.map(function (p) { return p.v; })});
    });
    state.charts.trend = CTVCharts.line('trend', {categories: cats || [], series: series, yName: '数量'});
  }

  var RANK = {
    online: ['终端在线率', function (c) { return rate(c.terminals.online, c.terminals.total); }, true],
    ontime: ['诉求按期办结率', function (c) { return c.feedback.on_time_rate; }, true],
    checkin: ['报平安完成率', function (c) { return rate(c.checkins.done, c.checkins.expected); }, true],
    views: ['电视页面浏览量', function (c) { return c.tv.page_views; }, false],
    feedback: ['诉求量', function (c) { return c.feedback.received; }, false]
  };
  function ranking(d) {
    var key = document.getElementById('rank-metric').value;
    var r = RANK[key];
    var rows = d.children.map(function (c) { return {name: c.name, code: c.code, v: r[1](c)}; });
    rows.sort(function (a, b) { return (a.v === null ? -1 : a.v) - (b.v === null ? -1 : b.v); });
    var chart = CTVCharts.bar('rank', {horizontal: true, percent: r[2], categories: rows.map(function (x) { return x.name; }),
      series: [{name: r[0], data: rows.map(function (x) { return x.v === null ? 0 : x.v; })}],
      yName: r[0], xName: d.region.level === 'city' ? '乡镇（街道）' : '村'});
    chart.off('click');
    chart.on('click', function (p) { if (d.region.level !== 'village') { window.location = childUrl(rows[p.dataIndex].code); } });
    state.charts.rank = chart;
  }

  function sections(d) {
    var data = Object.keys(d.now.tv.by_section).map(function (k) { return {name: d.sections[k] || k, value: d.now.tv.by_section[k]}; });
    state.charts.sections = data.length ? CTVCharts.pie('sections', {data: data})
      : CTVCharts.bar('sections', {categories: Object.keys(d.sections).map(function (k) { return d.sections[k]; }),
                                   series: [{name: '浏览量', data: Object.keys(d.sections).map(function () { return 0; })}], yName: '浏览量'});
  }

  var MAPM = {
    online: ['终端在线率', function (c) { return rate(c.terminals.online, c.terminals.total); }, true],
    checkin: ['报平安完成率', function (c) { return rate(c.checkins.done, c.checkins.expected); }, true],
    reach: ['预警触达率', function (c) { return c.alerts.reach_rate; }, true],
    feedback: ['诉求量', function (c) { return c.feedback.received; }, false]
  };
  function drawMap() {
    var d = state.data, m = state.map;
    if (!d || !m) { return; }
    var mm = MAPM[document.getElementById('map-metric').value];
    var values = {}, byCode = {};
    d.children.forEach(function (c) { byCode[c.code] = c; values[c.code] = mm[1](c); });
    var centers = {};
    m.features.forEach(function (f) { centers[f.properties.code] = f.properties.center; });
    var heat = document.getElementById('map-heat').checked ? d.children.filter(function (c) { return centers[c.code] && c.feedback.received; })
      .map(function (c) { return centers[c.code].concat([c.feedback.received]); }) : [];
    var chart = CTVMap.draw('map', m, {key: d.region.code, values: values, percent: mm[2], metric: mm[0], heat: heat, dark: screen,
      onPick: function (code) { if (code !== d.region.code) { window.location = childUrl(code); } }});
    state.charts.map = chart;
    state.mapCodes = chart.ctvCodes;
  }

  function load() {
    get(url(root.getAttribute('data-url')), function (d) {
      state.data = d;
      figures(d); trends(d); ranking(d); sections(d); drawMap();
      state.loadedAt = new Date().getTime();
    });
    get(root.getAttribute('data-map'), function (m) { state.map = m; drawMap(); });
  }
  document.getElementById('rank-metric').onchange = function () { ranking(state.data); };
  document.getElementById('map-metric').onchange = drawMap;
  document.getElementById('map-heat').onchange = drawMap;
  load();
  if (screen) { setInterval(load, 60000); }
})();
