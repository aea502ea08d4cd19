/* The city map of the staff web (the cockpit and the NOC draw the same one): the shapes of a
 * region's children from /admin/cockpit/map.json (towns of the city, villages of a town),
 * coloured by a figure, with terminals as points and an optional heat layer.
 *   CTVMap.draw(el, map, {values: {code: v}, percent, metric, heat: [[lon, lat, w]], dark,
 *                         onPick: function (code) {...}})
 * returns the chart; chart.ctvCodes lists the region codes drawn. */
(function () {
  'use strict';
  function pct(v) { return (Math.round(v * 1000) / 10) + '%'; }

  function draw(el, m, o) {
    var key = 'm' + (o.key || 'map');
    echarts.registerMap(key, m);
    var names = {};
    m.features.forEach(function (f) { names[f.properties.code] = f.properties.name; });
    var values = m.features.map(function (f) {
      var v = o.values[f.properties.code];
      return {name: f.properties.code, value: v === undefined ? null : v};
    });
    var max = o.percent ? 1 : Math.max.apply(null, values.map(function (x) { return x.value || 0; }).concat([1]));
    var heat = o.heat || [];
    var heatMax = Math.max.apply(null, heat.map(function (h) { return h[2]; }).concat([1]));
    var dark = !!o.dark;
    var chart = CTVCharts.init(el);
    chart.setOption({
      backgroundColor: 'transparent',
      textStyle: {fontFamily: '"Noto Sans CJK SC",sans-serif'},
      tooltip: {trigger: 'item', formatter: function (p) {
        if (p.seriesType === 'scatter') { return p.data.serial + '（' + (p.data.online ? '在线' : '离线') + '）'; }
        if (p.seriesType === 'heatmap') { return '诉求 ' + p.value[2] + ' 件'; }
        return (names[p.name] || p.name) + '<br>' + o.metric + '：' +
          (p.value === null || p.value === undefined || isNaN(p.value) ? '无数据' : (o.percent ? pct(p.value) : p.value));
      }},
      visualMap: [{seriesIndex: 0, min: 0, max: max, calculable: true, left: 8, bottom: 8, text: ['高', '低'],   // the metric is named by the picker beside the map
                   formatter: function (v) { return o.percent ? pct(v) : Math.round(v); },
                   textStyle: {color: dark ? '#e6eefc' : '#1d2733'},
                   inRange: {color: ['#fde8e8', '#f6c177', '#8fd19e', '#2e8b57']}},
                  {seriesIndex: 2, show: false, min: 0, max: heatMax,
                   inRange: {color: ['rgba(255,200,0,0)', 'rgba(255,120,0,0.7)', 'rgba(200,0,0,0.9)']}}],
      geo: {map: key, nameProperty: 'code', roam: true, zoom: 1.1, triggerEvent: true,
            // A halo keeps region names readable on any fill, pale or dark.
            label: {show: true, fontSize: 12, color: dark ? '#fff' : '#1d2733', textBorderColor: dark ? '#07152b' : '#fff', textBorderWidth: 2,
                     offset: [0, 14],   // under the hall's marker, which stands at the centre
                     formatter: function (p) { return names[p.name] || p.name; }},
            itemStyle: {borderColor: dark ? '#9fd0ff' : '#52606d', borderWidth: 1, areaColor: dark ? '#163a6b' : '#e4e7eb'},
            emphasis: {label: {show: true}, itemStyle: {areaColor: '#ffd666'}}},
      series: [
        {type: 'map', geoIndex: 0, data: values},
        {type: 'scatter', coordinateSystem: 'geo', symbol: 'circle',
         symbolSize: function (v, p) { return p.data.kind === 'household' ? 5 : 10; },
         data: (m.points || []).map(function (p) {
           return {value: p.value, serial: p.serial, online: p.online, kind: p.kind, region: p.region,
                   // A white rim sets a green (online) box apart from a green (well-connected) region.
                   itemStyle: {color: p.online ? '#2e8b57' : '#9aa5b1', borderColor: p.kind === 'household' ? '#fff' : '#1d2733',
                               borderWidth: 1}};
         })},
        {type: 'heatmap', coordinateSystem: 'geo', data: heat, pointSize: 28, blurSize: 30}
      ]
    }, true);
    chart.off('click');
    chart.on('click', function (p) {
      // A shape, or a terminal standing on it, opens that region.
      var code = p.seriesType === 'scatter' ? p.data.region : p.name;
      if (code && names[code] && o.onPick) { o.onPick(code); }
    });
    chart.ctvReady = false;
    chart.off('finished');
    chart.on('finished', function () { chart.ctvReady = true; });   // drawn and clickable
    chart.ctvCodes = m.features.map(function (f) { return f.properties.code; });
    chart.ctvCenters = {};
    m.features.forEach(function (f) { chart.ctvCenters[f.properties.code] = f.properties.center; });
    return chart;
  }

  window.CTVMap = {draw: draw};
})();
