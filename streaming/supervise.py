"""``python -m streaming.supervise <meeting id>``: the HLS supervisor of one live meeting as its own
process (started by the ``spawn_supervisor`` job; settings from the ``COMMUNITV_*`` environment)."""
from __future__ import annotations

import logging
import sys


def main(argv: list[str]) -> int:
    from portal_server.app import create_app

    from . import tasks

    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m streaming.supervise MEETING_ID", file=sys.stderr)
        return 2
    app = create_app()
    with app.app_context():
        facts = tasks.run_live(int(argv[0]))
    logging.getLogger(__name__).info("meeting %s supervisor done: %s", argv[0], facts)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
