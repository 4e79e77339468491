"""Staff hand-off: tickets, the Telegram staff group, human mode and relaying staff replies.

Entry points: :class:`escalation.hook.EscalationHook` (the pipeline hook),
:class:`escalation.staff_sender.StaffSender` (``Channel.STAFF``), and the wiring in
``supportlah/escalation_wiring.py``.
"""
