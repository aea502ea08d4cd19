"""Property-based state machine of work orders (hypothesis): whatever the sequence of actions,
by the right or the wrong people, no order is lost, no required step is skipped, and no order
is closed without a reply."""
import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from portal_server.core.accounts import user_by_username
from portal_server.core.api import ApiError
from portal_server.core.db import session
from portal_server.core.terminals import terminal_by_serial
from portal_server.feedback import operations as ops
from portal_server.feedback.models import OPEN, PENDING, WorkOrder

DESK_USER = {"990101001001": "v001-handler", "990101001000": "town01-handler",
             "civil-affairs": "dept-civil", "service-center": "admin", "990100000000": "admin"}
WRONG_USER = {"990101001001": "v002-handler", "990101001000": "v002-handler",
              "civil-affairs": "town01-handler", "service-center": "dept-civil"}
STAFF = ("accept", "assign", "escalate", "return", "reply", "close", "reopen")


class Model:
    """The reference: what must be allowed and where the order must end up."""

    def __init__(self):
        self.status, self.level, self.code = "submitted", "village", "990101001001"
        self.accepted = False
        self.rated = False
        self.follow_up = None

    def allowed(self, action):
        s = self.status
        return {"accept": s in PENDING,
                "assign": s in OPEN,
                "escalate": s in OPEN and self.level != "department",
                "return": s in OPEN and self.level != "village",
                "reply": s in OPEN and self.accepted,
                "close": s == "replied",
                "reopen": s in ("replied", "closed"),
                "rate": s in ("replied", "closed") and not self.rated,
                "follow_up": s == "closed" and self.follow_up == "due"}[action]


def assign_target(model):
    return "990101001000" if model.level == "department" else "civil-affairs"


class WorkOrderMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.box = terminal_by_serial("CTV-HH-000002")
        self.order, _ = ops.submit("assistance", "想申请临时救助", True, channel="tv",
                                   actor=ops.Actor(terminal=self.box), region=self.box.region,
                                   household_id=self.box.household_id,
                                   idem_owner=f"hh:{self.box.household_id}")
        session.commit()
        self.model = Model()
        self.count = session.scalar(select(func.count()).select_from(WorkOrder))
        self.events = 1

    def _do(self, actor, action, **kw):
        try:
            ops.act(self.order, actor, action, **kw)
            session.commit()
            return 200
        except ApiError as e:
            session.rollback()
            return e.status

    @rule(action=st.sampled_from(STAFF), right=st.sampled_from([True, True, True, False]))
    def staff_action(self, action, right):
        m = self.model
        name = (DESK_USER if right else WRONG_USER)[m.code]
        actor = ops.Actor(user=user_by_username(name))
        kw = {"message": "已经处理好了", "reason": "需要下级核实"}
        if action == "assign":
            kw["to"] = assign_target(m)
        before = len(self.order.events)
        code = self._do(actor, action, **kw)
        if not right:
            assert code == 403, (action, name, m.status)
            assert len(self.order.events) == before
            return
        expected = 200 if m.allowed(action) else 409
        assert code == expected, (action, m.status, m.level, code)
        if code == 200:
            self._apply(action)

    @rule(score=st.integers(min_value=1, max_value=5), own=st.booleans())
    def rate(self, score, own):
        serial = "CTV-HH-000002" if own else "CTV-HH-000003"
        code = self._do(ops.Actor(terminal=terminal_by_serial(serial)), "rate", score=score)
        if not own:
            assert code == 403
            return
        assert code == (200 if self.model.allowed("rate") else 409)
        if code == 200:
            self.model.rated = True
            if score <= 2:
                self._apply("reopen")
            elif self.model.status == "replied":
                self._apply("close")

    @precondition(lambda self: self.model.status == "closed")
    @rule()
    def follow_up(self):
        code = self._do(ops.Actor(user=user_by_username("grid-v001")), "follow_up", message="已上门回访，群众满意")
        assert code == (200 if self.model.allowed("follow_up") else 409)
        if code == 200:
            self.model.follow_up = "done"

    def _apply(self, action):
        m = self.model
        if action == "accept":
            m.status, m.accepted = "accepted", True
        elif action == "escalate":
            if m.level == "village":
                m.level, m.code = "town", "990101001000"
            else:
                m.level, m.code = "department", "civil-affairs"
            m.status = "escalated"
        elif action == "return":
            if m.level == "town":
                m.level, m.code = "village", "990101001001"
            else:
                m.level, m.code = "town", "990101001000"
            m.status = "returned"
        elif action == "assign":
            to = assign_target(m)
            m.level, m.code = ("department", to) if to == "civil-affairs" else ("town", to)
            m.status = "assigned"
        elif action == "reply":
            m.status, m.rated = "replied", False
        elif action == "close":
            m.status, m.follow_up = "closed", "due"
        elif action == "reopen":
            m.status, m.follow_up = "reopened", None

    @invariant()
    def matches_the_model_and_keeps_every_step(self):
        session.expire_all()
        o = session.get(WorkOrder, self.order.id)
        assert o is not None, "the order was lost"
        assert session.scalar(select(func.count()).select_from(WorkOrder)) == self.count
        assert (o.status, o.handler_level, o.handler_code) == (self.model.status, self.model.level, self.model.code)
        actions = [e.action for e in o.events]
        assert actions[0] == "submit"
        # Never replied before someone accepted it.
        if "reply" in actions:
            assert "accept" in actions[:actions.index("reply")]
        # Never closed without a reply after the latest reopening.
        for i, a in enumerate(actions):
            if a == "close":
                last_reopen = max([j for j in range(i) if actions[j] == "reopen"], default=-1)
                assert "reply" in actions[last_reopen + 1:i], actions
        if o.status in ("replied", "closed"):
            assert o.reply
        assert o.events[-1].status == o.status
        ats = [e.at for e in o.events]
        assert ats == sorted(ats)
        assert len(o.events) >= self.events
        self.events = len(o.events)


def test_work_order_state_machine(app):
    run_state_machine_as_test(WorkOrderMachine, settings=settings(
        max_examples=60, stateful_step_count=20, deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]))
