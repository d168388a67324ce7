"""The bounded stdin queue paces a fast producer by its consumer."""

from __future__ import annotations

import asyncio

from pykubelet.server.streams.aio_iter import QueueIterator


async def test_put_waits_while_full_and_end_drains() -> None:
    q: QueueIterator[int] = QueueIterator(max_items=2)
    await q.put(1)
    await q.put(2)
    blocked = asyncio.ensure_future(q.put(3))
    await asyncio.sleep(0)
    assert not blocked.done()
    assert await anext(q) == 1
    async with asyncio.timeout(5):
        await blocked
    q.end()
    assert [i async for i in q] == [2, 3]
    await q.put(4)  # ignored after the end
    assert [i async for i in q] == []
