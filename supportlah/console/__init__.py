"""The owner's console at ``/console``: sign-in, the inbox, the knowledge base, setup.

Server-rendered HTML (see :mod:`supportlah.console.html`) with htmx shipped locally
for live updates; staff replies go through the pipeline like a staff-group message.
"""
