"""Engine-internal input kinds (journal kinds >= 192; below 192 a kind is a wire MsgType).

The same numbers are declared for Cython in ``oms_core/engine/loop.pxd``.
"""

KIND_TIMER = 192  # core.on_timer: expire GTD / DAY orders
KIND_MARK_TO_MARKET = 193  # core.mark_to_market: revalue positions, run the loss breakers
KIND_START_OF_DAY = 194  # core.start_of_day
KIND_CONFIG = 195  # a configuration change
KIND_AUDIT = 200  # an AUDIT record of a client command, emitted as an event when applied

__all__ = ["KIND_AUDIT", "KIND_CONFIG", "KIND_MARK_TO_MARKET", "KIND_START_OF_DAY", "KIND_TIMER"]
