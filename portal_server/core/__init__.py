"""The core every feature stands on: config, db, regions & scope, accounts, audit, signals,
Redis, MQTT and jobs. Core imports no feature (DESIGN §1)."""
