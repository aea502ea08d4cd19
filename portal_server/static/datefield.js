/* The staff web's date fields (admin/_date.html): 年-月-日 whatever the browser's language.
 * Tidies what was typed (2026/12/1, 2026.12.1, 20261201, 2026年12月1日 → 2026-12-01; with a time,
 * data-date="datetime": 2026/12/1 8:30 or 2026-12-01T08:30 → 2026-12-01 08:30) and puts a
 * Chinese message both in the browser's validation bubble and under the field. */
(function () {
  'use strict';
  var SHAPE = /^(\d{4})\D{1,2}(\d{1,2})\D{1,2}(\d{1,2})\D?$/;

  function tidy(v) {
    v = v.replace(/\s+/g, '');
    var m = /^(\d{4})(\d{2})(\d{2})$/.exec(v) || SHAPE.exec(v);
    if (!m) { return v; }
    return m[1] + '-' + ('0' + m[2]).slice(-2) + '-' + ('0' + m[3]).slice(-2);
  }

  var CLOCK = /^(.+?)(?:\s+|T)(\d{1,2})[:：](\d{2})$/;

  function tidyMoment(v) {
    v = v.replace(/^\s+|\s+$/g, '');
    var m = CLOCK.exec(v);
    if (!m) { return v; }
    return tidy(m[1]) + ' ' + ('0' + m[2]).slice(-2) + ':' + m[3];
  }

  function momentProblem(v, required) {
    if (!v) { return required ? '请填写时间，如 2026-12-01 14:30' : ''; }
    var m = /^(\S+) (\d{2}):(\d{2})$/.exec(v);
    if (!m) { return '时间格式不对：“' + v + '”，请按 年-月-日 时:分 填写，如 2026-12-01 14:30'; }
    var day = problem(m[1], true);
    if (day) { return day; }
    if (+m[2] > 23 || +m[3] > 59) { return '没有这个时刻：' + m[2] + ':' + m[3] + '（时 00–23，分 00–59）'; }
    return '';
  }

  function problem(v, required) {
    if (!v) { return required ? '请填写日期，如 2026-12-01' : ''; }
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v);
    if (!m) { return '日期格式不对：“' + v + '”，请按 年-月-日 填写，如 2026-12-01'; }
    var y = +m[1], mo = +m[2], d = +m[3], t = new Date(y, mo - 1, d);
    if (mo < 1 || mo > 12) { return '月份不对：' + v + '（月份应在 01 到 12 之间）'; }
    if (t.getFullYear() !== y || t.getMonth() !== mo - 1 || t.getDate() !== d) {
      return '没有这一天：' + v + '（' + y + ' 年 ' + mo + ' 月没有 ' + d + ' 日）';
    }
    return '';
  }

  function isMoment(input) { return input.getAttribute('data-date') === 'datetime'; }

  function tidyField(input) { input.value = isMoment(input) ? tidyMoment(input.value) : tidy(input.value); }

  function check(input) {
    var msg = (isMoment(input) ? momentProblem : problem)(input.value, input.required);
    input.setCustomValidity(msg);
    var note = input.parentNode.querySelector('.date-error');
    if (note) { note.textContent = msg; note.hidden = !msg; }
    input.setAttribute('aria-invalid', msg ? 'true' : 'false');
    return !msg;
  }

  function wire(input) {
    input.addEventListener('input', function () {
      input.setCustomValidity('');
      var note = input.parentNode.querySelector('.date-error');
      if (note) { note.hidden = true; }
    });
    input.addEventListener('change', function () { tidyField(input); check(input); });
    input.addEventListener('invalid', function () { check(input); });
    if (input.form && !input.form.__ctvDates) {
      input.form.__ctvDates = true;
      input.form.addEventListener('submit', function (e) {
        var all = input.form.querySelectorAll('input[data-date]'), ok = true, first = null;
        for (var i = 0; i < all.length; i++) {
          tidyField(all[i]);
          if (!check(all[i])) { ok = false; first = first || all[i]; }
        }
        if (!ok) { e.preventDefault(); first.focus(); first.reportValidity(); }
      }, true);
    }
  }

  var fields = document.querySelectorAll('input[data-date]');
  for (var i = 0; i < fields.length; i++) { wire(fields[i]); }
  window.CTVDates = {tidy: tidy, problem: problem, tidyMoment: tidyMoment, momentProblem: momentProblem};
})();
