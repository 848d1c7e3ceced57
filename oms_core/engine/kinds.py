"""Engine-internal input kinds (journal kinds >= 192; below 192 a kind is a wire MsgType).

The same numbers are declared for Cython in ``oms_core/engine/loop.pxd``.
"""

KIND_TIMER = 192  # core.on_timer: expire GTD / DAY orders
KIND_MARK_TO_MARKET = 193  # core.mark_to_market: revalue positions, run the loss breakers
KIND_START_OF_DAY = 194  # core.start_of_day
KIND_RECON_DONE = 196  # payload: JSON summary; trading may resume
KIND_ADMIN_OVERRIDE = 197  # payload: JSON {"who": ..., "why": ...}; resume without reconciling
KIND_RECON_ALERT = 198  # payload: a RISK_ALERT record the engine emits as an event (replayed too)
KIND_RECON_BALANCE = 199  # payload: a GW_BALANCE record; the core adopts the venue's total
KIND_AUDIT = 200  # an AUDIT record of a client command, emitted as an event when applied

__all__ = ["KIND_ADMIN_OVERRIDE", "KIND_AUDIT", "KIND_MARK_TO_MARKET",
           "KIND_RECON_ALERT", "KIND_RECON_BALANCE", "KIND_RECON_DONE", "KIND_START_OF_DAY",
           "KIND_TIMER"]
