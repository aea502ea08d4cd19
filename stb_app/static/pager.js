/* Section pages: the item list shown a screen at a time (8 items, 5 in large-text mode);
   channel ± or moving past the last row turns the page. ES5. */
(function () {
  var rows = [], page = 0;
  function perPage() { return TV.simple() ? 5 : 8; }
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
