"""Teamwork between users (issue 19): instant messages, the event journal's notes and notifications, their retention.

- ``chat``: one-to-one messages between users of one company who may see each other
  (user guide 2.6), delivered live as ``chat.message`` events, kept for offline users,
  with read receipts (``chat.read``) and history pages.
- ``journal``: personal notes on a contact, custom and general notifications, and the
  event journal of a contact or of a call (user guide 4.1).
- ``retention``: the daily purge of both (``Chat-NumberDaysOfStorage``,
  ``Notification-NumberDaysOfStorage`` at ``Teamwork-StartCleaningHour``).

Nothing here ever crosses a company: every query is bounded by the caller's company.
"""

from __future__ import annotations

from twpcore.teamwork.access import TeamworkError
from twpcore.teamwork.service import TeamworkService

__all__ = ["TeamworkError", "TeamworkService"]
