/* Section pages: the item list shown a screen at a time (8 items, 5 in large-text mode);
   channel ± or moving past the last row turns the page. ES5. */
(function () {
  var rows = [], page = 0;
  var SAFE_H = 648, BELOW = 34 + 36 + 34;   /* pager, status line and key hints under the list */
  /* At most 8 rows (5 in large-text mode), and never more than fit above the hints. */
  function perPage() {
    var cap = TV.simple() ? 5 : 8;
    if (!rows.length) { return cap; }
    var keep = rows[0].style.display;
    rows[0].style.display = '';
    var h = rows[0].offsetHeight + 8, top = document.getElementById('list').offsetTop;
    rows[0].style.display = keep;
    return Math.max(1, Math.min(cap, Math.floor((SAFE_H - BELOW - top) / h)));
  }
  function pages() { return Math.max(1, Math.ceil(rows.length / perPage())); }
  function show(p, focusLast) {
    var n = perPage();
    page = Math.max(0, Math.min(p, pages() - 1));
    TV.pageNo = page;
    for (var i = 0; i < rows.length; i++) {
      rows[i].style.display = (i >= page * n && i < (page + 1) * n) ? '' : 'none';
    }
    var pager = document.getElementById('pager');
    if (pager) { TV.setText(pager, rows.length > n ? '第 ' + (page + 1) + ' / ' + pages() + ' 页　共 ' + rows.length + ' 条　频道键或方向键翻页' : ''); }
    if (focusLast !== undefined && rows.length) {
      TV.focus(rows[Math.min(rows.length - 1, page * n + (focusLast ? n - 1 : 0))]);
    }
  }
  var list = document.getElementById('list');
  var all = list ? list.querySelectorAll('.item') : [];
  for (var i = 0; i < all.length; i++) { rows.push(all[i]); }
  TV.onLayout = function () { show(page); };
  /* The list was fetched again (an item published or withdrawn, tv.js refreshParts). */
  TV.onRefreshed = function () {
    var fresh = list ? list.querySelectorAll('.item') : [];
    rows = [];
    for (var k = 0; k < fresh.length; k++) { rows.push(fresh[k]); }
    show(page);
  };
  TV.onRestore = function (p) { show(p); };
  TV.onPage = function (d) {
    if (!rows.length) { return false; }
    show(page + d, false);
    return true;
  };
  TV.onEdge = function (key) {
    var f = TV.focused();
    if (!f || !TV.hasClass(f, 'item')) { return false; }
    if (key === 'down' && page < pages() - 1) { show(page + 1, false); return true; }
    if (key === 'up' && page > 0) { show(page - 1, true); return true; }
    return false;
  };
})();
