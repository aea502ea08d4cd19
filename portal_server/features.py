"""The list of feature packages. Only ``create_app``, the migrations and the demo seed read it.

Each package may provide ``init_app(app)`` (in its ``__init__``), ``models`` (tables) and
``demo.seed(ctx)`` (demo data, run in this order after the city, accounts and terminals).
"""
FEATURES = (
    "portal_server.system",
    "portal_server.admin",
    "device_fleet",
    "portal_server.content",
    "stb_app",
    "portal_server.feedback",
    "portal_server.meetings",
    "streaming",
    "epg",
    "portal_server.alerts",
    "portal_server.services",
    "portal_server.cases",
    "portal_server.care",
    "portal_server.affairs",
    "portal_server.backup",
    "portal_server.stats",
    "portal_server.grids",
    "portal_server.registry",
)
