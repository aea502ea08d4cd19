"""CommuniTV portal server: the Flask back end, staff web and API."""
