"""State of one browser session: the runtime in use and the store. Built per session, never
shared, so two visitors can use two devices at once."""

from __future__ import annotations

import param

from workbench.runtime import Runtime, get_runtime
from workbench.store import Store


class Session(param.Parameterized):
    """The device this browser session runs on; pages watch ``rt`` to follow a switch."""

    rt = param.ClassSelector(class_=Runtime, doc="runtime in use")

    def __init__(self, device: str | None = None, store: Store | None = None):
        super().__init__(rt=get_runtime(device))
        self.store = store or Store()
