"""Property-based test of the workflow (hypothesis): no sequence of actions reaches an invalid
state, and nothing reaches a TV without a reviewer other than its author approving it."""
import datetime as dt

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from portal_server.content import operations as ops, queries
from portal_server.content.models import STATUSES
from portal_server.core.accounts import create_user, user_by_username
from portal_server.core.api import ApiError
from portal_server.core.db import utcnow
from portal_server.core.regions import region_by_code

from .conftest import V001, V002

FAR = dt.timedelta(days=400)


@pytest.fixture
def both_roles(app):
    """An editor who is also a reviewer of the same village: still never approves own items."""
    return create_user("v001-both", "pw-123456789", ["editor", "reviewer"], region_by_code(V001))


def test_workflow_state_machine(app, both_roles):
    author = both_roles
    reviewers = [user_by_username(u) for u in ("v001-reviewer", "town01-reviewer", "city-reviewer")]
    outsider = user_by_username("v002-editor")

    class Workflow(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.c = ops.create(author, {"section": "affairs", "title": "状态机", "body": "<p>x</p>",
                                         "target_regions": [V001],
                                         "expire_at": (utcnow() + FAR).isoformat()})
            # The model: what the item should be.
            self.status, self.work, self.live = "draft", "draft", 0
            self.versions = 1

        def _try(self, fn, ok: bool, refused=(409,)):
            try:
                fn()
            except ApiError as e:
                assert not ok and e.status in refused, (e.status, e.message)
                return False
            assert ok, "the operation should have been refused"
            return True

        @rule(title=st.text(alphabet="东河村通知公告abc<>&", min_size=1, max_size=12).filter(lambda t: t.strip()))
        def edit(self, title):
            ok = self.status not in ("withdrawn", "expired") and self.work != "submitted"
            if self._try(lambda: ops.update(author, self.c, {"title": title}), ok):
                if self.work is None:
                    self.versions += 1
                self.work = "draft"
                if not self.live:
                    self.status = "draft"

        @rule()
        def submit(self):
            ok = self.work in ("draft", "rejected") and self.status not in ("withdrawn", "expired")
            if self._try(lambda: ops.submit(author, self.c), ok):
                self.work = "submitted"
                if not self.live:
                    self.status = "submitted"

        @rule(i=st.integers(0, 2))
        def approve(self, i):
            ok = self.work == "submitted" and self.status not in ("withdrawn", "expired")
            if self._try(lambda: ops.approve(reviewers[i], self.c), ok):
                self.work, self.live, self.status = None, self.versions, "published"

        @rule()
        def author_approves(self):
            self._try(lambda: ops.approve(author, self.c), False, refused=(403,))

        @rule()
        def outsider_acts(self):
            self._try(lambda: ops.update(outsider, self.c, {"title": "越权"}), False, refused=(403,))
            self._try(lambda: ops.withdraw(outsider, self.c), False, refused=(403,))

        @rule(i=st.integers(0, 2), reason=st.sampled_from(["", "  ", "金额有误"]))
        def reject(self, i, reason):
            pending = self.work == "submitted"
            ok = pending and bool(reason.strip())   # no rejection without a reason
            if not self._try(lambda: ops.reject(reviewers[i], self.c, reason), ok,
                             refused=(400,) if pending else (409,)):
                return
            self.work = "rejected"
            if not self.live:
                self.status = "rejected"

        @rule()
        def withdraw(self):
            ok = self.status in ("submitted", "approved", "published")
            if self._try(lambda: ops.withdraw(author, self.c), ok):
                self.status = "withdrawn"
                if self.work == "submitted":
                    self.work = "draft"

        @rule()
        def time_passes_beyond_expiry(self):
            ops.expire_due(utcnow() + FAR + dt.timedelta(days=1))
            if self.status in ("published", "approved"):
                self.status = "expired"

        @invariant()
        def matches_the_model_and_the_tv(self):
            c = self.c
            assert c.status in STATUSES and c.status == self.status
            work = c.work_version
            assert (work.status if work is not None else None) == self.work
            shown = queries.tv_item(c.id, V001)
            assert (shown is not None) == (self.status == "published")
            assert queries.tv_item(c.id, V002) is None
            if shown is not None:
                live = c.live_version
                assert live.status == "approved" and live.reviewed_by not in (None, author.username)
                assert shown["version"] == live.number == self.live

    Workflow.TestCase.settings = settings(max_examples=40, stateful_step_count=12, deadline=None,
                                          suppress_health_check=list(HealthCheck))
    run_state_machine_as_test(Workflow, settings=Workflow.TestCase.settings)
