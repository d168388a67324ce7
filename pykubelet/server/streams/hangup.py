"""Telling a session that ended because its client hung up from one the agent cancelled.

The HTTP servers cancel a handler when its connection is lost (aiohttp's
``handler_cancellation``). For a stream session that loss is its normal end: kubectl closes
the connection when an exec or a port-forward is over. Left alone, the cancellation would end
every such session as a 499 in the request log and the audit trail, and the wait for the
hang-up would count as the kubelet's own time.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

__all__ = ["ended_by_hang_up"]


def ended_by_hang_up(request: web.Request) -> bool:
    """Called while a ``CancelledError`` is being handled: True, and the cancellation is
    withdrawn, when it is the server's one reaction to the client's hang-up (the request's
    connection is gone, and nothing else asked this task to stop); else False, and the
    caller re-raises. (The connection, not the session's own end-of-stream: a session fed by
    a task, as the WebSocket tunnel's, may not have seen the end yet.)"""
    task = asyncio.current_task()
    if task is None or request.transport is not None or task.cancelling() != 1:
        return False
    task.uncancel()
    return True
