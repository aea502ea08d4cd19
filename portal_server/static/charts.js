/* The staff web's chart helper (one for every board): Apache ECharts, vendored, with axes,
 * names, value labels and the same look everywhere. Usage:
 *   CTVCharts.bar(el, {categories: [...], series: [{name, data}], xName, yName, percent, horizontal})
 *     (xName names the category axis, yName the value axis, whichever way the bars lie)
 *   CTVCharts.line(el, {categories, series, yName})
 *   CTVCharts.pie(el, {data: [{name, value}]})
 * Every board also links an xlsx export of the same figures (the template's job). */
(function () {
  'use strict';
  var PALETTE = ['#b3261e', '#2f6fb0', '#2e8b57', '#c77c02', '#6b4fa0', '#0f7c86', '#8a5a44', '#52606d'];
  var FONT = '"Noto Sans CJK SC","Microsoft YaHei",sans-serif';

  function init(el) {
    if (typeof el === 'string') { el = document.getElementById(el); }
    var chart = echarts.getInstanceByDom(el) || echarts.init(el, window.CTVCharts.theme || null, {renderer: 'canvas'});
    window.addEventListener('resize', function () { chart.resize(); });
    return chart;
  }

  function axisName(name) { return {name: name || '', nameTextStyle: {fontSize: 14}, nameGap: 24}; }

  function pctFormatter(percent) {
    return function (v) { return percent ? (Math.round(v * 1000) / 10) + '%' : v; };
  }

  function bar(el, o) {
    var chart = init(el);
    var horizontal = !!o.horizontal;
    var fmt = pctFormatter(o.percent);
    var cat = Object.assign({type: 'category', data: o.categories, axisLabel: {fontSize: 13, interval: 0, rotate: horizontal ? 0 : (o.categories.length > 8 ? 30 : 0)}}, axisName(o.xName));
    var val = Object.assign({type: 'value', axisLabel: {fontSize: 13, formatter: fmt}, max: o.percent ? 1 : null}, axisName(o.yName),
                            horizontal ? {nameLocation: 'middle', nameGap: 28} : {});
    chart.setOption({
      color: PALETTE, textStyle: {fontFamily: FONT},
      backgroundColor: 'transparent',
      tooltip: {trigger: 'axis', valueFormatter: fmt},
      legend: {show: o.series.length > 1, top: 0, type: 'scroll'},
      // containLabel leaves out an axis name set in the middle: room for the value axis's name under it.
      grid: {left: 16, right: 48, top: o.series.length > 1 ? 48 : 36, bottom: horizontal && o.yName ? 40 : 16, containLabel: true},
      xAxis: horizontal ? val : cat,
      yAxis: horizontal ? cat : val,
      series: o.series.map(function (s) {
        return {type: 'bar', name: s.name, data: s.data, barMaxWidth: 32,
                label: {show: true, position: horizontal ? 'right' : 'top', fontSize: 12, formatter: function (p) { return fmt(p.value); }}};
      })
    }, true);
    return chart;
  }

  function line(el, o) {
    var chart = init(el);
    chart.setOption({
      color: PALETTE, textStyle: {fontFamily: FONT},
      backgroundColor: 'transparent',
      tooltip: {trigger: 'axis'},
      legend: {top: 0, type: 'scroll'},
      grid: {left: 16, right: 24, top: 56, bottom: 16, containLabel: true},
      xAxis: Object.assign({type: 'category', data: o.categories, boundaryGap: false, axisLabel: {fontSize: 12}}, axisName(o.xName || '日期')),
      yAxis: Object.assign({type: 'value', minInterval: 1, axisLabel: {fontSize: 12}}, axisName(o.yName)),
      series: o.series.map(function (s, i) {
        return {type: 'line', name: s.name, data: s.data, smooth: true, symbolSize: 6,
                lineStyle: {type: i > 0 && s.dashed ? 'dashed' : 'solid'}, areaStyle: i === 0 ? {opacity: 0.08} : null};
      })
    }, true);
    return chart;
  }

  function pie(el, o) {
    var chart = init(el);
    chart.setOption({
      color: PALETTE, textStyle: {fontFamily: FONT},
      backgroundColor: 'transparent',
      tooltip: {trigger: 'item', formatter: '{b}：{c}（{d}%）'},
      series: [{type: 'pie', radius: ['35%', '68%'], data: o.data,
                label: {formatter: '{b}\n{c}', fontSize: 13}}]
    }, true);
    return chart;
  }

  window.CTVCharts = {init: init, bar: bar, line: line, pie: pie, PALETTE: PALETTE, theme: window.CTVCharts ? window.CTVCharts.theme : null};
})();

/* Boards declare their charts in the page: <div data-ctv-chart='{"type":"bar",...}'> (the
 * admin/_chart.html macro writes them); this draws every one once the page has loaded. */
(function () {
  'use strict';
  function drawAll() {
    var els = document.querySelectorAll('[data-ctv-chart]');
    for (var i = 0; i < els.length; i++) {
      var spec = JSON.parse(els[i].getAttribute('data-ctv-chart'));
      window.CTVCharts[spec.type](els[i], spec);
      els[i].setAttribute('data-drawn', '1');
    }
  }
  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', drawAll); } else { drawAll(); }
})();
