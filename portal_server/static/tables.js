/* Long tables of the staff web, made workable: a table with data-table gets a filter box, headers
 * that sort on click (numbers as numbers, again for the other way) and pages of data-page-size rows
 * (default 20). The first row holds the headers. */
(function () {
  'use strict';
  function cellValue(tr, i) {
    var td = tr.children[i];
    var t = td ? (td.getAttribute('data-sort') || td.textContent).trim() : '';
    var n = parseFloat(t.replace(/[%,，]/g, ''));
    return isNaN(n) || !/^[-\d.,%，]+$/.test(t) ? t : n;
  }
  function enhance(table) {
    var head = table.rows[0];
    var rows = Array.prototype.slice.call(table.rows, 1);
    var size = parseInt(table.getAttribute('data-page-size') || '20', 10);
    var state = {page: 0, q: '', col: -1, asc: true};
    var bar = document.createElement('div');
    bar.className = 'table-tools';
    bar.innerHTML = '<input type="search" placeholder="筛选…" aria-label="筛选"> <span class="pages"></span>';
    table.parentNode.insertBefore(bar, table);
    var input = bar.querySelector('input'), pages = bar.querySelector('.pages');
    function render() {
      var shown = rows.filter(function (r) { return !state.q || r.textContent.indexOf(state.q) >= 0; });
      if (state.col >= 0) {
        shown.sort(function (a, b) {
          var x = cellValue(a, state.col), y = cellValue(b, state.col);
          var c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y), 'zh-CN');
          return state.asc ? c : -c;
        });
      }
      var n = Math.max(1, Math.ceil(shown.length / size));
      state.page = Math.min(state.page, n - 1);
      rows.forEach(function (r) { r.style.display = 'none'; });
      shown.forEach(function (r, i) {
        table.tBodies[0].appendChild(r);
        if (Math.floor(i / size) === state.page) { r.style.display = ''; }
      });
      pages.innerHTML = '';
      var info = document.createElement('span');
      info.textContent = '共 ' + shown.length + ' 行，第 ' + (state.page + 1) + '/' + n + ' 页 ';
      pages.appendChild(info);
      [['上一页', -1], ['下一页', 1]].forEach(function (b) {
        var btn = document.createElement('button');
        btn.type = 'button';
        btn.className = 'secondary';
        btn.textContent = b[0];
        btn.disabled = (b[1] < 0 && state.page === 0) || (b[1] > 0 && state.page >= n - 1);
        btn.onclick = function () { state.page += b[1]; render(); };
        pages.appendChild(btn);
      });
    }
    Array.prototype.forEach.call(head.cells, function (th, i) {
      th.style.cursor = 'pointer';
      th.title = '点击排序';
      th.onclick = function () {
        state.asc = state.col === i ? !state.asc : true;
        state.col = i;
        Array.prototype.forEach.call(head.cells, function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', state.asc ? 'ascending' : 'descending');
        render();
      };
    });
    input.oninput = function () { state.q = input.value.trim(); state.page = 0; render(); };
    render();
  }
  function all() { Array.prototype.forEach.call(document.querySelectorAll('table[data-table]'), enhance); }
  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', all); } else { all(); }
})();
