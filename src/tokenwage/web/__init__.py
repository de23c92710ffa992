"""The dashboard and REST API: sign-in, roles, the page shell and ``/api/v1``.

Build the app with :func:`tokenwage.web.app.create_web_app`; ``tokenwage serve`` mounts it
next to the gateway on one port (:mod:`tokenwage.web.combined`).
"""
