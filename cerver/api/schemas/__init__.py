"""Request and response bodies of the HTTP API (``<Thing>Create``, ``<Thing>Public``)."""
