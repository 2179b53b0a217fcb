"""The operator console at /ui/: server-rendered pages over `hub.operations`, for people.

Pages are Jinja2 templates; htmx (vendored in `static/`, no build step) swaps fragments for live
counters and actions. People log in with OpenID Connect (`oidc`) or, as fallback, an admin token
(`login`); the session is a sealed cookie (`session`); roles and CSRF are checked by `guard`. Every
action goes through `hub.operations`, the same layer as the CLI and the admin API, so it lands in the
audit trail under the person's name.
"""
