"""The web console at ``/console``: server-rendered pages over the gateway's own services.

No build step and nothing to install: Jinja2 templates and one stylesheet and one script ship
in the wheel. Pages read through the same services the API uses; every action the pages offer
is a call to the JSON API itself, authenticated by the console's cookie (see
:mod:`cerver.console.auth`), so an action does exactly what the API does and fails with the
API's own message.
"""
