"""Fixtures of the grids tests: a 390×844 phone page and the two layout checks of INTERFACES §4.3."""
import pytest

#: Visible elements with their own text under 16 px (tag, size, text); SVG charts are left out.
SMALL_TEXT_JS = """() => {
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    if (!el.getClientRects().length) continue;
    if (el.closest('svg')) continue;  // charts are pictures: their labels scale with them
    const st = getComputedStyle(el);
    if (st.visibility === 'hidden' || st.display === 'none') continue;
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const field = ['INPUT', 'SELECT', 'TEXTAREA', 'BUTTON'].includes(el.tagName);
    if (!own && !field) continue;
    const fs = parseFloat(st.fontSize);
    if (fs < 16) bad.push(el.tagName + ' ' + fs + 'px: ' + (el.textContent || el.value || '').trim().slice(0, 30));
  }
  return bad;
}"""

#: Sideways scrolling of the page: (scrollWidth, clientWidth).
WIDTH_JS = "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"


@pytest.fixture
def phone_context(browser):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                              has_touch=True, locale="zh-CN", timezone_id="Asia/Shanghai")
    yield ctx
    ctx.close()


@pytest.fixture
def layout_checks():
    return SMALL_TEXT_JS, WIDTH_JS
